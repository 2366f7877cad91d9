// The ESB semantics of one quantized layer (Conv, Gemm or MatMul), shared by
// the CPU executors, the accelerator model and the exporters.
//
// Given the layer's input x (float), weights W, bias b, a weight format Fw
// with per-output-channel scales aw[m] and an input format Fx with one
// scale ax:
//
//   xi = Fx.Round(x / ax) * 2^Lx          integer view of the input
//   wi = Fw.Round(W / aw[m]) * 2^Lw       integer view of the weights
//   acc[m] = sum over the layer's reduction of xi * wi      (exact integer)
//   s[m] = ldexp(ax * aw[m], -(Lx + Lw)) * gemm_alpha        (float; the
//          product ax * aw[m] rounds once, ldexp is exact; gemm_alpha only
//          when it is not 1)
//   y = float(acc[m]) * s[m] + bias[m]    (two float roundings, no FMA)
//   y = activation(y)                     (Relu: max(y, 0); Clip: min(max))
//
// Padding contributes integer 0 (0 is a level of every format). For Gemm,
// bias[m] = beta * C[m] with C broadcast per output column (a scalar or [M]
// C); other C shapes are refused for ESB layers. The reference accumulates
// in int64; the executor's fast paths (int8 with s32 sums, or the integers
// in f32, each within 2^24 per chunk of the reduction) give identical
// results (core/runtime/esb_layers.h).
#ifndef ESB_CORE_ESB_LAYER_QUANT_H_
#define ESB_CORE_ESB_LAYER_QUANT_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/esb/format.h"

namespace esb {

// How one layer runs in ESB.
struct LayerQuant {
  Format weight_format;
  std::vector<float> weight_alpha;  // One per output channel (or one).
  Format input_format;
  float input_alpha = 1.0f;
};

// The weights' integer view per layer name (initializer layout), when it is
// known exactly, as a package's codes give it: executors then use it as is
// instead of quantizing the float weights again.
using WeightIntegers = std::map<std::string, std::vector<int32_t>>;

// Integer view of `n` values: out[i] = Round(in[i] / alpha) * 2^L.
// NaN inputs give 0 and are counted in the return value.
size_t QuantizeToIntegers(const Format& format, float alpha, const float* in,
                          int32_t* out, size_t n);
// The same into int8 / uint8 storage; the format must fit it
// (Format::fits_int8(), signed for int8, unsigned for uint8). Vectorised
// where the CPU allows; bit-identical to QuantizeToIntegers.
size_t QuantizeToInt8(const Format& format, float alpha, const float* in,
                      int8_t* out, size_t n);
size_t QuantizeToUint8(const Format& format, float alpha, const float* in,
                       uint8_t* out, size_t n);
// The same integers as floats, each exact (every |integer| < 2^19).
size_t QuantizeToFloatIntegers(const Format& format, float alpha,
                               const float* in, float* out, size_t n);

// s[m] as defined above.
std::vector<float> OutputScales(const LayerQuant& q, float gemm_alpha);

// y = activation(float(acc) * scale + bias) for one output channel's
// `count` accumulators. `kind`: 0 none, 1 Relu, 2 Clip(lo, hi).
void Dequantize(const int64_t* acc, size_t count, float scale, float bias,
                int kind, float lo, float hi, float* out);
void Dequantize(const int32_t* acc, size_t count, float scale, float bias,
                int kind, float lo, float hi, float* out);

// Integer view of weights laid out with output channel `axis` (0 for Conv
// [M, C/g, kH, kW] and transposed Gemm B [M, K]; 1 for B [K, M]).
// INVALID_ARGUMENT when alphas do not match the channel count or are not
// finite and positive, or a weight is NaN or infinite.
absl::StatusOr<std::vector<int32_t>> QuantizeWeights(
    const Format& format, absl::Span<const float> alpha,
    absl::Span<const float> weights, absl::Span<const int64_t> shape, int axis);

// Checks a given integer view of weights as QuantizeWeights would produce
// it: one value per weight of `shape`, each a level's integer of `format`,
// alphas finite, positive and one per channel (or one). INVALID_ARGUMENT
// naming the first problem.
absl::Status CheckWeightIntegers(const Format& format,
                                 absl::Span<const float> alpha,
                                 absl::Span<const int32_t> integers,
                                 absl::Span<const int64_t> shape, int axis);

}  // namespace esb

#endif  // ESB_CORE_ESB_LAYER_QUANT_H_
