// esb-agent's Prometheus metrics (DESIGN.md section 8), every one labelled
// with the board's name:
//
//   esb_agent_requests_total{board,model,status}   status: the gRPC code name
//   esb_agent_queue_seconds{board,model}           histogram, per request
//   esb_agent_compute_seconds{board,model}         histogram, per request
//   esb_agent_request_seconds{board,model}         histogram, per request
//   esb_agent_inferences_total{board,model}        images inferred
//   esb_agent_operations_total{board,model}        2 x MACs
//   esb_agent_batch_size{board,model}              histogram, per batch run
//   esb_agent_energy_joules_total{board,model,source}
//   esb_agent_power_watts{board,rail,source}       source "measured"/"model"
//   esb_agent_bitstream_loads_total{board,outcome} outcome "ok"/"error"
//   esb_agent_bitstream_load_seconds{board}        histogram
//   esb_agent_device_timeouts_total{board}
//   esb_agent_models_loaded{board}                 models being served
//
// Throughput, GOPS and energy per inference come from rate() of the
// counters. main builds one AgentMetrics and hands it to the components.
//
// Thread-safe.
#ifndef ESB_FPGA_AGENT_METRICS_H_
#define ESB_FPGA_AGENT_METRICS_H_

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "fpga_agent/backend.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace esb::agent {

class AgentMetrics {
 public:
  explicit AgentMetrics(std::string board);

  const std::shared_ptr<prometheus::Registry>& registry() const {
    return registry_;
  }
  const std::string& board() const { return board_; }

  // One inference request's outcome; `status` is a gRPC code name ("OK",
  // "INVALID_ARGUMENT", ...). The durations are recorded only for "OK".
  void Request(const std::string& model, const std::string& status,
               double queue_seconds, double compute_seconds,
               double total_seconds);
  // One backend run of `images` images.
  void Batch(const std::string& model, int images, const BatchStats& stats);
  void DeviceTimeout();
  void BitstreamLoad(bool ok, double seconds);
  void ModelsLoaded(int count);
  // The board's power now; rails missing from `state` are removed.
  void Power(const BoardState& state);

 private:
  const std::string board_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Histogram>* queue_;
  prometheus::Family<prometheus::Histogram>* compute_;
  prometheus::Family<prometheus::Histogram>* request_;
  prometheus::Family<prometheus::Counter>* inferences_;
  prometheus::Family<prometheus::Counter>* operations_;
  prometheus::Family<prometheus::Histogram>* batch_size_;
  prometheus::Family<prometheus::Counter>* energy_;
  prometheus::Family<prometheus::Gauge>* power_;
  prometheus::Family<prometheus::Counter>* bitstream_loads_;
  prometheus::Histogram* bitstream_seconds_;
  prometheus::Counter* device_timeouts_;
  prometheus::Gauge* models_loaded_;

  absl::Mutex mu_;
  // (rail, source) pairs with a power gauge.
  std::set<std::pair<std::string, std::string>> rails_ ABSL_GUARDED_BY(mu_);
};

}  // namespace esb::agent

#endif  // ESB_FPGA_AGENT_METRICS_H_
