// esb.v1.AgentService (proto/esb/v1/agent.proto), the agent's admin
// surface, over the model repository and the backend.
//
// With an admin token configured, every call must carry the metadata
// `authorization: Bearer <token>` (UNAUTHENTICATED otherwise, before the
// request is read). Uploads (LoadBitstream with bytes, DeployModel) are
// held in memory up to their limit, checked (byte count, then sha256) and
// only then stored.
//
// Thread-safe (gRPC's synchronous API: each call holds a server thread).
// The repository, backend and metrics must outlive it.
#ifndef ESB_FPGA_AGENT_AGENT_SERVICE_H_
#define ESB_FPGA_AGENT_AGENT_SERVICE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "core/env/env.h"
#include "esb/v1/agent.grpc.pb.h"
#include "fpga_agent/backend.h"
#include "fpga_agent/metrics.h"
#include "fpga_agent/model_repository.h"

namespace esb::agent {

struct AgentServiceOptions {
  std::string board;        // Reported by BoardStatus.
  std::string cpu;          // Reported by BoardStatus (runtime::CpuPathsLine).
  std::string admin_token;  // "": no token needed.
  // Where LoadBitstream stores received bitstreams ("": it refuses bytes).
  std::string bitstream_dir;
  int64_t max_bitstream_bytes = int64_t{512} << 20;
  int64_t max_model_bytes = int64_t{1} << 30;
};

class AgentServiceImpl final : public esb::v1::AgentService::Service {
 public:
  // None owned; `metrics` may be null.
  AgentServiceImpl(Env* env, ModelRepository* repository, Backend* backend,
                   AgentMetrics* metrics, AgentServiceOptions options)
      : env_(env),
        repository_(repository),
        backend_(backend),
        metrics_(metrics),
        options_(std::move(options)) {}

  grpc::Status LoadBitstream(
      grpc::ServerContext* context,
      grpc::ServerReader<esb::v1::LoadBitstreamRequest>* reader,
      esb::v1::LoadBitstreamResponse* response) override;
  grpc::Status DeployModel(
      grpc::ServerContext* context,
      grpc::ServerReader<esb::v1::DeployModelRequest>* reader,
      esb::v1::DeployModelResponse* response) override;
  grpc::Status UnloadModel(grpc::ServerContext* context,
                           const esb::v1::UnloadModelRequest* request,
                           esb::v1::UnloadModelResponse* response) override;
  grpc::Status ListModels(grpc::ServerContext* context,
                          const esb::v1::ListModelsRequest* request,
                          esb::v1::ListModelsResponse* response) override;
  grpc::Status BoardStatus(grpc::ServerContext* context,
                           const esb::v1::BoardStatusRequest* request,
                           esb::v1::BoardStatusResponse* response) override;

 private:
  // OK without a token or with the right one; UNAUTHENTICATED otherwise.
  absl::Status CheckAdmin(const grpc::ServerContext& context) const;

  Env* const env_;
  ModelRepository* const repository_;
  Backend* const backend_;
  AgentMetrics* const metrics_;
  const AgentServiceOptions options_;
};

// "measured", "model" or "none": where BoardState's power comes from.
std::string PowerSource(const BoardState& state);

}  // namespace esb::agent

#endif  // ESB_FPGA_AGENT_AGENT_SERVICE_H_
