// Command-line helpers shared by the daemons (esb-server, esb-worker):
// dashed flag names and byte sizes.
#ifndef ESB_CORE_CLI_FLAGS_H_
#define ESB_CORE_CLI_FLAGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace esb::cli {

// argv with every flag name's dashes turned to underscores ("--data-dir=x"
// -> "--data_dir=x"), so absl::ParseCommandLine takes both spellings.
// Values, positional arguments and everything after "--" are kept as
// they are. The strings live in `storage`; the result points into it.
std::vector<char*> UnderscoreFlagNames(int argc, char** argv,
                                       std::vector<std::string>* storage);

// "4096", "64K", "512M", "4G", "1T": INVALID_ARGUMENT naming the text when
// it is not such a size or overflows.
absl::StatusOr<int64_t> ParseByteSize(absl::string_view text);

// ParseByteSize for the flag spelled `flag` ("--max-plan-bytes"), which
// must also be positive: INVALID_ARGUMENT naming the flag otherwise.
absl::StatusOr<int64_t> ParsePositiveByteSize(absl::string_view flag,
                                              absl::string_view text);

// The shortest text ParseByteSize reads back as `bytes` (>= 0): "4G",
// "1536M", "4097".
std::string FormatByteSize(int64_t bytes);

}  // namespace esb::cli

#endif  // ESB_CORE_CLI_FLAGS_H_
