// Internal to the ESB executor (esb_executor.h): every quantized layer,
// prepared once from the graph and its esb::LayerQuant (layer_quant.h holds
// the semantics), and the choice of path for it.
//
// Prepared per layer: the integer view of the weights (in the initializer's
// layout, per output channel along graph::WeightChannelAxis), the output
// scales s[m] = OutputScales(quant, gemm_alpha), the per-channel bias (Conv
// B; Gemm beta * C for a scalar or per-column C; none for MatMul) and the
// fused activation in Dequantize's (kind, lo, hi) form.
//
// Path. The int8 fast path (oneDNN u8/s8 x s8 -> s32 with no scales or
// post-ops) is exact when every accumulator is an integer that survives a
// round trip through f32, because oneDNN 2.6's int8 kernels pass the s32
// result through f32 on the way out (measured: s8-source convolutions and
// matmuls are off by one past 2^24). So a layer runs fast when
//   - the CPU has VNNI (without it oneDNN's u8 x s8 products are summed
//     pairwise in saturating int16),
//   - the input format fits u8 (unsigned) or s8 (signed) and the weight
//     format is signed and fits s8 (Format::fits_int8()),
//   - acc_bound = max_integer(input) * max over m of sum |wi[m, .]| is at
//     most 2^24 (a tighter, data-aware form of K * max|xi| * max|wi|), and
//   - it is not a Gemm with trans_a.
// Otherwise it runs the reference integer loops, and `reason` says why.
//
// Thread-compatible; immutable once prepared.
#ifndef ESB_CORE_RUNTIME_ESB_LAYERS_H_
#define ESB_CORE_RUNTIME_ESB_LAYERS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/esb/format.h"
#include "core/esb/layer_quant.h"
#include "core/graph/graph.h"

namespace esb::runtime::internal {

// Largest |acc| the fast path accepts: integers up to 2^24 are exact in f32.
inline constexpr int64_t kExactAccumulatorLimit = int64_t{1} << 24;

struct QuantizedLayer {
  explicit QuantizedLayer(const LayerQuant& q) : quant(q) {}

  std::string name;  // The node's.
  LayerQuant quant;
  std::vector<int32_t> weights;  // Integer view, the initializer's layout.
  std::vector<int64_t> weight_shape;
  std::vector<float> scales;  // s[m].
  std::vector<float> bias;    // One per output channel (zeros when none).
  int activation = 0;         // Dequantize's kind: 0 none, 1 Relu, 2 Clip.
  float lo = 0.0f;
  float hi = 0.0f;
  int64_t acc_bound = 0;  // See the file comment.

  bool fast = false;
  std::string reason;  // Why not fast ("" when fast).
  // Set on a fast layer whose output is read only by fast layers of the
  // same kind (Conv -> Conv, Gemm/MatMul -> Gemm/MatMul), each as input 0
  // with this one input format and scale, and is not a graph output: the
  // epilogue then writes their u8/s8 input instead of floats.
  std::optional<Format> next_format;
  float next_alpha = 0.0f;
};

struct QuantizedLayers {
  std::map<int, QuantizedLayer> by_node;  // Keyed by node index.
  // Conv/Gemm/MatMul nodes without an entry (run in FP32).
  int unquantized = 0;

  const QuantizedLayer* Find(int node_index) const {
    auto it = by_node.find(node_index);
    return it == by_node.end() ? nullptr : &it->second;
  }
};

// Prepares every layer of `layers` (keyed by node name). A non-empty
// `no_fast_reason` puts every layer on the reference path with that reason
// (e.g. "reference path requested"). INVALID_ARGUMENT naming the
// layer when an entry names no node or a node that is not Conv, Gemm or
// MatMul, when scales or weights are unusable (QuantizeWeights), when the
// input scale is not finite and positive, or for a Gemm C that is not a
// scalar or per-column; UNIMPLEMENTED when weights or bias are not
// constant initializers. A layer with an entry in `integers` (may be null)
// takes that integer view of its weights, checked against its format and
// shape, instead of quantizing the float weights.
absl::StatusOr<QuantizedLayers> PrepareLayers(
    const graph::Graph& graph, const std::map<std::string, LayerQuant>& layers,
    const std::string& no_fast_reason,
    const WeightIntegers* integers = nullptr);

}  // namespace esb::runtime::internal

#endif  // ESB_CORE_RUNTIME_ESB_LAYERS_H_
