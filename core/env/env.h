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

  virtual bool FileExists(const std::string& path) = 0;
  virtual absl::StatusOr<uint64_t> GetFileSize(const std::string& path) = 0;
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
