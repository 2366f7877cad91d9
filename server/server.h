// esb-server assembled: the data dir (job store, blob store, a lock so two
// servers never share it), the gRPC server with both services, health
// checking and reflection, the metrics endpoint, and the background loop
// that expires leases, refreshes metrics and applies retention.
#ifndef ESB_SERVER_SERVER_H_
#define ESB_SERVER_SERVER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "server/job_service.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc
namespace prometheus {
class Exposer;
}

namespace esb::server {

struct ServerOptions {
  std::string listen = "127.0.0.1:50051";  // HOST:PORT; port 0 picks one.
  std::string data_dir;                    // Required.
  std::optional<int> metrics_port;         // Unset: no metrics endpoint.
  JobServiceOptions jobs;
  int64_t max_upload_bytes = int64_t{4} << 30;
  double keep_days = 30;  // Finished jobs' blobs are kept this long.
};

class Server {
 public:
  // Opens the data dir and starts serving. FAILED_PRECONDITION when another
  // server holds the data dir; UNAVAILABLE when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<Server>> Start(
      const ServerOptions& options);
  ~Server();  // Shuts down if still running.

  const std::string& address() const { return address_; }
  // "HOST:PORT" of /metrics; empty without one.
  const std::string& metrics_address() const { return metrics_address_; }

  // Stops taking calls, ends long polls and watches, and waits for calls
  // in flight up to `grace`.
  void Shutdown(absl::Duration grace = absl::Seconds(5));

 private:
  Server() = default;
  void Background();

  ServerOptions options_;
  int lock_fd_ = -1;
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<ServerMetrics> metrics_;
  std::unique_ptr<JobService> jobs_;
  std::unique_ptr<grpc::Service> quantization_;
  std::unique_ptr<grpc::Service> worker_;
  std::unique_ptr<grpc::Server> grpc_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::string address_;
  std::string metrics_address_;
  absl::Notification stop_;
  std::thread background_;
  bool shut_down_ = false;
};

}  // namespace esb::server

#endif  // ESB_SERVER_SERVER_H_
