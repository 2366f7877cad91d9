#include "server/metrics.h"

#include "core/pipeline/config.h"

namespace esb::server {

ServerMetrics::ServerMetrics(int64_t worker_window_ms)
    : registry_(std::make_shared<prometheus::Registry>()),
      worker_window_ms_(worker_window_ms) {
  jobs_ = &prometheus::BuildGauge()
               .Name("esb_jobs")
               .Help("Jobs in the store by state.")
               .Register(*registry_);
  for (esb::v1::JobState s :
       {esb::v1::JOB_STATE_QUEUED, esb::v1::JOB_STATE_RUNNING,
        esb::v1::JOB_STATE_SUCCEEDED, esb::v1::JOB_STATE_FAILED,
        esb::v1::JOB_STATE_CANCELLED}) {
    jobs_->Add({{"state", std::string{pipeline::JobStateName(s)}}});
  }
  queue_depth_ = &prometheus::BuildGauge()
                      .Name("esb_queue_depth")
                      .Help("Jobs waiting for a worker.")
                      .Register(*registry_)
                      .Add({});
  workers_ = &prometheus::BuildGauge()
                  .Name("esb_workers_connected")
                  .Help("Workers that leased or heartbeated recently.")
                  .Register(*registry_)
                  .Add({});
  lease_expiries_ = &prometheus::BuildCounter()
                         .Name("esb_lease_expiries_total")
                         .Help("Leases that ran out (a worker lost).")
                         .Register(*registry_)
                         .Add({});
  attempts_ = &prometheus::BuildCounter()
                   .Name("esb_job_attempts_total")
                   .Help("Leases handed to workers.")
                   .Register(*registry_)
                   .Add({});
  upload_bytes_ = &prometheus::BuildCounter()
                       .Name("esb_upload_bytes_total")
                       .Help("Bytes received by UploadBlob.")
                       .Register(*registry_)
                       .Add({});
  submitted_ = &prometheus::BuildCounter()
                    .Name("esb_jobs_submitted_total")
                    .Help("Jobs accepted by SubmitJob.")
                    .Register(*registry_)
                    .Add({});
  duration_ = &prometheus::BuildHistogram()
                   .Name("esb_job_duration_seconds")
                   .Help("Submission to final state, by outcome.")
                   .Register(*registry_);
}

void ServerMetrics::JobFinished(esb::v1::JobState outcome, double seconds) {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600};
  duration_
      ->Add({{"outcome", std::string{pipeline::JobStateName(outcome)}}},
            kBuckets)
      .Observe(seconds);
}

void ServerMetrics::WorkerSeen(const std::string& worker, int64_t now_ms) {
  absl::MutexLock lock(&mu_);
  last_seen_[worker] = now_ms;
}

void ServerMetrics::Refresh(const std::map<esb::v1::JobState, int64_t>& counts,
                            int64_t now_ms) {
  for (esb::v1::JobState s :
       {esb::v1::JOB_STATE_QUEUED, esb::v1::JOB_STATE_RUNNING,
        esb::v1::JOB_STATE_SUCCEEDED, esb::v1::JOB_STATE_FAILED,
        esb::v1::JOB_STATE_CANCELLED}) {
    auto it = counts.find(s);
    jobs_->Add({{"state", std::string{pipeline::JobStateName(s)}}})
        .Set(it == counts.end() ? 0.0 : static_cast<double>(it->second));
  }
  auto queued = counts.find(esb::v1::JOB_STATE_QUEUED);
  queue_depth_->Set(
      queued == counts.end() ? 0.0 : static_cast<double>(queued->second));
  absl::MutexLock lock(&mu_);
  absl::erase_if(last_seen_, [&](const auto& entry) {
    return now_ms - entry.second > worker_window_ms_;
  });
  workers_->Set(static_cast<double>(last_seen_.size()));
}

}  // namespace esb::server
