#include "server/sizes.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace esb::server {

absl::StatusOr<int64_t> ParseByteSize(absl::string_view text) {
  int shift = 0;
  absl::string_view digits = text;
  if (!digits.empty()) {
    switch (absl::ascii_toupper(digits.back())) {
      case 'K':
        shift = 10;
        break;
      case 'M':
        shift = 20;
        break;
      case 'G':
        shift = 30;
        break;
      case 'T':
        shift = 40;
        break;
      default:
        break;
    }
    if (shift > 0) digits.remove_suffix(1);
  }
  int64_t value = 0;
  if (!absl::SimpleAtoi(digits, &value) || value < 0 ||
      value > (INT64_MAX >> shift)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", text, "' is not a byte size (a number with K, M, G or T)"));
  }
  return value << shift;
}

}  // namespace esb::server
