#include "core/env/digest.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"

namespace esb {

std::string Sha256(absl::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(),
         digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

std::string Sha256Hex(absl::string_view data) {
  return absl::BytesToHexString(Sha256(data));
}

struct Sha256Stream::State {
  EVP_MD_CTX* ctx = nullptr;
};

Sha256Stream::Sha256Stream() : state_(std::make_unique<State>()) {
  state_->ctx = EVP_MD_CTX_new();
  // Only an allocation failure makes these fail; HexDigest then returns an
  // empty string, which never matches a digest.
  if (state_->ctx != nullptr &&
      EVP_DigestInit_ex(state_->ctx, EVP_sha256(), nullptr) != 1) {
    EVP_MD_CTX_free(state_->ctx);
    state_->ctx = nullptr;
  }
}

Sha256Stream::~Sha256Stream() { EVP_MD_CTX_free(state_->ctx); }

void Sha256Stream::Update(absl::string_view data) {
  if (state_->ctx == nullptr || data.empty()) return;
  EVP_DigestUpdate(state_->ctx, data.data(), data.size());
}

std::string Sha256Stream::HexDigest() {
  if (state_->ctx == nullptr) return "";
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  const bool ok = EVP_DigestFinal_ex(state_->ctx, digest, &size) == 1;
  EVP_MD_CTX_free(state_->ctx);
  state_->ctx = nullptr;
  if (!ok) return "";
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), size));
}

bool IsSha256Hex(absl::string_view name) {
  if (name.size() != 64) return false;
  for (char c : name) {
    if (!absl::ascii_isdigit(c) && !(c >= 'a' && c <= 'f')) return false;
  }
  return true;
}

}  // namespace esb
