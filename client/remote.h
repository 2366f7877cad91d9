// esbctl's side of the job service: a connection to esb-server and the
// calls the remote commands make (upload, submit, watch, fetch, ...).
//
// Errors come back as absl statuses with the server's code and message;
// a server that does not answer is UNAVAILABLE with a message that says
// how to start one.
#ifndef ESB_CLIENT_REMOTE_H_
#define ESB_CLIENT_REMOTE_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "esb/v1/service.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace esb::client {

class Remote {
 public:
  // Connects to esb-server at `address` ("HOST:PORT"), waiting up to
  // `timeout` for it to answer.
  static absl::StatusOr<std::unique_ptr<Remote>> Connect(
      const std::string& address, absl::Duration timeout = absl::Seconds(5));

  // Uploads a file unless the server already holds its bytes (StatBlob),
  // streaming it in 1 MiB chunks; `progress` (may be null) gets bytes sent.
  absl::StatusOr<esb::v1::BlobRef> UploadFile(
      const std::string& path,
      const std::function<void(int64_t sent, int64_t total)>& progress);
  absl::StatusOr<esb::v1::BlobRef> UploadBytes(const std::string& bytes);

  absl::StatusOr<esb::v1::SubmitJobResponse> Submit(
      const esb::v1::SubmitJobRequest& request);
  absl::StatusOr<esb::v1::Job> Get(const std::string& id);
  absl::StatusOr<esb::v1::ListJobsResponse> List(
      const esb::v1::ListJobsRequest& request);
  absl::StatusOr<esb::v1::Job> Cancel(const std::string& id);
  // Calls `on_event` with each change until the job is final; returns the
  // final job. A stream the server ends early (a restart) is resumed.
  absl::StatusOr<esb::v1::Job> Watch(
      const std::string& id,
      const std::function<void(const esb::v1::Job&)>& on_event);
  // One artifact's bytes.
  absl::StatusOr<std::string> Download(const std::string& id,
                                       const std::string& name);
  // Every artifact of a succeeded job into `dir` (created), each written
  // atomically. Returns the paths written.
  absl::StatusOr<std::vector<std::string>> Fetch(const std::string& id,
                                                 const std::string& dir);
  // True when the server's health service says SERVING.
  absl::StatusOr<bool> Healthy();

  const std::string& address() const { return address_; }

 private:
  Remote(std::string address, std::shared_ptr<grpc::Channel> channel);
  absl::Status FromGrpc(const grpc::Status& status) const;
  // A unary call within `timeout`: `invoke(context, response)` makes it
  // and returns its grpc::Status.
  template <typename Response, typename Invoke>
  absl::StatusOr<Response> Unary(
      const Invoke& invoke, absl::Duration timeout = absl::Seconds(30)) const;

  std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<esb::v1::QuantizationService::Stub> stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

// One line for a job in a final state: "succeeded", or what failed and
// where.
std::string JobOutcome(const esb::v1::Job& job);

}  // namespace esb::client

#endif  // ESB_CLIENT_REMOTE_H_
