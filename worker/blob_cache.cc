#include "worker/blob_cache.h"

#include <openssl/evp.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace esb::worker {
namespace {

// Incremental SHA-256 (core/env/digest.h digests whole strings; blobs are
// streamed).
class Sha256Stream {
 public:
  Sha256Stream() : ctx_(EVP_MD_CTX_new()) {
    EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr);
  }
  ~Sha256Stream() { EVP_MD_CTX_free(ctx_); }
  Sha256Stream(const Sha256Stream&) = delete;
  Sha256Stream& operator=(const Sha256Stream&) = delete;

  void Update(absl::string_view data) {
    EVP_DigestUpdate(ctx_, data.data(), data.size());
  }
  std::string HexDigest() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_, digest, &n);
    return absl::BytesToHexString(
        absl::string_view(reinterpret_cast<const char*>(digest), n));
  }

 private:
  EVP_MD_CTX* ctx_;
};

std::atomic<int64_t> temp_counter{0};

}  // namespace

bool IsSha256Hex(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(c) && !(c >= 'a' && c <= 'f')) return false;
  }
  return true;
}

BlobCache::BlobCache(std::string dir, Env* env)
    : dir_(std::move(dir)), env_(env) {}

std::string BlobCache::PathOf(const std::string& sha256) const {
  return absl::StrCat(dir_, "/", sha256);
}

absl::StatusOr<std::string> BlobCache::Get(const std::string& sha256,
                                           int64_t size,
                                           const BlobSource& source) {
  if (!IsSha256Hex(sha256)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "blob name '", sha256, "' is not 64 lowercase hex digits"));
  }
  const std::string path = PathOf(sha256);
  {
    // One fetch per blob at a time: a second caller waits for the first
    // and then finds the file (or fetches again if the first failed).
    absl::MutexLock lock(&mu_);
    while (fetching_.count(sha256)) fetched_.Wait(&mu_);
    if (env_->FileExists(path)) return path;
    fetching_.insert(sha256);
  }
  absl::Status s = Fetch(sha256, size, source);
  absl::MutexLock lock(&mu_);
  fetching_.erase(sha256);
  fetched_.SignalAll();
  if (!s.ok()) return s;
  return path;
}

absl::Status BlobCache::Fetch(const std::string& sha256, int64_t size,
                              const BlobSource& source) {
  if (absl::Status s = env_->CreateDirs(dir_); !s.ok()) return s;
  const std::string path = PathOf(sha256);
  const std::string temp =
      absl::StrCat(path, ".tmp.", getpid(), ".", temp_counter++);
  absl::StatusOr<std::unique_ptr<WritableFile>> file =
      env_->NewWritableFile(temp);
  if (!file.ok()) return file.status();
  Sha256Stream digest;
  int64_t written = 0;
  absl::Status s = source(sha256, [&](absl::string_view data) {
    digest.Update(data);
    written += static_cast<int64_t>(data.size());
    if (size >= 0 && written > size) {
      return absl::DataLossError(absl::StrCat("blob ", sha256, ": more than ",
                                              size, " bytes received"));
    }
    return (*file)->Append(data);
  });
  if (s.ok() && size >= 0 && written != size) {
    s = absl::DataLossError(absl::StrCat("blob ", sha256, ": ", written,
                                         " bytes received, ", size,
                                         " expected"));
  }
  if (s.ok()) {
    const std::string actual = digest.HexDigest();
    if (actual != sha256) {
      s = absl::DataLossError(absl::StrCat(
          "blob ", sha256, ": the bytes received have sha256 ", actual));
    }
  }
  if (s.ok()) s = (*file)->Sync();
  if (absl::Status c = (*file)->Close(); s.ok()) s = c;
  if (s.ok()) s = env_->RenameFile(temp, path);
  if (s.ok()) s = env_->SyncDir(dir_);
  if (!s.ok()) {
    env_->DeleteFile(temp).IgnoreError();
    return s;
  }
  return absl::OkStatus();
}

}  // namespace esb::worker
