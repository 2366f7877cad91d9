// BlobCache: the worker's local copies of the server's blobs, by content.
//
// A blob named by sha256 S lives at <dir>/S once it is complete and its
// digest checked, so a path under <dir> is always a whole, verified blob:
// bytes are streamed to a temporary file beside it while their digest is
// computed, and only when the byte count and the digest match the name is
// the file fsynced and renamed into place. A blob already in the cache is
// never fetched again.
//
// Thread-safe: two slots asking for the same blob at once fetch it once
// (the second waits for the first).
#ifndef ESB_WORKER_BLOB_CACHE_H_
#define ESB_WORKER_BLOB_CACHE_H_

#include <cstdint>
#include <functional>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "core/env/env.h"

namespace esb::worker {

// Where the bytes of a blob come from: calls `sink` with successive pieces
// of blob `sha256` until the end, and returns the first error of the
// transfer or of `sink`.
using BlobSource = std::function<absl::Status(
    const std::string& sha256,
    const std::function<absl::Status(absl::string_view)>& sink)>;

class BlobCache {
 public:
  // `env` is not owned and outlives the cache.
  BlobCache(std::string dir, Env* env);

  // The path of blob `sha256` of `size` bytes (size < 0: any), fetched from
  // `source` unless the cache holds it. INVALID_ARGUMENT for a name that is
  // not 64 lowercase hex digits, DATA_LOSS when the bytes fetched do not
  // match the name or the size (nothing is kept), else the source's or the
  // file system's error.
  absl::StatusOr<std::string> Get(const std::string& sha256, int64_t size,
                                  const BlobSource& source);

  // Where blob `sha256` is kept (whether or not it is there).
  std::string PathOf(const std::string& sha256) const;

 private:
  absl::Status Fetch(const std::string& sha256, int64_t size,
                     const BlobSource& source);

  const std::string dir_;
  Env* const env_;
  absl::Mutex mu_;
  absl::CondVar fetched_;  // Signalled when `fetching_` loses a name.
  std::set<std::string> fetching_ ABSL_GUARDED_BY(mu_);
};

// True when `s` is 64 lowercase hex digits.
bool IsSha256Hex(absl::string_view s);

}  // namespace esb::worker

#endif  // ESB_WORKER_BLOB_CACHE_H_
