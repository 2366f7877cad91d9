#include "fpga_agent/names.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace esb::agent {

absl::Status ValidateName(absl::string_view name, absl::string_view what) {
  constexpr size_t kMaxLength = 64;
  if (name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  }
  if (name.size() > kMaxLength) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is ", name.size(),
                                                   " characters long; at most ",
                                                   kMaxLength, " are allowed"));
  }
  if (name == "." || name == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", name, "' is not allowed"));
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' &&
        c != '_' && c != '.') {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " '", absl::CHexEscape(name),
                       "' may hold only letters, digits, '-', '_' and '.'"));
    }
  }
  return absl::OkStatus();
}

}  // namespace esb::agent
