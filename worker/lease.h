// Holding a lease: the retry rules of the worker's calls and the thread
// that heartbeats one lease.
#ifndef ESB_WORKER_LEASE_H_
#define ESB_WORKER_LEASE_H_

#include <cstdint>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "esb/v1/service.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"

namespace esb::worker {

// Codes after which the same call may well succeed: the server is away,
// restarting or overloaded.
bool Transient(absl::StatusCode code);

// Codes of a call naming a lease that is gone: another worker holds it
// (ABORTED), or the job is no more (NOT_FOUND).
bool LeaseGone(absl::StatusCode code);

absl::Status ToAbsl(const grpc::Status& s);

void SetDeadline(grpc::ClientContext& ctx, absl::Duration d);

// The wait before retry number `failures` (1, 2, ...): min doubled per
// failure up to max, times a random factor in [0.5, 1) so that workers that
// lost the server together do not come back together. Thread-safe.
absl::Duration Backoff(int failures, absl::Duration min, absl::Duration max);

struct LeaseKeeperOptions {
  std::string job_id;
  std::string lease_id;
  int64_t deadline_unix_ms = 0;  // From LeaseJob.
  absl::Duration interval = absl::Milliseconds(500);
  absl::Duration backoff_min = absl::Milliseconds(100);
  absl::Duration backoff_max = absl::Seconds(5);
};

// Heartbeats one lease from its own thread, every `interval` (with backoff
// after failures), carrying the latest progress. A failed heartbeat is
// retried until the lease deadline; the lease is lost when a heartbeat is
// answered ABORTED or NOT_FOUND, or when the deadline passes without a
// successful one. Thread-safe.
class LeaseKeeper {
 public:
  // `stub` is not owned and outlives the keeper.
  LeaseKeeper(esb::v1::WorkerService::StubInterface* stub,
              LeaseKeeperOptions options);
  ~LeaseKeeper();
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

  // What the next heartbeat carries.
  void SetProgress(const esb::v1::JobProgress& p);
  // No more heartbeats (returns once the thread has ended).
  void Stop();
  // A heartbeat answered cancel_requested.
  bool cancel_requested();
  // Why the lease is lost, or "" while it is held.
  std::string lost();
  // Records that another call found the lease gone.
  void Lose(const std::string& why);

 private:
  void Loop();

  esb::v1::WorkerService::StubInterface* const stub_;
  const LeaseKeeperOptions options_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool cancel_ ABSL_GUARDED_BY(mu_) = false;
  std::string lost_ ABSL_GUARDED_BY(mu_);
  int64_t deadline_ ABSL_GUARDED_BY(mu_);
  esb::v1::JobProgress progress_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;  // Last: starts once the rest is built.
};

}  // namespace esb::worker

#endif  // ESB_WORKER_LEASE_H_
