// Env: the file system as the core sees it (leveldb's habit).
//
// Everything in the core that reads or writes files takes an Env*, so that
// tests swap the real file system for an in-memory one (mem_env.h) or one
// that fails on purpose (fault_env.h). Env::Default() is the POSIX one.
//
// Errors are statuses that name the path and the failing step ("write",
// "fsync", "rename to ..."), with the errno mapped to a status code
// (NOT_FOUND, PERMISSION_DENIED, RESOURCE_EXHAUSTED for a full disk...).
//
// Thread-safety: every Env implementation is thread-safe; a WritableFile
// is used by one thread at a time.
#ifndef ESB_CORE_ENV_ENV_H_
#define ESB_CORE_ENV_ENV_H_

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace esb {

// A file being written. Data reaches the file system in Append order; Sync
// makes it durable; Close releases the file (its status reports a late
// write error). Destroying an unclosed file closes it and drops the status.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual absl::Status Append(absl::string_view data) = 0;
  virtual absl::Status Sync() = 0;
  virtual absl::Status Close() = 0;
};

// A file read from its start in pieces.
class SequentialFile {
 public:
  virtual ~SequentialFile() = default;
  // Reads up to `n` bytes into `scratch` and sets `*result` to what was
  // read (fewer than n bytes only at the end of the file, or when the file
  // system returns a short read: callers loop until an empty result).
  virtual absl::Status Read(size_t n, std::string* scratch,
                            absl::string_view* result) = 0;
};

// A file read at offsets, for data read in pieces: members of a tar, rows
// of a .npy array, the compressed bytes of an IDX file. Its size is fixed
// when it is opened.
//
// Thread-safe: ReadAt may be called from several threads at once.
class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;
  RandomAccessFile(const RandomAccessFile&) = delete;
  RandomAccessFile& operator=(const RandomAccessFile&) = delete;

  // The path it was opened with, for messages.
  const std::string& path() const { return path_; }
  // The size when opened.
  uint64_t size() const { return size_; }

  // Exactly `n` bytes from `offset` into `out` (resized to n).
  // INVALID_ARGUMENT naming the file when they lie past its end (it is
  // truncated); DATA_LOSS naming it when reading fails or the file ends
  // before them although its size said otherwise (it shrank since it was
  // opened). `out` holds no meaningful bytes after an error.
  absl::Status ReadAt(uint64_t offset, uint64_t n, std::string* out) const;

 protected:
  RandomAccessFile(std::string path, uint64_t size)
      : path_(std::move(path)), size_(size) {}

  // Reads up to `n` > 0 bytes from `offset` < size() into `dst` and sets
  // `*got` to how many were read: fewer than `n` when the file system
  // returns a short read (ReadAt asks again for the rest), 0 only when the
  // file now ends at or before `offset`. DATA_LOSS naming the file when the
  // read fails.
  virtual absl::Status ReadSome(uint64_t offset, size_t n, char* dst,
                                size_t* got) const = 0;

 private:
  const std::string path_;
  const uint64_t size_;
};

enum class FileType { kRegular, kDirectory, kOther };

class Env {
 public:
  virtual ~Env() = default;

  // The process's POSIX file system. Never null; never deleted.
  static Env* Default();

  // Creates or truncates `path` for writing.
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) = 0;
  virtual absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) = 0;
  // Opens `path` for reads at offsets; the status of the failing step
  // naming the path otherwise (NOT_FOUND when it does not exist,
  // INVALID_ARGUMENT or FAILED_PRECONDITION for a directory).
  virtual absl::StatusOr<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) = 0;

  virtual bool FileExists(const std::string& path) = 0;
  virtual absl::StatusOr<uint64_t> GetFileSize(const std::string& path) = 0;
  // What `path` is, following symbolic links; NOT_FOUND naming it when
  // nothing is there. kOther is a device, socket or pipe.
  virtual absl::StatusOr<FileType> GetFileType(const std::string& path) = 0;
  // Names (not paths) of the entries of a directory, sorted.
  virtual absl::StatusOr<std::vector<std::string>> GetChildren(
      const std::string& dir) = 0;
  // Creates `dir` and its missing parents; OK when it exists.
  virtual absl::Status CreateDirs(const std::string& dir) = 0;
  virtual absl::Status DeleteFile(const std::string& path) = 0;
  // Atomically replaces `to` with `from` (POSIX rename).
  virtual absl::Status RenameFile(const std::string& from,
                                  const std::string& to) = 0;
  // Makes the directory's entries (a rename into it) durable.
  virtual absl::Status SyncDir(const std::string& dir) = 0;
};

// The whole file, refusing one larger than `max_bytes` with
// RESOURCE_EXHAUSTED naming the path, its size and the limit.
absl::StatusOr<std::string> ReadFileToString(
    Env* env, const std::string& path,
    int64_t max_bytes = std::numeric_limits<int64_t>::max());

// Writes `bytes` to `path` so that readers see either the old file or the
// whole new one, never a part: the bytes go to a temporary file beside it
// with a name no other writer uses ("<name>.tmp.<pid>.<n>"), which is
// fsynced, closed and renamed over `path`, and then the directory is
// fsynced so the rename survives a power cut. On any failure the temporary
// file is removed and the status names the step that failed and the path.
absl::Status WriteFileAtomically(Env* env, const std::string& path,
                                 absl::string_view bytes);

// The directory part of `path` ("." when it has none).
std::string DirName(const std::string& path);

}  // namespace esb

#endif  // ESB_CORE_ENV_ENV_H_
