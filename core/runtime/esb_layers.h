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
// Paths. Both fast paths hand oneDNN the integer views and no scales or
// post-ops, and are exact when every value oneDNN computes is:
//
// int8 (oneDNN u8/s8 x s8 -> s32). oneDNN 2.6's int8 kernels pass results
// through f32 on the way out, so each s32 value must survive that round
// trip. Measured on avx512_core_vnni and avx2_vnni, past 2^24: s8-source
// convolutions, matmuls and inner products are off by one; u8-source
// brgemm kernels are exact but the avx2_vnni convolutions are not; and an
// avx2_vnni convolution with an s8 source is off even below 2^24 once the
// source shifted by +128 (VNNI multiplies u8 by s8, so oneDNN adds 128 to
// an s8 source and subtracts 128 * sum w afterwards) takes the sum past it.
// Without VNNI (x86-64 AVX2 and older) oneDNN sums pairs of u8 x s8
// products in saturating int16 before widening them to s32, so there the
// int8 path takes a layer only when no pair can reach past 32767; and an
// s8 source only into a matmul: oneDNN's int8 convolutions without VNNI
// (which rescale the weights of an s8 source) were measured off even with
// 4-bit weights, while its matmul shifts the source to u8 exactly.
//
// Exact f32 (oneDNN f32 convolution_direct / matmul on the integers held
// as floats, f32 out). Products and sums of integers are exact in f32
// while their magnitude stays within 2^24, and every partial sum oneDNN
// forms, in whatever order and blocking, is a sum of a subset of the
// products, bounded by the sum of their magnitudes. So it is exact on any
// CPU under the same bound, without the +128 shift, and for any formats.
//
// So each fast path bounds every value it asks oneDNN for:
//   chunk_bound = multiplier
//                 * max over m and chunks of sum over the chunk |wi[m, .]|
//   multiplier  = max_integer(input) + (int8 and signed input ? 128 : 0)
// and when that exceeds 2^24 for the whole reduction (K), splits K into
// `splits` equal chunks, the fewest that bring it within 2^24 for these very
// weights: input channels per group for Conv (all kernel taps of a channel
// stay together), K for Gemm/MatMul. A split layer runs as one grouped
// convolution with groups * splits groups, group (g, s) reading chunk s of
// group g's input channels and writing its own partial sums of all of
// group g's output channels; the epilogue adds the partials in int32,
// which is exact because the whole accumulator is bounded by
//   acc_bound = max_integer(input) * max over m of sum |wi[m, .]|
// and that must not exceed INT32_MAX. A Gemm/MatMul [rows, K] x [K, M] is
// the 1x1 convolution of [1, K, rows, 1] channels-last, the very bytes of
// row-major A. Unsplit layers run one convolution / matmul as before.
// A layer takes the int8 path when
//   - the CPU allows it (PathRules::no_int8 is empty),
//   - the input format fits u8 (unsigned) or s8 (signed) and the weight
//     format is signed and fits s8 (Format::fits_int8()),
//   - where the CPU sums pairs in int16 (PathRules::int16_pairs), no pair
//     can pass 32767 and a signed input runs as a matmul (Int16PairReason:
//     an unsplit Gemm or MatMul),
//   - and the conditions common to both hold:
//       acc_bound <= INT32_MAX and some equal split of K into at most
//       kMaxSplits chunks keeps chunk_bound within 2^24, and
//       it is not a Gemm with trans_a, nor has Gemm/MatMul weights other
//       than 2-D, nor is a Conv with other than 1 to 3 spatial dims;
// else the exact f32 path when the common conditions hold (with its own
// multiplier), and `reason` says why not int8; else the reference integer
// loops, and `reason` says why.
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
#include "core/runtime/esb_executor.h"

namespace esb::runtime::internal {

// Largest |value| the fast paths ask of oneDNN: integers up to 2^24 are
// exact in f32.
inline constexpr int64_t kExactAccumulatorLimit = int64_t{1} << 24;
// Largest acc_bound of a fast layer: its partial sums are added in int32.
inline constexpr int64_t kInt32AccumulatorLimit = (int64_t{1} << 31) - 1;
// Most chunks K is split into: the partial sums take `splits` times the
// output's s32 memory, and a K with no small divisor (a prime) would
// otherwise become a convolution with one group per k. VGG's 25088-wide
// head needs at most 49 even with every weight at 127.
inline constexpr int64_t kMaxSplits = 64;

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
  int64_t acc_bound = 0;    // See the file comment.
  int64_t splits = 1;       // Equal chunks of K on a fast path.
  int64_t chunk_bound = 0;  // With `splits`; see the file comment.

  LayerPath path = LayerPath::kReference;
  // kInt8: "". kFloat: why not int8. kReference: why neither fast path.
  std::string reason;
  bool fast() const { return path != LayerPath::kReference; }
  bool int8() const { return path == LayerPath::kInt8; }
  // Set on a fast layer whose output is read only by fast layers of the
  // same kind (Conv -> Conv, Gemm/MatMul -> Gemm/MatMul), all on one path
  // (`next_int8`: the int8 one, which may differ from this layer's), each
  // as input 0 with this one input format and scale, and is not a graph
  // output: the epilogue then writes their integer input (u8/s8 for the
  // int8 path, floats for the exact f32 one) instead of floats.
  std::optional<Format> next_format;
  float next_alpha = 0.0f;
  bool next_int8 = false;
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

// What the paths may take, from EsbExecutorOptions::Path and CpuPaths.
struct PathRules {
  // Non-empty: every layer runs the reference, for this reason (e.g.
  // "reference path requested").
  std::string no_fast;
  // Non-empty: no layer takes the int8 path, for this reason.
  std::string no_int8;
  // The CPU's int8 kernels sum pairs of u8 x s8 products in saturating
  // int16 (CpuPaths::int16_pairs): the int8 path then takes only layers
  // with a u8 source whose every pair stays within int16.
  bool int16_pairs = false;
};

// Where oneDNN sums pairs of u8 x s8 products in saturating int16
// (PathRules::int16_pairs), why a layer with input format `in` and weight
// format `weights` (both fitting int8) may not take the int8 path, or "".
// `matmul`: the layer runs as oneDNN's matmul (an unsplit Gemm or MatMul)
// rather than a convolution. A signed input may not take oneDNN 2.6's int8
// convolutions without VNNI: they were measured inexact even with 4-bit
// weights. Otherwise the pairs must stay within int16: 2 * (max_integer(in)
// + 128 if signed) * max_integer(weights) <= 32767 (the matmul adds 128 to
// an s8 source, as VNNI's kernels do).
std::string Int16PairReason(const Format& in, const Format& weights,
                            bool matmul);

// Prepares every layer of `layers` (keyed by node name) under `rules`.
// INVALID_ARGUMENT naming
// the layer when an entry names no node or a node that is not Conv, Gemm or
// MatMul, when scales or weights are unusable (QuantizeWeights), when the
// input scale is not finite and positive, or for a Gemm C that is not a
// scalar or per-column; UNIMPLEMENTED when weights or bias are not
// constant initializers. A layer with an entry in `integers` (may be null)
// takes that integer view of its weights, checked against its format and
// shape, instead of quantizing the float weights.
absl::StatusOr<QuantizedLayers> PrepareLayers(
    const graph::Graph& graph, const std::map<std::string, LayerQuant>& layers,
    const PathRules& rules, const WeightIntegers* integers = nullptr);

}  // namespace esb::runtime::internal

#endif  // ESB_CORE_RUNTIME_ESB_LAYERS_H_
