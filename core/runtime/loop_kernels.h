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
//   MaxPool2d:       the max over each window's taps inside x (-inf where
//                    none is), for a 4-D tensor whose channels are
//                    innermost in blocks: channels-last (one block of all
//                    C) or oneDNN's nChw8c/nChw16c, whose padding lanes
//                    it writes as zeros. Each thread takes whole
//                    output rows, and each tap is one vector max over the
//                    block; oneDNN 2.6's jit pooling took 1.1x to 1.7x as
//                    long on the zoo's max pools (AVX2).
//   SpaceToDepth:    the stride-s image of a conv's zero-padded input as
//                    s_h * s_w times the channels at 1/s the size, so that
//                    a strided conv over few channels runs as a stride-1
//                    conv over more (lower.cc, LowerSpaceToDepthConv).
//   NarrowGemm:      y[r, j] = activation(bias[j] + sum_i x[r, i] * w[j, i])
//                    for a product of few rows r: w holds one weight row per
//                    output column, so each thread (OpenMP, over the
//                    columns) streams its share of the weights once, four
//                    rows side by side, against two rows of x at a time
//                    (then one for an odd last row). oneDNN 2.6's matmul
//                    reads large weights at about three quarters of that
//                    rate at one row (bench/narrow_gemm_bench).
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

// x is [n, blocks, h, w, block] and y [n, blocks, out_h, out_w, block]
// with blocks = ceil(channels / block) and out_h, out_w = window.output;
// `window` (two spatial dims) comes from graph::ResolveWindow.
// Channels-last is one block of all channels; in a blocked layout the
// lanes past `channels` are padding, which y gets as zeros.
void MaxPool2d(const float* x, int64_t n, int64_t channels, int64_t h,
               int64_t w, int64_t block, const graph::WindowGeometry& window,
               float* y);

// x [N, C, H, W] row-major; y[n, (c * sh + rh) * sw + rw, i, j] =
// x[n, c, i * sh + rh - pad_top, j * sw + rw - pad_left], 0 outside x, for
// i < out_h, j < out_w. y's channels are innermost in blocks of `block`
// ([N, blocks, out_h, out_w, block]: block 1 is row-major, one block of
// all channels channels-last); channels past C * sh * sw, which fill the
// last block, are 0.
void SpaceToDepth(const float* x, absl::Span<const int64_t> x_shape, int64_t sh,
                  int64_t sw, int64_t pad_top, int64_t pad_left, int64_t out_h,
                  int64_t out_w, int64_t block, int64_t blocks, float* y);

// x [rows, k], w [n, k], bias [n] or null, y [rows, n].
void NarrowGemm(const float* x, int64_t rows, int64_t k, const float* w,
                int64_t n, const float* bias,
                const graph::Activation& activation, float* y);

// inputs[i] holds outer * slabs[i] floats; y holds outer * sum(slabs).
void ConcatSlabs(absl::Span<const float* const> inputs,
                 absl::Span<const int64_t> slabs, int64_t outer, float* y);

}  // namespace esb::runtime

#endif  // ESB_CORE_RUNTIME_LOOP_KERNELS_H_
