// FP32 inference of a graph::Graph on the CPU with oneDNN.
//
// Run computes every graph output from the graph inputs with ONNX semantics
// for each op (graph.h); shapes follow graph::InferShapes (shapes.h). The
// batch (and any other free dim) may change from run to run.
//
// Per distinct set of input shapes the executor builds a plan once: shapes
// inferred, one oneDNN primitive (or plain loop) per node, Conv/Gemm/MatMul
// weights packed into the layout the primitive prefers (format_tag::any +
// reorder; shared between plans that want the same layout), and one arena
// holding every intermediate value at offsets planned from the values'
// lifetimes. Runs with those shapes reuse the plan; plan.h lists what each
// op lowers to. Intermediate values stay in oneDNN's blocked layouts between
// ops that accept them and are reordered to row-major only where an op or a
// graph output needs it.
//
// Thread-safe: Run may be called from any thread; calls are serialized (one
// oneDNN stream per executor, each run uses options.threads threads).
#ifndef ESB_CORE_RUNTIME_EXECUTOR_H_
#define ESB_CORE_RUNTIME_EXECUTOR_H_

#include <cstdint>
#include <list>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/graph/graph.h"

namespace esb::runtime {

namespace internal {
class Plan;
class WeightCache;
struct Device;
struct QuantizedLayers;
}  // namespace internal

class EsbExecutor;

struct ExecutorOptions {
  // OpenMP threads oneDNN may use during a run (and while building a plan).
  // 0 means every core available to the process (omp_get_num_procs()).
  int threads = 0;
  // Sets of input shapes whose plans are kept; beyond this the least
  // recently used plan is dropped (packed weights stay). At least 1.
  int max_cached_shapes = 8;
};

// Runs one graph; see the file comment for plans and layouts.
// Thread-safe: Run may be called concurrently; calls are serialized by an
// internal mutex (one oneDNN stream per executor).
class Executor {
 public:
  // Checks the graph and, when every input dim but the batch is known,
  // builds the plan for batch 1 so that unsupported or inconsistent graphs
  // fail here. INVALID_ARGUMENT for shape errors (naming node, op and
  // shapes), UNIMPLEMENTED for what the runtime does not support (e.g. a
  // Conv weight that is not a constant).
  static absl::StatusOr<std::unique_ptr<Executor>> Create(
      const graph::Graph& graph, const ExecutorOptions& options = {});

  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // `inputs` in graph.inputs order; returns the outputs in graph.outputs
  // order, row-major. INVALID_ARGUMENT naming the input when the count,
  // a shape, or a tensor's data size is wrong.
  absl::StatusOr<std::vector<graph::Tensor>> Run(
      const std::vector<graph::Tensor>& inputs);

  // Number of input-shape sets with a cached plan.
  int cached_shapes() const;

 private:
  friend class EsbExecutor;
  using ShapeKey = std::vector<std::vector<int64_t>>;

  // Create, with the nodes in `layers` (may be null) lowered as ESB layers.
  static absl::StatusOr<std::unique_ptr<Executor>> CreateWithLayers(
      const graph::Graph& graph, const ExecutorOptions& options,
      std::shared_ptr<const internal::QuantizedLayers> layers);

  Executor(const graph::Graph& graph, const ExecutorOptions& options,
           int threads,
           std::shared_ptr<const internal::QuantizedLayers> layers);
  // The plan for `key`, built on a miss; most recently used first.
  absl::StatusOr<internal::Plan*> PlanFor(const ShapeKey& key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const graph::Graph graph_;  // Plans read its constants in place.
  const ExecutorOptions options_;
  const int threads_;
  const std::shared_ptr<const internal::QuantizedLayers> layers_;

  mutable absl::Mutex mu_;
  std::unique_ptr<internal::Device> device_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<internal::WeightCache> weights_ ABSL_GUARDED_BY(mu_);
  std::list<std::pair<ShapeKey, std::unique_ptr<internal::Plan>>> plans_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace esb::runtime

#endif  // ESB_CORE_RUNTIME_EXECUTOR_H_
