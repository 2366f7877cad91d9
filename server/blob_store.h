// The server's content-addressed blob store: models, data and artifacts,
// each a file named by the sha256 of its bytes under `ROOT/blobs/ab/`.
//
// An upload streams into a temporary file under `ROOT/tmp/` (memory stays
// bounded whatever the size), hashing as it goes; Commit checks the byte
// count and the digest, fsyncs the file, renames it into place and fsyncs
// the directory. A crash leaves either the whole blob or nothing but a
// temporary file, which Open removes.
//
// Thread-safe: uploads of the same blob may race; the last rename wins and
// both hold the same bytes.
#ifndef ESB_SERVER_BLOB_STORE_H_
#define ESB_SERVER_BLOB_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/env/digest.h"
#include "core/env/env.h"

namespace esb::server {

class BlobStore;

// One upload in progress. Destroying it without Commit drops the bytes.
class BlobUpload {
 public:
  ~BlobUpload();
  BlobUpload(const BlobUpload&) = delete;
  BlobUpload& operator=(const BlobUpload&) = delete;

  // RESOURCE_EXHAUSTED when the bytes would pass the declared size (the
  // store's limit is checked against the declared size at Start).
  absl::Status Append(absl::string_view data);
  int64_t bytes() const { return bytes_; }

  // INVALID_ARGUMENT when fewer bytes came than declared ("upload ended
  // after N of M bytes") or the digest differs (naming both); the file
  // system's error otherwise.
  absl::Status Commit();

 private:
  friend class BlobStore;
  BlobUpload(BlobStore* store, std::string sha256, int64_t size,
             std::string temp_path, std::unique_ptr<WritableFile> file);

  BlobStore* store_;
  std::string sha256_;
  int64_t size_;
  std::string temp_path_;
  std::unique_ptr<WritableFile> file_;
  Sha256Stream hash_;
  int64_t bytes_ = 0;
  bool committed_ = false;
};

struct BlobInfo {
  std::string sha256;
  int64_t size = 0;
};

class BlobStore {
 public:
  // Creates `root`'s folders when missing and removes temporary files a
  // crash left. `env` is not owned.
  static absl::StatusOr<std::unique_ptr<BlobStore>> Open(
      Env* env, const std::string& root, int64_t max_blob_bytes);

  // The blob's size; NOT_FOUND naming it when absent.
  absl::StatusOr<int64_t> Size(absl::string_view sha256);

  // Starts an upload of a blob of `size` bytes whose digest will be
  // `sha256`. INVALID_ARGUMENT for a malformed digest or a negative size,
  // RESOURCE_EXHAUSTED (naming the limit) when `size` is over the limit.
  absl::StatusOr<std::unique_ptr<BlobUpload>> Start(absl::string_view sha256,
                                                    int64_t size);

  // A convenience for small blobs: Start, Append, Commit.
  absl::Status Put(absl::string_view bytes, std::string* sha256);

  absl::StatusOr<std::unique_ptr<SequentialFile>> Read(
      absl::string_view sha256);
  absl::StatusOr<std::string> ReadAll(absl::string_view sha256,
                                      int64_t max_bytes);

  absl::Status Delete(absl::string_view sha256);
  // Every stored blob.
  absl::StatusOr<std::vector<BlobInfo>> List();

  std::string PathOf(absl::string_view sha256) const;
  int64_t max_blob_bytes() const { return max_blob_bytes_; }

 private:
  friend class BlobUpload;
  BlobStore(Env* env, std::string root, int64_t max_blob_bytes)
      : env_(env), root_(std::move(root)), max_blob_bytes_(max_blob_bytes) {}

  Env* env_;
  std::string root_;
  int64_t max_blob_bytes_;
};

}  // namespace esb::server

#endif  // ESB_SERVER_BLOB_STORE_H_
