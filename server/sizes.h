// Byte sizes on command lines: "4096", "64K", "512M", "4G".
#ifndef ESB_SERVER_SIZES_H_
#define ESB_SERVER_SIZES_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace esb::server {

// INVALID_ARGUMENT naming the text when it is not such a size.
absl::StatusOr<int64_t> ParseByteSize(absl::string_view text);

}  // namespace esb::server

#endif  // ESB_SERVER_SIZES_H_
