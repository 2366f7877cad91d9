// esb-agent: the board agent. Serves deployed ESB models over the KServe v2
// gRPC inference protocol and takes deploys and bitstreams over
// esb.v1.AgentService. See `esb-agent --help`.
#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/cli/budget_flags.h"
#include "core/cli/flags.h"
#include "core/env/env.h"
#include "fpga_agent/agent.h"

ABSL_FLAG(std::string, backend, "sim",
          "Board backend: sim (no board: the CPU runs the models, cycles and "
          "energy from the accelerator model) or zcu102.");
ABSL_FLAG(std::string, listen, "127.0.0.1:8001",
          "HOST:PORT to serve gRPC on; port 0 picks a free port (printed).");
ABSL_FLAG(std::string, model_dir, "",
          "Directory of the deployed models (<dir>/<name>/<version>/"
          "model.esbm); created if missing; served again on start. "
          "Required.");
ABSL_FLAG(std::optional<int>, metrics_port, std::nullopt,
          "Serve Prometheus metrics on this port of the --listen host "
          "(0 picks one, printed). Unset: no metrics.");
ABSL_FLAG(int, max_batch, 8, "Images per backend run (dynamic batching).");
ABSL_FLAG(int64_t, max_queue_delay_us, 500,
          "How long a request waits for others to join its batch while "
          "a batch of its model runs (an idle model starts one at once).");
ABSL_FLAG(int, max_queue, 256,
          "Images waiting per model; past it requests get "
          "RESOURCE_EXHAUSTED.");
ABSL_FLAG(int, batches_in_flight, 2, "Backend runs at once per model.");
ABSL_FLAG(int, host_threads, 0,
          "CPU threads of one backend run (sim: the whole model; zcu102: "
          "the parts placed on the host); 0: the CPUs divided among "
          "--batches-in-flight.");
ABSL_FLAG(std::string, bitstream_dir, "",
          "Directory of the bitstreams LoadBitstream names (and stores).");
ABSL_FLAG(std::string, board, "",
          "The board's name in metrics and BoardStatus (default: hostname).");
ABSL_FLAG(std::string, admin_token_file, "",
          "File holding the admin token; when set, AgentService calls need "
          "the metadata 'authorization: Bearer <token>'.");
ABSL_FLAG(std::string, max_model_bytes, "1G",
          "Largest .esbm accepted (suffixes K, M, G).");
ABSL_FLAG(std::string, sysfs_root, "/sys", "zcu102: root of sysfs.");
ABSL_FLAG(std::string, dev_root, "/dev", "zcu102: root of the device nodes.");
ABSL_FLAG(std::string, firmware_dir, "/lib/firmware",
          "zcu102: the FPGA Manager's firmware directory.");

namespace {

int Fail(const std::string& message) {
  std::cerr << "esb-agent: " << message << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  // Debian's absl checks every Mutex acquisition for lock-order cycles;
  // the tests keep that check, the binaries skip its cost on every call.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // --help lists this file's flags and the executor budget's (absl's
  // default looks for a file named after the binary).
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::StrContains(file, "fpga_agent/main.cc") ||
           absl::StrContains(file, "core/cli/budget_flags.cc");
  };
  absl::SetFlagsUsageConfig(usage);
  absl::SetProgramUsageMessage(
      "the ESB board agent.\n\n"
      "  esb-agent --backend sim|zcu102 --listen HOST:PORT --model-dir DIR\n"
      "            [--metrics-port P] [--max-batch N] [--max-queue-delay-us "
      "U]\n"
      "            [--bitstream-dir D] [--board NAME] [--admin-token-file F]\n"
      "            [--sysfs-root R --dev-root R --firmware-dir D]\n\n"
      "Serves the models deployed to it (esbctl deploy) over the KServe v2\n"
      "gRPC inference protocol (inference.GRPCInferenceService: any KServe\n"
      "or Triton client works), batching concurrent requests, and takes\n"
      "deploys, unloads and bitstreams over esb.v1.AgentService. Models\n"
      "persist in --model-dir. SIGTERM or SIGINT shut it down gracefully.");
  std::vector<std::string> storage;
  std::vector<char*> args = esb::cli::UnderscoreFlagNames(argc, argv, &storage);
  absl::ParseCommandLine(static_cast<int>(storage.size()), args.data());

  esb::agent::AgentOptions options;
  options.backend = absl::GetFlag(FLAGS_backend);
  options.listen = absl::GetFlag(FLAGS_listen);
  options.model_dir = absl::GetFlag(FLAGS_model_dir);
  options.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  if (options.model_dir.empty()) {
    return Fail("--model-dir is required (see --help)");
  }
  if (options.metrics_port.has_value() &&
      (*options.metrics_port < 0 || *options.metrics_port > 65535)) {
    return Fail("--metrics-port must be in 0..65535");
  }
  options.batcher.max_batch = absl::GetFlag(FLAGS_max_batch);
  if (options.batcher.max_batch < 1 || options.batcher.max_batch > 4096) {
    return Fail("--max-batch must be in 1..4096");
  }
  const int64_t delay_us = absl::GetFlag(FLAGS_max_queue_delay_us);
  if (delay_us < 0 || delay_us > 10000000) {
    return Fail("--max-queue-delay-us must be in 0..10000000");
  }
  options.batcher.max_queue_delay = absl::Microseconds(delay_us);
  options.batcher.max_queue = absl::GetFlag(FLAGS_max_queue);
  if (options.batcher.max_queue < options.batcher.max_batch) {
    return Fail("--max-queue must be at least --max-batch");
  }
  options.batcher.max_in_flight = absl::GetFlag(FLAGS_batches_in_flight);
  if (options.batcher.max_in_flight < 1 || options.batcher.max_in_flight > 64) {
    return Fail("--batches-in-flight must be in 1..64");
  }
  absl::StatusOr<int64_t> max_model =
      esb::cli::ParseByteSize(absl::GetFlag(FLAGS_max_model_bytes));
  if (!max_model.ok()) {
    return Fail(
        absl::StrCat("--max-model-bytes: ", max_model.status().message()));
  }
  options.max_model_bytes = *max_model;
  absl::StatusOr<esb::runtime::MemoryBudget> budget =
      esb::cli::MemoryBudgetFromFlags();
  if (!budget.ok()) return Fail(std::string{budget.status().message()});
  options.backend_options.host_budget = *budget;
  options.board = absl::GetFlag(FLAGS_board);
  if (options.board.empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    options.board = host;
  }
  if (const std::string path = absl::GetFlag(FLAGS_admin_token_file);
      !path.empty()) {
    absl::StatusOr<std::string> token =
        esb::ReadFileToString(esb::Env::Default(), path, 4096);
    if (!token.ok()) {
      return Fail(
          absl::StrCat("--admin-token-file: ", token.status().message()));
    }
    options.admin_token = std::string{absl::StripAsciiWhitespace(*token)};
    if (options.admin_token.empty()) {
      return Fail(absl::StrCat("--admin-token-file ", path, " is empty"));
    }
  }
  options.backend_options.host_threads = absl::GetFlag(FLAGS_host_threads);
  if (options.backend_options.host_threads < 0 ||
      options.backend_options.host_threads > 1024) {
    return Fail("--host-threads must be in 0..1024");
  }
  options.backend_options.bitstream_dir = absl::GetFlag(FLAGS_bitstream_dir);
  options.backend_options.sysfs_root = absl::GetFlag(FLAGS_sysfs_root);
  options.backend_options.dev_root = absl::GetFlag(FLAGS_dev_root);
  options.backend_options.firmware_dir = absl::GetFlag(FLAGS_firmware_dir);

  // Signals are taken by sigwait below, never by a gRPC thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<std::unique_ptr<esb::agent::Agent>> agent =
      esb::agent::Agent::Start(options, &std::cerr);
  if (!agent.ok()) return Fail(std::string{agent.status().message()});
  std::cout << "esb-agent listening on " << (*agent)->address() << std::endl;
  if (!(*agent)->metrics_address().empty()) {
    std::cout << "metrics on http://" << (*agent)->metrics_address()
              << "/metrics" << std::endl;
  }
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  std::cout << "esb-agent: " << strsignal(signal_number) << ", shutting down"
            << std::endl;
  (*agent)->Shutdown();
  std::cout << "esb-agent: stopped" << std::endl;
  return 0;
}
