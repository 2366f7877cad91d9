#include "fpga_agent/agent.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/runtime/cpus.h"
#include "fpga_agent/agent_service.h"
#include "fpga_agent/inference_service.h"
#include "fpga_agent/metrics.h"
#include "fpga_agent/model_repository.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "prometheus/exposer.h"

namespace esb::agent {
namespace {

// Uploads arrive in chunks; raw input tensors in one message.
constexpr int kMaxMessageBytes = 64 << 20;

// HOST and PORT of "HOST:PORT" (IPv6 hosts in brackets).
absl::Status SplitHostPort(const std::string& address, std::string* host,
                           int* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(address.substr(colon + 1), port) || *port < 0 ||
      *port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen '", address, "' is not HOST:PORT"));
  }
  *host = address.substr(0, colon);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Agent>> Agent::Start(const AgentOptions& options,
                                                    std::ostream* log) {
  if (options.model_dir.empty()) {
    return absl::InvalidArgumentError("--model-dir is required");
  }
  if (options.batcher.max_batch < 1) {
    return absl::InvalidArgumentError("--max-batch must be at least 1");
  }
  std::string host;
  int port = 0;
  if (absl::Status s = SplitHostPort(options.listen, &host, &port); !s.ok()) {
    return s;
  }
  auto agent = absl::WrapUnique(new Agent());
  agent->options_ = options;
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
  admin.admin_token = options.admin_token;
  admin.bitstream_dir = options.backend_options.bitstream_dir;
  admin.max_model_bytes = options.max_model_bytes;
  agent->admin_ = std::make_unique<AgentServiceImpl>(
      env, agent->repository_.get(), agent->backend_.get(),
      agent->metrics_.get(), admin);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int bound = 0;
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(),
                           &bound);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  builder.RegisterService(agent->inference_.get());
  builder.RegisterService(agent->admin_.get());
  agent->grpc_ = builder.BuildAndStart();
  if (agent->grpc_ == nullptr || bound == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen,
                     " (in use, or not an address of this host)"));
  }
  agent->address_ = absl::StrCat(host, ":", bound);

  if (options.metrics_port.has_value()) {
    const std::string bind = absl::StrCat(host, ":", *options.metrics_port);
    try {
      // prometheus-cpp reports a failed bind only by throwing.
      agent->exposer_ = std::make_unique<prometheus::Exposer>(bind);
    } catch (const std::exception& e) {
      agent->grpc_->Shutdown();
      return absl::UnavailableError(
          absl::StrCat("cannot serve metrics on ", bind, ": ", e.what()));
    }
    agent->exposer_->RegisterCollectable(agent->metrics_->registry());
    const std::vector<int> ports = agent->exposer_->GetListeningPorts();
    agent->metrics_address_ = absl::StrCat(
        host, ":", ports.empty() ? *options.metrics_port : ports.front());
  }
  agent->metrics_->Power(agent->backend_->Status());
  agent->sampler_ = std::thread([a = agent.get()] { a->SamplePower(); });
  return agent;
}

void Agent::SamplePower() {
  while (!stop_.WaitForNotificationWithTimeout(options_.power_interval)) {
    metrics_->Power(backend_->Status());
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
