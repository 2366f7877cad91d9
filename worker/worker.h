// Worker: the lease loop of esb-worker.
//
// `concurrency` slots each lease a job from esb-server's WorkerService
// (a long poll), fetch its blobs into the BlobCache, run it in a child
// process (JobProcess), heartbeat the lease with the latest progress while
// it runs, and finish it: the artifacts uploaded (StatBlob first, then
// UploadBlob) and CompleteJob, or FailJob with the job's error.
//
// The server going away is not an error: every call is retried with
// exponential backoff (jittered, backoff_min .. backoff_max) and the job's
// child keeps running while heartbeats fail. The job is given up only when
// its lease is lost: a call answered ABORTED (the lease went to another
// worker) or NOT_FOUND, or the lease deadline passing without a successful
// heartbeat. A cancel_requested heartbeat kills the child at once and
// fails the job with CANCELLED.
//
// Thread-safety: Run() is called once; Drain() and Abort() from any thread.
#ifndef ESB_WORKER_WORKER_H_
#define ESB_WORKER_WORKER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "esb/v1/service.grpc.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "worker/blob_cache.h"

namespace esb::worker {

struct WorkerOptions {
  std::string name;         // Unique per worker process (host:pid).
  std::string work_dir;     // blobs/ (the cache) and jobs/<id>/.
  std::string job_binary;   // The esb-worker executable run for each job.
  int concurrency = 1;      // Jobs run at once.
  int threads_per_job = 0;  // CPU threads of each job; 0: every CPU.
  int64_t job_memory_limit = int64_t{8} << 30;  // RLIMIT_AS; 0: none.
  absl::Duration heartbeat_interval = absl::Milliseconds(500);
  absl::Duration lease_wait = absl::Seconds(10);  // LeaseJob long poll.
  absl::Duration backoff_min = absl::Milliseconds(100);
  absl::Duration backoff_max = absl::Seconds(5);
};

// The worker's metrics, registered in a registry the caller owns.
struct WorkerMetrics {
  explicit WorkerMetrics(prometheus::Registry& registry);

  prometheus::Family<prometheus::Histogram>& stage_duration;
  prometheus::Family<prometheus::Counter>& jobs;
  prometheus::Gauge& running;
  prometheus::Counter& layers_quantized;

  void Finished(const std::string& outcome) {
    jobs.Add({{"outcome", outcome}}).Increment();
  }
  void Stage(const std::string& stage, double seconds);
};

class Worker {
 public:
  // `metrics` is not owned and outlives the worker.
  static absl::StatusOr<std::unique_ptr<Worker>> Create(
      const WorkerOptions& options, std::shared_ptr<grpc::Channel> channel,
      WorkerMetrics* metrics);
  ~Worker();

  // Serves jobs until Drain() or Abort(), then returns once every slot has
  // stopped.
  void Run();

  // Stops leasing; running jobs finish and are reported.
  void Drain();

  // Kills the running jobs and returns from Run() at once. The jobs are not
  // failed (FailJob would make them FAILED for good): their heartbeats just
  // stop, so their leases expire and the server queues them again.
  void Abort();

 private:
  Worker(const WorkerOptions& options, std::shared_ptr<grpc::Channel> channel,
         WorkerMetrics* metrics);
  void Slot(int index);
  void RunLeased(const esb::v1::LeaseJobResponse& lease);
  // Sleeps `d` unless the worker is aborted (or draining, when
  // `stop_on_drain`); false when woken by that.
  bool Sleep(absl::Duration d, bool stop_on_drain);
  absl::Duration Backoff(int failures) const;

  absl::Status FetchBlob(
      const std::string& sha256,
      const std::function<absl::Status(absl::string_view)>& sink);
  absl::Status Upload(const std::string& path, esb::v1::BlobRef* ref);

  const WorkerOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<esb::v1::WorkerService::Stub> worker_stub_;
  std::unique_ptr<esb::v1::QuantizationService::Stub> blob_stub_;
  WorkerMetrics* const metrics_;
  BlobCache cache_;

  absl::Mutex mu_;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool aborted_ ABSL_GUARDED_BY(mu_) = false;
  // The LeaseJob calls in flight, cancelled by Drain().
  std::vector<grpc::ClientContext*> lease_calls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace esb::worker

#endif  // ESB_WORKER_WORKER_H_
