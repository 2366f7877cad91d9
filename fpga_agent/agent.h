// esb-agent assembled: the backend, the model repository (models served
// again from --model-dir), the gRPC server with
// inference.GRPCInferenceService, esb.v1.AgentService, health checking and
// reflection, the metrics endpoint, and a background loop that samples the
// board: its power into the metrics, its health into the health checking
// service (SERVING while BoardState::healthy).
#ifndef ESB_FPGA_AGENT_AGENT_H_
#define ESB_FPGA_AGENT_AGENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "fpga_agent/backend.h"
#include "fpga_agent/backends.h"
#include "fpga_agent/batcher.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc
namespace prometheus {
class Exposer;
}

namespace esb::agent {

class AgentMetrics;
class ModelRepository;

struct AgentOptions {
  std::string backend = "sim";            // "sim" or "zcu102".
  std::string listen = "127.0.0.1:8001";  // HOST:PORT; port 0 picks one.
  std::string model_dir;                  // Required.
  std::optional<int> metrics_port;        // Unset: no metrics endpoint.
  std::string board = "board";            // The metrics' board label.
  std::string admin_token;                // "": admin RPCs are open.
  // host_threads 0: the CPUs divided among batcher.max_in_flight batches.
  BackendOptions backend_options;
  BatcherOptions batcher;
  int64_t max_model_bytes = int64_t{1} << 30;
  // How often the board is sampled: its power into the metrics, its
  // health into grpc.health.v1.Health.
  absl::Duration power_interval = absl::Seconds(1);
};

class Agent {
 public:
  // Starts the backend, loads the stored models (first the CPU's code
  // paths, runtime::CpuPathsLine, then progress and skipped models on `log`,
  // which may be null) and serves. INVALID_ARGUMENT for bad options, the
  // backend's error, UNAVAILABLE when an address cannot be bound.
  static absl::StatusOr<std::unique_ptr<Agent>> Start(
      const AgentOptions& options, std::ostream* log);
  ~Agent();  // Shuts down if still running.

  const std::string& address() const { return address_; }
  // "HOST:PORT" of /metrics; empty without one.
  const std::string& metrics_address() const { return metrics_address_; }

  // Stops taking calls, waits for calls in flight up to `grace`, then
  // finishes the queued requests and stops the backend.
  void Shutdown(absl::Duration grace = absl::Seconds(5));

 private:
  Agent() = default;
  // Reads the backend's state into the metrics and the overall serving
  // status.
  void Sample();
  void SampleBoard();  // The sampler thread: Sample every power_interval.

  AgentOptions options_;
  std::unique_ptr<AgentMetrics> metrics_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<ModelRepository> repository_;
  std::unique_ptr<grpc::Service> inference_;
  std::unique_ptr<grpc::Service> admin_;
  std::unique_ptr<grpc::Server> grpc_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::string address_;
  std::string metrics_address_;
  absl::Notification stop_;
  std::thread sampler_;
  bool shut_down_ = false;
};

}  // namespace esb::agent

#endif  // ESB_FPGA_AGENT_AGENT_H_
