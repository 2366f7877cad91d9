// The graph IR: a small, readable model of an inference CNN.
//
// A Graph is a list of Nodes in topological order. Nodes read and write
// named values; a value is a graph input, a node output, or a constant
// (float32 initializer). Every op of the IR computes in float32 on NCHW
// tensors; the batch dimension (dim 0 of the inputs) is free, so shapes in
// the graph hold -1 there (kBatch) and executors infer the rest per run.
//
// Semantics follow ONNX (opset 11..17) for the op of the same name, with the
// attributes below resolved at import: pads are explicit (auto_pad is
// gone), optional inputs are filled in, and shape arithmetic is folded into
// constant attributes. Import (onnx_import.h) is the only producer; passes
// (passes.h) rewrite it; executors (core/runtime) consume it.
//
// Plain structs: thread-compatible.
#ifndef ESB_CORE_GRAPH_GRAPH_H_
#define ESB_CORE_GRAPH_GRAPH_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/graph/checked.h"

namespace esb::graph {

// Marks the free batch dimension in a shape.
inline constexpr int64_t kBatch = -1;

struct Node;
struct Tensor;

enum class Op {
  // inputs: X [N,C,H,W], W [M,C/group,kH,kW], optional B [M].
  // attrs: kernel, strides, pads, dilations, group, activation.
  kConv,
  // Y = alpha * A' * B' + beta * C with A' = trans_a ? A^T : A, likewise B.
  // inputs: A [N,K], B constant, optional C constant (broadcast to [N,M]).
  // attrs: alpha, beta, trans_a, trans_b, activation.
  kGemm,
  // inputs: A [...,K], B [K,M] constant. attrs: activation.
  kMatMul,
  // inputs: X, scale, bias, mean, var (all constants but X). attrs: epsilon.
  kBatchNorm,
  kRelu,
  // attrs: min, max (either may be +-infinity).
  kClip,
  // attrs: alpha.
  kLeakyRelu,
  kSigmoid,
  // max(0, min(1, alpha * x + beta)). attrs: alpha, beta.
  kHardSigmoid,
  // x * max(0, min(1, x / 6 + 1 / 2)).
  kHardSwish,
  kSqrt,
  kErf,
  // attrs: kernel, strides, pads, dilations, ceil_mode.
  kMaxPool,
  // attrs: kernel, strides, pads, ceil_mode, count_include_pad.
  kAveragePool,
  kGlobalAveragePool,
  // Elementwise with numpy broadcasting; either input may be constant.
  kAdd,
  kMul,
  kSub,
  kDiv,
  kPow,
  // attrs: axis (non-negative).
  kConcat,
  // attrs: axis (non-negative). Output [prod(dims < axis), prod(rest)].
  kFlatten,
  // attrs: shape (resolved; 0 copies the input dim, -1 is inferred).
  kReshape,
  // attrs: perm.
  kTranspose,
  // attrs: axis (non-negative). Opset >= 13 semantics: along one axis.
  kSoftmax,
  kIdentity,
  // Mean, sum or largest value over `axes` (non-negative, increasing, not
  // empty); those dims become 1 with keep_dims, else go. attrs: axes,
  // keep_dims.
  kReduceMean,
  kReduceSum,
  kReduceMax,
  // Constant padding; negative pads crop (Slice and Split import as one).
  // attrs: pads (begin..., end... over all dims), value.
  kPad,
  // Numpy broadcast of the input to attrs.shape (the output's shape, with 1
  // where the input's dim is kept, as on the batch).
  kExpand,
  // Resampling of the last two dims of an [N, C, H, W] input (ONNX Resize).
  // attrs: resize (mode, coordinate transform, nearest rounding),
  // scales [4] (used by the coordinate transform, 1 on N and C), shape
  // (the output's H and W).
  kResize,
  // Normalization of the dims from `axis` on: (x - mean) / sqrt(var +
  // epsilon) * scale + bias. inputs: X, scale, optional bias (constants of
  // X's normalized shape). attrs: axis (non-negative), epsilon.
  kLayerNorm,
  // x * (1 + erf(x / sqrt(2))) / 2, the exact GELU (fused from its ONNX
  // decomposition by passes.h).
  kGelu,
};

// The IR's last op (readers of serialized ops check against it).
inline constexpr Op kLastOp = Op::kGelu;

absl::string_view OpName(Op op);

// True for the ops ESB quantizes: Conv, Gemm and MatMul.
bool IsQuantizedOp(Op op);

// The output-channel axis of a Conv, Gemm or MatMul node's weights
// (inputs[1]): Conv [M, C/g, kH, kW] 0; Gemm B 0 with trans_b ([M, K]),
// else 1 ([K, M]); MatMul B [K, M] 1.
int WeightChannelAxis(const Node& node);

// Multiply-accumulates per output value of a Conv, Gemm or MatMul node with
// weights `w`: C/g * kH * kW for Conv, K for Gemm and MatMul (0 for weights
// of rank 0 or without output channels, which import refuses).
int64_t MacsPerOutput(const Node& node, const Tensor& w);

// An elementwise activation fused into Conv, Gemm or MatMul.
struct Activation {
  enum class Kind { kNone, kRelu, kClip };
  Kind kind = Kind::kNone;
  float min = 0.0f;  // kClip bounds.
  float max = 0.0f;
};

// The activation of v, rounded to float once.
float Apply(const Activation& a, double v);

// How Resize maps output coordinates to the input's and samples there
// (ONNX's mode, coordinate_transformation_mode and nearest_mode).
struct ResizeMethod {
  enum class Mode { kNearest, kLinear };
  enum class Coordinates {
    kHalfPixel,         // (o + 0.5) / scale - 0.5.
    kPytorchHalfPixel,  // The same, but 0 when the output dim is 1.
    kAlignCorners,      // o * (in - 1) / (out - 1), 0 when out is 1.
    kAsymmetric,        // o / scale.
  };
  enum class Rounding { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil };
  Mode mode = Mode::kNearest;
  Coordinates coordinates = Coordinates::kHalfPixel;
  Rounding rounding = Rounding::kRoundPreferFloor;  // kNearest only.
};

// Attributes of all ops; each op reads only the fields its comment names.
struct Attributes {
  std::vector<int64_t> kernel;     // Spatial kernel [kH, kW].
  std::vector<int64_t> strides;    // Spatial strides.
  std::vector<int64_t> pads;       // begin..., end... (spatial or all dims).
  std::vector<int64_t> dilations;  // Spatial dilations.
  int64_t group = 1;
  bool ceil_mode = false;
  bool count_include_pad = false;
  float alpha = 1.0f;  // Gemm alpha; LeakyRelu slope; HardSigmoid.
  float beta = 1.0f;   // Gemm beta; HardSigmoid.
  bool trans_a = false;
  bool trans_b = false;
  float min = 0.0f;  // Clip.
  float max = 0.0f;
  float epsilon = 1e-5f;
  int64_t axis = 1;
  std::vector<int64_t> perm;
  std::vector<int64_t> axes;   // Reduce*.
  bool keep_dims = true;       // Reduce*.
  std::vector<int64_t> shape;  // Reshape target; Expand, Resize output.
  std::vector<float> scales;   // Resize.
  ResizeMethod resize;
  float value = 0.0f;     // Pad constant.
  Activation activation;  // Fused into Conv/Gemm/MatMul by passes.
};

struct Node {
  std::string name;  // Unique; from the ONNX node (or made up if empty).
  Op op;
  std::vector<std::string> inputs;  // Value names; constants included.
  std::vector<std::string> outputs;
  Attributes attrs;
};

// A dense float32 constant, row-major.
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> data;

  // The product of the dims. Only for shapes already checked (import and
  // InferShapes check every tensor they accept); user-supplied shapes go
  // through CheckedSize().
  int64_t size() const { return CheckedSize().value_or(-1); }
  // The product of the dims, or nullopt on a negative dim or int64 overflow.
  std::optional<int64_t> CheckedSize() const { return CheckedProduct(shape); }
};

struct ValueInfo {
  std::string name;
  std::vector<int64_t> shape;  // kBatch in dim 0 when the batch is free.
};

struct Graph {
  std::vector<ValueInfo> inputs;
  std::vector<ValueInfo> outputs;
  std::vector<Node> nodes;                      // Topological order.
  std::map<std::string, Tensor> constants;      // By value name.
  std::map<std::string, std::string> metadata;  // ONNX metadata_props.
  int64_t opset = 0;                            // Default-domain opset.

  const Tensor* FindConstant(const std::string& name) const {
    auto it = constants.find(name);
    return it == constants.end() ? nullptr : &it->second;
  }
};

}  // namespace esb::graph

#endif  // ESB_CORE_GRAPH_GRAPH_H_
