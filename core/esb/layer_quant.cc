#include "core/esb/layer_quant.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "core/esb/codes.h"
#include "core/esb/quantize.h"

namespace esb {
namespace {

template <typename Acc>
void DequantizeImpl(const Acc* acc, size_t count, float scale, float bias,
                    int kind, float lo, float hi, float* out) {
  for (size_t i = 0; i < count; ++i) {
    const float product = static_cast<float>(acc[i]) * scale;
    float y = product + bias;
    if (kind == 1) {
      y = y > 0.0f ? y : 0.0f;
    } else if (kind == 2) {
      y = y < lo ? lo : y;
      y = y > hi ? hi : y;
    }
    out[i] = y;
  }
}

// Integer views fit int32 for every format (|level * 2^L| < 2^19).
template <typename Out>
size_t QuantizeIntegral(const Format& format, float alpha, const float* in,
                        Out* out, size_t n) {
  constexpr size_t kBlock = 1024;
  float levels[kBlock];
  size_t nans = 0;
  const float unit = std::ldexp(1.0f, format.mantissa_bits());
  for (size_t start = 0; start < n; start += kBlock) {
    const size_t m = std::min(kBlock, n - start);
    const size_t block_nans = RoundKernel(format, alpha, in + start, levels, m);
    if (block_nans == 0) {
      for (size_t i = 0; i < m; ++i) {
        out[start + i] = static_cast<Out>(levels[i] * unit);
      }
      continue;
    }
    nans += block_nans;
    for (size_t i = 0; i < m; ++i) {
      out[start + i] =
          std::isnan(levels[i]) ? Out{0} : static_cast<Out>(levels[i] * unit);
    }
  }
  return nans;
}

}  // namespace

size_t QuantizeToIntegers(const Format& format, float alpha, const float* in,
                          int32_t* out, size_t n) {
  return QuantizeIntegral(format, alpha, in, out, n);
}

size_t QuantizeToInt8(const Format& format, float alpha, const float* in,
                      int8_t* out, size_t n) {
  return QuantizeIntegral(format, alpha, in, out, n);
}

size_t QuantizeToUint8(const Format& format, float alpha, const float* in,
                       uint8_t* out, size_t n) {
  return QuantizeIntegral(format, alpha, in, out, n);
}

size_t QuantizeToFloatIntegers(const Format& format, float alpha,
                               const float* in, float* out, size_t n) {
  return QuantizeIntegral(format, alpha, in, out, n);
}

std::vector<float> OutputScales(const LayerQuant& q, float gemm_alpha) {
  const int shift =
      q.input_format.mantissa_bits() + q.weight_format.mantissa_bits();
  std::vector<float> s;
  s.reserve(q.weight_alpha.size());
  for (float aw : q.weight_alpha) {
    float v = std::ldexp(q.input_alpha * aw, -shift);
    if (gemm_alpha != 1.0f) v *= gemm_alpha;
    s.push_back(v);
  }
  return s;
}

void Dequantize(const int64_t* acc, size_t count, float scale, float bias,
                int kind, float lo, float hi, float* out) {
  DequantizeImpl(acc, count, scale, bias, kind, lo, hi, out);
}

void Dequantize(const int32_t* acc, size_t count, float scale, float bias,
                int kind, float lo, float hi, float* out) {
  DequantizeImpl(acc, count, scale, bias, kind, lo, hi, out);
}

absl::StatusOr<std::vector<int32_t>> QuantizeWeights(
    const Format& format, absl::Span<const float> alpha,
    absl::Span<const float> weights, absl::Span<const int64_t> shape,
    int axis) {
  const int rank = static_cast<int>(shape.size());
  if (axis < 0 || axis >= rank) {
    return absl::InvalidArgumentError(absl::StrCat(
        "weight channel axis ", axis, " is out of range for rank ", rank));
  }
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= shape[d];
  for (int d = axis + 1; d < rank; ++d) inner *= shape[d];
  const int64_t channels = shape[axis];
  if (static_cast<int64_t>(alpha.size()) != channels && alpha.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        alpha.size(), " weight scales for ", channels, " output channels"));
  }
  if (outer * channels * inner != static_cast<int64_t>(weights.size())) {
    return absl::InvalidArgumentError("weight shape does not match its data");
  }
  for (float a : alpha) {
    if (absl::Status s = ValidateScale(a); !s.ok()) return s;
  }
  std::vector<int32_t> out(weights.size());
  const float unit = std::ldexp(1.0f, format.mantissa_bits());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t c = 0; c < channels; ++c) {
      const float a = alpha.size() == 1 ? alpha[0] : alpha[c];
      const int64_t base = (o * channels + c) * inner;
      for (int64_t i = 0; i < inner; ++i) {
        const float w = weights[base + i];
        if (!std::isfinite(w)) {
          return absl::InvalidArgumentError(
              absl::StrCat("weight ", base + i, " is ", w));
        }
        out[base + i] = static_cast<int32_t>(format.Round(w / a) * unit);
      }
    }
  }
  return out;
}

absl::Status CheckWeightIntegers(const Format& format,
                                 absl::Span<const float> alpha,
                                 absl::Span<const int32_t> integers,
                                 absl::Span<const int64_t> shape, int axis) {
  const int rank = static_cast<int>(shape.size());
  if (axis < 0 || axis >= rank) {
    return absl::InvalidArgumentError(absl::StrCat(
        "weight channel axis ", axis, " is out of range for rank ", rank));
  }
  int64_t count = 1;
  for (int64_t d : shape) {
    if (d < 0 || (d > 0 && count > std::numeric_limits<int64_t>::max() / d)) {
      return absl::InvalidArgumentError("weight shape overflows");
    }
    count *= d;
  }
  if (count != static_cast<int64_t>(integers.size())) {
    return absl::InvalidArgumentError(absl::StrCat(
        integers.size(), " weight integers for ", count, " weights"));
  }
  const int64_t channels = shape[axis];
  if (static_cast<int64_t>(alpha.size()) != channels && alpha.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        alpha.size(), " weight scales for ", channels, " output channels"));
  }
  for (float a : alpha) {
    if (absl::Status s = ValidateScale(a); !s.ok()) return s;
  }
  const CodeBook book(format);
  for (size_t i = 0; i < integers.size(); ++i) {
    if (absl::StatusOr<uint32_t> code = book.Encode(integers[i]); !code.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("weight ", i, ": ", code.status().message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace esb
