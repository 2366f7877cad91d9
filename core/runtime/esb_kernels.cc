#include "core/runtime/esb_kernels.h"

#include <omp.h>

#include <algorithm>
#include <array>

#include "core/esb/layer_quant.h"
#include "core/runtime/isa_clones.h"

namespace esb::runtime::internal {
namespace {

// acc[i] += w * row[i]: the one inner loop of the reference, exact in
// int64 (|w|, |row[i]| < 2^20). Cloned per ISA so it vectorises.
ESB_CLONED_PER_ISA void AccumulateRow(int64_t* acc, int32_t w,
                                      const int32_t* row, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    acc[i] += static_cast<int64_t>(w) * static_cast<int64_t>(row[i]);
  }
}

// Conv accumulators acc[n, m, p] (p over the output's spatial positions),
// one image and group at a time: the input window of every output position
// is gathered into col[k, p] (k over the group's channels and the kernel
// taps; 0 outside the input), then acc[m, p] = sum_k wi[m, k] * col[k, p].
void ConvAccumulators(const QuantizedLayer& layer, const LayerGeometry& g,
                      const int32_t* xi, int64_t* acc) {
  // Spatial dims right-aligned into three (D, H, W); missing ones are 1.
  const size_t spatial = g.x_shape.size() - 2;
  std::array<int64_t, 3> in{1, 1, 1}, out{1, 1, 1}, k{1, 1, 1};
  std::array<int64_t, 3> s{1, 1, 1}, d{1, 1, 1}, p{0, 0, 0};
  for (size_t i = 0; i < spatial; ++i) {
    const size_t j = 3 - spatial + i;
    in[j] = g.x_shape[2 + i];
    out[j] = g.y_shape[2 + i];
    k[j] = layer.weight_shape[2 + i];
    s[j] = g.window.strides[i];
    d[j] = g.window.dilations[i];
    p[j] = g.window.pads_begin[i];
  }
  const int64_t n_count = g.x_shape[0], c_count = g.x_shape[1];
  const int64_t m_count = g.y_shape[1];
  const int64_t cg = layer.weight_shape[1], mg = m_count / g.group;
  const int64_t taps = k[0] * k[1] * k[2], kdim = cg * taps;
  const int64_t in_size = in[0] * in[1] * in[2];
  const int64_t positions = out[0] * out[1] * out[2];

#pragma omp parallel
  {
    std::vector<int32_t> col(kdim * positions);
#pragma omp for schedule(dynamic)
    for (int64_t ng = 0; ng < n_count * g.group; ++ng) {
      const int64_t n = ng / g.group, grp = ng % g.group;
      for (int64_t c = 0; c < cg; ++c) {
        const int32_t* plane = xi + (n * c_count + grp * cg + c) * in_size;
        int32_t* row = col.data() + c * taps * positions;
        for (int64_t kz = 0; kz < k[0]; ++kz) {
          for (int64_t ky = 0; ky < k[1]; ++ky) {
            for (int64_t kx = 0; kx < k[2]; ++kx, row += positions) {
              int32_t* o = row;
              for (int64_t oz = 0; oz < out[0]; ++oz) {
                const int64_t iz = oz * s[0] - p[0] + kz * d[0];
                for (int64_t oy = 0; oy < out[1]; ++oy) {
                  const int64_t iy = oy * s[1] - p[1] + ky * d[1];
                  const bool row_inside =
                      iz >= 0 && iz < in[0] && iy >= 0 && iy < in[1];
                  const int32_t* line =
                      row_inside ? plane + (iz * in[1] + iy) * in[2] : nullptr;
                  for (int64_t ox = 0; ox < out[2]; ++ox, ++o) {
                    const int64_t ix = ox * s[2] - p[2] + kx * d[2];
                    *o = row_inside && ix >= 0 && ix < in[2] ? line[ix] : 0;
                  }
                }
              }
            }
          }
        }
      }
      for (int64_t mm = 0; mm < mg; ++mm) {
        const int64_t m = grp * mg + mm;
        int64_t* a = acc + (n * m_count + m) * positions;
        std::fill(a, a + positions, int64_t{0});
        const int32_t* w = layer.weights.data() + m * kdim;
        for (int64_t kk = 0; kk < kdim; ++kk) {
          if (w[kk] == 0) continue;
          AccumulateRow(a, w[kk], col.data() + kk * positions, positions);
        }
      }
    }
  }
}

// acc[r, m] = sum_k A'(r, k) * B'(k, m).
void GemmAccumulators(const QuantizedLayer& layer, const LayerGeometry& g,
                      const int32_t* ai, int64_t* acc) {
  const bool gemm = g.op == graph::Op::kGemm;
  const bool trans_a = gemm && g.trans_a, trans_b = gemm && g.trans_b;
  // A is row-major [lead, cols] (MatMul: leading dims folded into lead);
  // A' is A or, with trans_a, A^T.
  const int64_t cols = g.x_shape.back();
  const int64_t lead = graph::NumElements(g.x_shape) / cols;
  const int64_t k = trans_a ? lead : cols;
  const int64_t r_count = trans_a ? cols : lead;
  const int64_t m_count = g.y_shape.back();
  // B' row-major [K, M].
  std::vector<int32_t> b(k * m_count);
  for (int64_t kk = 0; kk < k; ++kk) {
    for (int64_t m = 0; m < m_count; ++m) {
      b[kk * m_count + m] =
          layer.weights[trans_b ? m * k + kk : kk * m_count + m];
    }
  }
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < r_count; ++r) {
    int64_t* a = acc + r * m_count;
    std::fill(a, a + m_count, int64_t{0});
    for (int64_t kk = 0; kk < k; ++kk) {
      const int32_t av = trans_a ? ai[kk * cols + r] : ai[r * cols + kk];
      if (av == 0) continue;
      AccumulateRow(a, av, b.data() + kk * m_count, m_count);
    }
  }
}

// One row of the epilogue: Dequantize's float operations per channel.
ESB_CLONED_PER_ISA void DequantizeRow(const int32_t* acc, int64_t channels,
                                      const float* scale, const float* bias,
                                      int kind, float lo, float hi,
                                      float* out) {
  if (kind == 1) {
#pragma omp simd
    for (int64_t c = 0; c < channels; ++c) {
      const float product = static_cast<float>(acc[c]) * scale[c];
      const float y = product + bias[c];
      out[c] = y > 0.0f ? y : 0.0f;
    }
  } else if (kind == 2) {
#pragma omp simd
    for (int64_t c = 0; c < channels; ++c) {
      const float product = static_cast<float>(acc[c]) * scale[c];
      float y = product + bias[c];
      y = y < lo ? lo : y;
      out[c] = y > hi ? hi : y;
    }
  } else {
#pragma omp simd
    for (int64_t c = 0; c < channels; ++c) {
      const float product = static_cast<float>(acc[c]) * scale[c];
      out[c] = product + bias[c];
    }
  }
}

// One row of accumulators: the sum of its partials (AccLayout), exact in
// int32 because |acc| <= acc_bound <= INT32_MAX and every partial sum is
// bounded by the sum of its chunks' bounds.
ESB_CLONED_PER_ISA void SumPartials(const int32_t* part, int64_t groups,
                                    int64_t splits, int64_t per_group,
                                    int32_t* acc) {
  for (int64_t g = 0; g < groups; ++g) {
    const int32_t* p = part + g * splits * per_group;
    int32_t* a = acc + g * per_group;
#pragma omp simd
    for (int64_t j = 0; j < per_group; ++j) a[j] = p[j];
    for (int64_t s = 1; s < splits; ++s) {
      const int32_t* q = p + s * per_group;
#pragma omp simd
      for (int64_t j = 0; j < per_group; ++j) a[j] += q[j];
    }
  }
}

// Row r of the accumulators of `layout`: in place when unsplit, else
// summed into `scratch` (layout.channels values).
const int32_t* AccRow(const int32_t* acc, const AccLayout& layout, int64_t r,
                      int32_t* scratch) {
  const int32_t* row = acc + r * layout.channels * layout.splits;
  if (layout.splits == 1) return row;
  SumPartials(row, layout.groups, layout.splits,
              layout.channels / layout.groups, scratch);
  return scratch;
}

// out[i] = in[i] for f32 integers within 2^24: exact.
ESB_CLONED_PER_ISA void FloatsToInts(const float* in, int64_t n, int32_t* out) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<int32_t>(in[i]);
}

// The same for f32 accumulators: the row as int32 in `ints` (its
// layout.channels * layout.splits values), then as above into `scratch`.
const int32_t* AccRow(const float* acc, const AccLayout& layout, int64_t r,
                      int32_t* ints, int32_t* scratch) {
  const int64_t n = layout.channels * layout.splits;
  FloatsToInts(acc + r * n, n, ints);
  return AccRow(ints, layout, 0, scratch);
}

void QuantizeBlock(const Format& format, float alpha, const float* in,
                   int64_t n, void* out) {
  if (format.is_signed()) {
    QuantizeToInt8(format, alpha, in, static_cast<int8_t*>(out), n);
  } else {
    QuantizeToUint8(format, alpha, in, static_cast<uint8_t*>(out), n);
  }
}

}  // namespace

void ReferenceLayer(const QuantizedLayer& layer, const LayerGeometry& g,
                    const float* x, float* y) {
  const LayerQuant& q = layer.quant;
  const int64_t x_size = graph::NumElements(g.x_shape);
  std::vector<int32_t> xi(x_size);
  QuantizeToIntegers(q.input_format, q.input_alpha, x, xi.data(), x_size);
  std::vector<int64_t> acc(graph::NumElements(g.y_shape));
  if (g.op == graph::Op::kConv) {
    ConvAccumulators(layer, g, xi.data(), acc.data());
    const int64_t m_count = g.y_shape[1];
    const int64_t positions =
        static_cast<int64_t>(acc.size()) / (g.y_shape[0] * m_count);
    for (int64_t nm = 0; nm < g.y_shape[0] * m_count; ++nm) {
      const int64_t m = nm % m_count;
      Dequantize(acc.data() + nm * positions, positions, layer.scales[m],
                 layer.bias[m], layer.activation, layer.lo, layer.hi,
                 y + nm * positions);
    }
    return;
  }
  GemmAccumulators(layer, g, xi.data(), acc.data());
  const int64_t m_count = g.y_shape.back();
  for (size_t i = 0; i < acc.size(); ++i) {
    const int64_t m = static_cast<int64_t>(i) % m_count;
    Dequantize(acc.data() + i, 1, layer.scales[m], layer.bias[m],
               layer.activation, layer.lo, layer.hi, y + i);
  }
}

namespace {

// The rows of s32 accumulators, or of f32 ones converted to int32 first;
// one reader per thread.
class AccRows {
 public:
  AccRows(const int32_t* acc, const AccLayout& layout)
      : ints_(acc), layout_(layout), scratch_(SplitScratch(layout)) {}
  AccRows(const float* acc, const AccLayout& layout)
      : floats_(acc),
        layout_(layout),
        converted_(layout.channels * layout.splits),
        scratch_(SplitScratch(layout)) {}

  const int32_t* Row(int64_t r) {
    if (floats_ == nullptr) return AccRow(ints_, layout_, r, scratch_.data());
    return AccRow(floats_, layout_, r, converted_.data(), scratch_.data());
  }

 private:
  static std::vector<int32_t> SplitScratch(const AccLayout& layout) {
    return std::vector<int32_t>(layout.splits > 1 ? layout.channels : 0);
  }

  const int32_t* ints_ = nullptr;
  const float* floats_ = nullptr;
  const AccLayout& layout_;
  std::vector<int32_t> converted_;
  std::vector<int32_t> scratch_;
};

template <typename Acc>
void EpilogueToFloatImpl(const QuantizedLayer& layer, const Acc* acc,
                         const AccLayout& layout, float* out) {
  const int64_t channels = layout.channels;
#pragma omp parallel
  {
    AccRows rows(acc, layout);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < layout.rows; ++r) {
      DequantizeRow(rows.Row(r), channels, layer.scales.data(),
                    layer.bias.data(), layer.activation, layer.lo, layer.hi,
                    out + r * channels);
    }
  }
}

// `out` holds the next layers' integers as u8/s8 when they are on the
// int8 path (layer.next_int8), as floats when on the exact f32 one.
template <typename Acc>
void EpilogueToIntsImpl(const QuantizedLayer& layer, const Acc* acc,
                        const AccLayout& layout, void* out) {
  const Format& next = *layer.next_format;
  const bool floats = !layer.next_int8;
  const int64_t rows = layout.rows, channels = layout.channels;
  const int64_t block = std::max<int64_t>(1, 4096 / channels);
  const int64_t blocks = (rows + block - 1) / block;
#pragma omp parallel
  {
    std::vector<float> y(block * channels);
    AccRows acc_rows(acc, layout);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t r0 = b * block, r1 = std::min(rows, r0 + block);
      for (int64_t r = r0; r < r1; ++r) {
        DequantizeRow(acc_rows.Row(r), channels, layer.scales.data(),
                      layer.bias.data(), layer.activation, layer.lo, layer.hi,
                      y.data() + (r - r0) * channels);
      }
      const int64_t n = (r1 - r0) * channels;
      if (floats) {
        QuantizeToFloatIntegers(next, layer.next_alpha, y.data(),
                                static_cast<float*>(out) + r0 * channels, n);
      } else {  // One byte per element for either storage type.
        QuantizeBlock(next, layer.next_alpha, y.data(), n,
                      static_cast<char*>(out) + r0 * channels);
      }
    }
  }
}

}  // namespace

void EpilogueToFloat(const QuantizedLayer& layer, const int32_t* acc,
                     const AccLayout& layout, float* out) {
  EpilogueToFloatImpl(layer, acc, layout, out);
}

void EpilogueToFloat(const QuantizedLayer& layer, const float* acc,
                     const AccLayout& layout, float* out) {
  EpilogueToFloatImpl(layer, acc, layout, out);
}

void EpilogueToInts(const QuantizedLayer& layer, const int32_t* acc,
                    const AccLayout& layout, void* out) {
  EpilogueToIntsImpl(layer, acc, layout, out);
}

void EpilogueToInts(const QuantizedLayer& layer, const float* acc,
                    const AccLayout& layout, void* out) {
  EpilogueToIntsImpl(layer, acc, layout, out);
}

void QuantizeInput(const Format& format, float alpha, const float* in,
                   int64_t n, void* out) {
  constexpr int64_t kChunk = 16384;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t start = c * kChunk;
    QuantizeBlock(format, alpha, in + start, std::min(kChunk, n - start),
                  static_cast<char*>(out) + start);
  }
}

void QuantizeInputToFloats(const Format& format, float alpha, const float* in,
                           int64_t n, float* out) {
  constexpr int64_t kChunk = 16384;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t start = c * kChunk;
    QuantizeToFloatIntegers(format, alpha, in + start, out + start,
                            std::min(kChunk, n - start));
  }
}

}  // namespace esb::runtime::internal
