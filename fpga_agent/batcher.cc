#include "fpga_agent/batcher.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "fpga_agent/metrics.h"

namespace esb::agent {
namespace {

bool SameSampleShape(const graph::Tensor& a, const graph::Tensor& b) {
  return a.shape.size() == b.shape.size() &&
         std::equal(a.shape.begin() + 1, a.shape.end(), b.shape.begin() + 1);
}

}  // namespace

Batcher::Batcher(LoadedModel* model, const BatcherOptions& options,
                 AgentMetrics* metrics, std::string model_label)
    : model_(model),
      options_(options),
      max_batch_(std::max(1, std::min(options.max_batch, model->max_batch()))),
      metrics_(metrics),
      model_label_(std::move(model_label)) {
  const int threads = std::max(1, options.max_in_flight);
  threads_.reserve(threads);
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

Batcher::~Batcher() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

absl::Status Batcher::Submit(graph::Tensor input, Done done) {
  if (input.shape.empty() || input.shape[0] < 1) {
    return absl::InvalidArgumentError(
        "a request needs at least one image (dim 0 is the batch)");
  }
  const int64_t images = input.shape[0];
  if (images > max_batch_) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch of ", images, " images is over the largest ",
                     max_batch_, " of model '", model_label_, "'"));
  }
  absl::MutexLock lock(&mu_);
  if (stopping_) {
    return absl::UnavailableError(
        absl::StrCat("model '", model_label_, "' is being unloaded"));
  }
  if (queued_images_ + images > options_.max_queue) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the queue of model '", model_label_, "' is full (", queued_images_,
        " images waiting, at most ", options_.max_queue, "); retry later"));
  }
  queued_images_ += images;
  queue_.push_back(
      Pending{std::move(input), images, absl::Now(), std::move(done)});
  return absl::OkStatus();
}

absl::StatusOr<BatchResult> Batcher::Run(graph::Tensor input) {
  absl::Notification finished;
  absl::StatusOr<BatchResult> result;
  absl::Status queued =
      Submit(std::move(input), [&](absl::StatusOr<BatchResult> r) {
        result = std::move(r);
        finished.Notify();
      });
  if (!queued.ok()) return queued;
  finished.WaitForNotification();
  return result;
}

void Batcher::Loop() {
  std::vector<Pending> batch;
  while (NextBatch(&batch)) {
    RunBatch(std::move(batch));
    absl::MutexLock lock(&mu_);
    --in_flight_;
  }
}

bool Batcher::NextBatch(std::vector<Pending>* batch) {
  batch->clear();
  absl::MutexLock lock(&mu_);
  while (true) {
    mu_.Await(absl::Condition(
        +[](Batcher* b) ABSL_EXCLUSIVE_LOCKS_REQUIRED(b->mu_) {
          return !b->queue_.empty() || b->stopping_;
        },
        this));
    if (queue_.empty()) return false;  // Stopping, nothing left.
    // Wait for the batch to fill, up to the oldest request's deadline or
    // until the device is idle.
    const absl::Time deadline =
        queue_.front().arrived + options_.max_queue_delay;
    mu_.AwaitWithDeadline(
        absl::Condition(
            +[](Batcher* b) ABSL_EXCLUSIVE_LOCKS_REQUIRED(b->mu_) {
              return b->queued_images_ >= b->max_batch_ || b->stopping_ ||
                     b->queue_.empty() ||
                     (b->options_.run_when_idle && b->in_flight_ == 0);
            },
            this),
        deadline);
    // Another thread may have taken the queue meanwhile.
    if (!queue_.empty()) break;
  }
  int64_t images = 0;
  while (!queue_.empty() && images + queue_.front().images <= max_batch_ &&
         (batch->empty() ||
          SameSampleShape(batch->front().input, queue_.front().input))) {
    images += queue_.front().images;
    batch->push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  queued_images_ -= images;
  ++in_flight_;
  return true;
}

void Batcher::RunBatch(std::vector<Pending> batch) {
  const absl::Time start = absl::Now();
  int64_t images = 0;
  for (const Pending& p : batch) images += p.images;

  graph::Tensor input;
  const graph::Tensor* run_input = &batch.front().input;
  if (batch.size() > 1) {
    input.shape = batch.front().input.shape;
    input.shape[0] = images;
    input.data.reserve(static_cast<size_t>(input.size()));
    for (const Pending& p : batch) {
      input.data.insert(input.data.end(), p.input.data.begin(),
                        p.input.data.end());
    }
    run_input = &input;
  }
  BatchStats stats;
  absl::StatusOr<std::vector<graph::Tensor>> outputs =
      model_->Run(*run_input, &stats);
  const double measured = absl::ToDoubleSeconds(absl::Now() - start);
  const double compute =
      stats.compute_seconds > 0 ? stats.compute_seconds : measured;
  if (metrics_ != nullptr) {
    if (outputs.ok()) {
      metrics_->Batch(model_label_, static_cast<int>(images), stats);
    } else if (absl::IsDeadlineExceeded(outputs.status())) {
      metrics_->DeviceTimeout();
    }
  }
  if (!outputs.ok()) {
    for (Pending& p : batch) p.done(outputs.status());
    return;
  }

  int64_t row = 0;
  for (Pending& p : batch) {
    BatchResult result;
    result.queue_seconds = absl::ToDoubleSeconds(start - p.arrived);
    result.compute_seconds = compute;
    result.batch_images = static_cast<int>(images);
    for (const graph::Tensor& out : *outputs) {
      if (batch.size() == 1) {
        result.outputs.push_back(out);
        continue;
      }
      if (out.shape.empty() || out.shape[0] != images) {
        // Not batched along dim 0: every request gets all of it.
        result.outputs.push_back(out);
        continue;
      }
      const int64_t per_row = images == 0 ? 0 : out.size() / images;
      graph::Tensor slice;
      slice.shape = out.shape;
      slice.shape[0] = p.images;
      slice.data.assign(out.data.begin() + row * per_row,
                        out.data.begin() + (row + p.images) * per_row);
      result.outputs.push_back(std::move(slice));
    }
    row += p.images;
    p.done(std::move(result));
  }
}

}  // namespace esb::agent
