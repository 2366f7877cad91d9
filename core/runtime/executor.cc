#include "core/runtime/executor.h"

#include <omp.h>

#include <algorithm>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/graph/shapes.h"
#include "core/runtime/batch_slices.h"
#include "core/runtime/cpus.h"
#include "core/runtime/dnnl_adapter.h"
#include "core/runtime/plan.h"

namespace esb::runtime {
namespace internal {

// The oneDNN engine (thread-safe) and the stream that packs weights while
// plans are built.
struct Device {
  dnnl::engine engine;
  dnnl::stream stream;
};

}  // namespace internal

namespace {

// Sets the calling thread's OpenMP thread count, which oneDNN 2.6 (OpenMP
// runtime, no dnnl_set_max_threads) reads when it creates and runs
// primitives, and restores it on exit.
class ScopedThreads {
 public:
  explicit ScopedThreads(int threads) : previous_(omp_get_max_threads()) {
    omp_set_num_threads(threads);
  }
  ~ScopedThreads() { omp_set_num_threads(previous_); }
  ScopedThreads(const ScopedThreads&) = delete;
  ScopedThreads& operator=(const ScopedThreads&) = delete;

 private:
  int previous_;
};

// Weights (and Gemm's C) must be constants, packed once, or graph inputs,
// reordered at each run; not values computed in the graph.
absl::Status CheckConstants(const graph::Graph& graph) {
  auto is_input = [&](const std::string& name) {
    for (const graph::ValueInfo& input : graph.inputs) {
      if (input.name == name) return true;
    }
    return false;
  };
  for (const graph::Node& node : graph.nodes) {
    const bool has_weights = node.op == graph::Op::kConv ||
                             node.op == graph::Op::kGemm ||
                             node.op == graph::Op::kMatMul;
    if (!has_weights) continue;
    for (size_t i = 1; i < node.inputs.size(); ++i) {
      if (node.op == graph::Op::kConv && i == 2) continue;  // Bias: any.
      if (graph.FindConstant(node.inputs[i]) == nullptr &&
          !is_input(node.inputs[i])) {
        return absl::UnimplementedError(
            absl::StrCat("node '", node.name, "' (", graph::OpName(node.op),
                         "): input '", node.inputs[i],
                         "' must be a constant initializer or a graph input"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Executor>> Executor::Create(
    const graph::Graph& graph, const ExecutorOptions& options) {
  return CreateWithLayers(graph, options, nullptr);
}

absl::StatusOr<std::unique_ptr<Executor>> Executor::CreateWithLayers(
    const graph::Graph& graph, const ExecutorOptions& options,
    std::shared_ptr<const internal::QuantizedLayers> layers) {
  if (options.threads < 0 || options.max_cached_shapes < 1 ||
      options.max_idle_runs < 0 || options.max_concurrent_runs < 1 ||
      options.slice_cache_bytes < -1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "executor options: threads (", options.threads,
        ") must be >= 0, max_cached_shapes (", options.max_cached_shapes,
        ") >= 1, max_idle_runs (", options.max_idle_runs,
        ") >= 0, max_concurrent_runs (", options.max_concurrent_runs,
        ") >= 1 and slice_cache_bytes (", options.slice_cache_bytes,
        ") >= -1"));
  }
  if (absl::Status s = CheckConstants(graph); !s.ok()) return s;
  const int threads = options.threads > 0 ? options.threads : AvailableCpus();
  std::unique_ptr<Executor> executor(
      new Executor(graph, options, threads, std::move(layers)));
  absl::Status status = CallDnnl("creating the oneDNN engine", [&] {
    executor->device_ = std::make_unique<internal::Device>();
    executor->device_->engine = dnnl::engine(dnnl::engine::kind::cpu, 0);
    executor->device_->stream = dnnl::stream(executor->device_->engine);
    return absl::OkStatus();
  });
  if (!status.ok()) return status;

  // Batch 1 when every other dim is known: errors surface here.
  ShapeKey key;
  for (const graph::ValueInfo& input : graph.inputs) {
    std::vector<int64_t> shape = input.shape;
    if (!shape.empty() && shape[0] == graph::kBatch) shape[0] = 1;
    const bool known =
        !shape.empty() && std::all_of(shape.begin(), shape.end(),
                                      [](int64_t d) { return d >= 0; });
    if (!known) return executor;
    key.push_back(std::move(shape));
  }
  absl::MutexLock lock(&executor->mu_);
  ScopedThreads scoped(threads);
  auto plan = executor->PlanFor(key);
  if (!plan.ok()) return plan.status();
  return executor;
}

Executor::Executor(const graph::Graph& graph, const ExecutorOptions& options,
                   int threads,
                   std::shared_ptr<const internal::QuantizedLayers> layers)
    : graph_(graph),
      options_(options),
      threads_(threads),
      slice_cache_bytes_(options.slice_cache_bytes >= 0
                             ? options.slice_cache_bytes
                             : LastLevelCacheBytes().value_or(0) / 2),
      layers_(std::move(layers)),
      weights_(std::make_unique<internal::WeightCache>()) {}

Executor::~Executor() = default;

int Executor::cached_shapes() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(plans_.size());
}

int Executor::idle_runs(const std::vector<std::vector<int64_t>>& shapes) const {
  absl::MutexLock lock(&mu_);
  for (const auto& [key, plan] : plans_) {
    if (key == shapes) return plan->idle_runs();
  }
  return 0;
}

std::vector<std::string> Executor::step_kinds(
    const std::vector<std::vector<int64_t>>& shapes) const {
  absl::MutexLock lock(&mu_);
  for (const auto& [key, plan] : plans_) {
    if (key == shapes) return plan->step_kinds();
  }
  return {};
}

absl::StatusOr<std::shared_ptr<internal::Plan>> Executor::PlanFor(
    const ShapeKey& key) {
  for (auto it = plans_.begin(); it != plans_.end(); ++it) {
    if (it->first == key) {
      plans_.splice(plans_.begin(), plans_, it);
      return plans_.front().second;
    }
  }
  internal::PlanLimits limits;
  limits.max_arena_bytes = options_.budget.max_arena_bytes;
  limits.max_plan_bytes = options_.budget.max_plan_bytes;
  limits.max_idle_runs = options_.max_idle_runs;
  limits.max_concurrent_runs = options_.max_concurrent_runs;
  auto plan =
      internal::Plan::Build(graph_, key, device_->engine, device_->stream,
                            *weights_, limits, layers_.get());
  if (!plan.ok()) return plan.status();
  plans_.emplace_front(key, *std::move(plan));
  while (static_cast<int>(plans_.size()) > options_.max_cached_shapes) {
    plans_.pop_back();
  }
  return plans_.front().second;
}

absl::StatusOr<std::vector<graph::Tensor>> Executor::Run(
    const std::vector<graph::Tensor>& inputs) {
  if (inputs.size() != graph_.inputs.size()) {
    std::string names;
    for (const graph::ValueInfo& input : graph_.inputs) {
      absl::StrAppend(&names, names.empty() ? "'" : ", '", input.name, "'");
    }
    return absl::InvalidArgumentError(
        absl::StrCat("expected ", graph_.inputs.size(), " inputs (", names,
                     ") but got ", inputs.size()));
  }
  ShapeKey key;
  std::vector<const float*> input_data;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const graph::Tensor& t = inputs[i];
    if (static_cast<int64_t>(t.data.size()) != t.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("input '", graph_.inputs[i].name, "' has shape ",
                       graph::ShapeToString(t.shape), " (", t.size(),
                       " elements) but ", t.data.size(), " values"));
    }
    key.push_back(t.shape);
    input_data.push_back(t.data.data());
  }

  ScopedThreads scoped(threads_);
  int64_t slice;  // 0: the whole batch in one run.
  {
    absl::MutexLock lock(&mu_);
    slice = SliceFor(key);
  }
  // Slices of `slice` images (the last may hold fewer), each on the plan
  // of its own shape, reading and writing the images in place: dim 0 is
  // outermost in row-major data.
  const int64_t batch = slice > 0 ? key[0][0] : 0;
  std::vector<graph::Tensor> outputs;
  std::vector<float*> output_data;
  int64_t first = 0;
  do {
    ShapeKey slice_key = key;
    std::vector<const float*> slice_inputs = input_data;
    const int64_t count = std::min(slice, batch - first);
    for (size_t i = 0; slice > 0 && i < key.size(); ++i) {
      slice_key[i][0] = count;
      slice_inputs[i] += first * (inputs[i].size() / batch);
    }
    absl::StatusOr<std::shared_ptr<internal::Plan>> plan;
    {
      absl::MutexLock lock(&mu_);
      plan = PlanFor(slice_key);
    }
    if (!plan.ok() && slice > 0) {
      // Name the shapes the caller gave as well as the slice's.
      std::string shapes;
      for (const std::vector<int64_t>& shape : key) {
        absl::StrAppend(&shapes, shapes.empty() ? "" : ", ",
                        graph::ShapeToString(shape));
      }
      return absl::Status(
          plan.status().code(),
          absl::StrCat("input shapes ", shapes, " run in slices of ", slice,
                       " images: ", plan.status().message()));
    }
    if (!plan.ok()) return plan.status();
    if (first == 0) {
      // A sliced batch's outputs have `batch` where the slice's have
      // `count` (ProfileBatch checked dim 0 of every value).
      outputs.resize((*plan)->output_shapes().size());
      for (size_t i = 0; i < outputs.size(); ++i) {
        outputs[i].shape = (*plan)->output_shapes()[i];
        if (slice > 0) outputs[i].shape[0] = batch;
        outputs[i].data.resize(outputs[i].size());
        output_data.push_back(outputs[i].data.data());
      }
    }
    std::vector<float*> slice_outputs = output_data;
    for (size_t i = 0; slice > 0 && i < outputs.size(); ++i) {
      slice_outputs[i] += first * (outputs[i].size() / batch);
    }
    absl::Status status = (*plan)->Execute(slice_inputs, slice_outputs);
    if (!status.ok()) return status;
    first += slice;
  } while (first < batch);
  return outputs;
}

int64_t Executor::SliceFor(const ShapeKey& key) {
  const int64_t batch = key.empty() || key[0].empty() ? 0 : key[0][0];
  if (slice_cache_bytes_ <= 0 || batch <= 1) return 0;
  for (const std::vector<int64_t>& shape : key) {
    if (shape.empty() || shape[0] != batch) return 0;
  }
  auto it = slices_.find(key);
  if (it != slices_.end()) return it->second;
  std::optional<BatchProfile> profile = ProfileBatch(graph_, key);
  int64_t slice =
      profile ? ChooseSlice(*profile, batch, slice_cache_bytes_) : batch;
  if (slice >= batch) slice = 0;
  // Bounded like the plans: the shapes come from callers.
  if (slices_.size() >= 64) slices_.clear();
  slices_[key] = slice;
  return slice;
}

}  // namespace esb::runtime
