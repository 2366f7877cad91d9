#include "core/env/mem_env.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace esb {
namespace {

// Files are shared between the Env's table and open handles, so a file
// renamed or deleted while open behaves as on POSIX (the handle keeps it).
struct MemFile {
  absl::Mutex mu;
  std::string data ABSL_GUARDED_BY(mu);
};

class MemWritableFile : public WritableFile {
 public:
  explicit MemWritableFile(std::shared_ptr<MemFile> file)
      : file_(std::move(file)) {}
  absl::Status Append(absl::string_view data) override {
    if (closed_) return absl::FailedPreconditionError("append after close");
    absl::MutexLock lock(&file_->mu);
    file_->data.append(data.data(), data.size());
    return absl::OkStatus();
  }
  absl::Status Sync() override { return absl::OkStatus(); }
  absl::Status Close() override {
    closed_ = true;
    return absl::OkStatus();
  }

 private:
  std::shared_ptr<MemFile> file_;
  bool closed_ = false;
};

class MemSequentialFile : public SequentialFile {
 public:
  explicit MemSequentialFile(std::shared_ptr<MemFile> file)
      : file_(std::move(file)) {}
  absl::Status Read(size_t n, std::string* scratch,
                    absl::string_view* result) override {
    absl::MutexLock lock(&file_->mu);
    const size_t left = file_->data.size() - std::min(pos_, file_->data.size());
    const size_t take = std::min(n, left);
    scratch->assign(file_->data, pos_, take);
    pos_ += take;
    *result = *scratch;
    return absl::OkStatus();
  }

 private:
  std::shared_ptr<MemFile> file_;
  size_t pos_ = 0;
};

class MemRandomAccessFile : public RandomAccessFile {
 public:
  MemRandomAccessFile(std::string path, uint64_t size,
                      std::shared_ptr<MemFile> file)
      : RandomAccessFile(std::move(path), size), file_(std::move(file)) {}

 protected:
  absl::Status ReadSome(uint64_t offset, size_t n, char* dst,
                        size_t* got) const override {
    absl::MutexLock lock(&file_->mu);
    const std::string& data = file_->data;
    *got = offset >= data.size()
               ? 0
               : std::min<size_t>(n, data.size() - static_cast<size_t>(offset));
    if (*got > 0) data.copy(dst, *got, static_cast<size_t>(offset));
    return absl::OkStatus();
  }

 private:
  const std::shared_ptr<MemFile> file_;
};

// "a//b/./c/" -> "a/b/c"; absolute paths keep their leading "/".
std::string Normalize(const std::string& path) {
  std::string out;
  size_t i = 0;
  if (absl::StartsWith(path, "/")) out = "/";
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    const std::string part = path.substr(i, j - i);
    if (!part.empty() && part != ".") {
      if (!out.empty() && out.back() != '/') out += '/';
      out += part;
    }
    i = j + 1;
  }
  return out.empty() ? "." : out;
}

class MemEnv : public Env {
 public:
  MemEnv() {
    dirs_.insert("/");
    dirs_.insert(".");
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) override {
    const std::string p = Normalize(path);
    absl::MutexLock lock(&mu_);
    if (absl::Status s = ParentExists(p); !s.ok()) return s;
    if (dirs_.count(p)) return IsDir(p);
    auto file = std::make_shared<MemFile>();
    files_[p] = file;
    return std::make_unique<MemWritableFile>(std::move(file));
  }
  absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) override {
    absl::MutexLock lock(&mu_);
    absl::StatusOr<std::shared_ptr<MemFile>> file = Find(Normalize(path));
    if (!file.ok()) return file.status();
    return std::make_unique<MemSequentialFile>(*std::move(file));
  }
  absl::StatusOr<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) override {
    const std::string p = Normalize(path);
    absl::MutexLock lock(&mu_);
    if (dirs_.count(p)) return IsDir(p);
    absl::StatusOr<std::shared_ptr<MemFile>> file = Find(p);
    if (!file.ok()) return file.status();
    uint64_t size = 0;
    {
      absl::MutexLock file_lock(&(*file)->mu);
      size = (*file)->data.size();
    }
    return std::make_unique<MemRandomAccessFile>(path, size, *std::move(file));
  }
  bool FileExists(const std::string& path) override {
    const std::string p = Normalize(path);
    absl::MutexLock lock(&mu_);
    return files_.count(p) > 0 || dirs_.count(p) > 0;
  }
  absl::StatusOr<uint64_t> GetFileSize(const std::string& path) override {
    const std::string p = Normalize(path);
    absl::MutexLock lock(&mu_);
    if (dirs_.count(p)) return IsDir(p);
    absl::StatusOr<std::shared_ptr<MemFile>> file = Find(p);
    if (!file.ok()) return file.status();
    absl::MutexLock file_lock(&(*file)->mu);
    return (*file)->data.size();
  }
  absl::StatusOr<FileType> GetFileType(const std::string& path) override {
    const std::string p = Normalize(path);
    absl::MutexLock lock(&mu_);
    if (dirs_.count(p)) return FileType::kDirectory;
    if (files_.count(p)) return FileType::kRegular;
    return NotFound(p);
  }
  absl::StatusOr<std::vector<std::string>> GetChildren(
      const std::string& dir) override {
    const std::string d = Normalize(dir);
    absl::MutexLock lock(&mu_);
    if (!dirs_.count(d)) return NotFound(d);
    const std::string prefix = d == "/" ? "/" : d + "/";
    std::set<std::string> names;
    auto add = [&](const std::string& p) {
      if (!absl::StartsWith(p, prefix) || p == d) return;
      const std::string rest = p.substr(prefix.size());
      if (rest.find('/') == std::string::npos) names.insert(rest);
    };
    for (const auto& [p, f] : files_) add(p);
    for (const std::string& p : dirs_) add(p);
    return std::vector<std::string>(names.begin(), names.end());
  }
  absl::Status CreateDirs(const std::string& dir) override {
    const std::string d = Normalize(dir);
    absl::MutexLock lock(&mu_);
    for (std::string p = d;; p = DirName(p)) {
      if (files_.count(p)) {
        return absl::FailedPreconditionError(
            absl::StrCat(p, ": exists and is not a directory"));
      }
      dirs_.insert(p);
      if (DirName(p) == p || p == ".") break;
    }
    return absl::OkStatus();
  }
  absl::Status DeleteFile(const std::string& path) override {
    const std::string p = Normalize(path);
    absl::MutexLock lock(&mu_);
    if (files_.erase(p) == 0) return NotFound(p);
    return absl::OkStatus();
  }
  absl::Status RenameFile(const std::string& from,
                          const std::string& to) override {
    const std::string f = Normalize(from), t = Normalize(to);
    absl::MutexLock lock(&mu_);
    absl::StatusOr<std::shared_ptr<MemFile>> file = Find(f);
    if (!file.ok()) return file.status();
    if (absl::Status s = ParentExists(t); !s.ok()) return s;
    if (dirs_.count(t)) return IsDir(t);
    files_.erase(f);
    files_[t] = *std::move(file);
    return absl::OkStatus();
  }
  absl::Status SyncDir(const std::string& dir) override {
    const std::string d = Normalize(dir);
    absl::MutexLock lock(&mu_);
    if (!dirs_.count(d)) return NotFound(d);
    return absl::OkStatus();
  }

 private:
  static absl::Status NotFound(const std::string& p) {
    return absl::NotFoundError(absl::StrCat(p, ": No such file or directory"));
  }
  static absl::Status IsDir(const std::string& p) {
    return absl::FailedPreconditionError(absl::StrCat(p, ": is a directory"));
  }
  absl::Status ParentExists(const std::string& p) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const std::string parent = DirName(p);
    if (!dirs_.count(parent)) return NotFound(parent);
    return absl::OkStatus();
  }
  absl::StatusOr<std::shared_ptr<MemFile>> Find(const std::string& p) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = files_.find(p);
    if (it == files_.end()) return NotFound(p);
    return it->second;
  }

  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<MemFile>> files_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> dirs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<Env> NewMemEnv() { return std::make_unique<MemEnv>(); }

}  // namespace esb
