// A fake esb-server for the worker's tests: WorkerService and the blob
// calls of QuantizationService over real gRPC on 127.0.0.1 (a free port),
// handing out the jobs a test queues and recording every call.
#ifndef ESB_WORKER_WORKER_TEST_SERVER_H_
#define ESB_WORKER_WORKER_TEST_SERVER_H_

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "esb/v1/service.grpc.pb.h"
#include "grpcpp/server.h"

namespace esb::worker::testing {

struct Heartbeat {
  esb::v1::HeartbeatRequest request;
  absl::Time at;
  bool answered_cancel = false;
};

// Everything the fake saw and how it answers. Guarded by `mu`.
struct FakeState {
  absl::Mutex mu;
  std::deque<esb::v1::Job> queue;
  std::map<std::string, std::string> blobs;  // By sha256.
  std::map<std::string, int> reads;          // ReadBlob calls by sha256.
  int uploads = 0;                           // UploadBlob calls stored.
  int leases = 0;
  std::vector<Heartbeat> heartbeats;
  std::vector<esb::v1::CompleteJobRequest> completes;
  std::vector<std::pair<esb::v1::FailJobRequest, absl::Time>> fails;
  // Answers.
  std::set<std::string> cancel;    // Jobs whose heartbeats say cancel.
  std::set<std::string> aborted;   // Jobs whose calls get ABORTED.
  int unavailable_heartbeats = 0;  // The next N heartbeats: UNAVAILABLE.
  int unavailable_completes = 0;   // The next N CompleteJobs: UNAVAILABLE.
  absl::Duration lease = absl::Seconds(10);
  // Called (under mu) with each heartbeat before it is answered.
  std::function<void(const esb::v1::HeartbeatRequest&)> on_heartbeat;
};

class FakeServer {
 public:
  FakeServer();
  ~FakeServer();

  FakeState& state() { return state_; }
  std::string address() const { return address_; }

  // Stores `bytes` as a blob the worker can read.
  esb::v1::BlobRef AddBlob(const std::string& bytes);
  void Enqueue(const esb::v1::Job& job);

  // Waits until `done` (called under state().mu) is true; false after
  // `timeout`.
  bool WaitFor(const std::function<bool()>& done, absl::Duration timeout);

 private:
  class Workers;
  class Blobs;
  FakeState state_;
  std::unique_ptr<Workers> workers_;
  std::unique_ptr<Blobs> blobs_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

}  // namespace esb::worker::testing

#endif  // ESB_WORKER_WORKER_TEST_SERVER_H_
