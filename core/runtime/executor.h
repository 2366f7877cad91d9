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
// A batch whose layers would not fit in the cache may run as slices of
// fewer images, each on the plan of the slice's shape, in place in the
// caller's inputs and outputs (batch_slices.h, slice_cache_bytes).
//
// Concurrency: a plan is immutable once built and shared by every Run with
// its shapes; each Run executes on its own arena, memory objects and oneDNN
// stream (plan.h), so concurrent Runs proceed in parallel. Only the plan
// lookup (and a plan's build, on a miss) holds the executor's mutex.
//
// Threads: every Run uses options.threads OpenMP threads, whatever the
// number of concurrent Runs. The count is fixed per run, not divided among
// the callers, so that a run's result never depends on what else runs (some
// oneDNN kernels split reductions by thread); a server with many callers
// should set threads to AvailableCpus() / expected concurrency (1 for one
// caller per core).
//
// Plan.h bounds the runs of one plan executing at once
// (max_concurrent_runs); Runs beyond the bound wait for one to finish.
//
// Thread-safe.
#ifndef ESB_CORE_RUNTIME_EXECUTOR_H_
#define ESB_CORE_RUNTIME_EXECUTOR_H_

#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
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

// The memory a plan may hold; esbctl and esb-agent set it with
// --max-arena-bytes and --max-plan-bytes.
struct MemoryBudget {
  // Bytes of the arena of one run (every intermediate value and oneDNN
  // scratchpad of one plan). A plan that needs more fails with
  // RESOURCE_EXHAUSTED naming the node or plan and this limit.
  size_t max_arena_bytes = size_t{4} << 30;
  // Bytes of one plan: its arena, its outputs, and the packed weights and
  // folded constants it holds. RESOURCE_EXHAUSTED past it.
  size_t max_plan_bytes = size_t{8} << 30;
};

struct ExecutorOptions {
  // OpenMP threads oneDNN may use during one run (and while building a
  // plan). 0 means the CPUs this process may use (AvailableCpus(): its
  // affinity mask and cgroup CPU quota).
  int threads = 0;
  // Sets of input shapes whose plans are kept; beyond this the least
  // recently used plan is dropped (packed weights stay). At least 1.
  int max_cached_shapes = 8;
  // What a plan may allocate.
  MemoryBudget budget;
  // Per plan, runs (arena + bound memory + stream) kept after use for the
  // next Run; concurrent Runs beyond this allocate their own and free them
  // after. At least 0.
  int max_idle_runs = 4;
  // Per plan, runs executing at once; a Run beyond this waits until one of
  // them finishes. Bounds the memory of a plan's runs to this many arenas.
  // The default lets 32 clients of one board agent run in parallel on one
  // set of shapes. At least 1.
  int max_concurrent_runs = 32;
  // A batch whose layers would not fit in this many bytes of cache runs as
  // slices of fewer images, each on the plan for its own shape, when that
  // moves fewer bytes through DRAM (batch_slices.h). -1: half the
  // last-level cache (LastLevelCacheBytes; the rest holds weights and other
  // processes' data), no slicing where that is unknown. 0: never slice.
  int64_t slice_cache_bytes = -1;
};

// Runs one graph; see the file comment for plans, layouts and concurrency.
// Thread-safe: Run may be called concurrently and calls with cached shapes
// run in parallel.
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
  // Idle runs pooled by the plan of `shapes` (0 when it has no plan).
  int idle_runs(const std::vector<std::vector<int64_t>>& shapes) const;
  // Plan::step_kinds of the plan of `shapes` (empty when it has none).
  std::vector<std::string> step_kinds(
      const std::vector<std::vector<int64_t>>& shapes) const;

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
  // The plan for `key`, built on a miss; most recently used first. Shared:
  // a Run keeps executing a plan that a later miss evicts.
  absl::StatusOr<std::shared_ptr<internal::Plan>> PlanFor(const ShapeKey& key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Images per slice for inputs of `key`; 0 for one run of the whole batch.
  int64_t SliceFor(const ShapeKey& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const graph::Graph graph_;  // Plans read its constants in place.
  const ExecutorOptions options_;
  const int threads_;
  const int64_t slice_cache_bytes_;  // Resolved; 0: never slice.
  const std::shared_ptr<const internal::QuantizedLayers> layers_;

  mutable absl::Mutex mu_;
  std::unique_ptr<internal::Device> device_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<internal::WeightCache> weights_ ABSL_GUARDED_BY(mu_);
  std::list<std::pair<ShapeKey, std::shared_ptr<internal::Plan>>> plans_
      ABSL_GUARDED_BY(mu_);
  std::map<ShapeKey, int64_t> slices_ ABSL_GUARDED_BY(mu_);
};

}  // namespace esb::runtime

#endif  // ESB_CORE_RUNTIME_EXECUTOR_H_
