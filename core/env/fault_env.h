// An Env that forwards to another and fails on purpose, for tests of what
// the code does when the disk fills, a write or a rename fails, reads come
// back short or fail, a file is cut while it is read, or the process dies
// between writing a file and renaming it.
//
// Faults are set with the setters at any time and apply to later calls.
// A simulated crash freezes the file system as the dying process left it:
// the call that crashes and every later call fail with ABORTED, and the
// base Env shows what a restarted process would find.
//
// Thread-safe.
#ifndef ESB_CORE_ENV_FAULT_ENV_H_
#define ESB_CORE_ENV_FAULT_ENV_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "core/env/env.h"

namespace esb {

class FaultInjectionEnv : public Env {
 public:
  // `base` must outlive this Env.
  explicit FaultInjectionEnv(Env* base) : base_(base) {}

  // The disk holds only `bytes` more bytes of appended data (-1: no limit);
  // an Append past it writes what fits and fails with RESOURCE_EXHAUSTED
  // ("No space left on device").
  void SetDiskSpace(int64_t bytes) ABSL_LOCKS_EXCLUDED(mu_);
  // Every Append fails with DATA_LOSS (an I/O error) and writes nothing.
  void SetFailWrites(bool fail) ABSL_LOCKS_EXCLUDED(mu_);
  // Every file Sync fails with DATA_LOSS.
  void SetFailSync(bool fail) ABSL_LOCKS_EXCLUDED(mu_);
  // Every RenameFile fails with PERMISSION_DENIED and renames nothing.
  void SetFailRename(bool fail) ABSL_LOCKS_EXCLUDED(mu_);
  // The process dies at the next RenameFile, before it renames.
  void SetCrashAtRename(bool crash) ABSL_LOCKS_EXCLUDED(mu_);
  // Reads return at most `bytes` bytes per call (0: as the base returns):
  // short reads, which SequentialFile's callers and ReadAt loop over.
  void SetMaxReadBytes(size_t bytes) ABSL_LOCKS_EXCLUDED(mu_);
  // Every read of an open file (SequentialFile::Read, ReadAt) fails with
  // DATA_LOSS naming the file (an I/O error) and reads nothing.
  void SetFailReads(bool fail) ABSL_LOCKS_EXCLUDED(mu_);
  // Reads find nothing from byte `bytes` of any file on (-1: no cut), as if
  // the file had been cut there after it was opened: a SequentialFile ends
  // there, a RandomAccessFile keeps the size it was opened with and its
  // ReadAt past the cut fails with DATA_LOSS.
  void SetFilesEndAt(int64_t bytes) ABSL_LOCKS_EXCLUDED(mu_);

  bool crashed() const ABSL_LOCKS_EXCLUDED(mu_);
  // Calls of each kind seen so far (before any fault was applied).
  int renames() const ABSL_LOCKS_EXCLUDED(mu_);
  int syncs() const ABSL_LOCKS_EXCLUDED(mu_);
  int dir_syncs() const ABSL_LOCKS_EXCLUDED(mu_);
  // Bytes that reads of open files have returned so far.
  int64_t bytes_read() const ABSL_LOCKS_EXCLUDED(mu_);

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) override;
  absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) override;
  absl::StatusOr<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) override;
  bool FileExists(const std::string& path) override;
  absl::StatusOr<uint64_t> GetFileSize(const std::string& path) override;
  absl::StatusOr<FileType> GetFileType(const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> GetChildren(
      const std::string& dir) override;
  absl::Status CreateDirs(const std::string& dir) override;
  absl::Status DeleteFile(const std::string& path) override;
  absl::Status RenameFile(const std::string& from,
                          const std::string& to) override;
  absl::Status SyncDir(const std::string& dir) override;

 private:
  class File;
  class Reader;
  class RandomReader;
  // How much of a read of `n` bytes at `offset` of `path` may be done now
  // (after the faults): DATA_LOSS when reads fail, ABORTED once crashed.
  absl::StatusOr<size_t> ReadAllowance(const std::string& path, uint64_t offset,
                                       size_t n) const ABSL_LOCKS_EXCLUDED(mu_);
  void CountRead(size_t n) ABSL_LOCKS_EXCLUDED(mu_);
  // ABORTED once crashed, else OK.
  absl::Status Alive() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status AliveNow() const ABSL_LOCKS_EXCLUDED(mu_);

  Env* const base_;
  mutable absl::Mutex mu_;
  int64_t disk_bytes_ ABSL_GUARDED_BY(mu_) = -1;
  bool fail_writes_ ABSL_GUARDED_BY(mu_) = false;
  bool fail_sync_ ABSL_GUARDED_BY(mu_) = false;
  bool fail_rename_ ABSL_GUARDED_BY(mu_) = false;
  bool crash_at_rename_ ABSL_GUARDED_BY(mu_) = false;
  bool crashed_ ABSL_GUARDED_BY(mu_) = false;
  size_t max_read_ ABSL_GUARDED_BY(mu_) = 0;
  bool fail_reads_ ABSL_GUARDED_BY(mu_) = false;
  int64_t files_end_at_ ABSL_GUARDED_BY(mu_) = -1;
  int64_t bytes_read_ ABSL_GUARDED_BY(mu_) = 0;
  int renames_ ABSL_GUARDED_BY(mu_) = 0;
  int syncs_ ABSL_GUARDED_BY(mu_) = 0;
  int dir_syncs_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace esb

#endif  // ESB_CORE_ENV_FAULT_ENV_H_
