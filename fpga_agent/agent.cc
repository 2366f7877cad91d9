#include "fpga_agent/agent.h"

#include <algorithm>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "core/runtime/cpu_paths.h"
#include "core/runtime/cpus.h"
#include "fpga_agent/agent_service.h"
#include "fpga_agent/inference_service.h"
#include "fpga_agent/metrics.h"
#include "fpga_agent/model_repository.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "prometheus/exposer.h"
#include "rpc/serve.h"

namespace esb::agent {
namespace {

// Uploads arrive in chunks; raw input tensors in one message.
constexpr int kMaxMessageBytes = 64 << 20;

}  // namespace

absl::StatusOr<std::unique_ptr<Agent>> Agent::Start(const AgentOptions& options,
                                                    std::ostream* log) {
  if (options.model_dir.empty()) {
    return absl::InvalidArgumentError("--model-dir is required");
  }
  if (options.batcher.max_batch < 1) {
    return absl::InvalidArgumentError("--max-batch must be at least 1");
  }
  absl::StatusOr<rpc::HostPort> listen =
      rpc::ParseHostPort(options.listen, "--listen");
  if (!listen.ok()) return listen.status();
  auto agent = absl::WrapUnique(new Agent());
  agent->options_ = options;
  // Which kernels the host part of every model runs: the first line.
  const std::string cpu = runtime::CpuPathsLine();
  if (log != nullptr) *log << "esb-agent: " << cpu << std::endl;
  Env* env = Env::Default();
  if (agent->options_.backend_options.host_threads == 0) {
    // Concurrent batches share the CPUs; a run that asked for all of them
    // would wake (and wait for) OpenMP threads the other batch is using.
    agent->options_.backend_options.host_threads =
        std::max(1, runtime::AvailableCpus() /
                        std::max(1, options.batcher.max_in_flight));
  }
  agent->metrics_ = std::make_unique<AgentMetrics>(options.board);
  absl::StatusOr<std::unique_ptr<Backend>> backend =
      MakeBackend(options.backend, agent->options_.backend_options, env);
  if (!backend.ok()) return backend.status();
  agent->backend_ = *std::move(backend);

  ModelRepositoryOptions repository;
  repository.dir = options.model_dir;
  repository.batcher = options.batcher;
  repository.max_model_bytes = options.max_model_bytes;
  absl::StatusOr<std::unique_ptr<ModelRepository>> repo = ModelRepository::Open(
      env, agent->backend_.get(), agent->metrics_.get(), repository, log);
  if (!repo.ok()) return repo.status();
  agent->repository_ = *std::move(repo);

  agent->inference_ = std::make_unique<InferenceServiceImpl>(
      agent->repository_.get(), agent->backend_.get(), agent->metrics_.get());
  AgentServiceOptions admin;
  admin.board = options.board;
  admin.cpu = cpu;
  admin.admin_token = options.admin_token;
  admin.bitstream_dir = options.backend_options.bitstream_dir;
  admin.max_model_bytes = options.max_model_bytes;
  agent->admin_ = std::make_unique<AgentServiceImpl>(
      env, agent->repository_.get(), agent->backend_.get(),
      agent->metrics_.get(), admin);

  rpc::GrpcServerOptions grpc_options;
  grpc_options.listen = *listen;
  grpc_options.services = {agent->inference_.get(), agent->admin_.get()};
  grpc_options.max_receive_message_bytes = kMaxMessageBytes;
  grpc_options.max_send_message_bytes = kMaxMessageBytes;
  absl::StatusOr<rpc::GrpcServer> grpc = rpc::StartGrpcServer(grpc_options);
  if (!grpc.ok()) return grpc.status();
  agent->grpc_ = std::move(grpc->server);
  agent->address_ = std::move(grpc->address);
  // Health checking starts SERVING; from here it says whether the board is
  // healthy, and the sampler keeps it current.
  agent->Sample();

  if (options.metrics_port.has_value()) {
    absl::StatusOr<rpc::MetricsExposer> exposer = rpc::StartMetricsExposer(
        {listen->host, *options.metrics_port}, agent->metrics_->registry());
    if (!exposer.ok()) {
      agent->grpc_->Shutdown();
      return exposer.status();
    }
    agent->exposer_ = std::move(exposer->exposer);
    agent->metrics_address_ = std::move(exposer->address);
  }
  agent->sampler_ = std::thread([a = agent.get()] { a->SampleBoard(); });
  return agent;
}

void Agent::Sample() {
  const BoardState state = backend_->Status();
  metrics_->Power(state);
  grpc_->GetHealthCheckService()->SetServingStatus(state.healthy);
}

void Agent::SampleBoard() {
  while (!stop_.WaitForNotificationWithTimeout(options_.power_interval)) {
    Sample();
  }
}

void Agent::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  grpc_->Shutdown(std::chrono::system_clock::now() +
                  absl::ToChronoMilliseconds(grace));
  stop_.Notify();
  if (sampler_.joinable()) sampler_.join();
  exposer_.reset();
  // The models' batchers finish what is queued, then the backend goes.
  repository_.reset();
}

Agent::~Agent() {
  if (grpc_ != nullptr) Shutdown();
}

}  // namespace esb::agent
