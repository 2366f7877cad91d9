// Internal to the ESB executor: the integer kernels of a quantized layer
// (semantics in core/esb/layer_quant.h).
//
// Reference path (ReferenceLayer), plain loops written for clarity:
//   xi = QuantizeToIntegers(x)                  integer view of the input
//   Conv:   acc[n,m,o...] = sum over c in m's group, k... of
//           xi[n, c, o*s - pb + k*d] * wi[m, c', k...]   (outside x: 0)
//   Gemm:   acc[r,m] = sum_k A'(r,k) * B'(k,m), A' = trans_a ? A^T : A,
//           B' = trans_b ? B^T : B
//   MatMul: acc[r,m] = sum_k A[r,k] * B[k,m], rows r over A's leading dims
//   y = Dequantize(acc, s[m], bias[m], activation)   (int64 accumulators)
// Output in the plain row-major layout of y.
//
// Fast paths: oneDNN computes acc as s32 (int8 path) or as f32 holding
// integers (exact f32 path) in a layout whose innermost dim is
// the output channel ([rows, M]), or, for a layer split into S chunks of K
// (esb_layers.h), S partial sums per output channel laid out per row as
// [groups, S, M / groups]:
//   acc[r, g*Mg + j] = sum over s of part[r, (g*S + s)*Mg + j]   (in int32)
// (f32 partials, integers within 2^24, are converted to int32 exactly).
// The epilogues below add the partials and finish the layer:
//   EpilogueToFloat:  y[r,m] = act(float(acc[r,m]) * s[m] + bias[m]), the
//                     very float operations of Dequantize (two roundings,
//                     no FMA: built with -ffp-contract=off), vectorised
//                     along m and threaded over rows.
//   EpilogueToInts:   the same y, then QuantizeToUint8/Int8 (next layers
//                     on the int8 path) or QuantizeToFloatIntegers (exact
//                     f32) with the next layers' input format and scale, a
//                     block of rows at a time: bit-identical to quantizing
//                     the float output.
//   QuantizeInput:    QuantizeToUint8/Int8 of n floats, threaded;
//   QuantizeInputToFloats the same integers as floats.
// Threads: OpenMP, omp_get_max_threads() of the caller.
//
// Functions are thread-safe.
#ifndef ESB_CORE_RUNTIME_ESB_KERNELS_H_
#define ESB_CORE_RUNTIME_ESB_KERNELS_H_

#include <cstdint>
#include <vector>

#include "core/esb/format.h"
#include "core/graph/graph.h"
#include "core/graph/shapes.h"
#include "core/runtime/esb_layers.h"

namespace esb::runtime::internal {

// Shapes and attributes of one quantized node for given input shapes.
struct LayerGeometry {
  graph::Op op = graph::Op::kConv;
  std::vector<int64_t> x_shape;
  std::vector<int64_t> y_shape;
  graph::WindowGeometry window;  // Conv.
  int64_t group = 1;             // Conv.
  bool trans_a = false;          // Gemm.
  bool trans_b = false;          // Gemm.
};

// The reference path for one layer: x and y plain row-major float.
void ReferenceLayer(const QuantizedLayer& layer, const LayerGeometry& geometry,
                    const float* x, float* y);

// The fast path's s32 output: `rows` rows of `splits` partial sums of
// each of `channels` output channels, [groups, splits, channels / groups]
// per row (see the file comment; splits == 1 is plain [rows, channels]).
struct AccLayout {
  int64_t rows = 0;
  int64_t channels = 0;
  int64_t groups = 1;
  int64_t splits = 1;
};

// out: [rows, channels] row-major. `acc` is s32, or f32 integers.
void EpilogueToFloat(const QuantizedLayer& layer, const int32_t* acc,
                     const AccLayout& layout, float* out);
void EpilogueToFloat(const QuantizedLayer& layer, const float* acc,
                     const AccLayout& layout, float* out);
// `out` is, when the next layers are on the int8 path (layer.next_int8),
// uint8_t* for an unsigned layer.next_format, else int8_t*; when they are
// on the exact f32 path float* (the integers as floats).
void EpilogueToInts(const QuantizedLayer& layer, const int32_t* acc,
                    const AccLayout& layout, void* out);
void EpilogueToInts(const QuantizedLayer& layer, const float* acc,
                    const AccLayout& layout, void* out);

// `out` is uint8_t* for an unsigned format, else int8_t*; the format must
// fit int8.
void QuantizeInput(const Format& format, float alpha, const float* in,
                   int64_t n, void* out);
void QuantizeInputToFloats(const Format& format, float alpha, const float* in,
                           int64_t n, float* out);

}  // namespace esb::runtime::internal

#endif  // ESB_CORE_RUNTIME_ESB_KERNELS_H_
