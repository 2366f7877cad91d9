#include "core/accel/machine.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/esb/codes.h"
#include "core/esb/layer_quant.h"

namespace esb::accel {
namespace {

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

Format FormatOf(uint32_t packed) {
  Format f = *Format::Create(2, 1, true);
  UnpackFormat(packed, &f);  // Checked by ReadProgram.
  return f;
}

// One image of a tensor in map1 as int32 integers (integer DTypes) or
// floats.
void LoadIntegers(const uint8_t* p, DType t, size_t n, int32_t* out) {
  switch (t) {
    case DType::kS8:
      for (size_t i = 0; i < n; ++i) {
        // Two's complement byte, sign-extended.
        out[i] = static_cast<int32_t>(p[i]) - (p[i] >= 128 ? 256 : 0);
      }
      break;
    case DType::kU8:
      for (size_t i = 0; i < n; ++i) out[i] = p[i];
      break;
    default:
      std::memcpy(out, p, n * 4);
      break;
  }
}

void StoreIntegers(const int32_t* in, DType t, size_t n, uint8_t* p) {
  switch (t) {
    case DType::kS8:
    case DType::kU8:
      for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(in[i]);
      break;
    default:
      std::memcpy(p, in, n * 4);
      break;
  }
}

// A weight's product as the PE issues it: the sum of the activation
// shifted by each set bit of |w|, negated for a negative weight.
struct Term {
  uint32_t index;  // Into the reduction (c, kh, kw).
  uint8_t shift;
  bool negative;
};

// The terms of every output channel, from the packed codes.
bool DecodeTerms(const Descriptor& d, absl::Span<const uint8_t> buffer,
                 std::vector<std::vector<Term>>* terms) {
  const Format f = FormatOf(d.weight_format);
  const CodeBook book(f);
  const int64_t k = int64_t{d.in_c / d.group} * d.kernel_h * d.kernel_w;
  const absl::string_view packed(
      reinterpret_cast<const char*>(buffer.data() + d.weights_offset),
      d.weights_bytes);
  absl::StatusOr<std::vector<int32_t>> w =
      UnpackIntegers(book, packed, int64_t{d.out_c} * k);
  if (!w.ok()) return false;
  terms->assign(d.out_c, {});
  for (uint32_t m = 0; m < d.out_c; ++m) {
    std::vector<Term>& t = (*terms)[m];
    for (int64_t i = 0; i < k; ++i) {
      const int32_t v = (*w)[m * k + i];
      uint32_t mag = static_cast<uint32_t>(v < 0 ? -v : v);
      while (mag != 0) {
        const int bit = std::countr_zero(mag);
        t.push_back(
            {static_cast<uint32_t>(i), static_cast<uint8_t>(bit), v < 0});
        mag &= mag - 1;
      }
    }
  }
  return true;
}

DeviceError RunConv(const Descriptor& d, uint32_t batch,
                    absl::Span<uint8_t> buffer) {
  std::vector<std::vector<Term>> terms;
  if (!DecodeTerms(d, buffer, &terms)) return DeviceError::kBadCode;
  std::vector<float> scales(d.out_c);
  std::vector<float> bias(d.out_c);
  std::memcpy(scales.data(), buffer.data() + d.scales_offset,
              size_t{d.out_c} * 4);
  std::memcpy(bias.data(), buffer.data() + d.bias_offset, size_t{d.out_c} * 4);

  const Format in_format = FormatOf(d.input_format);
  const size_t in_elems = size_t{d.in_c} * d.in_h * d.in_w;
  const size_t pixels = size_t{d.out_h} * d.out_w;
  const size_t out_elems = pixels * d.out_c;
  const uint32_t cg = d.in_c / d.group;
  const uint32_t mg = d.out_c / d.group;
  const size_t k = size_t{cg} * d.kernel_h * d.kernel_w;

  std::vector<int32_t> x(in_elems);
  std::vector<float> xf;
  std::vector<int32_t> patch(k);
  std::vector<int32_t> acc(out_elems);
  std::vector<float> y(out_elems);
  std::vector<int32_t> yi;
  for (uint32_t n = 0; n < batch; ++n) {
    const uint8_t* src =
        buffer.data() + d.input_offset + n * d.InputImageBytes();
    if (d.input_dtype == DType::kF32) {
      xf.resize(in_elems);
      std::memcpy(xf.data(), src, in_elems * 4);
      QuantizeToIntegers(in_format, d.input_alpha, xf.data(), x.data(),
                         in_elems);
    } else {
      LoadIntegers(src, d.input_dtype, in_elems, x.data());
    }
    for (uint32_t g = 0; g < d.group; ++g) {
      for (uint32_t oh = 0; oh < d.out_h; ++oh) {
        for (uint32_t ow = 0; ow < d.out_w; ++ow) {
          // The window, padding reading integer 0.
          size_t i = 0;
          for (uint32_t c = 0; c < cg; ++c) {
            const int32_t* plane =
                x.data() + size_t{g * cg + c} * d.in_h * d.in_w;
            for (uint32_t kh = 0; kh < d.kernel_h; ++kh) {
              const int64_t ih = int64_t{oh} * d.stride_h - d.pad_top +
                                 int64_t{kh} * d.dilation_h;
              for (uint32_t kw = 0; kw < d.kernel_w; ++kw, ++i) {
                const int64_t iw = int64_t{ow} * d.stride_w - d.pad_left +
                                   int64_t{kw} * d.dilation_w;
                const bool inside =
                    ih >= 0 && ih < d.in_h && iw >= 0 && iw < d.in_w;
                patch[i] = inside ? plane[ih * d.in_w + iw] : 0;
              }
            }
          }
          const size_t p = size_t{oh} * d.out_w + ow;
          for (uint32_t mm = 0; mm < mg; ++mm) {
            const uint32_t m = g * mg + mm;
            // int32 with the wrap-around of the hardware adder.
            uint32_t sum = 0;
            for (const Term& t : terms[m]) {
              const uint32_t shifted = static_cast<uint32_t>(patch[t.index])
                                       << t.shift;
              sum = t.negative ? sum - shifted : sum + shifted;
            }
            acc[size_t{m} * pixels + p] = static_cast<int32_t>(sum);
          }
        }
      }
    }
    for (uint32_t m = 0; m < d.out_c; ++m) {
      Dequantize(acc.data() + size_t{m} * pixels, pixels, scales[m], bias[m],
                 static_cast<int>(d.activation), d.act_lo, d.act_hi,
                 y.data() + size_t{m} * pixels);
    }
    uint8_t* dst = buffer.data() + d.output_offset + n * d.OutputImageBytes();
    if (d.output_dtype == DType::kF32) {
      std::memcpy(dst, y.data(), out_elems * 4);
    } else {
      yi.resize(out_elems);
      QuantizeToIntegers(FormatOf(d.output_format), d.output_alpha, y.data(),
                         yi.data(), out_elems);
      StoreIntegers(yi.data(), d.output_dtype, out_elems, dst);
    }
  }
  return DeviceError::kNone;
}

template <typename T>
void MaxPoolImage(const Descriptor& d, const T* x, T* y) {
  for (uint32_t c = 0; c < d.in_c; ++c) {
    const T* plane = x + size_t{c} * d.in_h * d.in_w;
    for (uint32_t oh = 0; oh < d.out_h; ++oh) {
      for (uint32_t ow = 0; ow < d.out_w; ++ow) {
        bool any = false;
        T best = std::numeric_limits<T>::lowest();
        for (uint32_t kh = 0; kh < d.kernel_h; ++kh) {
          const int64_t ih =
              int64_t{oh} * d.stride_h - d.pad_top + int64_t{kh} * d.dilation_h;
          if (ih < 0 || ih >= d.in_h) continue;
          for (uint32_t kw = 0; kw < d.kernel_w; ++kw) {
            const int64_t iw = int64_t{ow} * d.stride_w - d.pad_left +
                               int64_t{kw} * d.dilation_w;
            if (iw < 0 || iw >= d.in_w) continue;
            const T v = plane[ih * d.in_w + iw];
            if (!any || v > best) best = v;
            any = true;
          }
        }
        y[(size_t{c} * d.out_h + oh) * d.out_w + ow] = best;
      }
    }
  }
}

void RunMaxPool(const Descriptor& d, uint32_t batch,
                absl::Span<uint8_t> buffer) {
  const size_t in_elems = size_t{d.in_c} * d.in_h * d.in_w;
  const size_t out_elems = size_t{d.out_c} * d.out_h * d.out_w;
  for (uint32_t n = 0; n < batch; ++n) {
    const uint8_t* src =
        buffer.data() + d.input_offset + n * d.InputImageBytes();
    uint8_t* dst = buffer.data() + d.output_offset + n * d.OutputImageBytes();
    if (d.input_dtype == DType::kF32) {
      std::vector<float> x(in_elems);
      std::vector<float> y(out_elems);
      std::memcpy(x.data(), src, in_elems * 4);
      MaxPoolImage(d, x.data(), y.data());
      std::memcpy(dst, y.data(), out_elems * 4);
    } else {
      std::vector<int32_t> x(in_elems);
      std::vector<int32_t> y(out_elems);
      LoadIntegers(src, d.input_dtype, in_elems, x.data());
      MaxPoolImage(d, x.data(), y.data());
      StoreIntegers(y.data(), d.output_dtype, out_elems, dst);
    }
  }
}

void RunElementwise(const Descriptor& d, uint32_t batch,
                    absl::Span<uint8_t> buffer) {
  const size_t n = size_t{d.in_c} * d.in_h * d.in_w * batch;
  std::vector<float> a(n);
  std::vector<float> b;
  std::memcpy(a.data(), buffer.data() + d.input_offset, n * 4);
  if (d.op == LayerKind::kAdd) {
    b.resize(n);
    std::memcpy(b.data(), buffer.data() + d.input2_offset, n * 4);
  }
  for (size_t i = 0; i < n; ++i) {
    float v = a[i];
    switch (d.op) {
      case LayerKind::kAdd:
        v = a[i] + b[i];
        break;
      case LayerKind::kRelu:
        v = v > 0.0f ? v : 0.0f;
        break;
      case LayerKind::kClip:
        v = v < d.act_lo ? d.act_lo : v;
        v = v > d.act_hi ? d.act_hi : v;
        break;
      default:
        break;
    }
    a[i] = v;
  }
  std::memcpy(buffer.data() + d.output_offset, a.data(), n * 4);
}

}  // namespace

Cost LayerCost(const Descriptor& d, int batch, const ArrayConfig& config) {
  Cost c;
  const int64_t in_bytes = d.InputImageBytes();
  const int64_t out_bytes = d.OutputImageBytes();
  const int64_t lanes = std::max(config.cols, 1);
  const int64_t out_elems = int64_t{d.out_c} * d.out_h * d.out_w;
  int64_t fill = 0;
  if (d.op == LayerKind::kConv) {
    const int sb = FormatOf(d.weight_format).sb();
    const int64_t k = int64_t{d.in_c / d.group} * d.kernel_h * d.kernel_w;
    const int64_t mg = d.out_c / d.group;
    const int64_t pixels = int64_t{d.out_h} * d.out_w;
    const int64_t row_tiles = CeilDiv(k, std::max(config.rows, 1));
    const int64_t col_tiles = CeilDiv(mg, std::max(config.cols, 1));
    const int64_t tiles = int64_t{batch} * d.group * row_tiles * col_tiles;
    c.macs = d.MacsPerImage() * batch;
    c.shift_adds = c.macs * sb;
    c.compute_cycles = tiles * pixels * sb;
    // Weights stay on chip for the batch when they fit; otherwise they
    // stream in again for every image. An input larger than its buffer is
    // read again for every column tile.
    const bool weights_fit =
        static_cast<int64_t>(d.weights_bytes) <= config.weight_buffer_bytes;
    const int64_t weight_reads = weights_fit ? 1 : batch;
    const int64_t input_reads =
        in_bytes <= config.input_buffer_bytes ? 1 : col_tiles;
    c.dma_bytes = static_cast<int64_t>(d.weights_bytes) * weight_reads +
                  int64_t{d.out_c} * 8 +
                  int64_t{batch} * (in_bytes * input_reads + out_bytes);
    fill = config.rows + config.cols;
  } else {
    const int64_t window =
        d.op == LayerKind::kMaxPool ? int64_t{d.kernel_h} * d.kernel_w : 1;
    const int64_t reads = d.op == LayerKind::kAdd ? 2 : 1;
    c.compute_cycles = CeilDiv(int64_t{batch} * out_elems * window, lanes);
    c.dma_bytes = int64_t{batch} * (in_bytes * reads + out_bytes);
    fill = lanes;
  }
  c.dma_cycles = CeilDiv(c.dma_bytes, std::max(config.dma_bytes_per_cycle, 1));
  c.cycles = std::max(c.compute_cycles, c.dma_cycles) + fill;
  return c;
}

MachineRun Execute(absl::Span<uint8_t> buffer, uint64_t program_offset,
                   const ArrayConfig& config) {
  MachineRun run;
  const CheckedProgram program =
      ReadProgram(buffer, program_offset, config.max_sb);
  if (program.error != DeviceError::kNone) {
    run.error = program.error;
    return run;
  }
  const uint32_t batch = program.header.batch;
  for (const Descriptor& d : program.layers) {
    switch (d.op) {
      case LayerKind::kConv:
        run.error = RunConv(d, batch, buffer);
        break;
      case LayerKind::kMaxPool:
        RunMaxPool(d, batch, buffer);
        break;
      default:
        RunElementwise(d, batch, buffer);
        break;
    }
    if (run.error != DeviceError::kNone) return run;
    const Cost cost = LayerCost(d, static_cast<int>(batch), config);
    run.cost += cost;
    run.per_layer.push_back(cost);
    ++run.layers_done;
  }
  return run;
}

}  // namespace esb::accel
