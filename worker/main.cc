// esb-worker: runs ESB quantization jobs leased from esb-server.
//
//   esb-worker --server HOST:PORT --work-dir DIR [--concurrency N] ...
//
// SIGTERM or SIGINT drains: no more leases, the running jobs finish and
// are reported, then exit 0. A second signal kills the running jobs and
// exits at once; those jobs are not failed, their leases lapse and the
// server queues them again.
//
// With --run-job=DIR the binary is instead one job's child process
// (worker/job_process.h), started by a worker.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/cli/flags.h"
#include "core/runtime/cpus.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"
#include "worker/job_process.h"
#include "worker/worker.h"

ABSL_FLAG(std::string, server, "", "esb-server address, HOST:PORT.");
ABSL_FLAG(std::string, work_dir, "",
          "Folder for the blob cache (blobs/) and the jobs' files (jobs/).");
ABSL_FLAG(int, concurrency, 1, "Jobs run at once.");
ABSL_FLAG(std::optional<int>, metrics_port, std::nullopt,
          "Serve Prometheus metrics on --metrics-host:PORT (0: a free port, "
          "printed).");
ABSL_FLAG(std::string, metrics_host, "127.0.0.1",
          "Address the metrics endpoint binds (0.0.0.0: every interface, "
          "for a Prometheus on another host or container).");
ABSL_FLAG(std::string, job_memory_limit, "8G",
          "Address-space limit of each job's process, in bytes (suffixes "
          "K, M, G).");
ABSL_FLAG(std::optional<int>, threads, std::nullopt,
          "CPU threads per job (default: the CPUs available / concurrency).");
ABSL_FLAG(std::string, name, "",
          "Worker name reported to the server (default HOST:PID).");
ABSL_FLAG(int, heartbeat_ms, 500, "Milliseconds between lease heartbeats.");
ABSL_FLAG(int, lease_wait_ms, 10000, "LeaseJob long-poll wait, <= 30000.");
ABSL_FLAG(int, max_backoff_ms, 5000,
          "Longest wait between retries of a failed call to the server.");
ABSL_FLAG(std::string, run_job, "",
          "Internal: run the job in this folder as a worker's child.");
ABSL_FLAG(std::string, blob_dir, "", "Internal, with --run-job.");
ABSL_FLAG(int, progress_fd, 3, "Internal, with --run-job.");

namespace {

int Fail(const std::string& message) {
  std::cerr << "esb-worker: " << message << "\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // Debian's absl checks every Mutex acquisition for lock-order cycles;
  // the tests keep that check, the binaries skip its cost on every call.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::StrContains(file, "worker/main.cc");
  };
  usage.normalize_filename = [](absl::string_view file) {
    std::string name(file);
    return name;
  };
  absl::SetFlagsUsageConfig(usage);
  absl::SetProgramUsageMessage(
      "runs ESB quantization jobs leased from esb-server.\n\n"
      "  esb-worker --server HOST:PORT --work-dir DIR [--concurrency N]\n"
      "             [--metrics-port P] [--metrics-host H]\n"
      "             [--job-memory-limit BYTES] [--threads N] [--name NAME]\n"
      "             [--heartbeat-ms MS]\n\n"
      "Each job runs in its own process under the memory limit. SIGTERM or\n"
      "SIGINT drains (running jobs finish); a second one stops at once.\n"
      "Flag names take dashes or underscores (--work-dir, --work_dir).");
  std::vector<std::string> storage;
  std::vector<char*> args = esb::cli::UnderscoreFlagNames(argc, argv, &storage);
  std::vector<char*> rest =
      absl::ParseCommandLine(static_cast<int>(storage.size()), args.data());
  if (rest.size() > 1) {
    return Fail(absl::StrCat("unexpected argument '", rest[1], "'"));
  }

  if (!absl::GetFlag(FLAGS_run_job).empty()) {
    esb::worker::JobChildOptions child;
    child.job_dir = absl::GetFlag(FLAGS_run_job);
    child.blob_dir = absl::GetFlag(FLAGS_blob_dir);
    child.threads = absl::GetFlag(FLAGS_threads).value_or(0);
    child.progress_fd = absl::GetFlag(FLAGS_progress_fd);
    return esb::worker::RunJobChild(child);
  }

  const std::string server = absl::GetFlag(FLAGS_server);
  if (server.empty()) return Fail("--server HOST:PORT is required");
  esb::worker::WorkerOptions options;
  options.work_dir = absl::GetFlag(FLAGS_work_dir);
  if (options.work_dir.empty()) return Fail("--work-dir is required");
  options.concurrency = absl::GetFlag(FLAGS_concurrency);
  if (options.concurrency < 1) return Fail("--concurrency must be >= 1");
  absl::StatusOr<int64_t> limit =
      esb::cli::ParseByteSize(absl::GetFlag(FLAGS_job_memory_limit));
  if (!limit.ok()) {
    return Fail(absl::StrCat("--job-memory-limit: ", limit.status().message()));
  }
  options.job_memory_limit = *limit;
  options.threads_per_job =
      absl::GetFlag(FLAGS_threads)
          .value_or(
              std::max(1, esb::runtime::AvailableCpus() / options.concurrency));
  if (options.threads_per_job < 1) return Fail("--threads must be >= 1");
  const int heartbeat_ms = absl::GetFlag(FLAGS_heartbeat_ms);
  const int lease_wait_ms = absl::GetFlag(FLAGS_lease_wait_ms);
  const int max_backoff_ms = absl::GetFlag(FLAGS_max_backoff_ms);
  if (heartbeat_ms < 1) return Fail("--heartbeat-ms must be >= 1");
  if (lease_wait_ms < 0 || lease_wait_ms > 30000) {
    return Fail("--lease-wait-ms must be within 0..30000");
  }
  if (max_backoff_ms < 100) return Fail("--max-backoff-ms must be >= 100");
  options.heartbeat_interval = absl::Milliseconds(heartbeat_ms);
  options.lease_wait = absl::Milliseconds(lease_wait_ms);
  options.backoff_max = absl::Milliseconds(max_backoff_ms);
  options.name = absl::GetFlag(FLAGS_name);
  if (options.name.empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    options.name = absl::StrCat(host, ":", getpid());
  }
  // The job processes are this very binary.
  std::error_code ec;
  options.job_binary = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return Fail("cannot find the program's path (/proc/self/exe)");

  // Signals go to one thread (sigwait) that drains or aborts: blocked here
  // before any thread starts, so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto registry = std::make_shared<prometheus::Registry>();
  esb::worker::WorkerMetrics metrics(*registry);
  std::unique_ptr<prometheus::Exposer> exposer;
  if (std::optional<int> port = absl::GetFlag(FLAGS_metrics_port)) {
    const std::string host = absl::GetFlag(FLAGS_metrics_host);
    try {  // prometheus-cpp (civetweb) reports a busy port by throwing.
      exposer =
          std::make_unique<prometheus::Exposer>(absl::StrCat(host, ":", *port));
    } catch (const std::exception& e) {
      return Fail(absl::StrCat("--metrics-port ", *port, ": ", e.what()));
    }
    exposer->RegisterCollectable(registry);
    const std::vector<int> ports = exposer->GetListeningPorts();
    std::cout << "metrics listening on " << host << ":"
              << (ports.empty() ? *port : ports[0]) << std::endl;
  }

  grpc::ChannelArguments channel_args;
  // Reconnect soon after the server comes back: while the channel backs off,
  // heartbeats fail without trying, and a lease lasts only seconds, so the
  // channel never waits more than a second between attempts (the worker's
  // own retries still back off up to --max-backoff-ms).
  channel_args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  channel_args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
                      std::min(max_backoff_ms, 1000));
  auto channel = grpc::CreateCustomChannel(
      server, grpc::InsecureChannelCredentials(), channel_args);
  absl::StatusOr<std::unique_ptr<esb::worker::Worker>> worker =
      esb::worker::Worker::Create(options, channel, &metrics);
  if (!worker.ok()) return Fail(worker.status().ToString());
  std::cout << "esb-worker " << options.name << " serving " << server
            << std::endl;

  esb::worker::Worker* w = worker->get();
  std::thread([w, signals] {
    int count = 0;
    while (true) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0) continue;
      if (++count == 1) {
        std::cerr << "esb-worker: draining (signal again to stop now)"
                  << std::endl;
        w->Drain();
      } else {
        w->Abort();
      }
    }
  }).detach();
  w->Run();
  std::cerr << "esb-worker: stopped" << std::endl;
  return 0;
}
