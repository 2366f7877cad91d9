// Internal to the executor (executor.h): a Plan is the graph lowered for one
// set of concrete input shapes: oneDNN primitives and plain-loop steps in
// execution order, the memory layout of every value, packed weights and one
// arena for all intermediate values.
//
// Lowering, per op (src/dst layouts are oneDNN memory descriptors):
//   Conv                convolution_forward (direct), src/weights/dst
//                       format_tag::any, so oneDNN picks blocked layouts;
//                       constant weights reordered once into that layout,
//                       weights given as a graph input reordered at each
//                       run; fused Relu/Clip as an eltwise post-op. Kernel
//                       taps that land only in the zero padding at every
//                       output are cropped (CropDeadTaps, lower.h).
//   Gemm, MatMul        matmul with weights format_tag::any, packed once
//                       (or, as a graph input, reordered at each run, with
//                       alpha and beta 1); Gemm's alpha folded into the
//                       packed B, beta * C into the bias; A with leading batch
//                       dims is viewed as [rows, K]; fused activation as a
//                       post-op. Few rows (two with AVX-512, eight with
//                       AVX2 alone) on 4 MiB or more of constant weights (a
//                       classifier head at a small batch) run the NarrowGemm
//                       loop on the weights packed one row per output
//                       column.
//   BatchNormalization  batch_normalization_forward (global stats, scale,
//                       shift) on the input's layout.
//   Relu, Clip, LeakyRelu, Sigmoid
//                       eltwise_forward on the input's layout.
//   MaxPool, AveragePool, GlobalAveragePool
//                       pooling_v2_forward on the input's layout
//                       (channels-last for a plain 4-D input); ceil mode
//                       as extra end padding. A zero Pad of the spatial
//                       dims read only by an AveragePool becomes the
//                       pool's counted padding. AveragePool with
//                       count_include_pad whose ceil-mode windows overhang
//                       the end padding runs the AveragePool loop.
//   Add, Mul            binary with the full-shape operand as src0 (both
//                       ops commute); the BroadcastBinary loop when both
//                       operands broadcast.
//   Concat              the inputs in one common layout; the ConcatSlabs
//                       loop (a memcpy per input and outer index) where
//                       that layout keeps each input's part contiguous,
//                       else oneDNN's concat.
//   Softmax             softmax_forward on the plain layout.
//   Transpose           reorder from a permuted-strides view to plain.
//   Flatten, Reshape    no work: a plain view of the (plain) input buffer.
//                       A channel shuffle (Reshape [N, G, C/G, H, W],
//                       Transpose (0, 2, 1, 3, 4), Reshape back) is one
//                       reorder between strided views, channels-last when
//                       its input is.
//   Identity            no work: the input's buffer and layout.
//   Pad                 the PadConstant loop; a crop (no pad > 0: Slice,
//                       Split) a reorder from a view of the input, keeping
//                       channels-last.
// Layouts stay blocked from op to op; a value is reordered only where a
// consumer needs another layout (plain for loops, reshapes, Softmax, Gemm,
// MatMul and graph outputs), once per (value, layout).
//
// A Plan is immutable once built (steps, primitives, layouts, packed weights,
// the arena layout); what one execution writes lives in a Run (the arena
// memory, the oneDNN memory objects bound to it, a stream), taken from a
// small pool per plan. At most limits.max_concurrent_runs Runs exist in use
// at once; Execute beyond that blocks until one is released. Every primitive
// takes its scratchpad from the arena (ScratchpadAttr), so executions share no
// mutable oneDNN state.
//
// Thread-safe: Execute may be called concurrently; Build is thread-compatible
// with respect to the WeightCache and stream it is given.
#ifndef ESB_CORE_RUNTIME_PLAN_H_
#define ESB_CORE_RUNTIME_PLAN_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "core/graph/graph.h"
#include "core/runtime/dnnl_adapter.h"

namespace esb::runtime::internal {

struct QuantizedLayers;

// What a plan may use, in bytes (ExecutorOptions has the documented
// defaults).
struct PlanLimits {
  size_t max_arena_bytes = 0;   // The arena of one execution.
  size_t max_plan_bytes = 0;    // Arena + outputs + weights and constants.
  int max_idle_runs = 0;        // Runs kept for reuse.
  int max_concurrent_runs = 1;  // Runs executing at once; more wait.
};

// Weights packed into oneDNN's preferred layout, shared by every plan whose
// primitive asks for that layout (a new batch size usually reuses them).
// Thread-compatible.
class WeightCache {
 public:
  struct Packed {
    dnnl::memory::desc desc;
    std::unique_ptr<AlignedBuffer> storage;
  };

  // The weights of node `node_index` in layout `desc`. On first use,
  // `source` is called for the plain weights (a memory that stays valid
  // until Get returns), which are reordered into that layout on `stream`.
  // Call inside CallDnnl.
  // RESOURCE_EXHAUSTED when the packed copy cannot be allocated.
  absl::StatusOr<std::shared_ptr<const Packed>> Get(
      int node_index, const dnnl::memory::desc& desc,
      const std::function<dnnl::memory()>& source, const dnnl::engine& engine,
      dnnl::stream& stream);

 private:
  std::map<int, std::vector<std::shared_ptr<const Packed>>> packed_;
};

class Plan {
 public:
  // Lowers `graph` (which must outlive the plan: constants are read in
  // place) for `input_shapes` (graph.inputs order), checking shapes with
  // graph::InferShapes. Nodes with an entry in `layers` (null for none;
  // must outlive the plan) run as ESB layers (esb_layers.h). `stream`
  // packs weights during the build. RESOURCE_EXHAUSTED naming the node (or
  // the plan) and the limit when the arena or the whole plan would exceed
  // `limits`.
  static absl::StatusOr<std::unique_ptr<Plan>> Build(
      const graph::Graph& graph,
      const std::vector<std::vector<int64_t>>& input_shapes,
      const dnnl::engine& engine, dnnl::stream& stream, WeightCache& weights,
      const PlanLimits& limits, const QuantizedLayers* layers = nullptr);

  ~Plan();

  // Runs the steps on a Run of its own (taken from the pool or new),
  // waiting while max_concurrent_runs Runs are in use.
  // `inputs` and `outputs` hold one pointer per graph input and output,
  // sized for input_shapes and output_shapes(); inputs are only read.
  absl::Status Execute(absl::Span<const float* const> inputs,
                       absl::Span<float* const> outputs);

  const std::vector<std::vector<int64_t>>& output_shapes() const {
    return output_shapes_;
  }
  size_t arena_bytes() const { return arena_bytes_; }
  // Runs currently idle in the pool (for tests).
  int idle_runs() const;
  // One line per step, in order: its context, then "loop" or the oneDNN
  // primitive's kind and implementation ("node 'pool' (MaxPool): loop",
  // "node 'c' (Conv): convolution (jit:avx2)"). For tests and profiles.
  std::vector<std::string> step_kinds() const;

 private:
  friend class PlanBuilder;

  struct Buffer {
    enum class Kind { kArena, kInput, kOutput, kConstant };
    Kind kind = Kind::kArena;
    size_t bytes = 0;       // kArena.
    size_t offset = 0;      // kArena: in the arena, once laid out.
    int index = -1;         // Graph input or output index.
    float* data = nullptr;  // kConstant.
  };
  struct Arg {
    int arg;     // DNNL_ARG_*, or the position for a loop step.
    int buffer;  // Index into buffers_.
    dnnl::memory::desc desc;
  };
  struct Step {
    std::string context;  // "node 'conv1' (Conv)", for errors.
    dnnl::primitive primitive;
    // Plain loop: called with the args' data pointers, in args order.
    std::function<void(absl::Span<float* const>)> loop;
    std::vector<Arg> args;
  };
  // The mutable state of one execution.
  struct Run {
    std::unique_ptr<AlignedBuffer> arena;
    // Per step, the primitive's arguments bound to `arena` (graph inputs
    // and outputs get their handles at each execution).
    std::vector<std::unordered_map<int, dnnl::memory>> memories;
    dnnl::stream stream;
  };

  Plan(const dnnl::engine& engine, const PlanLimits& limits)
      : engine_(engine), limits_(limits) {}
  // Lays out the arena and checks the plan against limits_; `what` names
  // the plan in errors.
  absl::Status Layout(const std::string& what);
  // Waits for a free slot under max_concurrent_runs and claims it, then
  // returns an idle Run or a new one (releasing the slot on failure).
  absl::StatusOr<std::unique_ptr<Run>> TakeRun();
  // Releases the slot of `run`, keeping it for reuse when `reuse` and the
  // pool has room.
  void ReleaseRun(std::unique_ptr<Run> run, bool reuse);
  bool SlotFree() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return in_use_ < limits_.max_concurrent_runs;
  }
  absl::Status ExecuteOn(Run& run, absl::Span<const float* const> inputs,
                         absl::Span<float* const> outputs) const;
  float* Data(int buffer, float* arena, absl::Span<const float* const> inputs,
              absl::Span<float* const> outputs) const;

  const dnnl::engine engine_;
  const PlanLimits limits_;
  // Set while building, then read only.
  std::vector<Buffer> buffers_;
  std::vector<Step> steps_;
  std::vector<std::shared_ptr<const WeightCache::Packed>> packed_;
  std::vector<std::unique_ptr<AlignedBuffer>> owned_;  // Folded constants.
  size_t arena_bytes_ = 0;
  std::vector<std::vector<int64_t>> output_shapes_;

  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<Run>> idle_ ABSL_GUARDED_BY(mu_);
  int in_use_ ABSL_GUARDED_BY(mu_) = 0;  // Runs taken and not released.
};

}  // namespace esb::runtime::internal

#endif  // ESB_CORE_RUNTIME_PLAN_H_
