// The serving plumbing every esb daemon shares: a "HOST:PORT" flag parsed
// and checked, a gRPC server started on it (health checking and
// reflection on, the bound port read back), and a Prometheus /metrics
// endpoint on the same host. The daemons build their services and metrics;
// this starts them listening and turns a failed bind into a status that
// names the address.
//
// The start functions must not run concurrently (gRPC's health checking
// and reflection switches are process-wide); what they return is
// thread-safe.
#ifndef ESB_RPC_SERVE_H_
#define ESB_RPC_SERVE_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace grpc {
class Server;
class ServerCredentials;
class Service;
}  // namespace grpc
namespace prometheus {
class Collectable;
class Exposer;
}  // namespace prometheus

namespace esb::rpc {

struct HostPort {
  std::string host;  // As written: a name, an IPv4 or a bracketed IPv6.
  int port = 0;      // 0..65535; 0 asks the kernel for a free one.

  std::string ToString() const;  // "HOST:PORT".
};

// HOST and PORT of `address`, split at its last ':'. INVALID_ARGUMENT
// "<flag> '<address>' is not HOST:PORT" when there is no ':' or the port is
// not a number in 0..65535.
absl::StatusOr<HostPort> ParseHostPort(absl::string_view address,
                                       absl::string_view flag);

struct GrpcServerOptions {
  HostPort listen;
  // Not owned; each must outlive the server.
  std::vector<grpc::Service*> services;
  // nullptr: plaintext (grpc::InsecureServerCredentials).
  std::shared_ptr<grpc::ServerCredentials> credentials;
  // Unset: gRPC's defaults (4 MiB received, no limit sent).
  std::optional<int> max_receive_message_bytes;
  std::optional<int> max_send_message_bytes;
};

struct GrpcServer {
  std::unique_ptr<grpc::Server> server;
  std::string address;  // HOST and the port bound ("127.0.0.1:40123").
};

// Builds and starts a server of `options.services` plus the standard
// grpc.health.v1.Health service (every service SERVING until the caller
// says otherwise through server->GetHealthCheckService()) and server
// reflection. The port is bound exclusively: a port another server holds
// is refused, not shared. UNAVAILABLE "cannot listen on HOST:PORT (in use,
// or not an address of this host)" when it cannot be bound.
absl::StatusOr<GrpcServer> StartGrpcServer(const GrpcServerOptions& options);

struct MetricsExposer {
  std::unique_ptr<prometheus::Exposer> exposer;
  std::string address;  // HOST and the port bound.
};

// Serves `collectable` (a prometheus::Registry, typically) as text on
// http://HOST:PORT/metrics. UNAVAILABLE "cannot serve metrics on
// HOST:PORT: <the web server's reason>" when the port cannot be bound.
absl::StatusOr<MetricsExposer> StartMetricsExposer(
    const HostPort& at, const std::weak_ptr<prometheus::Collectable>& metrics);

}  // namespace esb::rpc

#endif  // ESB_RPC_SERVE_H_
