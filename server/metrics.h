// The server's Prometheus metrics (DESIGN.md section 8), prefix esb_.
#ifndef ESB_SERVER_METRICS_H_
#define ESB_SERVER_METRICS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "esb/v1/service.pb.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace esb::server {

class ServerMetrics {
 public:
  // A worker counts as connected while it called within `worker_window_ms`.
  explicit ServerMetrics(int64_t worker_window_ms);

  const std::shared_ptr<prometheus::Registry>& registry() const {
    return registry_;
  }

  void JobLeased() { attempts_->Increment(); }
  void LeaseExpired() { lease_expiries_->Increment(); }
  void JobFinished(esb::v1::JobState outcome, double seconds);
  void UploadBytes(int64_t bytes) {
    upload_bytes_->Increment(static_cast<double>(bytes));
  }
  void JobSubmitted() { submitted_->Increment(); }
  void WorkerSeen(const std::string& worker, int64_t now_ms);
  // Jobs by state and queue depth from the store's counts, and the
  // connected workers as of `now_ms`.
  void Refresh(const std::map<esb::v1::JobState, int64_t>& counts,
               int64_t now_ms);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Gauge>* jobs_;
  prometheus::Gauge* queue_depth_;
  prometheus::Gauge* workers_;
  prometheus::Counter* lease_expiries_;
  prometheus::Counter* attempts_;
  prometheus::Counter* upload_bytes_;
  prometheus::Counter* submitted_;
  prometheus::Family<prometheus::Histogram>* duration_;
  int64_t worker_window_ms_;

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, int64_t> last_seen_ ABSL_GUARDED_BY(mu_);
};

}  // namespace esb::server

#endif  // ESB_SERVER_METRICS_H_
