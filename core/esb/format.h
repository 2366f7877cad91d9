// The ESB number format (DESIGN.md section 3).
//
// A format has `bits` b (2..8, including the sign bit when signed) and `sb`
// significant bits. With mantissa bits L = sb - 1 and exponent bits
// E = b - sb (signed) or b - sb + 1 (unsigned), valid when 1 <= E <= 4 and
// L >= 0, the magnitudes in units of the scale alpha are, with N = 2^E - 2:
//
//   subnormal run:  j * 2^-L                 0 <= j < 2^L
//   exponent e:     (1 + j * 2^-L) * 2^e     0 <= e <= N, 0 <= j < 2^L
//
// so the largest magnitude is c = 2^(N+1) - 2^(N-L). E == 1 is the uniform
// grid with step 2^-L; sb == 1 is power-of-two quantization; b = 4, sb = 2 is
// FP4 E2M1 {0, .5, 1, 1.5, 2, 3, 4, 6}.
//
// Rounding of v = x / alpha: ns = clamp(floor(log2 |v|), 0, N), step
// s = 2^(ns - L), q = round_half_even(v / s) * s, clipped to [-c, c] ([0, c]
// unsigned). That is nearest-level rounding with ties to even.
//
// Integer view: level * 2^L is an integer with at most sb significant bits.
// Code: sign | exponent field (E bits) | mantissa field (L bits); exponent
// field 0 is the subnormal run, field e + 1 the binade 2^e.
#ifndef ESB_CORE_ESB_FORMAT_H_
#define ESB_CORE_ESB_FORMAT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace esb {

// An immutable, validated format. Thread-compatible value type; all methods
// are const and safe to call concurrently.
class Format {
 public:
  static constexpr int kMinBits = 2;
  static constexpr int kMaxBits = 8;
  static constexpr int kMinExponentBits = 1;
  static constexpr int kMaxExponentBits = 4;

  // INVALID_ARGUMENT naming the bad value and the valid range when (bits, sb)
  // is not a valid format for this signedness.
  static absl::StatusOr<Format> Create(int bits, int sb, bool is_signed);

  // The sb values that make a valid format with `bits` bits (possibly empty).
  static std::vector<int> ValidSb(int bits, bool is_signed);

  // Every valid format, for exhaustive tests and precomputed tables.
  static std::vector<Format> All();

  int bits() const { return bits_; }
  int sb() const { return sb_; }
  bool is_signed() const { return is_signed_; }
  int mantissa_bits() const { return sb_ - 1; }                             // L
  int exponent_bits() const { return bits_ - sb_ + (is_signed_ ? 0 : 1); }  // E
  int max_exponent() const { return (1 << exponent_bits()) - 2; }           // N
  // Magnitudes, zero included: 2^(b-1) signed, 2^b unsigned.
  int magnitude_count() const { return 1 << (exponent_bits() + sb_ - 1); }
  // c, the largest magnitude in units of alpha.
  float max_level() const;
  // c * 2^L, the largest integer of the integer view.
  int32_t max_integer() const;
  // True when max_integer() fits int8 (signed) or uint8 (unsigned).
  bool fits_int8() const { return max_integer() <= (is_signed_ ? 127 : 255); }

  // "b4 sb2 signed".
  std::string ToString() const;

  // Magnitudes ascending, in units of alpha, starting at 0.
  std::vector<float> Magnitudes() const;
  // Every level ascending: -c .. c for signed formats, 0 .. c unsigned.
  std::vector<float> Levels() const;

  // The reference rounding of v (in units of alpha) onto the grid. NaN maps
  // to the canonical quiet NaN; infinities clip to +-c.
  float Round(float v) const;

  // Packed code of a level (units of alpha). INVALID_ARGUMENT when `level` is
  // not on the grid. Zero always encodes with sign 0.
  absl::StatusOr<uint32_t> Encode(float level) const;
  // Level of a code. INVALID_ARGUMENT when code >= 2^bits.
  absl::StatusOr<float> Decode(uint32_t code) const;
  // level * 2^L; `level` must be on the grid.
  int32_t ToInteger(float level) const;

  friend bool operator==(const Format& a, const Format& b) {
    return a.bits_ == b.bits_ && a.sb_ == b.sb_ && a.is_signed_ == b.is_signed_;
  }

 private:
  Format(int bits, int sb, bool is_signed)
      : bits_(bits), sb_(sb), is_signed_(is_signed) {}

  int bits_;
  int sb_;
  bool is_signed_;
};

// The bit pattern every quantizer writes for a NaN input.
inline constexpr uint32_t kCanonicalNanBits = 0x7fc00000u;

}  // namespace esb

#endif  // ESB_CORE_ESB_FORMAT_H_
