// The packed codes of ESB weights: the one definition of how integer-view
// values become codes and bytes, used by the .esbm exporter and by every
// reader (the package unpacker, the accelerator program, the agent).
//
// Code of a level: sign | exponent field | mantissa field (format.h), in
// `bits` bits. Packing: code i occupies bits [i * bits, (i + 1) * bits) of
// the byte string, bit k of the string being bit k % 8 of byte k / 8 (LSB
// first); the unused high bits of the last byte are zero.
//
// Functions are thread-safe; a CodeBook is immutable.
#ifndef ESB_CORE_ESB_CODES_H_
#define ESB_CORE_ESB_CODES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/esb/format.h"

namespace esb {

// Code <-> integer view (level * 2^L) of one format, by table.
class CodeBook {
 public:
  explicit CodeBook(const Format& format);

  const Format& format() const { return format_; }
  // The code of integer `v`; INVALID_ARGUMENT when v is not a level.
  absl::StatusOr<uint32_t> Encode(int32_t v) const;
  // The integer of `code`; code must be < 2^bits. Negative zero is 0.
  int32_t Decode(uint32_t code) const { return integer_of_[code]; }

 private:
  Format format_;
  std::vector<int32_t> integer_of_;  // By code.
  int32_t max_integer_;
  std::vector<uint32_t> code_of_;  // By integer + max_integer_.
  std::vector<bool> valid_;        // By integer + max_integer_.
};

// Bytes that `count` codes of `bits` bits pack into; -1 on overflow or a
// negative count.
int64_t PackedBytes(int64_t count, int bits);

// Packs integer-view values as codes. INVALID_ARGUMENT naming the index of
// the first value that is not a level of the format.
absl::StatusOr<std::string> PackIntegers(const CodeBook& book,
                                         absl::Span<const int32_t> values);

// Unpacks `count` codes into integer-view values. INVALID_ARGUMENT when
// `packed` is not exactly PackedBytes(count, bits) long or its padding bits
// are not zero.
absl::StatusOr<std::vector<int32_t>> UnpackIntegers(const CodeBook& book,
                                                    absl::string_view packed,
                                                    int64_t count);

}  // namespace esb

#endif  // ESB_CORE_ESB_CODES_H_
