#include "core/esb/format.h"

#include <bit>
#include <cmath>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace esb {
namespace {

float CanonicalNan() { return std::bit_cast<float>(kCanonicalNanBits); }

}  // namespace

std::vector<int> Format::ValidSb(int bits, bool is_signed) {
  std::vector<int> out;
  if (bits < kMinBits || bits > kMaxBits) return out;
  for (int sb = 1; sb <= bits; ++sb) {
    const int e = bits - sb + (is_signed ? 0 : 1);
    if (e >= kMinExponentBits && e <= kMaxExponentBits) out.push_back(sb);
  }
  return out;
}

absl::StatusOr<Format> Format::Create(int bits, int sb, bool is_signed) {
  if (bits < kMinBits || bits > kMaxBits) {
    return absl::InvalidArgumentError(
        absl::StrCat("bits = ", bits, " is out of range: bits must be in [",
                     kMinBits, ", ", kMaxBits, "]"));
  }
  const std::vector<int> valid = ValidSb(bits, is_signed);
  const bool ok =
      sb >= 1 && std::find(valid.begin(), valid.end(), sb) != valid.end();
  if (!ok) {
    const int e = bits - sb + (is_signed ? 0 : 1);
    std::string why =
        sb < 1 ? absl::StrCat("sb must be at least 1")
               : absl::StrCat("it leaves ", e, " exponent bits, outside [",
                              kMinExponentBits, ", ", kMaxExponentBits, "]");
    return absl::InvalidArgumentError(
        absl::StrCat("sb = ", sb, " is invalid for bits = ", bits,
                     is_signed ? " (signed)" : " (unsigned)", ": ", why,
                     "; valid sb for bits = ", bits, ": {",
                     absl::StrJoin(valid, ", "), "}"));
  }
  return Format(bits, sb, is_signed);
}

std::vector<Format> Format::All() {
  std::vector<Format> out;
  for (bool is_signed : {true, false}) {
    for (int bits = kMinBits; bits <= kMaxBits; ++bits) {
      for (int sb : ValidSb(bits, is_signed)) {
        out.push_back(Format(bits, sb, is_signed));
      }
    }
  }
  return out;
}

float Format::max_level() const {
  const int n = max_exponent();
  return std::ldexp(1.0f, n + 1) - std::ldexp(1.0f, n - mantissa_bits());
}

int32_t Format::max_integer() const {
  const int n = max_exponent();
  const int l = mantissa_bits();
  return (int32_t{1} << (n + 1 + l)) - (int32_t{1} << n);
}

std::string Format::ToString() const {
  return absl::StrCat("b", bits_, " sb", sb_,
                      is_signed_ ? " signed" : " unsigned");
}

std::vector<float> Format::Magnitudes() const {
  const int l = mantissa_bits();
  const int n = max_exponent();
  const int per_binade = 1 << l;
  std::vector<float> out;
  out.reserve(magnitude_count());
  for (int j = 0; j < per_binade; ++j) out.push_back(std::ldexp(j, -l));
  for (int e = 0; e <= n; ++e) {
    for (int j = 0; j < per_binade; ++j) {
      out.push_back(std::ldexp(static_cast<float>(per_binade + j), e - l));
    }
  }
  return out;
}

std::vector<float> Format::Levels() const {
  const std::vector<float> mags = Magnitudes();
  std::vector<float> out;
  if (is_signed_) {
    for (auto it = mags.rbegin(); it != mags.rend(); ++it) {
      if (*it != 0.0f) out.push_back(-*it);
    }
  }
  out.insert(out.end(), mags.begin(), mags.end());
  return out;
}

float Format::Round(float v) const {
  if (std::isnan(v)) return CanonicalNan();
  const float c = max_level();
  float a;
  if (is_signed_) {
    a = std::fabs(v);
  } else {
    a = v > 0.0f ? v : 0.0f;
  }
  if (std::isinf(a)) return std::copysign(c, is_signed_ ? v : 1.0f);
  int ns = 0;
  if (a >= 1.0f) {
    int exp2 = 0;
    std::frexp(a, &exp2);  // a = m * 2^exp2, m in [0.5, 1).
    ns = std::min(exp2 - 1, max_exponent());
  }
  const float step = std::ldexp(1.0f, ns - mantissa_bits());
  float q = std::nearbyint(a / step) * step;
  if (q > c) q = c;
  return is_signed_ ? std::copysign(q, v) : q;
}

absl::StatusOr<uint32_t> Format::Encode(float level) const {
  const int l = mantissa_bits();
  const int e_bits = exponent_bits();
  const float a = std::fabs(level);
  const bool negative = level < 0.0f;
  if (!std::isfinite(level) || a > max_level() || (negative && !is_signed_)) {
    return absl::InvalidArgumentError(
        absl::StrCat("value ", level, " is not a level of ", ToString()));
  }
  const float scaled = std::ldexp(a, l);
  const auto m = static_cast<uint32_t>(scaled);
  if (static_cast<float>(m) != scaled) {
    return absl::InvalidArgumentError(
        absl::StrCat("value ", level, " is not a level of ", ToString()));
  }
  uint32_t exp_field = 0;
  uint32_t mantissa = m;
  if (m >= (1u << l)) {
    const int e = std::bit_width(m) - 1 - l;  // Binade of the level.
    if ((m & ((1u << e) - 1)) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("value ", level, " is not a level of ", ToString()));
    }
    exp_field = static_cast<uint32_t>(e + 1);
    mantissa = (m >> e) - (1u << l);
  }
  uint32_t code = (exp_field << l) | mantissa;
  if (negative) code |= 1u << (e_bits + l);
  return code;
}

absl::StatusOr<float> Format::Decode(uint32_t code) const {
  if (code >= (1u << bits_)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "code ", code, " does not fit ", bits_, " bits of ", ToString()));
  }
  const int l = mantissa_bits();
  const int e_bits = exponent_bits();
  const uint32_t mantissa = code & ((1u << l) - 1);
  const uint32_t exp_field = (code >> l) & ((1u << e_bits) - 1);
  const bool negative = is_signed_ && ((code >> (e_bits + l)) & 1u) != 0;
  float magnitude;
  if (exp_field == 0) {
    magnitude = std::ldexp(static_cast<float>(mantissa), -l);
  } else {
    magnitude = std::ldexp(static_cast<float>((1u << l) + mantissa),
                           static_cast<int>(exp_field) - 1 - l);
  }
  if (magnitude == 0.0f) return 0.0f;
  return negative ? -magnitude : magnitude;
}

int32_t Format::ToInteger(float level) const {
  return static_cast<int32_t>(std::ldexp(level, mantissa_bits()));
}

}  // namespace esb
