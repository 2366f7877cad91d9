// Small sysfs attribute helpers shared by the zcu102 backend's parts
// (FPGA Manager, UIO, hwmon). An attribute is a short text file; reads
// return its contents without the trailing newline, writes are one
// write() call, as the kernel expects of an attribute store.
//
// Errors name the path and the step, with the errno mapped to a status
// code (NOT_FOUND for ENOENT, PERMISSION_DENIED, ...). Thread-safe.
#ifndef ESB_FPGA_AGENT_SYSFS_H_
#define ESB_FPGA_AGENT_SYSFS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace esb::agent {

// `what` failed on `path` with `err` (an errno): the status whose code
// follows the errno, "<what> <path>: <strerror>".
absl::Status ErrnoStatus(int err, absl::string_view what,
                         const std::string& path);

// The attribute's text, trailing whitespace removed. At most 64 KiB.
absl::StatusOr<std::string> ReadAttribute(const std::string& path);
// An integer attribute, decimal or 0x-prefixed hexadecimal (UIO's map
// sizes and addresses are hexadecimal). INVALID_ARGUMENT naming the path
// and the text when it is not one.
absl::StatusOr<uint64_t> ReadUintAttribute(const std::string& path);
absl::StatusOr<int64_t> ReadIntAttribute(const std::string& path);
// Writes `value` to an existing attribute in one write() call.
absl::Status WriteAttribute(const std::string& path, absl::string_view value);

// Entries of `dir` whose names start with `prefix`, sorted by the number
// after the prefix ("hwmon2" before "hwmon10"); entries with no number
// after it are left out. NOT_FOUND when `dir` does not exist.
absl::StatusOr<std::vector<std::string>> ListNumbered(const std::string& dir,
                                                      absl::string_view prefix);

// `root` + "/" + `rest`, with "" meaning the file system root.
std::string JoinPath(absl::string_view root, absl::string_view rest);

}  // namespace esb::agent

#endif  // ESB_FPGA_AGENT_SYSFS_H_
