#include "worker/job_process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <new>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "core/env/env.h"
#include "core/pipeline/job.h"
#include "core/pipeline/progress.h"

namespace esb::worker {
namespace {

// A progress message is small; a length past this means a garbled pipe.
constexpr uint64_t kMaxProgressMessage = 1 << 20;

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  if (abbrev == nullptr) return absl::StrCat("signal ", sig);
  return absl::StrCat("SIG", abbrev);
}

std::string FormatBytes(int64_t bytes) {
  if (bytes > 0 && bytes % (int64_t{1} << 30) == 0) {
    return absl::StrCat(bytes >> 30, " GiB");
  }
  if (bytes > 0 && bytes % (int64_t{1} << 20) == 0) {
    return absl::StrCat(bytes >> 20, " MiB");
  }
  return absl::StrCat(bytes, " bytes");
}

// The last non-empty line of a file (its last 4 KiB), or "".
std::string LastLine(const std::string& path) {
  FILE* f = fopen(path.c_str(), "rb");
  if (f == nullptr) return "";
  std::string tail(4096, '\0');
  if (fseeko(f, 0, SEEK_END) == 0) {
    const off_t size = ftello(f);
    fseeko(f, std::max<off_t>(0, size - static_cast<off_t>(tail.size())),
           SEEK_SET);
  }
  tail.resize(fread(tail.data(), 1, tail.size(), f));
  fclose(f);
  absl::string_view text = absl::StripTrailingAsciiWhitespace(tail);
  const size_t nl = text.rfind('\n');
  if (nl != absl::string_view::npos) text.remove_prefix(nl + 1);
  return std::string(absl::StripAsciiWhitespace(text));
}

// Decodes one varint at the front of `s`; false when `s` holds too few
// bytes for it (or it is longer than 10 bytes, with *len set to ~0).
bool ReadVarint(absl::string_view s, uint64_t* value, size_t* len) {
  *value = 0;
  for (size_t i = 0; i < s.size() && i < 10; ++i) {
    const auto b = static_cast<uint8_t>(s[i]);
    *value |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      *len = i + 1;
      return true;
    }
  }
  if (s.size() >= 10) *len = ~size_t{0};
  return false;
}

void WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // The worker is gone; the job still ends normally.
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// Sends every event to the worker over the pipe.
class PipeSink : public pipeline::ProgressSink {
 public:
  explicit PipeSink(int fd) : fd_(fd) {}

  void OnProgress(const pipeline::ProgressEvent& event) override {
    esb::v1::JobProgress p;
    p.set_stage(event.stage);
    p.set_step(event.step);
    p.set_total(event.total);
    p.set_message(event.message);
    Send(p);
  }

  void Send(const esb::v1::JobProgress& p) {
    stage_ = p.stage();
    std::string body = p.SerializeAsString();
    std::string frame;
    uint64_t n = body.size();
    do {
      frame.push_back(static_cast<char>((n & 0x7f) | (n > 0x7f ? 0x80 : 0)));
      n >>= 7;
    } while (n != 0);
    frame += body;
    WriteAll(fd_, frame);
  }

  esb::v1::Stage stage() const { return stage_; }

 private:
  int fd_;
  esb::v1::Stage stage_ = esb::v1::STAGE_UNSPECIFIED;
};

void OutOfMemory() {
  static const char kMessage[] =
      "esb-worker job: out of memory (allocation failed under the job's "
      "memory limit)\n";
  WriteAll(2, kMessage);
  _exit(kExitOutOfMemory);
}

}  // namespace

std::string StageName(esb::v1::Stage stage) {
  if (stage == esb::v1::STAGE_UNSPECIFIED) return "start";
  return absl::AsciiStrToLower(
      absl::StripPrefix(esb::v1::Stage_Name(stage), "STAGE_"));
}

absl::Status WriteJobSpec(const std::string& job_dir, const esb::v1::Job& job) {
  if (absl::Status s = Env::Default()->CreateDirs(job_dir); !s.ok()) return s;
  return WriteFileAtomically(Env::Default(), job_dir + "/job.pb",
                             job.SerializeAsString());
}

absl::StatusOr<std::unique_ptr<JobProcess>> JobProcess::Spawn(
    const JobSpawnOptions& options) {
  // Everything the child needs is built before fork(): between fork and
  // exec a child of a threaded process may only make async-signal-safe
  // calls.
  std::vector<std::string> args = {
      options.binary, absl::StrCat("--run-job=", options.job_dir),
      absl::StrCat("--blob-dir=", options.blob_dir),
      absl::StrCat("--threads=", options.threads), "--progress-fd=3"};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string log = options.job_dir + "/stderr.log";
  // A status left by an earlier attempt must not be taken for this one's.
  unlink((options.job_dir + "/status.pb").c_str());

  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return absl::InternalError(
        absl::StrCat("job process: pipe: ", strerror(errno)));
  }
  const int log_fd =
      open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (log_fd < 0 || null_fd < 0) {
    const int err = errno;
    for (int fd : {fds[0], fds[1], log_fd, null_fd}) {
      if (fd >= 0) close(fd);
    }
    return absl::InternalError(
        absl::StrCat("job process: cannot open ", log, ": ", strerror(err)));
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    const int err = errno;
    for (int fd : {fds[0], fds[1], log_fd, null_fd}) close(fd);
    return absl::ResourceExhaustedError(
        absl::StrCat("job process: fork: ", strerror(err)));
  }
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);  // The worker died meanwhile.
    // The worker blocks SIGTERM/SIGINT for its signal thread and gRPC
    // ignores SIGPIPE; neither must carry over to the job.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl = {};
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &dfl, nullptr);
    dup2(null_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    if (fds[1] == 3) {
      fcntl(3, F_SETFD, 0);
    } else {
      dup2(fds[1], 3);
    }
    if (options.memory_limit > 0) {
      struct rlimit limit;
      limit.rlim_cur = static_cast<rlim_t>(options.memory_limit);
      limit.rlim_max = static_cast<rlim_t>(options.memory_limit);
      setrlimit(RLIMIT_AS, &limit);
    }
    execv(argv[0], argv.data());
    static const char kExecFailed[] = "esb-worker job: exec failed\n";
    WriteAll(2, kExecFailed);
    _exit(127);
  }
  close(fds[1]);
  close(log_fd);
  close(null_fd);
  fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
  return std::unique_ptr<JobProcess>(new JobProcess(options, pid, fds[0]));
}

JobProcess::JobProcess(const JobSpawnOptions& options, pid_t pid,
                       int progress_fd)
    : options_(options), pid_(pid), progress_fd_(progress_fd) {}

JobProcess::~JobProcess() {
  if (!reaped_) {
    Kill();
    Wait();
  }
  if (progress_fd_ >= 0) close(progress_fd_);
}

bool JobProcess::ReadProgress(absl::Duration timeout,
                              std::vector<esb::v1::JobProgress>* events) {
  if (progress_fd_ < 0) return false;
  struct pollfd p = {progress_fd_, POLLIN, 0};
  const int ms = static_cast<int>(
      std::max<int64_t>(0, absl::ToInt64Milliseconds(timeout)));
  const int ready = poll(&p, 1, ms);
  if (ready <= 0) return true;  // Timeout (or EINTR): still running.
  bool eof = false;
  char chunk[4096];
  while (true) {
    const ssize_t n = read(progress_fd_, chunk, sizeof(chunk));
    if (n > 0) {
      buffer_.append(chunk, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) eof = true;
    break;  // EOF, or EAGAIN: nothing more for now.
  }
  absl::string_view rest = buffer_;
  while (true) {
    uint64_t len = 0;
    size_t header = 0;
    if (!ReadVarint(rest, &len, &header)) {
      if (header == ~size_t{0}) rest = {};  // Garbled: drop it all.
      break;
    }
    if (len > kMaxProgressMessage) {
      rest = {};
      break;
    }
    if (rest.size() < header + len) break;
    esb::v1::JobProgress progress;
    if (progress.ParseFromArray(rest.data() + header, static_cast<int>(len))) {
      last_ = progress;
      events->push_back(std::move(progress));
    }
    rest.remove_prefix(header + len);
  }
  buffer_.erase(0, buffer_.size() - rest.size());
  if (eof) {
    close(progress_fd_);
    progress_fd_ = -1;
    return false;
  }
  return true;
}

void JobProcess::Kill() {
  if (reaped_) return;
  // The group first (the child made itself its leader); the child alone
  // when it has not got that far.
  kill(-pid_, SIGKILL);
  kill(pid_, SIGKILL);
}

JobExit JobProcess::Wait() {
  JobExit result;
  result.output_dir = options_.job_dir + "/out";
  if (reaped_) {
    result.error.set_code(static_cast<int>(absl::StatusCode::kInternal));
    result.error.set_message("job process already reaped");
    return result;
  }
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
  // Events written just before the exit.
  std::vector<esb::v1::JobProgress> late;
  while (ReadProgress(absl::ZeroDuration(), &late)) {
    if (late.empty()) break;
    late.clear();
  }
  const esb::v1::Stage stage = last_.stage();
  const std::string where = absl::StrCat(" in stage ", StageName(stage));
  std::string stderr_line = LastLine(options_.job_dir + "/stderr.log");
  const std::string tail =
      stderr_line.empty() ? "" : absl::StrCat(": ", stderr_line);
  const std::string limit =
      options_.memory_limit > 0
          ? absl::StrCat(" (memory limit ", FormatBytes(options_.memory_limit),
                         ", --job-memory-limit)")
          : "";
  esb::v1::JobError& error = result.error;
  error.set_stage(stage);
  error.set_code(static_cast<int>(absl::StatusCode::kInternal));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    // Allocations failing outside operator new (thread stacks, C
    // libraries) tend to end in these signals under an address-space limit.
    const bool memory = sig == SIGSEGV || sig == SIGBUS || sig == SIGABRT;
    error.set_message(absl::StrCat("job process killed by ", SignalName(sig),
                                   where, memory ? limit : "", tail));
    return result;
  }
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code == 0 || code == 1) {
    absl::StatusOr<std::string> bytes = ReadFileToString(
        Env::Default(), options_.job_dir + "/status.pb", kMaxProgressMessage);
    esb::v1::JobError written;
    if (bytes.ok() && written.ParseFromString(*bytes)) {
      if (written.code() == 0 && code == 0) {
        result.ok = true;
        result.error.Clear();
        return result;
      }
      if (written.code() != 0) {
        if (written.stage() == esb::v1::STAGE_UNSPECIFIED) {
          written.set_stage(stage);
        }
        if (written.code() ==
            static_cast<int>(absl::StatusCode::kResourceExhausted)) {
          written.set_message(absl::StrCat(written.message(), limit));
        }
        error = written;
        return result;
      }
    }
    error.set_message(absl::StrCat("job process exited with code ", code, where,
                                   " without a readable status", tail));
    return result;
  }
  if (code == kExitOutOfMemory) {
    error.set_code(static_cast<int>(absl::StatusCode::kResourceExhausted));
    error.set_message(
        absl::StrCat("job process ran out of memory", where, limit));
    return result;
  }
  if (code == 127 && stage == esb::v1::STAGE_UNSPECIFIED) {
    // The loader maps the program's libraries before main(); a tight
    // address-space limit fails there.
    error.set_code(static_cast<int>(absl::StatusCode::kResourceExhausted));
    error.set_message(absl::StrCat("job process could not start", limit, tail));
    return result;
  }
  error.set_message(
      absl::StrCat("job process exited with code ", code, where, tail));
  return result;
}

int RunJobChild(const JobChildOptions& options) {
  std::set_new_handler(OutOfMemory);
  PipeSink sink(options.progress_fd);
  esb::v1::JobProgress start;
  start.set_stage(esb::v1::STAGE_LOAD);
  start.set_total(1);
  start.set_message("import");
  sink.Send(start);

  absl::Status status;
  esb::v1::Job job;
  // Messages name the user's files, not the cache's paths.
  std::vector<std::pair<std::string, std::string>> names;
  absl::StatusOr<std::string> spec = ReadFileToString(
      Env::Default(), options.job_dir + "/job.pb", int64_t{64} << 20);
  if (!spec.ok()) {
    status = spec.status();
  } else if (!job.ParseFromString(*spec)) {
    status = absl::DataLossError(options.job_dir + "/job.pb does not parse");
  } else {
    const esb::v1::JobInputs& in = job.inputs();
    auto path = [&](const esb::v1::BlobRef& blob) {
      return blob.sha256().empty()
                 ? std::string()
                 : absl::StrCat(options.blob_dir, "/", blob.sha256());
    };
    auto named = [&](const std::string& p, const std::string& name,
                     const char* fallback) {
      if (!p.empty()) names.emplace_back(p, name.empty() ? fallback : name);
      return p;
    };
    pipeline::JobInputs inputs;
    inputs.model_path = named(path(in.model()), in.model_name(), "the model");
    inputs.calib_images = named(path(in.calib().blob()), in.calib().name(),
                                "the calibration data");
    inputs.eval_images =
        named(path(in.eval().blob()), in.eval().name(), "the eval data");
    inputs.eval_labels = named(path(in.eval_labels().blob()),
                               in.eval_labels().name(), "the eval labels");
    inputs.model_name = in.model_name();
    inputs.eval_limit = in.eval_limit() > 0 ? in.eval_limit() : -1;
    inputs.output_dir = options.job_dir + "/out";
    inputs.threads = options.threads;
    status = pipeline::RunJob(inputs, job.config(), &sink).status();
  }
  esb::v1::JobError result;
  if (!status.ok()) {
    result.set_code(static_cast<int>(status.code()));
    result.set_message(absl::StrReplaceAll(status.message(), names));
    result.set_stage(sink.stage());
    absl::FPrintF(stderr, "job failed in stage %s: %s\n",
                  StageName(sink.stage()), status.ToString());
  }
  if (absl::Status s =
          WriteFileAtomically(Env::Default(), options.job_dir + "/status.pb",
                              result.SerializeAsString());
      !s.ok()) {
    absl::FPrintF(stderr, "cannot write the job status: %s\n", s.ToString());
    return 2;
  }
  return status.ok() ? 0 : 1;
}

}  // namespace esb::worker
