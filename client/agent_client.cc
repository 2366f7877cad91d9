#include "client/agent_client.h"

#include <chrono>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/env/digest.h"

namespace esb::client {
namespace {

// Replies carry a batch of outputs; requests a batch of images.
constexpr int kMaxMessageBytes = 64 << 20;

std::chrono::system_clock::time_point DeadlineIn(absl::Duration d) {
  return std::chrono::system_clock::now() + absl::ToChronoMilliseconds(d);
}

}  // namespace

std::string AgentStartHint(const std::string& address) {
  return absl::StrFormat("esb-agent --backend sim --listen %s --model-dir DIR",
                         address);
}

AgentClient::AgentClient(std::string address, std::string admin_token,
                         std::shared_ptr<grpc::Channel> channel)
    : address_(std::move(address)),
      admin_token_(std::move(admin_token)),
      channel_(std::move(channel)),
      admin_(esb::v1::AgentService::NewStub(channel_)),
      inference_(inference::GRPCInferenceService::NewStub(channel_)) {}

absl::StatusOr<std::unique_ptr<AgentClient>> AgentClient::Connect(
    const std::string& address, const AgentConnectOptions& options) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  if (options.own_connection) {
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  }
  auto channel = grpc::CreateCustomChannel(
      address, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(DeadlineIn(options.timeout))) {
    return absl::UnavailableError(absl::StrFormat(
        "no esb-agent answers at %s; start one with `%s`, or name another "
        "with --agent HOST:PORT",
        address, AgentStartHint(address)));
  }
  return absl::WrapUnique(
      new AgentClient(address, options.admin_token, std::move(channel)));
}

absl::Status AgentClient::FromGrpc(const grpc::Status& status) const {
  if (status.ok()) return absl::OkStatus();
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      return absl::UnavailableError(absl::StrCat(
          "esb-agent at ", address_, " went away: ", status.error_message()));
    case grpc::StatusCode::UNAUTHENTICATED:
      return absl::UnauthenticatedError(
          absl::StrCat("esb-agent at ", address_, ": ", status.error_message(),
                       admin_token_.empty()
                           ? "; give the token with --admin-token-file FILE"
                           : "; check the file given to --admin-token-file"));
    case grpc::StatusCode::UNIMPLEMENTED:
      return absl::UnimplementedError(absl::StrCat(
          address_, " does not serve this call (is it an esb-agent?): ",
          status.error_message()));
    default:
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          status.error_message());
  }
}

template <typename Response, typename Invoke>
absl::StatusOr<Response> AgentClient::Unary(const Invoke& invoke, bool admin,
                                            absl::Duration timeout) const {
  grpc::ClientContext context;
  context.set_deadline(DeadlineIn(timeout));
  if (admin && !admin_token_.empty()) {
    context.AddMetadata("authorization", absl::StrCat("Bearer ", admin_token_));
  }
  Response response;
  if (absl::Status s = FromGrpc(invoke(&context, &response)); !s.ok()) {
    return s;
  }
  return response;
}

absl::StatusOr<esb::v1::DeployModelResponse> AgentClient::Deploy(
    const std::string& name, const std::string& bytes) {
  grpc::ClientContext context;
  // A large package on a slow link: the deadline bounds a stuck agent, not
  // the transfer of a normal one.
  context.set_deadline(DeadlineIn(absl::Minutes(10)));
  if (!admin_token_.empty()) {
    context.AddMetadata("authorization", absl::StrCat("Bearer ", admin_token_));
  }
  esb::v1::DeployModelResponse response;
  auto writer = admin_->DeployModel(&context, &response);
  esb::v1::DeployModelRequest message;
  message.set_name(name);
  message.set_sha256(Sha256Hex(bytes));
  message.set_size(static_cast<int64_t>(bytes.size()));
  for (size_t at = 0; at == 0 || at < bytes.size(); at += kDeployChunkBytes) {
    message.set_data(bytes.substr(at, kDeployChunkBytes));
    if (!writer->Write(message)) break;  // Finish says why.
    message.clear_name();
    message.clear_sha256();
    message.clear_size();
  }
  writer->WritesDone();
  if (absl::Status s = FromGrpc(writer->Finish()); !s.ok()) return s;
  return response;
}

absl::StatusOr<esb::v1::ListModelsResponse> AgentClient::ListModels() {
  esb::v1::ListModelsRequest request;
  return Unary<esb::v1::ListModelsResponse>(
      [&](auto* context, auto* response) {
        return admin_->ListModels(context, request, response);
      },
      true, absl::Seconds(30));
}

absl::StatusOr<esb::v1::UnloadModelResponse> AgentClient::Unload(
    const std::string& name, int64_t version) {
  esb::v1::UnloadModelRequest request;
  request.set_name(name);
  request.set_version(version);
  return Unary<esb::v1::UnloadModelResponse>(
      [&](auto* context, auto* response) {
        return admin_->UnloadModel(context, request, response);
      },
      true, absl::Seconds(30));
}

absl::StatusOr<esb::v1::BoardStatusResponse> AgentClient::BoardStatus() {
  esb::v1::BoardStatusRequest request;
  return Unary<esb::v1::BoardStatusResponse>(
      [&](auto* context, auto* response) {
        return admin_->BoardStatus(context, request, response);
      },
      true, absl::Seconds(30));
}

absl::StatusOr<inference::ModelMetadataResponse> AgentClient::ModelMetadata(
    const std::string& name) {
  inference::ModelMetadataRequest request;
  request.set_name(name);
  return Unary<inference::ModelMetadataResponse>(
      [&](auto* context, auto* response) {
        return inference_->ModelMetadata(context, request, response);
      },
      false, absl::Seconds(30));
}

absl::StatusOr<inference::ModelInferResponse> AgentClient::Infer(
    const inference::ModelInferRequest& request, absl::Duration timeout) {
  return Unary<inference::ModelInferResponse>(
      [&](auto* context, auto* response) {
        return inference_->ModelInfer(context, request, response);
      },
      false, timeout);
}

}  // namespace esb::client
