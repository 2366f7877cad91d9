// Job service figures, each against a baseline measured in the same run,
// with esb-server started as its own process on loopback (so its memory
// is its own):
//
//   poll:   GetJob and ListJobs (page_size 100) latency with --jobs queued
//           jobs in the store and --clients threads, each on its own
//           connection, calling in a loop for --seconds; the baseline is
//           the gRPC health check on the same server (the RPC floor).
//           Target: GetJob p99 < 5 ms.
//   upload: a --upload-mb random file uploaded with esbctl's client
//           (client/remote.h: it hashes the file, then streams 1 MiB
//           chunks); the baseline is hashing the file alone. Targets:
//           >= 150 MiB/s, server peak RSS (VmHWM) growth < 64 MiB.
//
//   esb_service_bench --server-bin build/server/esb-server [--figure poll]
//
// Exits 1 when a target is missed, 2 when the bench itself cannot run.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/remote.h"
#include "core/cli/flags.h"
#include "core/env/digest.h"
#include "esb/v1/service.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"

ABSL_FLAG(std::string, server_bin, "build/server/esb-server",
          "The esb-server binary to start.");
ABSL_FLAG(std::string, figure, "all", "poll, upload or all.");
ABSL_FLAG(int, jobs, 1000, "Queued jobs in the store while polling.");
ABSL_FLAG(int, clients, 16, "Polling threads, one connection each.");
ABSL_FLAG(double, seconds, 5, "How long each polling run lasts.");
ABSL_FLAG(int, upload_mb, 200, "Size of the uploaded file in MiB.");

namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start)
      .count();
}

// An esb-server process in its own process group, output in a log file.
// It dies with the bench (PR_SET_PDEATHSIG) and is stopped when this
// object goes away, so no exit path leaves it behind.
class ServerProcess {
 public:
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(
      const std::string& binary, const std::string& dir) {
    const std::string data_dir = dir + "/data";
    const std::string log = dir + "/server.log";
    std::vector<std::string> argv = {binary, "--listen", "127.0.0.1:0",
                                     "--data-dir", data_dir};
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) return absl::InternalError("fork failed");
    if (pid == 0) {
      setpgid(0, 0);
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      std::vector<char*> args;
      for (std::string& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    auto process = absl::WrapUnique(new ServerProcess(pid, log));
    // "esb-server listening on HOST:PORT"; the port is picked at start.
    const Clock::time_point start = Clock::now();
    while (MsSince(start) < 20000) {
      std::ifstream in(log);
      std::string line;
      while (std::getline(in, line)) {
        const size_t at = line.find("listening on ");
        if (at != std::string::npos) {
          process->address_ = line.substr(at + 13);
          return process;
        }
      }
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        process->reaped_ = true;
        return absl::FailedPreconditionError(
            absl::StrCat(binary, " exited at start: ", process->Log()));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return absl::DeadlineExceededError(absl::StrCat(
        binary, " printed no address within 20 s: ", process->Log()));
  }

  ~ServerProcess() {
    if (reaped_) return;
    kill(pid_, SIGTERM);
    const Clock::time_point start = Clock::now();
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) != pid_) {
      if (MsSince(start) > 10000) {
        kill(-pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  const std::string& address() const { return address_; }
  pid_t pid() const { return pid_; }

  std::string Log() const {
    std::ifstream in(log_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  // User plus system CPU time used so far, in ms.
  double CpuMs() const {
    std::ifstream in(absl::StrCat("/proc/", pid_, "/stat"));
    std::string text((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
    // Fields after the parenthesized name; utime and stime are the 14th
    // and 15th of the line.
    const size_t close = text.rfind(')');
    if (close == std::string::npos) return -1;
    std::istringstream fields(text.substr(close + 2));
    std::string field;
    double ticks = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {
      if (i >= 14) ticks += std::strtod(field.c_str(), nullptr);
    }
    return ticks * 1000 / static_cast<double>(sysconf(_SC_CLK_TCK));
  }

  // A "VmHWM:"-style field of /proc/PID/status in KiB; -1 if absent.
  int64_t StatusKib(const std::string& field) const {
    std::ifstream in(absl::StrCat("/proc/", pid_, "/status"));
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind(field + ":", 0) == 0) {
        return std::strtoll(line.c_str() + field.size() + 1, nullptr, 10);
      }
    }
    return -1;
  }

 private:
  ServerProcess(pid_t pid, std::string log) : pid_(pid), log_(std::move(log)) {}

  pid_t pid_;
  std::string log_;
  std::string address_;
  bool reaped_ = false;
};

// A temp directory removed with everything in it when it goes away.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "esb-service-bench.XXXXXX")
            .string();
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A channel of its own: without a local subchannel pool, gRPC would put
// every channel to the same address on one shared connection.
std::shared_ptr<grpc::Channel> OwnChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(),
                                   args);
}

struct Latencies {
  std::vector<double> ms;  // Successful calls, sorted.
  int64_t errors = 0;
  double seconds = 0;
  std::string first_error;

  double Quantile(double q) const {
    if (ms.empty()) return 0;
    const size_t at = std::min(
        ms.size() - 1, static_cast<size_t>(q * static_cast<double>(ms.size())));
    return ms[at];
  }
};

// Runs `call` (one RPC on the given channel's stubs, by client index and a
// random number) from `clients` threads for `seconds`.
using Call = std::function<grpc::Status(int client, uint64_t random)>;
Latencies Hammer(int clients, double seconds, const Call& call) {
  std::vector<std::vector<double>> per(clients);
  std::vector<int64_t> errors(clients, 0);
  std::vector<std::string> first_error(clients);
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      std::mt19937_64 random(c + 1);
      while (!go.load()) std::this_thread::yield();
      const Clock::time_point end =
          Clock::now() + std::chrono::duration_cast<Clock::duration>(
                             std::chrono::duration<double>(seconds));
      while (Clock::now() < end) {
        const Clock::time_point start = Clock::now();
        const grpc::Status status = call(c, random());
        const double ms = MsSince(start);
        if (status.ok()) {
          per[c].push_back(ms);
        } else {
          if (errors[c]++ == 0) first_error[c] = status.error_message();
        }
      }
    });
  }
  const Clock::time_point start = Clock::now();
  go = true;
  for (std::thread& t : threads) t.join();
  Latencies out;
  out.seconds = MsSince(start) / 1000;
  for (int c = 0; c < clients; ++c) {
    out.ms.insert(out.ms.end(), per[c].begin(), per[c].end());
    out.errors += errors[c];
    if (out.first_error.empty()) out.first_error = first_error[c];
  }
  std::sort(out.ms.begin(), out.ms.end());
  return out;
}

// The 1, 5 and 15 minute load averages: other work on the machine moves
// every figure here.
std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return absl::StrCat(one, " ", five, " ", fifteen, " on ",
                      std::thread::hardware_concurrency(), " CPUs\n");
}

void PrintLatencies(const std::string& name, const Latencies& l) {
  std::cout << absl::StrFormat(
      "  %-22s %8d calls %4d errors  p50 %6.3f  p95 %6.3f  p99 %6.3f  max "
      "%7.3f ms  %8.0f calls/s\n",
      name, l.ms.size(), l.errors, l.Quantile(0.50), l.Quantile(0.95),
      l.Quantile(0.99), l.ms.empty() ? 0.0 : l.ms.back(),
      static_cast<double>(l.ms.size()) / l.seconds);
  if (l.errors > 0) std::cout << "    first error: " << l.first_error << "\n";
}

// 0: targets met, 1: missed, 2: could not run.
int PollFigure(const std::string& server_bin) {
  const int jobs = absl::GetFlag(FLAGS_jobs);
  const int clients = absl::GetFlag(FLAGS_clients);
  const double seconds = absl::GetFlag(FLAGS_seconds);
  TempDir dir;
  if (dir.path().empty()) return 2;
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::Start(server_bin, dir.path());
  if (!server.ok()) {
    std::cerr << "poll: " << server.status() << "\n";
    return 2;
  }
  const std::string address = (*server)->address();
  absl::StatusOr<std::unique_ptr<esb::client::Remote>> remote =
      esb::client::Remote::Connect(address);
  if (!remote.ok()) {
    std::cerr << "poll: " << remote.status() << "\n";
    return 2;
  }
  // The server checks that the blobs exist, not what they hold; nothing
  // leases these jobs, so they stay queued.
  absl::StatusOr<esb::v1::BlobRef> model =
      (*remote)->UploadBytes("service bench model bytes");
  absl::StatusOr<esb::v1::BlobRef> calib =
      (*remote)->UploadBytes("service bench calibration bytes");
  if (!model.ok() || !calib.ok()) {
    std::cerr << "poll: upload: "
              << (model.ok() ? calib.status() : model.status()) << "\n";
    return 2;
  }
  std::vector<std::string> ids;
  const Clock::time_point submit_start = Clock::now();
  for (int i = 0; i < jobs; ++i) {
    esb::v1::SubmitJobRequest request;
    *request.mutable_inputs()->mutable_model() = *model;
    request.mutable_inputs()->set_model_name(absl::StrCat("bench", i));
    *request.mutable_inputs()->mutable_calib()->mutable_blob() = *calib;
    absl::StatusOr<esb::v1::SubmitJobResponse> submitted =
        (*remote)->Submit(request);
    if (!submitted.ok()) {
      std::cerr << "poll: submit " << i << ": " << submitted.status() << "\n";
      return 2;
    }
    ids.push_back(submitted->job().id());
  }
  const double submit_ms = MsSince(submit_start);

  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<esb::v1::QuantizationService::Stub>> stubs;
  std::vector<std::unique_ptr<grpc::health::v1::Health::Stub>> health;
  for (int c = 0; c < clients; ++c) {
    channels.push_back(OwnChannel(address));
    if (!channels.back()->WaitForConnected(std::chrono::system_clock::now() +
                                           std::chrono::seconds(5))) {
      std::cerr << "poll: client " << c << " cannot connect to " << address
                << "\n";
      return 2;
    }
    stubs.push_back(esb::v1::QuantizationService::NewStub(channels.back()));
    health.push_back(grpc::health::v1::Health::NewStub(channels.back()));
  }
  auto deadline = [] {
    return std::chrono::system_clock::now() + std::chrono::seconds(10);
  };

  std::cout << absl::StrFormat(
      "== service poll (bench/service_bench.cc): %d queued jobs (submitted in "
      "%.0f ms, %.2f ms each), %d clients, %.0f s each, server %s ==\n"
      "  load average %s",
      jobs, submit_ms, submit_ms / jobs, clients, seconds, address,
      LoadAverage());
  const Latencies floor = Hammer(clients, seconds, [&](int c, uint64_t) {
    grpc::ClientContext context;
    context.set_deadline(deadline());
    grpc::health::v1::HealthCheckRequest request;
    grpc::health::v1::HealthCheckResponse response;
    return health[c]->Check(&context, request, &response);
  });
  PrintLatencies("Health/Check (floor)", floor);
  const Latencies get = Hammer(clients, seconds, [&](int c, uint64_t r) {
    grpc::ClientContext context;
    context.set_deadline(deadline());
    esb::v1::GetJobRequest request;
    request.set_id(ids[r % ids.size()]);
    esb::v1::Job job;
    grpc::Status status = stubs[c]->GetJob(&context, request, &job);
    if (status.ok() && job.id() != request.id()) {
      return grpc::Status(grpc::StatusCode::INTERNAL, "GetJob: wrong job");
    }
    return status;
  });
  PrintLatencies("GetJob", get);
  const Latencies list = Hammer(clients, seconds, [&](int c, uint64_t) {
    grpc::ClientContext context;
    context.set_deadline(deadline());
    esb::v1::ListJobsRequest request;
    request.set_page_size(100);
    esb::v1::ListJobsResponse response;
    grpc::Status status = stubs[c]->ListJobs(&context, request, &response);
    if (status.ok() && response.jobs_size() != std::min(100, jobs)) {
      return grpc::Status(grpc::StatusCode::INTERNAL,
                          absl::StrCat("ListJobs: ", response.jobs_size(),
                                       " jobs in a page of 100"));
    }
    return status;
  });
  PrintLatencies("ListJobs page_size 100", list);

  int result = 0;
  for (const auto& [name, l] :
       {std::pair<const char*, const Latencies*>{"GetJob", &get},
        std::pair<const char*, const Latencies*>{"ListJobs", &list}}) {
    const double ratio =
        l->Quantile(0.99) / std::max(1e-9, floor.Quantile(0.99));
    if (l == &list) {  // The target is GetJob's; this line is for reference.
      std::cout << absl::StrFormat(
          "  %-8s p99 %.3f ms = %.1fx the health-check p99 (no target)\n", name,
          l->Quantile(0.99), ratio);
      continue;
    }
    const bool pass = !l->ms.empty() && l->errors == 0 && l->Quantile(0.99) < 5;
    if (!pass) result = 1;
    std::cout << absl::StrFormat(
        "  %-8s p99 %.3f ms = %.1fx the health-check p99; target p99 < 5 ms "
        "with no errors: %s\n",
        name, l->Quantile(0.99), ratio, pass ? "PASS" : "FAIL");
  }
  return result;
}

// Writes `bytes` pseudo-random bytes (incompressible, fixed seed).
absl::Status WriteRandomFile(const std::string& path, int64_t bytes) {
  std::ofstream out(path, std::ios::binary);
  std::mt19937_64 random(42);
  std::vector<uint64_t> chunk((size_t{1} << 20) / sizeof(uint64_t));
  for (int64_t left = bytes; left > 0;) {
    for (uint64_t& v : chunk) v = random();
    const int64_t n =
        std::min<int64_t>(left, static_cast<int64_t>(chunk.size() * 8));
    out.write(reinterpret_cast<const char*>(chunk.data()), n);
    left -= n;
  }
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

absl::StatusOr<std::string> HashFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  esb::Sha256Stream hash;
  std::string buffer(size_t{1} << 20, '\0');
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    hash.Update(absl::string_view(buffer.data(), in.gcount()));
  }
  return hash.HexDigest();
}

int UploadFigure(const std::string& server_bin) {
  const int mib = absl::GetFlag(FLAGS_upload_mb);
  const int64_t bytes = int64_t{mib} << 20;
  TempDir dir;
  if (dir.path().empty()) return 2;
  const std::string file = dir.path() + "/blob.bin";
  if (absl::Status s = WriteRandomFile(file, bytes); !s.ok()) {
    std::cerr << "upload: " << s << "\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::Start(server_bin, dir.path());
  if (!server.ok()) {
    std::cerr << "upload: " << server.status() << "\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<esb::client::Remote>> remote =
      esb::client::Remote::Connect((*server)->address());
  if (!remote.ok()) {
    std::cerr << "upload: " << remote.status() << "\n";
    return 2;
  }
  // Hash once untimed so both timed runs read the file from the page cache.
  absl::StatusOr<std::string> sha = HashFile(file);
  if (!sha.ok()) {
    std::cerr << "upload: " << sha.status() << "\n";
    return 2;
  }
  Clock::time_point start = Clock::now();
  sha = HashFile(file);
  const double hash_ms = MsSince(start);

  const int64_t hwm_before = (*server)->StatusKib("VmHWM");
  const int64_t rss_before = (*server)->StatusKib("VmRSS");
  const double cpu_before = (*server)->CpuMs();
  start = Clock::now();
  absl::StatusOr<esb::v1::BlobRef> blob = (*remote)->UploadFile(file, nullptr);
  const double upload_ms = MsSince(start);
  const int64_t hwm_after = (*server)->StatusKib("VmHWM");
  const int64_t rss_after = (*server)->StatusKib("VmRSS");
  const double server_cpu_ms = (*server)->CpuMs() - cpu_before;
  if (!blob.ok()) {
    std::cerr << "upload: " << blob.status() << "\n";
    return 2;
  }
  if (blob->sha256() != *sha || blob->size() != bytes) {
    std::cerr << "upload: the server holds " << blob->sha256() << " ("
              << blob->size() << " bytes), not " << *sha << " (" << bytes
              << ")\n";
    return 2;
  }
  const double hash_rate = mib / (hash_ms / 1000);
  const double upload_rate = mib / (upload_ms / 1000);
  const double growth_mib = static_cast<double>(hwm_after - hwm_before) / 1024;
  const bool rate_pass = upload_rate >= 150;
  const bool rss_pass = growth_mib < 64;
  std::cout << absl::StrFormat(
      "== service upload (bench/service_bench.cc): %d MiB random file, "
      "server %s (pid %d) ==\n",
      mib, (*server)->address(), (*server)->pid());
  std::cout << absl::StrFormat(
      "  sha256 alone (baseline)  %7.0f ms  %7.1f MiB/s\n", hash_ms, hash_rate);
  std::cout << absl::StrFormat(
      "  UploadFile (hash+stream) %7.0f ms  %7.1f MiB/s  = %.2fx the sha256 "
      "time; target >= 150 MiB/s: %s\n",
      upload_ms, upload_rate, upload_ms / hash_ms, rate_pass ? "PASS" : "FAIL");
  std::cout << absl::StrFormat(
      "  server CPU during the upload %.0f ms (%.0f%% of the upload's wall "
      "time); load average %s",
      server_cpu_ms, 100 * server_cpu_ms / upload_ms, LoadAverage());
  std::cout << absl::StrFormat(
      "  server VmHWM %.1f -> %.1f MiB (+%.1f MiB; VmRSS %.1f -> %.1f MiB); "
      "target growth < 64 MiB: %s\n",
      hwm_before / 1024.0, hwm_after / 1024.0, growth_mib, rss_before / 1024.0,
      rss_after / 1024.0, rss_pass ? "PASS" : "FAIL");
  return rate_pass && rss_pass ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "job service benchmarks (see the top of bench/service_bench.cc).\n\n"
      "  esb_service_bench --server-bin PATH [--figure poll|upload|all]");
  std::vector<std::string> storage;
  std::vector<char*> args = esb::cli::UnderscoreFlagNames(argc, argv, &storage);
  absl::ParseCommandLine(static_cast<int>(storage.size()), args.data());
  // A client that goes away mid-call must not kill the bench.
  signal(SIGPIPE, SIG_IGN);
  const std::string figure = absl::GetFlag(FLAGS_figure);
  const std::string server_bin = absl::GetFlag(FLAGS_server_bin);
  if (figure != "all" && figure != "poll" && figure != "upload") {
    std::cerr << "esb_service_bench: --figure must be poll, upload or all\n";
    return 2;
  }
  if (access(server_bin.c_str(), X_OK) != 0) {
    std::cerr << "esb_service_bench: --server-bin " << server_bin
              << " is not an executable\n";
    return 2;
  }
  int result = 0;
  if (figure != "upload") result = std::max(result, PollFigure(server_bin));
  if (figure != "poll") result = std::max(result, UploadFigure(server_bin));
  return result;
}
