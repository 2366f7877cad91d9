#include "core/esb/quantize.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <bit>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace esb {
namespace {

// Lanes of the error accumulators: the scalar path keeps the same eight
// partial sums the AVX2 path keeps, so both add in the same order.
constexpr int kLanes = 8;

float CanonicalNan() { return std::bit_cast<float>(kCanonicalNanBits); }

double ReduceLanes(const double (&acc)[kLanes]) {
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) +
         ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

// The AVX2 kernels exist on x86-64 only; every other CPU (the board's
// arm64 among them) runs the reference loops, which they match bit for bit.
#if defined(__x86_64__)

// Parameters of the AVX2 kernel, derived once per call.
struct VectorParams {
  __m256 alpha, c, zero, sign_mask, nan;
  __m256i max_exp, bias_minus_l, bias_plus_l;
  bool is_signed;
};

__attribute__((target("avx2"))) VectorParams MakeParams(const Format& f,
                                                        float alpha) {
  VectorParams p;
  p.alpha = _mm256_set1_ps(alpha);
  p.c = _mm256_set1_ps(f.max_level());
  p.zero = _mm256_setzero_ps();
  p.sign_mask = _mm256_set1_ps(-0.0f);
  p.nan = _mm256_set1_ps(CanonicalNan());
  p.max_exp = _mm256_set1_epi32(f.max_exponent());
  p.bias_minus_l = _mm256_set1_epi32(127 - f.mantissa_bits());
  p.bias_plus_l = _mm256_set1_epi32(127 + f.mantissa_bits());
  p.is_signed = f.is_signed();
  return p;
}

// Rounds eight values x onto alpha * grid; *nan_mask gets the NaN lanes.
// Mirrors Format::Round step by step: the binade ns comes from the exponent
// bits of |v| (clamped to [0, N]), and dividing or multiplying by the powers
// of two 2^(ns-L) and 2^(L-ns) is exact in IEEE arithmetic.
__attribute__((target("avx2"))) inline __m256 RoundBlock(const VectorParams& p,
                                                         __m256 x,
                                                         __m256* nan_mask) {
  const __m256 v = _mm256_div_ps(x, p.alpha);
  __m256 a;
  __m256 sign;
  if (p.is_signed) {
    a = _mm256_andnot_ps(p.sign_mask, v);
    sign = _mm256_and_ps(p.sign_mask, v);
  } else {
    a = _mm256_max_ps(v, p.zero);  // -0 and negatives become +0.
    sign = p.zero;
  }
  __m256i ns = _mm256_sub_epi32(_mm256_srli_epi32(_mm256_castps_si256(a), 23),
                                _mm256_set1_epi32(127));
  ns =
      _mm256_min_epi32(_mm256_max_epi32(ns, _mm256_setzero_si256()), p.max_exp);
  const __m256 inv_step = _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_sub_epi32(p.bias_plus_l, ns), 23));
  const __m256 step = _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_add_epi32(p.bias_minus_l, ns), 23));
  __m256 q = _mm256_mul_ps(
      _mm256_round_ps(_mm256_mul_ps(a, inv_step),
                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
      step);
  q = _mm256_min_ps(q, p.c);  // Infinity clips to c.
  q = _mm256_or_ps(q, sign);
  *nan_mask = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  return q;
}

// `scaled`: out = alpha * q (QuantizeKernel); else out = q (RoundKernel).
__attribute__((target("avx2"))) size_t QuantizeAvx2(const Format& format,
                                                    float alpha,
                                                    const float* in, float* out,
                                                    size_t n, bool scaled) {
  const VectorParams p = MakeParams(format, alpha);
  size_t nans = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 nan_mask;
    const __m256 q = RoundBlock(p, _mm256_loadu_ps(in + i), &nan_mask);
    const __m256 y = _mm256_blendv_ps(scaled ? _mm256_mul_ps(p.alpha, q) : q,
                                      p.nan, nan_mask);
    _mm256_storeu_ps(out + i, y);
    nans += std::popcount(static_cast<unsigned>(_mm256_movemask_ps(nan_mask)));
  }
  return nans + (scaled
                     ? QuantizeReference(format, alpha, in + i, out + i, n - i)
                     : RoundReference(format, alpha, in + i, out + i, n - i));
}

__attribute__((target("avx2"))) ErrorSums ErrorAvx2(const Format& format,
                                                    float alpha,
                                                    const float* in, size_t n) {
  const VectorParams p = MakeParams(format, alpha);
  __m256d acc_lo = _mm256_setzero_pd();
  __m256d acc_hi = _mm256_setzero_pd();
  int64_t clipped = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(in + i);
    __m256 nan_mask;
    const __m256 q = RoundBlock(p, x, &nan_mask);
    const __m256 d = _mm256_sub_ps(x, _mm256_mul_ps(p.alpha, q));
    const __m256d d_lo = _mm256_cvtps_pd(_mm256_castps256_ps128(d));
    const __m256d d_hi = _mm256_cvtps_pd(_mm256_extractf128_ps(d, 1));
    acc_lo = _mm256_add_pd(acc_lo, _mm256_mul_pd(d_lo, d_lo));
    acc_hi = _mm256_add_pd(acc_hi, _mm256_mul_pd(d_hi, d_hi));
    const __m256 v = _mm256_div_ps(x, p.alpha);
    const __m256 mag = p.is_signed ? _mm256_andnot_ps(p.sign_mask, v) : v;
    clipped += std::popcount(static_cast<unsigned>(
        _mm256_movemask_ps(_mm256_cmp_ps(mag, p.c, _CMP_GT_OQ))));
  }
  double acc[kLanes];
  _mm256_storeu_pd(acc, acc_lo);
  _mm256_storeu_pd(acc + 4, acc_hi);
  for (size_t k = 0; i < n; ++i, ++k) {
    const float q = alpha * format.Round(in[i] / alpha);
    const auto d = static_cast<double>(in[i] - q);
    acc[k] += d * d;
    const float v = in[i] / alpha;
    if ((format.is_signed() ? std::fabs(v) : v) > format.max_level()) {
      ++clipped;
    }
  }
  return ErrorSums{ReduceLanes(acc), clipped};
}

bool CpuHasAvx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}

#endif  // defined(__x86_64__)

}  // namespace

bool HasVectorKernels() {
#if defined(__x86_64__)
  return CpuHasAvx2();
#else
  return false;
#endif
}

absl::Status ValidateScale(float alpha) {
  if (!std::isfinite(alpha) || alpha <= 0.0f) {
    return absl::InvalidArgumentError(absl::StrCat(
        "scale alpha = ", alpha, " is invalid: it must be finite and > 0"));
  }
  return absl::OkStatus();
}

size_t QuantizeReference(const Format& format, float alpha, const float* in,
                         float* out, size_t n) {
  size_t nans = 0;
  for (size_t i = 0; i < n; ++i) {
    if (std::isnan(in[i])) {
      out[i] = CanonicalNan();
      ++nans;
      continue;
    }
    out[i] = alpha * format.Round(in[i] / alpha);
  }
  return nans;
}

size_t QuantizeKernel(const Format& format, float alpha, const float* in,
                      float* out, size_t n) {
#if defined(__x86_64__)
  if (CpuHasAvx2()) return QuantizeAvx2(format, alpha, in, out, n, true);
#endif
  return QuantizeReference(format, alpha, in, out, n);
}

size_t RoundReference(const Format& format, float alpha, const float* in,
                      float* out, size_t n) {
  size_t nans = 0;
  for (size_t i = 0; i < n; ++i) {
    out[i] = format.Round(in[i] / alpha);
    if (std::isnan(in[i])) ++nans;
  }
  return nans;
}

size_t RoundKernel(const Format& format, float alpha, const float* in,
                   float* out, size_t n) {
#if defined(__x86_64__)
  if (CpuHasAvx2()) return QuantizeAvx2(format, alpha, in, out, n, false);
#endif
  return RoundReference(format, alpha, in, out, n);
}

absl::Status Quantize(const Format& format, float alpha,
                      absl::Span<const float> in, absl::Span<float> out) {
  if (absl::Status s = ValidateScale(alpha); !s.ok()) return s;
  if (in.size() != out.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "output holds ", out.size(), " values but input holds ", in.size()));
  }
  if (QuantizeKernel(format, alpha, in.data(), out.data(), in.size()) > 0) {
    for (size_t i = 0; i < in.size(); ++i) {
      if (std::isnan(in[i])) {
        return absl::InvalidArgumentError(
            absl::StrCat("input value ", i, " is NaN"));
      }
    }
  }
  return absl::OkStatus();
}

ErrorSums QuantizationErrorReference(const Format& format, float alpha,
                                     const float* in, size_t n) {
  double acc[kLanes] = {};
  int64_t clipped = 0;
  const float c = format.max_level();
  for (size_t i = 0; i < n; ++i) {
    const float v = in[i] / alpha;
    const float q = alpha * format.Round(v);
    const auto d = static_cast<double>(in[i] - q);
    acc[i % kLanes] += d * d;
    if ((format.is_signed() ? std::fabs(v) : v) > c) ++clipped;
  }
  return ErrorSums{ReduceLanes(acc), clipped};
}

ErrorSums QuantizationError(const Format& format, float alpha, const float* in,
                            size_t n) {
#if defined(__x86_64__)
  if (CpuHasAvx2()) return ErrorAvx2(format, alpha, in, n);
#endif
  return QuantizationErrorReference(format, alpha, in, n);
}

}  // namespace esb
