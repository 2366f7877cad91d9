// inference.GRPCInferenceService (KServe v2) over the model repository and
// the models' batchers, on gRPC's callback API: a request waiting for its
// batch holds no thread.
//
//   ServerLive       true while the process serves.
//   ServerReady      true while the backend reports itself healthy.
//   ModelReady       true when the model (the version, when one is named)
//                    is served.
//   ServerMetadata   name "esb-agent", the agent's version, extensions.
//   ModelMetadata    platform "esb", the served version, the input and
//                    outputs as FP32 with -1 for the batch.
//   ModelInfer       one request through the model's batcher; inputs and
//                    outputs as infer_codec.h describes.
//   ModelStreamInfer the same per message of a bidirectional stream; one
//                    response per request in request order, a failed
//                    request answered with its error_message (the stream
//                    goes on). Up to kStreamWindow requests of a stream are
//                    in flight at once.
//
// Statuses: NOT_FOUND for an unknown model or version, INVALID_ARGUMENT
// for a bad request (infer_codec.h), RESOURCE_EXHAUSTED when the model's
// queue is full. Every request is counted in the metrics by its status.
//
// Thread-safe; the repository, backend and metrics must outlive it.
#ifndef ESB_FPGA_AGENT_INFERENCE_SERVICE_H_
#define ESB_FPGA_AGENT_INFERENCE_SERVICE_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "fpga_agent/backend.h"
#include "fpga_agent/metrics.h"
#include "fpga_agent/model_repository.h"
#include "inference/grpc_service.grpc.pb.h"

namespace esb::agent {

inline constexpr char kAgentName[] = "esb-agent";
// The agent's version ("0.1.0"), from the build.
const char* AgentVersion();

class InferenceServiceImpl final
    : public inference::GRPCInferenceService::CallbackService {
 public:
  static constexpr int kStreamWindow = 64;

  // `metrics` may be null.
  InferenceServiceImpl(ModelRepository* repository, Backend* backend,
                       AgentMetrics* metrics)
      : repository_(repository), backend_(backend), metrics_(metrics) {}

  grpc::ServerUnaryReactor* ServerLive(
      grpc::CallbackServerContext* context,
      const inference::ServerLiveRequest* request,
      inference::ServerLiveResponse* response) override;
  grpc::ServerUnaryReactor* ServerReady(
      grpc::CallbackServerContext* context,
      const inference::ServerReadyRequest* request,
      inference::ServerReadyResponse* response) override;
  grpc::ServerUnaryReactor* ModelReady(
      grpc::CallbackServerContext* context,
      const inference::ModelReadyRequest* request,
      inference::ModelReadyResponse* response) override;
  grpc::ServerUnaryReactor* ServerMetadata(
      grpc::CallbackServerContext* context,
      const inference::ServerMetadataRequest* request,
      inference::ServerMetadataResponse* response) override;
  grpc::ServerUnaryReactor* ModelMetadata(
      grpc::CallbackServerContext* context,
      const inference::ModelMetadataRequest* request,
      inference::ModelMetadataResponse* response) override;
  grpc::ServerUnaryReactor* ModelInfer(
      grpc::CallbackServerContext* context,
      const inference::ModelInferRequest* request,
      inference::ModelInferResponse* response) override;
  grpc::ServerBidiReactor<inference::ModelInferRequest,
                          inference::ModelStreamInferResponse>*
  ModelStreamInfer(grpc::CallbackServerContext* context) override;

  using InferDone =
      std::function<void(absl::StatusOr<inference::ModelInferResponse>)>;
  // Checks `request`, queues it on its model's batcher and calls `done`
  // once with the response or the status (inline when the request is
  // refused before it is queued, else on a batcher thread). `request` need
  // not outlive the call.
  void Infer(const inference::ModelInferRequest& request, InferDone done);

 private:
  ModelRepository* const repository_;
  Backend* const backend_;
  AgentMetrics* const metrics_;
};

}  // namespace esb::agent

#endif  // ESB_FPGA_AGENT_INFERENCE_SERVICE_H_
