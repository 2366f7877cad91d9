// esb-server: the ESB job service (esb.v1.QuantizationService for users,
// esb.v1.WorkerService for workers). See `esb-server --help`.
#include <signal.h>

#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/cli/flags.h"
#include "server/server.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "HOST:PORT to serve gRPC on; port 0 picks a free port (printed).");
ABSL_FLAG(std::string, data_dir, "",
          "Directory of the job store (jobs.db) and blobs; created if "
          "missing. Required.");
ABSL_FLAG(std::optional<int>, metrics_port, std::nullopt,
          "Serve Prometheus metrics on this port of the --listen host "
          "(0 picks one, printed). Unset: no metrics.");
ABSL_FLAG(int, max_attempts, 3,
          "Leases a job gets before a lost worker fails it.");
ABSL_FLAG(int64_t, lease_ms, 10000,
          "How long a lease lasts without a heartbeat.");
ABSL_FLAG(double, keep_days, 30, "Days the blobs of a finished job are kept.");
ABSL_FLAG(std::string, max_upload_bytes, "4G",
          "Largest blob accepted (suffixes K, M, G).");

namespace {

int Fail(const std::string& message) {
  std::cerr << "esb-server: " << message << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  // Debian's absl checks every Mutex acquisition for lock-order cycles;
  // the tests keep that check, the binaries skip its cost on every call.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::SetProgramUsageMessage(
      "the ESB job service.\n\n"
      "  esb-server --listen HOST:PORT --data-dir DIR [--metrics-port P]\n\n"
      "Accepts quantization jobs from esbctl (esbctl submit), hands them to\n"
      "esb-worker processes, and keeps jobs and artifacts under --data-dir.\n"
      "SIGTERM or SIGINT shut it down gracefully.");
  std::vector<std::string> storage;
  std::vector<char*> args = esb::cli::UnderscoreFlagNames(argc, argv, &storage);
  absl::ParseCommandLine(static_cast<int>(storage.size()), args.data());

  esb::server::ServerOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  options.jobs.max_attempts = absl::GetFlag(FLAGS_max_attempts);
  options.jobs.lease_ms = absl::GetFlag(FLAGS_lease_ms);
  options.keep_days = absl::GetFlag(FLAGS_keep_days);
  if (options.data_dir.empty()) {
    return Fail("--data-dir is required (see --help)");
  }
  if (options.jobs.max_attempts < 1 || options.jobs.max_attempts > 100) {
    return Fail("--max-attempts must be in 1..100");
  }
  if (options.jobs.lease_ms < 100 || options.jobs.lease_ms > 3600000) {
    return Fail("--lease-ms must be in 100..3600000");
  }
  if (options.keep_days <= 0) return Fail("--keep-days must be positive");
  if (options.metrics_port.has_value() &&
      (*options.metrics_port < 0 || *options.metrics_port > 65535)) {
    return Fail("--metrics-port must be in 0..65535");
  }
  absl::StatusOr<int64_t> max_upload =
      esb::cli::ParseByteSize(absl::GetFlag(FLAGS_max_upload_bytes));
  if (!max_upload.ok()) {
    return Fail(
        absl::StrCat("--max-upload-bytes: ", max_upload.status().message()));
  }
  options.max_upload_bytes = *max_upload;

  // Signals are taken by sigwait below, never by a gRPC thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<std::unique_ptr<esb::server::Server>> server =
      esb::server::Server::Start(options);
  if (!server.ok()) return Fail(std::string{server.status().message()});
  std::cout << "esb-server listening on " << (*server)->address() << std::endl;
  if (!(*server)->metrics_address().empty()) {
    std::cout << "metrics on http://" << (*server)->metrics_address()
              << "/metrics" << std::endl;
  }
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  std::cout << "esb-server: " << strsignal(signal_number) << ", shutting down"
            << std::endl;
  (*server)->Shutdown();
  return 0;
}
