// The dynamic batcher of one served model.
//
// Requests (each one or more images) wait in a bounded queue. A batch
// starts at once when none of the model's batches is running (an idle
// device gains nothing by waiting, so a lone request pays no delay);
// otherwise when the images waiting reach max_batch, when the oldest
// request has waited max_queue_delay, or when the running batches finish
// (which makes the device idle again). It takes the queued requests in
// arrival order while their images fit in max_batch (and their per-image
// shapes equal the first's), concatenates them along dim 0, runs them on
// the model in one call, and hands each request its own rows of every
// output. Up to max_in_flight batches of the model run at once.
//
// Per request the batcher measures the queue time (arrival to the start of
// its batch) and the compute time (its batch's backend run).
//
// Thread-safe. Destroying a Batcher refuses new requests, runs the queued
// ones and waits for the batches in flight; so it must not be destroyed by
// a Done callback (which runs on one of its threads).
#ifndef ESB_FPGA_AGENT_BATCHER_H_
#define ESB_FPGA_AGENT_BATCHER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/graph/graph.h"
#include "fpga_agent/backend.h"

namespace esb::agent {

class AgentMetrics;

struct BatcherOptions {
  // Images per backend run; also capped by the model's max_batch().
  int max_batch = 8;
  // How long the oldest request waits for others to join its batch.
  absl::Duration max_queue_delay = absl::Microseconds(500);
  // Images waiting at most; past it Submit is RESOURCE_EXHAUSTED.
  int max_queue = 256;
  // Batches of the model running at once.
  int max_in_flight = 2;
  // Start a batch at once when none is running. Off, every batch waits for
  // max_batch images or max_queue_delay (tests use it to force merging).
  bool run_when_idle = true;
};

// One request's share of a batch run.
struct BatchResult {
  std::vector<graph::Tensor> outputs;  // Its rows of every output.
  double queue_seconds = 0.0;
  double compute_seconds = 0.0;
  int batch_images = 0;  // Images of the batch it ran in.
};

class Batcher {
 public:
  using Done = std::function<void(absl::StatusOr<BatchResult>)>;

  // `model` must outlive the batcher; `metrics` may be null (else it gets
  // one Batch() per run under `model_label`, and DeviceTimeout() when a run
  // ends DEADLINE_EXCEEDED).
  Batcher(LoadedModel* model, const BatcherOptions& options,
          AgentMetrics* metrics, std::string model_label);
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Queues `input` (dim 0 the images). Returns INVALID_ARGUMENT for no
  // images or more than max_batch(), RESOURCE_EXHAUSTED when the queue is
  // full, UNAVAILABLE when shutting down; then `done` is never called.
  // Otherwise `done` is called once, on a batcher thread, with the result.
  absl::Status Submit(graph::Tensor input, Done done);

  // Submit and wait.
  absl::StatusOr<BatchResult> Run(graph::Tensor input);

  int max_batch() const { return max_batch_; }

 private:
  struct Pending {
    graph::Tensor input;
    int64_t images = 0;
    absl::Time arrived;
    Done done;
  };

  void Loop();
  // Takes the next batch once one is due (blocks); false when shutting
  // down with an empty queue.
  bool NextBatch(std::vector<Pending>* batch);
  void RunBatch(std::vector<Pending> batch);

  LoadedModel* const model_;
  const BatcherOptions options_;
  const int max_batch_;
  AgentMetrics* const metrics_;
  const std::string model_label_;

  absl::Mutex mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  int64_t queued_images_ ABSL_GUARDED_BY(mu_) = 0;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;  // Batches running.
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace esb::agent

#endif  // ESB_FPGA_AGENT_BATCHER_H_
