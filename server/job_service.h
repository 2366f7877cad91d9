// The job service's logic, free of gRPC: submission, the lease protocol,
// cancellation, lease expiry and retention. grpc_services.h adapts it to
// the two gRPC services; tests drive it directly with a fake clock.
//
// The job's life:
//   QUEUED --lease--> RUNNING --complete--> SUCCEEDED
//                        |  \--fail------> FAILED (or CANCELLED)
//                        \--lease expired--> QUEUED again, or FAILED after
//                                            max_attempts leases
//   QUEUED --cancel--> CANCELLED; RUNNING --cancel--> cancel_requested, the
//   worker is told in its next heartbeat and fails the job as CANCELLED.
//
// Thread-safe.
#ifndef ESB_SERVER_JOB_SERVICE_H_
#define ESB_SERVER_JOB_SERVICE_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "esb/v1/service.pb.h"
#include "server/blob_store.h"
#include "server/job_store.h"
#include "server/metrics.h"

namespace esb::server {

struct JobServiceOptions {
  int max_attempts = 3;         // Leases before a lost job is FAILED.
  int64_t lease_ms = 10000;     // A lease lasts this long past a heartbeat.
  int64_t max_wait_ms = 30000;  // The longest LeaseJob long poll.
};

class JobService {
 public:
  using Clock = std::function<int64_t()>;  // Milliseconds since the epoch.

  // None owned; `metrics` may be null. `clock` defaults to the wall clock.
  JobService(JobStore* store, BlobStore* blobs, ServerMetrics* metrics,
             JobServiceOptions options, Clock clock = nullptr);

  // INVALID_ARGUMENT for a bad config or inputs (naming the field),
  // FAILED_PRECONDITION when a blob it names was never uploaded.
  absl::StatusOr<esb::v1::SubmitJobResponse> Submit(
      const esb::v1::SubmitJobRequest& request);
  absl::StatusOr<esb::v1::Job> Get(const std::string& id);
  absl::StatusOr<esb::v1::ListJobsResponse> List(
      const esb::v1::ListJobsRequest& request);
  // FAILED_PRECONDITION for a job already final.
  absl::StatusOr<esb::v1::Job> Cancel(const std::string& id);

  // The job once it differs from `seen` (immediately when `seen` is null),
  // or as it stands after `timeout`.
  absl::StatusOr<esb::v1::Job> WaitForChange(const std::string& id,
                                             const esb::v1::Job* seen,
                                             absl::Duration timeout);

  // Long poll: waits up to request.wait_ms (capped) for a queued job.
  // `abandoned` is polled while waiting (the caller went away).
  absl::StatusOr<esb::v1::LeaseJobResponse> Lease(
      const esb::v1::LeaseJobRequest& request,
      const std::function<bool()>& abandoned);
  // ABORTED when the lease is no longer the job's.
  absl::StatusOr<esb::v1::HeartbeatResponse> Heartbeat(
      const esb::v1::HeartbeatRequest& request);
  // Idempotent: completing again with the same lease returns the job.
  absl::StatusOr<esb::v1::Job> Complete(
      const esb::v1::CompleteJobRequest& request);
  absl::StatusOr<esb::v1::Job> Fail(const esb::v1::FailJobRequest& request);

  // Gives every running job a fresh lease deadline: called when the server
  // starts, so that workers that kept running while it was down can
  // heartbeat again before their leases count as lost.
  absl::Status RenewRunningLeases();
  // Requeues (or fails) every job whose lease ran out. Returns how many.
  absl::StatusOr<int> ExpireLeases();
  // Marks the artifacts of jobs finished more than `keep_ms` ago expired
  // and deletes the blobs no other job refers to. Returns blobs deleted.
  absl::StatusOr<int> Retain(int64_t keep_ms);
  // Pushes the store's counts into the metrics.
  absl::Status RefreshMetrics();

  // Wakes every waiter; long polls then return at once with nothing.
  void Shutdown();
  bool shutting_down() {
    absl::MutexLock lock(&mu_);
    return shutdown_;
  }

 private:
  void Notify();
  absl::StatusOr<JobRecord> Finish(const std::string& id,
                                   const std::string& lease_id,
                                   const Mutation& finish);

  JobStore* store_;
  BlobStore* blobs_;
  ServerMetrics* metrics_;
  JobServiceOptions options_;
  Clock now_ms_;

  absl::Mutex mu_;
  absl::CondVar changed_;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace esb::server

#endif  // ESB_SERVER_JOB_SERVICE_H_
