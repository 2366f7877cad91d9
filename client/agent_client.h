// esbctl's side of the board agent: a connection to esb-agent and the
// calls the agent commands make (deploy, models, undeploy, board, infer).
//
// Errors come back as absl statuses with the agent's code and message; an
// agent that does not answer is UNAVAILABLE with a message that says how
// to start one, and a refused admin call says how to give the token.
//
// Thread-safe: the calls may be made from several threads at once (they
// share one channel; AgentClient::Connect again for a connection of one's
// own).
#ifndef ESB_CLIENT_AGENT_CLIENT_H_
#define ESB_CLIENT_AGENT_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "esb/v1/agent.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "inference/grpc_service.grpc.pb.h"

namespace esb::client {

struct AgentConnectOptions {
  // How long Connect waits for the agent to answer.
  absl::Duration timeout = absl::Seconds(5);
  // Sent as 'authorization: Bearer <token>' on AgentService calls; "" for
  // an agent without one.
  std::string admin_token;
  // A connection of its own, not shared with other channels of the
  // process (bench clients: one TCP connection each).
  bool own_connection = false;
};

// Bytes of each DeployModel message's data.
inline constexpr size_t kDeployChunkBytes = size_t{1} << 20;

class AgentClient {
 public:
  // Connects to esb-agent at `address` ("HOST:PORT").
  static absl::StatusOr<std::unique_ptr<AgentClient>> Connect(
      const std::string& address, const AgentConnectOptions& options = {});

  // Streams a whole .esbm as model `name`: the first message carries name,
  // sha256 and size, each message at most kDeployChunkBytes of data.
  absl::StatusOr<esb::v1::DeployModelResponse> Deploy(const std::string& name,
                                                      const std::string& bytes);
  absl::StatusOr<esb::v1::ListModelsResponse> ListModels();
  // `version` 0: every version of the model.
  absl::StatusOr<esb::v1::UnloadModelResponse> Unload(const std::string& name,
                                                      int64_t version);
  absl::StatusOr<esb::v1::BoardStatusResponse> BoardStatus();

  // NOT_FOUND (the agent's message) when the model is not served.
  absl::StatusOr<inference::ModelMetadataResponse> ModelMetadata(
      const std::string& name);
  absl::StatusOr<inference::ModelInferResponse> Infer(
      const inference::ModelInferRequest& request,
      absl::Duration timeout = absl::Seconds(60));

  const std::string& address() const { return address_; }
  // For callers that time raw calls (bench); the stub is thread-safe.
  inference::GRPCInferenceService::Stub* inference_stub() {
    return inference_.get();
  }
  // The agent's error as a status: its code and message, UNAVAILABLE
  // saying the agent went away, UNAUTHENTICATED naming --admin-token-file.
  absl::Status FromGrpc(const grpc::Status& status) const;

 private:
  AgentClient(std::string address, std::string admin_token,
              std::shared_ptr<grpc::Channel> channel);
  // A unary AgentService or inference call within `timeout`; `admin`
  // adds the token.
  template <typename Response, typename Invoke>
  absl::StatusOr<Response> Unary(const Invoke& invoke, bool admin,
                                 absl::Duration timeout) const;

  const std::string address_;
  const std::string admin_token_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<esb::v1::AgentService::Stub> admin_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> inference_;
};

// The esb-agent command line that serves at `address`, for messages.
std::string AgentStartHint(const std::string& address);

}  // namespace esb::client

#endif  // ESB_CLIENT_AGENT_CLIENT_H_
