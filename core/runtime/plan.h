// Internal to the executor (executor.h): a Plan is the graph lowered for one
// set of concrete input shapes: oneDNN primitives and plain-loop steps in
// execution order, the memory layout of every value, packed weights and one
// arena for all intermediate values.
//
// Lowering, per op (src/dst layouts are oneDNN memory descriptors):
//   Conv                convolution_forward (direct), src/weights/dst
//                       format_tag::any, so oneDNN picks blocked layouts;
//                       weights reordered once into that layout; fused
//                       Relu/Clip as an eltwise post-op.
//   Gemm, MatMul        matmul with weights format_tag::any, packed once;
//                       Gemm's alpha folded into the packed B, beta * C
//                       into the bias; A with leading batch dims is viewed
//                       as [rows, K]; fused activation as a post-op.
//   BatchNormalization  batch_normalization_forward (global stats, scale,
//                       shift) on the input's layout.
//   Relu, Clip, LeakyRelu, Sigmoid
//                       eltwise_forward on the input's layout.
//   MaxPool, AveragePool, GlobalAveragePool
//                       pooling_v2_forward on the input's layout; ceil mode
//                       as extra end padding. AveragePool with
//                       count_include_pad whose ceil-mode windows overhang
//                       the end padding runs the AveragePool loop.
//   Add, Mul            binary with the full-shape operand as src0 (both
//                       ops commute); the BroadcastBinary loop when both
//                       operands broadcast.
//   Concat              concat on the inputs' layouts.
//   Softmax             softmax_forward on the plain layout.
//   Transpose           reorder from a permuted-strides view to plain.
//   Flatten, Reshape    no work: a plain view of the (plain) input buffer.
//   Identity            no work: the input's buffer and layout.
//   Pad                 the PadConstant loop.
// Layouts stay blocked from op to op; a value is reordered only where a
// consumer needs another layout (plain for loops, reshapes, Softmax, Gemm,
// MatMul and graph outputs), once per (value, layout).
//
// Thread-compatible: a Plan is used by one thread at a time.
#ifndef ESB_CORE_RUNTIME_PLAN_H_
#define ESB_CORE_RUNTIME_PLAN_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/graph/graph.h"
#include "core/runtime/dnnl_adapter.h"

namespace esb::runtime::internal {

struct QuantizedLayers;

// Weights packed into oneDNN's preferred layout, shared by every plan whose
// primitive asks for that layout (a new batch size usually reuses them).
class WeightCache {
 public:
  struct Packed {
    dnnl::memory::desc desc;
    AlignedBuffer storage;
  };

  // The weights of node `node_index` in layout `desc`. On first use,
  // `source` is called for the plain weights (a memory that stays valid
  // until Get returns), which are reordered into that layout on `stream`.
  // Call inside CallDnnl. RESOURCE_EXHAUSTED if the storage cannot be
  // allocated.
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
  // must outlive the plan) run as ESB layers (esb_layers.h).
  static absl::StatusOr<std::unique_ptr<Plan>> Build(
      const graph::Graph& graph,
      const std::vector<std::vector<int64_t>>& input_shapes,
      const dnnl::engine& engine, dnnl::stream& stream, WeightCache& weights,
      const QuantizedLayers* layers = nullptr);

  // Runs the steps. `inputs` and `outputs` hold one pointer per graph input
  // and output, sized for input_shapes and output_shapes(); inputs are only
  // read.
  absl::Status Execute(absl::Span<const float* const> inputs,
                       absl::Span<float* const> outputs, dnnl::stream& stream);

  const std::vector<std::vector<int64_t>>& output_shapes() const {
    return output_shapes_;
  }
  size_t arena_bytes() const { return arena_bytes_; }

 private:
  friend class PlanBuilder;

  struct Buffer {
    enum class Kind { kArena, kInput, kOutput, kConstant };
    Kind kind = Kind::kArena;
    size_t bytes = 0;       // kArena.
    int index = -1;         // Graph input or output index.
    float* data = nullptr;  // kConstant, and kArena once bound.
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
    std::unordered_map<int, dnnl::memory> memories;  // Bound primitive args.
  };

  Plan() = default;
  // Lays out the arena and creates the memory objects of every step.
  absl::Status Bind(const dnnl::engine& engine);
  float* Data(int buffer, absl::Span<const float* const> inputs,
              absl::Span<float* const> outputs) const;

  std::vector<Buffer> buffers_;
  std::vector<Step> steps_;
  std::vector<std::shared_ptr<const WeightCache::Packed>> packed_;
  std::vector<std::unique_ptr<AlignedBuffer>> owned_;  // Folded constants.
  std::unique_ptr<AlignedBuffer> arena_;
  size_t arena_bytes_ = 0;
  std::vector<std::vector<int64_t>> output_shapes_;
};

}  // namespace esb::runtime::internal

#endif  // ESB_CORE_RUNTIME_PLAN_H_
