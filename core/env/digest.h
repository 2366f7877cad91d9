// SHA-256 digests (OpenSSL's), whole or streamed.
#ifndef ESB_CORE_ENV_DIGEST_H_
#define ESB_CORE_ENV_DIGEST_H_

#include <memory>
#include <string>

#include "absl/strings/string_view.h"

namespace esb {

std::string Sha256(absl::string_view data);
std::string Sha256Hex(absl::string_view data);

// The digest of bytes fed in pieces: Update any number of times, then
// HexDigest once. Not thread-safe.
class Sha256Stream {
 public:
  Sha256Stream();
  ~Sha256Stream();
  Sha256Stream(const Sha256Stream&) = delete;
  Sha256Stream& operator=(const Sha256Stream&) = delete;

  void Update(absl::string_view data);
  // Lowercase hex; the stream is finished afterwards.
  std::string HexDigest();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// True for 64 lowercase hex characters, the form blobs are named by.
bool IsSha256Hex(absl::string_view name);

}  // namespace esb

#endif  // ESB_CORE_ENV_DIGEST_H_
