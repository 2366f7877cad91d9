#include "server/blob_store.h"

#include <unistd.h>

#include <atomic>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace esb::server {
namespace {

std::atomic<uint64_t> next_upload{0};

absl::Status CheckName(absl::string_view sha256) {
  if (IsSha256Hex(sha256)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrFormat(
      "blob name '%s' is not a sha256 (64 lowercase hex characters)",
      absl::CHexEscape(sha256.substr(0, 80))));
}

}  // namespace

BlobUpload::BlobUpload(BlobStore* store, std::string sha256, int64_t size,
                       std::string temp_path,
                       std::unique_ptr<WritableFile> file)
    : store_(store),
      sha256_(std::move(sha256)),
      size_(size),
      temp_path_(std::move(temp_path)),
      file_(std::move(file)) {}

BlobUpload::~BlobUpload() {
  if (committed_) return;
  if (file_ != nullptr) file_->Close().IgnoreError();
  store_->env_->DeleteFile(temp_path_).IgnoreError();
}

absl::Status BlobUpload::Append(absl::string_view data) {
  if (committed_ || file_ == nullptr) {
    return absl::FailedPreconditionError("upload already finished");
  }
  if (static_cast<int64_t>(data.size()) > size_ - bytes_) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "upload of blob %s sends more than the %d bytes it declared", sha256_,
        size_));
  }
  if (absl::Status s = file_->Append(data); !s.ok()) return s;
  hash_.Update(data);
  bytes_ += static_cast<int64_t>(data.size());
  return absl::OkStatus();
}

absl::Status BlobUpload::Commit() {
  if (committed_ || file_ == nullptr) {
    return absl::FailedPreconditionError("upload already finished");
  }
  if (bytes_ != size_) {
    return absl::InvalidArgumentError(
        absl::StrFormat("upload of blob %s ended after %d of %d bytes", sha256_,
                        bytes_, size_));
  }
  const std::string got = hash_.HexDigest();
  if (got != sha256_) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "upload's sha256 is %s, not the declared %s", got, sha256_));
  }
  if (absl::Status s = file_->Sync(); !s.ok()) return s;
  absl::Status closed = file_->Close();
  file_.reset();
  if (!closed.ok()) return closed;
  const std::string path = store_->PathOf(sha256_);
  const std::string dir = DirName(path);
  if (absl::Status s = store_->env_->CreateDirs(dir); !s.ok()) return s;
  if (absl::Status s = store_->env_->RenameFile(temp_path_, path); !s.ok()) {
    return s;
  }
  committed_ = true;
  return store_->env_->SyncDir(dir);
}

absl::StatusOr<std::unique_ptr<BlobStore>> BlobStore::Open(
    Env* env, const std::string& root, int64_t max_blob_bytes) {
  auto store = absl::WrapUnique(new BlobStore(env, root, max_blob_bytes));
  const std::string tmp = root + "/tmp";
  for (const std::string& dir : {tmp, root + "/blobs"}) {
    if (absl::Status s = env->CreateDirs(dir); !s.ok()) return s;
  }
  absl::StatusOr<std::vector<std::string>> left = env->GetChildren(tmp);
  if (!left.ok()) return left.status();
  for (const std::string& name : *left) {
    absl::Status s = env->DeleteFile(absl::StrCat(tmp, "/", name));
    if (!s.ok()) return s;
  }
  return store;
}

std::string BlobStore::PathOf(absl::string_view sha256) const {
  return absl::StrCat(root_, "/blobs/", sha256.substr(0, 2), "/", sha256);
}

absl::StatusOr<int64_t> BlobStore::Size(absl::string_view sha256) {
  if (absl::Status s = CheckName(sha256); !s.ok()) return s;
  const std::string path = PathOf(sha256);
  if (!env_->FileExists(path)) {
    return absl::NotFoundError(absl::StrCat("no blob ", sha256));
  }
  absl::StatusOr<uint64_t> size = env_->GetFileSize(path);
  if (!size.ok()) return size.status();
  return static_cast<int64_t>(*size);
}

absl::StatusOr<std::unique_ptr<BlobUpload>> BlobStore::Start(
    absl::string_view sha256, int64_t size) {
  if (absl::Status s = CheckName(sha256); !s.ok()) return s;
  if (size < 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("blob %s declares a negative size %d", sha256, size));
  }
  if (size > max_blob_bytes_) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "blob %s of %d bytes is over the server's limit of %d bytes "
        "(esb-server --max-upload-bytes)",
        sha256, size, max_blob_bytes_));
  }
  const std::string temp =
      absl::StrFormat("%s/tmp/%s.%d.%d", root_, sha256, getpid(),
                      next_upload.fetch_add(1, std::memory_order_relaxed));
  absl::StatusOr<std::unique_ptr<WritableFile>> file =
      env_->NewWritableFile(temp);
  if (!file.ok()) return file.status();
  return absl::WrapUnique(
      new BlobUpload(this, std::string{sha256}, size, temp, *std::move(file)));
}

absl::Status BlobStore::Put(absl::string_view bytes, std::string* sha256) {
  *sha256 = Sha256Hex(bytes);
  absl::StatusOr<std::unique_ptr<BlobUpload>> upload =
      Start(*sha256, static_cast<int64_t>(bytes.size()));
  if (!upload.ok()) return upload.status();
  if (absl::Status s = (*upload)->Append(bytes); !s.ok()) return s;
  return (*upload)->Commit();
}

absl::StatusOr<std::unique_ptr<SequentialFile>> BlobStore::Read(
    absl::string_view sha256) {
  if (absl::Status s = CheckName(sha256); !s.ok()) return s;
  const std::string path = PathOf(sha256);
  if (!env_->FileExists(path)) {
    return absl::NotFoundError(absl::StrCat("no blob ", sha256));
  }
  return env_->NewSequentialFile(path);
}

absl::StatusOr<std::string> BlobStore::ReadAll(absl::string_view sha256,
                                               int64_t max_bytes) {
  if (absl::Status s = CheckName(sha256); !s.ok()) return s;
  const std::string path = PathOf(sha256);
  if (!env_->FileExists(path)) {
    return absl::NotFoundError(absl::StrCat("no blob ", sha256));
  }
  return ReadFileToString(env_, path, max_bytes);
}

absl::Status BlobStore::Delete(absl::string_view sha256) {
  if (absl::Status s = CheckName(sha256); !s.ok()) return s;
  return env_->DeleteFile(PathOf(sha256));
}

absl::StatusOr<std::vector<BlobInfo>> BlobStore::List() {
  std::vector<BlobInfo> blobs;
  const std::string top = root_ + "/blobs";
  absl::StatusOr<std::vector<std::string>> shards = env_->GetChildren(top);
  if (!shards.ok()) return shards.status();
  for (const std::string& shard : *shards) {
    absl::StatusOr<std::vector<std::string>> names =
        env_->GetChildren(absl::StrCat(top, "/", shard));
    if (!names.ok()) return names.status();
    for (const std::string& name : *names) {
      if (!IsSha256Hex(name)) continue;
      absl::StatusOr<int64_t> size = Size(name);
      if (!size.ok()) return size.status();
      blobs.push_back({name, *size});
    }
  }
  return blobs;
}

}  // namespace esb::server
