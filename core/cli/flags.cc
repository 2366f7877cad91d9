#include "core/cli/flags.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace esb::cli {

std::vector<char*> UnderscoreFlagNames(int argc, char** argv,
                                       std::vector<std::string>* storage) {
  storage->assign(argv, argv + argc);
  bool flags_done = false;
  for (int i = 1; i < argc; ++i) {
    std::string& arg = (*storage)[i];
    if (flags_done) continue;
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    if (arg.size() < 3 || arg[0] != '-') continue;
    const size_t start = arg[1] == '-' ? 2 : 1;
    const size_t end = std::min(arg.find('='), arg.size());
    for (size_t c = start; c < end; ++c) {
      if (arg[c] == '-') arg[c] = '_';
    }
  }
  std::vector<char*> out;
  out.reserve(storage->size() + 1);
  for (std::string& s : *storage) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

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

absl::StatusOr<int64_t> ParsePositiveByteSize(absl::string_view flag,
                                              absl::string_view text) {
  absl::StatusOr<int64_t> bytes = ParseByteSize(text);
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": ", bytes.status().message()));
  }
  if (*bytes == 0) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " must be positive"));
  }
  return *bytes;
}

std::string FormatByteSize(int64_t bytes) {
  static constexpr struct {
    int shift;
    char suffix;
  } kUnits[] = {{40, 'T'}, {30, 'G'}, {20, 'M'}, {10, 'K'}};
  if (bytes > 0) {
    for (const auto& unit : kUnits) {
      const int64_t size = int64_t{1} << unit.shift;
      if (bytes % size == 0) {
        return absl::StrCat(bytes / size, std::string(1, unit.suffix));
      }
    }
  }
  return absl::StrCat(bytes);
}

}  // namespace esb::cli
