#include "rpc/serve.h"

#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "grpc/grpc.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "prometheus/exposer.h"

namespace esb::rpc {

std::string HostPort::ToString() const { return absl::StrCat(host, ":", port); }

absl::StatusOr<HostPort> ParseHostPort(absl::string_view address,
                                       absl::string_view flag) {
  HostPort out;
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos ||
      !absl::SimpleAtoi(address.substr(colon + 1), &out.port) || out.port < 0 ||
      out.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " '", address, "' is not HOST:PORT"));
  }
  out.host = std::string{address.substr(0, colon)};
  return out;
}

absl::StatusOr<GrpcServer> StartGrpcServer(const GrpcServerOptions& options) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const std::string listen = options.listen.ToString();
  int bound = 0;
  builder.AddListeningPort(listen,
                           options.credentials != nullptr
                               ? options.credentials
                               : grpc::InsecureServerCredentials(),
                           &bound);
  // gRPC sets SO_REUSEPORT by default, so a second daemon on a taken port
  // would bind it too and take half the connections.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  if (options.max_receive_message_bytes.has_value()) {
    builder.SetMaxReceiveMessageSize(*options.max_receive_message_bytes);
  }
  if (options.max_send_message_bytes.has_value()) {
    builder.SetMaxSendMessageSize(*options.max_send_message_bytes);
  }
  for (grpc::Service* service : options.services) {
    builder.RegisterService(service);
  }
  GrpcServer out;
  out.server = builder.BuildAndStart();
  if (out.server == nullptr || bound == 0) {
    if (out.server != nullptr) out.server->Shutdown();
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", listen,
                     " (in use, or not an address of this host)"));
  }
  out.address = absl::StrCat(options.listen.host, ":", bound);
  return out;
}

absl::StatusOr<MetricsExposer> StartMetricsExposer(
    const HostPort& at, const std::weak_ptr<prometheus::Collectable>& metrics) {
  const std::string bind = at.ToString();
  MetricsExposer out;
  try {
    // prometheus-cpp reports a failed bind only by throwing.
    out.exposer = std::make_unique<prometheus::Exposer>(bind);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", bind, ": ", e.what()));
  }
  out.exposer->RegisterCollectable(metrics);
  const std::vector<int> ports = out.exposer->GetListeningPorts();
  out.address =
      absl::StrCat(at.host, ":", ports.empty() ? at.port : ports.front());
  return out;
}

}  // namespace esb::rpc
