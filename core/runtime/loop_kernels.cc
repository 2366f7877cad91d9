#include "core/runtime/loop_kernels.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "core/runtime/dnnl_adapter.h"
#include "core/runtime/isa_clones.h"

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

// out[c] = sum_i x[i] * w[c * k + i] for the four weight rows c, which
// stream side by side.
ESB_CLONED_PER_ISA void Dot4(const float* x, const float* w, int64_t k,
                             float* out) {
  const float* w0 = w;
  const float* w1 = w0 + k;
  const float* w2 = w1 + k;
  const float* w3 = w2 + k;
  float s0 = 0.0f;
  float s1 = 0.0f;
  float s2 = 0.0f;
  float s3 = 0.0f;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
  for (int64_t i = 0; i < k; ++i) {
    s0 += x[i] * w0[i];
    s1 += x[i] * w1[i];
    s2 += x[i] * w2[i];
    s3 += x[i] * w3[i];
  }
  out[0] = s0;
  out[1] = s1;
  out[2] = s2;
  out[3] = s3;
}

// One output row i of MaxPool2d over x's [h, w, block] image, into yr
// [out_w, block]. kBlock is the block when known at compile time (the
// channel blocks of 8 and 16), else 0 and `block` gives it.
template <int64_t kBlock>
inline void MaxPoolRow(const float* x, int64_t h, int64_t w, int64_t block,
                       const graph::WindowGeometry& window, int64_t i,
                       float* yr) {
  if (kBlock > 0) block = kBlock;
  const int64_t out_w = window.output[1];
  std::fill(yr, yr + out_w * block, -std::numeric_limits<float>::infinity());
  for (int64_t kh = 0; kh < window.kernel[0]; ++kh) {
    const int64_t a =
        i * window.strides[0] - window.pads_begin[0] + kh * window.dilations[0];
    if (a < 0 || a >= h) continue;
    const float* xr = x + a * w * block;
    for (int64_t j = 0; j < out_w; ++j) {
      float* y = yr + j * block;
      const int64_t b0 = j * window.strides[1] - window.pads_begin[1];
      for (int64_t kw = 0; kw < window.kernel[1]; ++kw) {
        const int64_t b = b0 + kw * window.dilations[1];
        if (b < 0 || b >= w) continue;
        const float* v = xr + b * block;
#pragma omp simd
        for (int64_t c = 0; c < block; ++c) y[c] = v[c] > y[c] ? v[c] : y[c];
      }
    }
  }
}

// Rows [r_begin, r_end) of MaxPool2d's output, r = (block index) * out_h
// + output row; the last `blocks`th block of each image holds `lanes`
// channels.
ESB_CLONED_PER_ISA void MaxPoolRows(const float* x, int64_t h, int64_t w,
                                    int64_t block, int64_t blocks,
                                    int64_t lanes,
                                    const graph::WindowGeometry& window,
                                    int64_t r_begin, int64_t r_end, float* y) {
  const int64_t out_h = window.output[0];
  const int64_t out_w = window.output[1];
  for (int64_t r = r_begin; r < r_end; ++r) {
    const int64_t o = r / out_h;
    const float* xo = x + o * h * w * block;
    float* yr = y + r * out_w * block;
    const int64_t i = r - o * out_h;
    if (block == 8) {
      MaxPoolRow<8>(xo, h, w, block, window, i, yr);
    } else if (block == 16) {
      MaxPoolRow<16>(xo, h, w, block, window, i, yr);
    } else {
      MaxPoolRow<0>(xo, h, w, block, window, i, yr);
    }
    // oneDNN reads a blocked layout's padding lanes as zeros; a window with
    // no tap inside x would have left them at -inf.
    if (lanes < block && o % blocks == blocks - 1) {
      for (int64_t j = 0; j < out_w; ++j) {
        std::fill(yr + j * block + lanes, yr + (j + 1) * block, 0.0f);
      }
    }
  }
}

// The same for two x rows at once, the second k floats after the first:
// out[r * ldo + c] for r < 2. Each weight load serves both rows.
ESB_CLONED_PER_ISA void Dot4x2(const float* x, const float* w, int64_t k,
                               float* out, int64_t ldo) {
  const float* x0 = x;
  const float* x1 = x0 + k;
  const float* w0 = w;
  const float* w1 = w0 + k;
  const float* w2 = w1 + k;
  const float* w3 = w2 + k;
  float s00 = 0.0f;
  float s01 = 0.0f;
  float s02 = 0.0f;
  float s03 = 0.0f;
  float s10 = 0.0f;
  float s11 = 0.0f;
  float s12 = 0.0f;
  float s13 = 0.0f;
#pragma omp simd reduction(+ : s00, s01, s02, s03, s10, s11, s12, s13)
  for (int64_t i = 0; i < k; ++i) {
    s00 += x0[i] * w0[i];
    s01 += x0[i] * w1[i];
    s02 += x0[i] * w2[i];
    s03 += x0[i] * w3[i];
    s10 += x1[i] * w0[i];
    s11 += x1[i] * w1[i];
    s12 += x1[i] * w2[i];
    s13 += x1[i] * w3[i];
  }
  out[0] = s00;
  out[1] = s01;
  out[2] = s02;
  out[3] = s03;
  out[ldo] = s10;
  out[ldo + 1] = s11;
  out[ldo + 2] = s12;
  out[ldo + 3] = s13;
}

ESB_CLONED_PER_ISA float Dot1(const float* x, const float* w, int64_t k) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < k; ++i) s += x[i] * w[i];
  return s;
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

void Expand(const float* x, absl::Span<const int64_t> x_shape, float* y,
            absl::Span<const int64_t> y_shape) {
  const size_t rank = y_shape.size();
  std::vector<int64_t> strides(rank, 0);  // Of x in y's index space.
  int64_t stride = 1;
  for (size_t i = 0; i < x_shape.size(); ++i) {
    const size_t d = x_shape.size() - 1 - i;
    if (x_shape[d] != 1) strides[rank - 1 - i] = stride;
    stride *= x_shape[d];
  }
  if (rank == 0) {
    y[0] = x[0];
    return;
  }
  // Rows of y's last dim: a copy when x has that dim, else a fill.
  const int64_t row = y_shape[rank - 1];
  const int64_t rows = NumElements(y_shape) / std::max<int64_t>(row, 1);
  std::vector<int64_t> index(rank - 1, 0);
  const std::vector<int64_t> row_shape(y_shape.begin(), y_shape.end() - 1);
  for (int64_t r = 0; r < rows; ++r) {
    int64_t from = 0;
    for (size_t d = 0; d + 1 < rank; ++d) from += index[d] * strides[d];
    float* out = y + r * row;
    if (strides[rank - 1] == 0) {
      std::fill(out, out + row, x[from]);
    } else {
      std::copy(x + from, x + from + row, out);
    }
    Next(index, row_shape);
  }
}

namespace {

// The input coordinate ONNX Resize samples for output index `o` of a dim of
// size `in` resized with `scale`, before rounding or clamping.
double ResizeSource(graph::ResizeMethod::Coordinates coordinates, int64_t o,
                    int64_t in, float scale) {
  using Coordinates = graph::ResizeMethod::Coordinates;
  const auto od = static_cast<double>(o);
  // ONNX's resized length is in * scale, before flooring to the output's
  // size (the two agree when the model gave sizes).
  const double resized = static_cast<double>(in) * scale;
  switch (coordinates) {
    case Coordinates::kHalfPixel:
      return (od + 0.5) / scale - 0.5;
    case Coordinates::kPytorchHalfPixel:
      return resized > 1 ? (od + 0.5) / scale - 0.5 : 0.0;
    case Coordinates::kAlignCorners:
      return resized > 1 ? od * static_cast<double>(in - 1) / (resized - 1.0)
                         : 0.0;
    case Coordinates::kAsymmetric:
      break;
  }
  return od / scale;
}

// Per output index of one dim: the two input indices it reads and the
// weight of the second (nearest: one index, weight 0).
struct ResizeTaps {
  std::vector<int64_t> lo, hi;
  std::vector<float> w;
};

ResizeTaps ResizeTable(const graph::ResizeMethod& method, int64_t in,
                       int64_t out, float scale) {
  using Mode = graph::ResizeMethod::Mode;
  using Rounding = graph::ResizeMethod::Rounding;
  ResizeTaps t;
  for (int64_t o = 0; o < out; ++o) {
    double s = ResizeSource(method.coordinates, o, in, scale);
    int64_t lo = 0;
    int64_t hi = 0;
    float w = 0.0f;
    if (method.mode == Mode::kLinear) {
      s = std::clamp(s, 0.0, static_cast<double>(in - 1));
      lo = static_cast<int64_t>(std::floor(s));
      hi = std::min(lo + 1, in - 1);
      w = static_cast<float>(s - static_cast<double>(lo));
    } else {
      double r = 0.0;
      switch (method.rounding) {
        case Rounding::kRoundPreferFloor:
          r = s - std::floor(s) == 0.5 ? std::floor(s) : std::round(s);
          break;
        case Rounding::kRoundPreferCeil:
          r = s - std::floor(s) == 0.5 ? std::ceil(s) : std::round(s);
          break;
        case Rounding::kFloor:
          r = std::floor(s);
          break;
        case Rounding::kCeil:
          r = std::ceil(s);
          break;
      }
      lo =
          static_cast<int64_t>(std::clamp(r, 0.0, static_cast<double>(in - 1)));
      hi = lo;
    }
    t.lo.push_back(lo);
    t.hi.push_back(hi);
    t.w.push_back(w);
  }
  return t;
}

}  // namespace

void Resize(const float* x, absl::Span<const int64_t> x_shape,
            const graph::ResizeMethod& method, absl::Span<const float> scales,
            int64_t out_h, int64_t out_w, float* y) {
  const int64_t in_h = x_shape[2];
  const int64_t in_w = x_shape[3];
  const ResizeTaps rows = ResizeTable(method, in_h, out_h, scales[2]);
  const ResizeTaps cols = ResizeTable(method, in_w, out_w, scales[3]);
  const int64_t planes = x_shape[0] * x_shape[1];
  const bool linear = method.mode == graph::ResizeMethod::Mode::kLinear;
  for (int64_t p = 0; p < planes; ++p) {
    const float* plane = x + p * in_h * in_w;
    float* out = y + p * out_h * out_w;
    for (int64_t oh = 0; oh < out_h; ++oh) {
      const float* top = plane + rows.lo[oh] * in_w;
      float* line = out + oh * out_w;
      if (!linear) {
        for (int64_t ow = 0; ow < out_w; ++ow) line[ow] = top[cols.lo[ow]];
        continue;
      }
      const float* bottom = plane + rows.hi[oh] * in_w;
      const float wy = rows.w[oh];
      for (int64_t ow = 0; ow < out_w; ++ow) {
        const float wx = cols.w[ow];
        const int64_t l = cols.lo[ow];
        const int64_t r = cols.hi[ow];
        const float upper = top[l] + wx * (top[r] - top[l]);
        const float lower = bottom[l] + wx * (bottom[r] - bottom[l]);
        line[ow] = upper + wy * (lower - upper);
      }
    }
  }
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

void MaxPool2d(const float* x, int64_t n, int64_t channels, int64_t h,
               int64_t w, int64_t block, const graph::WindowGeometry& window,
               float* y) {
  const int64_t blocks = (channels + block - 1) / block;
  const int64_t lanes = channels - (blocks - 1) * block;
  const int64_t rows = n * blocks * window.output[0];
#pragma omp parallel
  {
    const int threads = omp_get_num_threads();
    const int thread = omp_get_thread_num();
    MaxPoolRows(x, h, w, block, blocks, lanes, window, rows * thread / threads,
                rows * (thread + 1) / threads, y);
  }
}

void SpaceToDepth(const float* x, absl::Span<const int64_t> x_shape, int64_t sh,
                  int64_t sw, int64_t pad_top, int64_t pad_left, int64_t out_h,
                  int64_t out_w, int64_t block, int64_t blocks, float* y) {
  const int64_t channels = x_shape[1];
  const int64_t h = x_shape[2];
  const int64_t w = x_shape[3];
  const int64_t per = sh * sw;
  const int64_t rows = x_shape[0] * blocks * out_h;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = r % out_h;
    const int64_t cb = r / out_h % blocks;
    const int64_t n = r / out_h / blocks;
    float* yr = y + r * out_w * block;
    for (int64_t l = 0; l < block; ++l) {
      const int64_t c = cb * block + l;
      const int64_t row = i * sh + c / sw % sh - pad_top;
      if (c >= channels * per || row < 0 || row >= h) {
        for (int64_t j = 0; j < out_w; ++j) yr[j * block + l] = 0.0f;
        continue;
      }
      const float* xr = x + ((n * channels + c / per) * h + row) * w;
      const int64_t col0 = c % sw - pad_left;
      for (int64_t j = 0; j < out_w; ++j) {
        const int64_t col = j * sw + col0;
        yr[j * block + l] = col >= 0 && col < w ? xr[col] : 0.0f;
      }
    }
  }
}

void NarrowGemm(const float* x, int64_t rows, int64_t k, const float* w,
                int64_t n, const float* bias,
                const graph::Activation& activation, float* y) {
  constexpr int kCols = 4;
  const int64_t blocks = (n + kCols - 1) / kCols;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t j0 = b * kCols;
    const int64_t cols = std::min<int64_t>(kCols, n - j0);
    auto finish = [&](float* out) {
      for (int64_t c = 0; c < cols; ++c) {
        const float v = out[c] + (bias != nullptr ? bias[j0 + c] : 0.0f);
        out[c] = graph::Apply(activation, v);
      }
    };
    // Whole column blocks take the rows in pairs, so that each pass over
    // the block's weights (from cache after the first) serves two rows.
    int64_t r = 0;
    if (cols == kCols) {
      for (; r + 1 < rows; r += 2) {
        float* out = y + r * n + j0;
        Dot4x2(x + r * k, w + j0 * k, k, out, n);
        finish(out);
        finish(out + n);
      }
    }
    for (; r < rows; ++r) {
      float* out = y + r * n + j0;
      if (cols == kCols) {
        Dot4(x + r * k, w + j0 * k, k, out);
      } else {
        for (int64_t c = 0; c < cols; ++c) {
          out[c] = Dot1(x + r * k, w + (j0 + c) * k, k);
        }
      }
      finish(out);
    }
  }
}

void ConcatSlabs(absl::Span<const float* const> inputs,
                 absl::Span<const int64_t> slabs, int64_t outer, float* y) {
  int64_t row = 0;
  for (int64_t slab : slabs) row += slab;
  const int64_t total = outer * row;
  if (total == 0) return;
  // Each thread copies one contiguous range of y; below this many floats
  // the threads' start-up costs more than the copy.
  constexpr int64_t kMinParallelFloats = int64_t{1} << 16;
#pragma omp parallel if (total >= kMinParallelFloats)
  {
    const int threads = omp_get_num_threads();
    const int thread = omp_get_thread_num();
    const int64_t begin = total * thread / threads;
    const int64_t end = total * (thread + 1) / threads;
    int64_t r = begin / row;
    int64_t in_row = begin - r * row;
    size_t i = 0;
    while (in_row >= slabs[i]) in_row -= slabs[i++];
    for (int64_t at = begin; at < end;) {
      const int64_t n = std::min(slabs[i] - in_row, end - at);
      std::memcpy(y + at, inputs[i] + r * slabs[i] + in_row,
                  static_cast<size_t>(n) * sizeof(float));
      at += n;
      in_row = 0;
      if (++i == slabs.size()) {
        i = 0;
        ++r;
      }
      // Skip empty slabs.
      while (at < end && slabs[i] == 0) {
        if (++i == slabs.size()) {
          i = 0;
          ++r;
        }
      }
    }
  }
}

}  // namespace esb::runtime
