// Internal to the executor: lowers graph nodes into the steps of a Plan
// (see plan.h for what each op becomes).
//
// Thread-compatible.
#ifndef ESB_CORE_RUNTIME_LOWER_H_
#define ESB_CORE_RUNTIME_LOWER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/graph/graph.h"
#include "core/graph/shapes.h"
#include "core/runtime/esb_kernels.h"
#include "core/runtime/esb_layers.h"
#include "core/runtime/plan.h"

namespace esb::runtime::internal {

// One oneDNN eltwise pass.
struct EltwiseStep {
  dnnl::algorithm alg;
  float alpha;
  float beta;
};

// Crops the kernel of a conv from input `x_shape` to output `y_shape` to
// the taps that reach the input at some output position: a tap that only
// ever lands in the zero padding adds nothing (DeepLabV3's atrous convs,
// dilated past a small feature map, become 1x1 convs). Updates `window`'s
// kernel and pads and the kernel dims at the end of `w_dims` (row-major
// weights of `type`, [.., k...]), and returns the view of the whole
// weights that holds the taps kept (all of them when every tap reaches the
// input). A dim stays whole where the cropped pads would be negative.
dnnl::memory::desc CropDeadTaps(const std::vector<int64_t>& x_shape,
                                const std::vector<int64_t>& y_shape,
                                dnnl::memory::data_type type,
                                graph::WindowGeometry& window,
                                dnnl::memory::dims& w_dims);

class PlanBuilder {
 public:
  // `shapes` holds every value's shape (graph::InferShapes). Nodes with an
  // entry in `layers` (may be null) are lowered as ESB layers (esb_lower.cc).
  PlanBuilder(const graph::Graph& graph,
              const std::map<std::string, std::vector<int64_t>>& shapes,
              const dnnl::engine& engine, dnnl::stream& stream,
              WeightCache& weights, const QuantizedLayers* layers, Plan& plan);

  // Call in this order; Lower once per node, in graph order. Lower and
  // AddOutputs must run inside CallDnnl.
  void AddInputs();
  absl::Status Lower(int node_index);
  void AddOutputs();
  // The first error found while adding steps (Lower's own result aside).
  const absl::Status& status() const { return status_; }

 private:
  // A value: the buffer holding it and its layout there.
  struct Value {
    int buffer;
    dnnl::memory::desc desc;
  };

  const std::vector<int64_t>& ShapeOf(const std::string& name) const;
  Value Get(const std::string& name);
  // `name` in layout `desc`, reordered once (and remembered) if needed.
  Value As(const std::string& name, const dnnl::memory::desc& desc);
  Value AsPlain(const std::string& name);
  int AddBuffer(Plan::Buffer buffer);
  Value NewArena(const dnnl::memory::desc& desc);
  Value AddConstant(float* data, const dnnl::memory::desc& desc);
  void AddPrimitive(const dnnl::primitive& primitive,
                    const std::vector<std::pair<int, Value>>& args);
  void AddLoop(std::function<void(absl::Span<float* const>)> loop,
               const std::vector<Value>& args);
  void Define(const std::string& name, const Value& value);
  absl::Status NotConstant(const std::string& what, const std::string& name);
  // Weights given as graph input `name` (UNIMPLEMENTED for a value computed
  // in the graph), viewed as `view` and reordered at each run into
  // `packed`, the primitive's layout.
  absl::StatusOr<Value> RuntimeWeights(const std::string& name,
                                       const dnnl::memory::desc& view,
                                       const dnnl::memory::desc& packed);

  // Appends to `ops` the elementwise nodes that alone read `value` (its
  // only readers, not graph outputs): Relu, Clip, LeakyRelu, Sigmoid,
  // HardSigmoid, HardSwish, Gelu, and x * Sigmoid(x) (SiLU) or
  // x * HardSigmoid(x) (HardSwish as opset 13 writes it). Those nodes are
  // absorbed (Lower skips them) and `value` becomes the last one's output.
  void FuseEpilogue(std::string& value, dnnl::post_ops& ops);
  // x * Sigmoid(x) or x * HardSigmoid(x) (alpha 1/6, beta 1/2) on `value`:
  // the gate and the Mul are its only readers, the Mul the gate's only one,
  // and neither value is a graph output.
  struct GatedPair {
    dnnl::algorithm alg;  // eltwise_swish or eltwise_hardswish.
    float alpha;
    float beta;
    int gate;  // Node indices.
    int mul;
  };
  std::optional<GatedPair> FindGatedPair(const std::string& value) const;
  // Whether node `node` may still be fused into its producer: not absorbed
  // already and not an ESB layer.
  bool FreeToFuse(int node) const;
  // The one node reading `value` when it is free to fuse and `value` is not
  // a graph output; -1 otherwise.
  int FusibleReader(const std::string& value) const;
  // Whether value `name` is 4-D and held channels-last (acdb).
  bool IsChannelsLast(const std::string& name);
  // ActivationAttr's post-ops then FuseEpilogue's for the output `value` of
  // an FP32 producer.
  dnnl::primitive_attr EpilogueAttr(const graph::Activation& activation,
                                    std::string& value);
  // For a conv (node `producer`) whose output `value` is read only by an
  // Add of a same-shaped `skip` already computed in a blocked or
  // channels-last layout, and read by nothing after it: appends a sum
  // post-op (and FuseEpilogue's ops after the Add), absorbs the Add, moves
  // `value` past it and returns skip, whose buffer the conv then writes in
  // place (dst = conv + skip). nullopt, changing nothing, otherwise.
  std::optional<Value> FuseResidual(int producer, const std::string& src,
                                    std::string& value, dnnl::post_ops& ops);

  absl::Status LowerConv(int node_index, const graph::Node& node);
  // A strided conv over few channels that oneDNN would run as a gemm
  // (AlexNet's 11x11 stride-4 first conv over RGB) as a stride-1 conv over
  // its input's space-to-depth image (the SpaceToDepth loop), with the
  // weights rearranged to match: true when oneDNN has a jit kernel for
  // that, false (adding nothing) otherwise. `attr`, `residual` and `out`
  // are the conv's epilogue as LowerConv fused it. The zero taps that
  // round the kernel up to whole strides read real pixels, so an infinite
  // input value can give NaN where the conv itself would give infinity.
  absl::StatusOr<bool> LowerSpaceToDepthConv(
      int node_index, const graph::Node& node, const graph::Tensor& w,
      const graph::WindowGeometry& window, const dnnl::primitive_attr& attr,
      const std::optional<Value>& residual, const std::string& out);
  absl::Status LowerGemm(int node_index, const graph::Node& node);
  absl::Status LowerMatMul(int node_index, const graph::Node& node);
  // The NarrowGemm loop writing value `out` [rows, m] from plain `a`
  // [rows, k] and node `node_index`'s weights, packed once from `source`
  // (plain [k, m]) into one row per output column; `bias` ([1, m]) may be
  // null.
  absl::Status AddNarrowGemm(int node_index, const Value& a, int64_t rows,
                             int64_t k, int64_t m,
                             const std::function<dnnl::memory()>& source,
                             const Value* bias,
                             const graph::Activation& activation,
                             const std::string& out);
  void LowerBatchNorm(const graph::Node& node);
  void LowerEltwise(int node_index, const graph::Node& node);
  void LowerPool(const graph::Node& node);
  // The MaxPool2d loop for 4-D `node` on `x`: true when x is channels-last
  // or channel-blocked, false (adding nothing) otherwise.
  bool LowerMaxPoolLoop(const graph::Node& node, const Value& x,
                        const graph::WindowGeometry& window);
  void LowerBinary(const graph::Node& node);
  void LowerConcat(const graph::Node& node);
  // The ConcatSlabs loop for `node` on `inputs` (in layout `common`, or
  // all row-major when it is unset): true when that layout keeps each
  // input's part of a row contiguous, false (adding nothing) otherwise.
  bool LowerConcatSlabs(const graph::Node& node,
                        const std::optional<dnnl::memory::format_tag>& common,
                        const std::vector<Value>& inputs);
  void LowerTranspose(const graph::Node& node);
  void LowerSoftmax(const graph::Node& node);
  // `steps` over value `input` into a new value `output`, one primitive
  // each.
  void AddEltwise(const std::string& input, const std::string& output,
                  const std::vector<EltwiseStep>& steps);
  void LowerErf(const graph::Node& node);
  void LowerReduce(const graph::Node& node);
  void LowerPad(const graph::Node& node);
  // A zero Pad of the spatial dims read only by an AveragePool (no ceil
  // mode; its own padding counted, or none), as the pool alone with both
  // paddings counted in its divisor (as Inception-v3's exports write
  // avg_pool2d(padding=1)): true, with the pool absorbed; false, changing
  // nothing, otherwise.
  bool LowerPaddedAveragePool(const graph::Node& pad);
  // A channel shuffle starting at `reshape` (Reshape [N, G, C/G, H, W],
  // Transpose (0, 2, 1, 3, 4), Reshape back, each the previous one's only
  // reader) as one reorder: true, with the Transpose and the second Reshape
  // absorbed; false, changing nothing, for anything else.
  bool LowerChannelShuffle(const graph::Node& reshape);
  void LowerExpand(const graph::Node& node);
  void LowerResize(const graph::Node& node);
  void LowerLayerNorm(const graph::Node& node);

  // ESB layers (esb_lower.cc).
  absl::Status LowerQuantized(int node_index, const graph::Node& node,
                              const QuantizedLayer& layer);
  absl::Status LowerQuantizedFast(int node_index, const graph::Node& node,
                                  const QuantizedLayer& layer,
                                  const LayerGeometry& geometry);
  // The integer view of value `name` for `format` and `alpha`, u8/s8
  // (`int8`) or as f32, channels-last (Conv) or plain (Gemm/MatMul): the
  // one a producer's epilogue wrote, or quantized here once from the float
  // value.
  absl::StatusOr<Value> IntegerInput(const std::string& name,
                                     const Format& format, float alpha,
                                     bool channels_last, bool int8);

  const graph::Graph& graph_;
  const std::map<std::string, std::vector<int64_t>>& shapes_;
  const dnnl::engine& engine_;
  dnnl::stream& stream_;
  WeightCache& weights_;
  Plan& plan_;
  std::string context_;  // Of the node being lowered.
  std::map<std::string, Value> values_;
  std::map<std::string, std::vector<Value>> layouts_;  // Reordered copies.
  std::map<std::string, std::vector<int>> readers_;    // Node indices.
  std::set<std::string> graph_outputs_;
  std::set<int> absorbed_;         // Nodes fused into a producer's epilogue.
  const QuantizedLayers* layers_;  // May be null.
  // Integer views by value, format, scale and layout (esb_lower.cc).
  std::map<std::string, Value> integer_values_;
  absl::Status status_;
};

}  // namespace esb::runtime::internal

#endif  // ESB_CORE_RUNTIME_LOWER_H_
