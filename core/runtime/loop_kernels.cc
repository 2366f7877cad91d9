#include "core/runtime/loop_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/runtime/dnnl_adapter.h"

namespace esb::runtime {
namespace {

using graph::NumElements;

// Advances a row-major multi-index over `shape`; false after the last one.
bool Next(std::vector<int64_t>& index, absl::Span<const int64_t> shape) {
  for (size_t d = index.size(); d-- > 0;) {
    if (++index[d] < shape[d]) return true;
    index[d] = 0;
  }
  return false;
}

}  // namespace

void PadConstant(const float* x, absl::Span<const int64_t> x_shape,
                 absl::Span<const int64_t> pads, float value, float* y) {
  const size_t rank = x_shape.size();
  std::vector<int64_t> y_shape(rank);
  for (size_t d = 0; d < rank; ++d) {
    y_shape[d] = x_shape[d] + pads[d] + pads[rank + d];
  }
  std::fill(y, y + NumElements(y_shape), value);
  if (rank == 0) {
    y[0] = x[0];
    return;
  }
  if (NumElements(x_shape) == 0 || NumElements(y_shape) == 0) return;
  const dnnl::memory::dims xs = PlainStrides(x_shape);
  const dnnl::memory::dims ys = PlainStrides(y_shape);
  // Walk the rows (all dims but the last) of x; copy each row's overlap.
  const int64_t begin = pads[rank - 1];
  const int64_t col_lo = std::max<int64_t>(0, -begin);
  const int64_t col_hi = std::min(x_shape[rank - 1], y_shape[rank - 1] - begin);
  if (col_lo >= col_hi) return;
  std::vector<int64_t> row_shape(x_shape.begin(), x_shape.end() - 1);
  std::vector<int64_t> index(rank - 1, 0);
  do {
    int64_t xo = col_lo;
    int64_t yo = col_lo + begin;
    bool inside = true;
    for (size_t d = 0; d + 1 < rank; ++d) {
      const int64_t o = index[d] + pads[d];
      inside = inside && o >= 0 && o < y_shape[d];
      xo += index[d] * xs[d];
      yo += o * ys[d];
    }
    if (inside) std::copy(x + xo, x + xo + (col_hi - col_lo), y + yo);
  } while (Next(index, row_shape));
}

void BroadcastBinary(BinaryOp op, const float* a,
                     absl::Span<const int64_t> a_shape, const float* b,
                     absl::Span<const int64_t> b_shape, float* y,
                     absl::Span<const int64_t> y_shape) {
  const size_t rank = y_shape.size();
  // Strides of a and b in y's index space: 0 along broadcast dims.
  auto strides_in_y = [&](absl::Span<const int64_t> shape) {
    std::vector<int64_t> strides(rank, 0);
    int64_t stride = 1;
    for (size_t i = 0; i < shape.size(); ++i) {
      const size_t d = shape.size() - 1 - i;
      if (shape[d] != 1) strides[rank - 1 - i] = stride;
      stride *= shape[d];
    }
    return strides;
  };
  const std::vector<int64_t> as = strides_in_y(a_shape);
  const std::vector<int64_t> bs = strides_in_y(b_shape);
  std::vector<int64_t> index(rank, 0);
  int64_t i = 0;
  do {
    int64_t ao = 0;
    int64_t bo = 0;
    for (size_t d = 0; d < rank; ++d) {
      ao += index[d] * as[d];
      bo += index[d] * bs[d];
    }
    switch (op) {
      case BinaryOp::kAdd:
        y[i] = a[ao] + b[bo];
        break;
      case BinaryOp::kMul:
        y[i] = a[ao] * b[bo];
        break;
      case BinaryOp::kSub:
        y[i] = a[ao] - b[bo];
        break;
      case BinaryOp::kDiv:
        y[i] = a[ao] / b[bo];
        break;
      case BinaryOp::kPow:
        y[i] = static_cast<float>(
            std::pow(static_cast<double>(a[ao]), static_cast<double>(b[bo])));
        break;
    }
    ++i;
  } while (Next(index, y_shape));
}

void AveragePool(const float* x, absl::Span<const int64_t> x_shape,
                 const graph::WindowGeometry& w, bool count_include_pad,
                 float* y) {
  const size_t n = x_shape.size() - 2;
  const std::vector<int64_t> spatial(x_shape.begin() + 2, x_shape.end());
  const dnnl::memory::dims xs = PlainStrides(spatial);
  const int64_t planes = x_shape[0] * x_shape[1];
  const int64_t plane_size = NumElements(spatial);
  const int64_t out_size = NumElements(w.output);
  for (int64_t p = 0; p < planes; ++p) {
    const float* xp = x + p * plane_size;
    std::vector<int64_t> o(n, 0);
    for (int64_t oi = 0; oi < out_size; ++oi, Next(o, w.output)) {
      double sum = 0.0;
      int64_t inside = 0;
      int64_t counted = 0;
      std::vector<int64_t> k(n, 0);
      do {
        bool in_x = true;
        bool in_padded = true;
        int64_t offset = 0;
        for (size_t d = 0; d < n; ++d) {
          const int64_t pos =
              o[d] * w.strides[d] - w.pads_begin[d] + k[d] * w.dilations[d];
          in_x = in_x && pos >= 0 && pos < spatial[d];
          in_padded = in_padded && pos < spatial[d] + w.pads_end[d];
          offset += pos * xs[d];
        }
        if (in_x) {
          sum += xp[offset];
          ++inside;
        }
        if (in_padded) ++counted;
      } while (Next(k, w.kernel));
      const int64_t divisor = count_include_pad ? counted : inside;
      y[p * out_size + oi] =
          divisor > 0 ? static_cast<float>(sum / static_cast<double>(divisor))
                      : 0.0f;
    }
  }
}

}  // namespace esb::runtime
