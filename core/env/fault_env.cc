#include "core/env/fault_env.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace esb {

class FaultInjectionEnv::File : public WritableFile {
 public:
  File(FaultInjectionEnv* env, std::string path,
       std::unique_ptr<WritableFile> base)
      : env_(env), path_(std::move(path)), base_(std::move(base)) {}

  absl::Status Append(absl::string_view data) override {
    size_t fits = data.size();
    {
      absl::MutexLock lock(&env_->mu_);
      if (absl::Status s = env_->Alive(); !s.ok()) return s;
      if (env_->fail_writes_) {
        return absl::DataLossError(
            absl::StrCat(path_, ": write failed: Input/output error"));
      }
      if (env_->disk_bytes_ >= 0) {
        fits = std::min<size_t>(fits, static_cast<size_t>(env_->disk_bytes_));
        env_->disk_bytes_ -= static_cast<int64_t>(fits);
      }
    }
    if (absl::Status s = base_->Append(data.substr(0, fits)); !s.ok()) {
      return s;
    }
    if (fits < data.size()) {
      return absl::ResourceExhaustedError(
          absl::StrCat(path_, ": write failed: No space left on device"));
    }
    return absl::OkStatus();
  }
  absl::Status Sync() override {
    {
      absl::MutexLock lock(&env_->mu_);
      if (absl::Status s = env_->Alive(); !s.ok()) return s;
      ++env_->syncs_;
      if (env_->fail_sync_) {
        return absl::DataLossError(
            absl::StrCat(path_, ": fsync failed: Input/output error"));
      }
    }
    return base_->Sync();
  }
  absl::Status Close() override {
    if (absl::Status s = env_->AliveNow(); !s.ok()) return s;
    return base_->Close();
  }

 private:
  FaultInjectionEnv* const env_;
  const std::string path_;
  const std::unique_ptr<WritableFile> base_;
};

class FaultInjectionEnv::Reader : public SequentialFile {
 public:
  Reader(FaultInjectionEnv* env, std::string path,
         std::unique_ptr<SequentialFile> base)
      : env_(env), path_(std::move(path)), base_(std::move(base)) {}
  absl::Status Read(size_t n, std::string* scratch,
                    absl::string_view* result) override {
    absl::StatusOr<size_t> allowed = env_->ReadAllowance(path_, pos_, n);
    if (!allowed.ok()) return allowed.status();
    if (*allowed == 0 && n > 0) {
      scratch->clear();
      *result = absl::string_view();
      return absl::OkStatus();
    }
    if (absl::Status s = base_->Read(*allowed, scratch, result); !s.ok()) {
      return s;
    }
    pos_ += result->size();
    env_->CountRead(result->size());
    return absl::OkStatus();
  }

 private:
  FaultInjectionEnv* const env_;
  const std::string path_;
  const std::unique_ptr<SequentialFile> base_;
  uint64_t pos_ = 0;
};

class FaultInjectionEnv::RandomReader : public RandomAccessFile {
 public:
  RandomReader(FaultInjectionEnv* env, std::unique_ptr<RandomAccessFile> base)
      : RandomAccessFile(base->path(), base->size()),
        env_(env),
        base_(std::move(base)) {}

 protected:
  absl::Status ReadSome(uint64_t offset, size_t n, char* dst,
                        size_t* got) const override {
    absl::StatusOr<size_t> allowed = env_->ReadAllowance(path(), offset, n);
    if (!allowed.ok()) return allowed.status();
    *got = 0;
    if (*allowed == 0) return absl::OkStatus();
    std::string piece;
    if (absl::Status s = base_->ReadAt(offset, *allowed, &piece); !s.ok()) {
      return s;
    }
    piece.copy(dst, piece.size());
    *got = piece.size();
    env_->CountRead(piece.size());
    return absl::OkStatus();
  }

 private:
  FaultInjectionEnv* const env_;
  const std::unique_ptr<RandomAccessFile> base_;
};

absl::StatusOr<size_t> FaultInjectionEnv::ReadAllowance(const std::string& path,
                                                        uint64_t offset,
                                                        size_t n) const {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = Alive(); !s.ok()) return s;
  if (fail_reads_) {
    return absl::DataLossError(
        absl::StrCat(path, ": read failed: Input/output error"));
  }
  if (files_end_at_ >= 0) {
    const auto end = static_cast<uint64_t>(files_end_at_);
    n = offset >= end ? 0 : std::min<uint64_t>(n, end - offset);
  }
  if (max_read_ > 0) n = std::min(n, max_read_);
  return n;
}

void FaultInjectionEnv::CountRead(size_t n) {
  absl::MutexLock lock(&mu_);
  bytes_read_ += static_cast<int64_t>(n);
}

void FaultInjectionEnv::SetDiskSpace(int64_t bytes) {
  absl::MutexLock lock(&mu_);
  disk_bytes_ = bytes;
}
void FaultInjectionEnv::SetFailWrites(bool fail) {
  absl::MutexLock lock(&mu_);
  fail_writes_ = fail;
}
void FaultInjectionEnv::SetFailSync(bool fail) {
  absl::MutexLock lock(&mu_);
  fail_sync_ = fail;
}
void FaultInjectionEnv::SetFailRename(bool fail) {
  absl::MutexLock lock(&mu_);
  fail_rename_ = fail;
}
void FaultInjectionEnv::SetCrashAtRename(bool crash) {
  absl::MutexLock lock(&mu_);
  crash_at_rename_ = crash;
}
void FaultInjectionEnv::SetMaxReadBytes(size_t bytes) {
  absl::MutexLock lock(&mu_);
  max_read_ = bytes;
}
void FaultInjectionEnv::SetFailReads(bool fail) {
  absl::MutexLock lock(&mu_);
  fail_reads_ = fail;
}
void FaultInjectionEnv::SetFilesEndAt(int64_t bytes) {
  absl::MutexLock lock(&mu_);
  files_end_at_ = bytes;
}
int64_t FaultInjectionEnv::bytes_read() const {
  absl::MutexLock lock(&mu_);
  return bytes_read_;
}
bool FaultInjectionEnv::crashed() const {
  absl::MutexLock lock(&mu_);
  return crashed_;
}
int FaultInjectionEnv::renames() const {
  absl::MutexLock lock(&mu_);
  return renames_;
}
int FaultInjectionEnv::syncs() const {
  absl::MutexLock lock(&mu_);
  return syncs_;
}
int FaultInjectionEnv::dir_syncs() const {
  absl::MutexLock lock(&mu_);
  return dir_syncs_;
}

absl::Status FaultInjectionEnv::Alive() const {
  if (crashed_) return absl::AbortedError("the process crashed (simulated)");
  return absl::OkStatus();
}
absl::Status FaultInjectionEnv::AliveNow() const {
  absl::MutexLock lock(&mu_);
  return Alive();
}

absl::StatusOr<std::unique_ptr<WritableFile>>
FaultInjectionEnv::NewWritableFile(const std::string& path) {
  if (absl::Status s = AliveNow(); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<WritableFile>> base =
      base_->NewWritableFile(path);
  if (!base.ok()) return base.status();
  return std::make_unique<File>(this, path, *std::move(base));
}
absl::StatusOr<std::unique_ptr<SequentialFile>>
FaultInjectionEnv::NewSequentialFile(const std::string& path) {
  if (absl::Status s = AliveNow(); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<SequentialFile>> base =
      base_->NewSequentialFile(path);
  if (!base.ok()) return base.status();
  return std::make_unique<Reader>(this, path, *std::move(base));
}
absl::StatusOr<std::unique_ptr<RandomAccessFile>>
FaultInjectionEnv::NewRandomAccessFile(const std::string& path) {
  if (absl::Status s = AliveNow(); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<RandomAccessFile>> base =
      base_->NewRandomAccessFile(path);
  if (!base.ok()) return base.status();
  return std::make_unique<RandomReader>(this, *std::move(base));
}
bool FaultInjectionEnv::FileExists(const std::string& path) {
  return AliveNow().ok() && base_->FileExists(path);
}
absl::StatusOr<uint64_t> FaultInjectionEnv::GetFileSize(
    const std::string& path) {
  if (absl::Status s = AliveNow(); !s.ok()) return s;
  return base_->GetFileSize(path);
}
absl::StatusOr<FileType> FaultInjectionEnv::GetFileType(
    const std::string& path) {
  if (absl::Status s = AliveNow(); !s.ok()) return s;
  return base_->GetFileType(path);
}
absl::StatusOr<std::vector<std::string>> FaultInjectionEnv::GetChildren(
    const std::string& dir) {
  if (absl::Status s = AliveNow(); !s.ok()) return s;
  return base_->GetChildren(dir);
}
absl::Status FaultInjectionEnv::CreateDirs(const std::string& dir) {
  if (absl::Status s = AliveNow(); !s.ok()) return s;
  return base_->CreateDirs(dir);
}
absl::Status FaultInjectionEnv::DeleteFile(const std::string& path) {
  if (absl::Status s = AliveNow(); !s.ok()) return s;
  return base_->DeleteFile(path);
}
absl::Status FaultInjectionEnv::RenameFile(const std::string& from,
                                           const std::string& to) {
  {
    absl::MutexLock lock(&mu_);
    if (absl::Status s = Alive(); !s.ok()) return s;
    ++renames_;
    if (crash_at_rename_) {
      crashed_ = true;
      return Alive();
    }
    if (fail_rename_) {
      return absl::PermissionDeniedError(absl::StrCat(
          from, ": rename to ", to, " failed: Operation not permitted"));
    }
  }
  return base_->RenameFile(from, to);
}
absl::Status FaultInjectionEnv::SyncDir(const std::string& dir) {
  {
    absl::MutexLock lock(&mu_);
    if (absl::Status s = Alive(); !s.ok()) return s;
    ++dir_syncs_;
  }
  return base_->SyncDir(dir);
}

}  // namespace esb
