#include "core/esb/codes.h"

#include <limits>

#include "absl/strings/str_cat.h"

namespace esb {

CodeBook::CodeBook(const Format& format)
    : format_(format),
      integer_of_(size_t{1} << format.bits()),
      max_integer_(format.max_integer()),
      code_of_(2 * static_cast<size_t>(format.max_integer()) + 1),
      valid_(2 * static_cast<size_t>(format.max_integer()) + 1, false) {
  for (uint32_t code = 0; code < integer_of_.size(); ++code) {
    // Every code below 2^bits decodes; a level's integer view is exact.
    const float level = *format.Decode(code);
    integer_of_[code] = format.ToInteger(level);
  }
  // Encode through the format itself, so zero takes sign 0.
  for (float level : format.Levels()) {
    const int32_t v = format.ToInteger(level);
    code_of_[v + max_integer_] = *format.Encode(level);
    valid_[v + max_integer_] = true;
  }
}

absl::StatusOr<uint32_t> CodeBook::Encode(int32_t v) const {
  if (v < -max_integer_ || v > max_integer_ || !valid_[v + max_integer_]) {
    return absl::InvalidArgumentError(
        absl::StrCat("integer ", v, " is not a level of ", format_.ToString()));
  }
  return code_of_[v + max_integer_];
}

int64_t PackedBytes(int64_t count, int bits) {
  if (count < 0 || bits < 1 ||
      count > (std::numeric_limits<int64_t>::max() - 7) / bits) {
    return -1;
  }
  return (count * bits + 7) / 8;
}

absl::StatusOr<std::string> PackIntegers(const CodeBook& book,
                                         absl::Span<const int32_t> values) {
  const int bits = book.format().bits();
  std::string out(static_cast<size_t>(
                      PackedBytes(static_cast<int64_t>(values.size()), bits)),
                  '\0');
  size_t pos = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    absl::StatusOr<uint32_t> code = book.Encode(values[i]);
    if (!code.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("value ", i, ": ", code.status().message()));
    }
    for (int k = 0; k < bits; ++k, ++pos) {
      if ((*code >> k) & 1u) out[pos / 8] |= static_cast<char>(1u << (pos % 8));
    }
  }
  return out;
}

absl::StatusOr<std::vector<int32_t>> UnpackIntegers(const CodeBook& book,
                                                    absl::string_view packed,
                                                    int64_t count) {
  const int bits = book.format().bits();
  const int64_t expected = PackedBytes(count, bits);
  if (expected < 0 || static_cast<int64_t>(packed.size()) != expected) {
    return absl::InvalidArgumentError(
        absl::StrCat("codes hold ", packed.size(), " bytes; ", count,
                     " codes of ", bits, " bits need ", expected));
  }
  const uint64_t used_bits = static_cast<uint64_t>(count) * bits;
  if (used_bits % 8 != 0 &&
      (static_cast<uint8_t>(packed.back()) >> (used_bits % 8)) != 0) {
    return absl::InvalidArgumentError(
        "codes have nonzero padding bits after the last code");
  }
  std::vector<int32_t> out(static_cast<size_t>(count));
  uint64_t pos = 0;
  for (int64_t i = 0; i < count; ++i) {
    uint32_t code = 0;
    for (int k = 0; k < bits; ++k, ++pos) {
      const auto byte = static_cast<uint8_t>(packed[pos / 8]);
      code |= static_cast<uint32_t>((byte >> (pos % 8)) & 1u) << k;
    }
    out[i] = book.Decode(code);
  }
  return out;
}

}  // namespace esb
