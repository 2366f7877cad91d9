// Plain-loop kernels for the cases oneDNN 2.6 cannot express, or expresses
// slowly. All tensors are dense row-major float32; shapes are ONNX shapes
// (rank 0 is a scalar).
//
//   PadConstant:     y[o] = x[o - begin] where that index is inside x, else
//                    `value`; pads = begin..., end... over all dims, either
//                    sign (negative pads crop). oneDNN has no pad primitive.
//   BroadcastBinary: y[o] = a[o'] op b[o''] with numpy broadcasting of both
//                    operands. oneDNN's binary broadcasts src1 only; this
//                    handles the case where both sides broadcast
//                    ([N,1] + [1,M]).
//   Expand:          y[o] = x[o'] with numpy broadcasting of x to y_shape.
//   Resize:          ONNX Resize of the last two dims of [N, C, H, W] x
//                    (nearest or linear, graph::ResizeMethod), sampled
//                    through per-row and per-column tables.
//   AveragePool:     y = sum over the window's taps inside x / divisor, with
//                    divisor = the taps inside [-pb, in + pe) when
//                    count_include_pad, else the taps inside [0, in). Used
//                    when ceil mode lets a window run past the end padding
//                    with count_include_pad: oneDNN would count the overhang
//                    in the divisor, ONNX Runtime and PyTorch do not.
//   NarrowGemm:      y[r, j] = activation(bias[j] + sum_i x[r, i] * w[j, i])
//                    for a product of few rows r: w holds one weight row per
//                    output column, so each thread (OpenMP, over the
//                    columns) streams its share of the weights once, four
//                    rows side by side. oneDNN 2.6's matmul reads large
//                    weights at about three quarters of that rate at one row
//                    (bench/narrow_gemm_bench).
//
// Functions are thread-safe.
#ifndef ESB_CORE_RUNTIME_LOOP_KERNELS_H_
#define ESB_CORE_RUNTIME_LOOP_KERNELS_H_

#include <cstdint>

#include "absl/types/span.h"
#include "core/graph/graph.h"
#include "core/graph/shapes.h"

namespace esb::runtime {

void PadConstant(const float* x, absl::Span<const int64_t> x_shape,
                 absl::Span<const int64_t> pads, float value, float* y);

enum class BinaryOp { kAdd, kMul, kSub, kDiv, kPow };

void BroadcastBinary(BinaryOp op, const float* a,
                     absl::Span<const int64_t> a_shape, const float* b,
                     absl::Span<const int64_t> b_shape, float* y,
                     absl::Span<const int64_t> y_shape);

void Expand(const float* x, absl::Span<const int64_t> x_shape, float* y,
            absl::Span<const int64_t> y_shape);

// x [N, C, H, W]; y [N, C, out_h, out_w]; scales as in graph.h's kResize.
void Resize(const float* x, absl::Span<const int64_t> x_shape,
            const graph::ResizeMethod& method, absl::Span<const float> scales,
            int64_t out_h, int64_t out_w, float* y);

// x is [N,C,spatial...]; `window` comes from graph::ResolveWindow.
void AveragePool(const float* x, absl::Span<const int64_t> x_shape,
                 const graph::WindowGeometry& window, bool count_include_pad,
                 float* y);

// x [rows, k], w [n, k], bias [n] or null, y [rows, n].
void NarrowGemm(const float* x, int64_t rows, int64_t k, const float* w,
                int64_t n, const float* bias,
                const graph::Activation& activation, float* y);

// inputs[i] holds outer * slabs[i] floats; y holds outer * sum(slabs).
void ConcatSlabs(absl::Span<const float* const> inputs,
                 absl::Span<const int64_t> slabs, int64_t outer, float* y);

}  // namespace esb::runtime

#endif  // ESB_CORE_RUNTIME_LOOP_KERNELS_H_
