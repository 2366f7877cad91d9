// SHA-256 digests, as the package framing and the job report record them.
//
// Functions are thread-safe.
#ifndef ESB_CORE_ENV_DIGEST_H_
#define ESB_CORE_ENV_DIGEST_H_

#include <string>

#include "absl/strings/string_view.h"

namespace esb {

// The 32-byte digest of `data`.
std::string Sha256(absl::string_view data);
// The same as 64 lowercase hex digits.
std::string Sha256Hex(absl::string_view data);

}  // namespace esb

#endif  // ESB_CORE_ENV_DIGEST_H_
