// Env::Default(): POSIX calls, each failure a status naming the path and
// the call, with errno mapped by absl::ErrnoToStatusCode (ENOSPC becomes
// RESOURCE_EXHAUSTED, ENOENT NOT_FOUND, EACCES PERMISSION_DENIED).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/env/env.h"

namespace esb {
namespace {

absl::Status PosixError(const std::string& path, absl::string_view step,
                        int err) {
  return absl::Status(
      absl::ErrnoToStatusCode(err),
      absl::StrCat(path, ": ", step, " failed: ", std::strerror(err)));
}

class PosixWritableFile : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd)
      : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  absl::Status Append(absl::string_view data) override {
    while (!data.empty()) {
      const ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return PosixError(path_, "write", errno);
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return absl::OkStatus();
  }
  absl::Status Sync() override {
    if (::fsync(fd_) != 0) return PosixError(path_, "fsync", errno);
    return absl::OkStatus();
  }
  absl::Status Close() override {
    const int fd = fd_;
    fd_ = -1;
    if (fd >= 0 && ::close(fd) != 0) return PosixError(path_, "close", errno);
    return absl::OkStatus();
  }

 private:
  const std::string path_;
  int fd_;
};

class PosixSequentialFile : public SequentialFile {
 public:
  PosixSequentialFile(std::string path, int fd)
      : path_(std::move(path)), fd_(fd) {}
  ~PosixSequentialFile() override { ::close(fd_); }

  absl::Status Read(size_t n, std::string* scratch,
                    absl::string_view* result) override {
    scratch->resize(n);
    for (;;) {
      const ssize_t got = ::read(fd_, scratch->data(), n);
      if (got < 0) {
        if (errno == EINTR) continue;
        return PosixError(path_, "read", errno);
      }
      *result = absl::string_view(scratch->data(), static_cast<size_t>(got));
      return absl::OkStatus();
    }
  }

 private:
  const std::string path_;
  const int fd_;
};

class PosixRandomAccessFile : public RandomAccessFile {
 public:
  PosixRandomAccessFile(std::string path, int fd, uint64_t size)
      : RandomAccessFile(std::move(path), size), fd_(fd) {}
  ~PosixRandomAccessFile() override { ::close(fd_); }

 protected:
  absl::Status ReadSome(uint64_t offset, size_t n, char* dst,
                        size_t* got) const override {
    for (;;) {
      const ssize_t r = ::pread(fd_, dst, n, static_cast<off_t>(offset));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        return absl::DataLossError(absl::StrCat(path(), ": read error at byte ",
                                                offset, ": ",
                                                std::strerror(errno)));
      }
      *got = static_cast<size_t>(r);
      return absl::OkStatus();
    }
  }

 private:
  const int fd_;
};

class PosixEnv : public Env {
 public:
  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) override {
    const int fd =
        ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return PosixError(path, "create", errno);
    return std::make_unique<PosixWritableFile>(path, fd);
  }
  absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) override {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return PosixError(path, "open", errno);
    return std::make_unique<PosixSequentialFile>(path, fd);
  }
  absl::StatusOr<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) override {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return PosixError(path, "open", errno);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      return PosixError(path, "stat", err);
    }
    if (S_ISDIR(st.st_mode)) {
      ::close(fd);
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": is a directory, not a file"));
    }
    return std::make_unique<PosixRandomAccessFile>(
        path, fd, static_cast<uint64_t>(st.st_size));
  }
  bool FileExists(const std::string& path) override {
    return ::access(path.c_str(), F_OK) == 0;
  }
  absl::StatusOr<uint64_t> GetFileSize(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return PosixError(path, "stat", errno);
    if (S_ISDIR(st.st_mode)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": is a directory, not a file"));
    }
    return static_cast<uint64_t>(st.st_size);
  }
  absl::StatusOr<FileType> GetFileType(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return PosixError(path, "stat", errno);
    if (S_ISREG(st.st_mode)) return FileType::kRegular;
    if (S_ISDIR(st.st_mode)) return FileType::kDirectory;
    return FileType::kOther;
  }
  absl::StatusOr<std::vector<std::string>> GetChildren(
      const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return PosixError(dir, "opendir", errno);
    std::vector<std::string> out;
    while (const dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name != "." && name != "..") out.push_back(name);
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
  }
  absl::Status CreateDirs(const std::string& dir) override {
    if (dir.empty()) return absl::OkStatus();
    struct stat st;
    if (::stat(dir.c_str(), &st) == 0) {
      if (S_ISDIR(st.st_mode)) return absl::OkStatus();
      return absl::FailedPreconditionError(
          absl::StrCat(dir, ": exists and is not a directory"));
    }
    const std::string parent = DirName(dir);
    if (parent != dir) {
      if (absl::Status s = CreateDirs(parent); !s.ok()) return s;
    }
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return PosixError(dir, "mkdir", errno);
    }
    return absl::OkStatus();
  }
  absl::Status DeleteFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return PosixError(path, "unlink", errno);
    return absl::OkStatus();
  }
  absl::Status RenameFile(const std::string& from,
                          const std::string& to) override {
    if (std::rename(from.c_str(), to.c_str()) != 0) {
      return PosixError(from, absl::StrCat("rename to ", to), errno);
    }
    return absl::OkStatus();
  }
  absl::Status SyncDir(const std::string& dir) override {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return PosixError(dir, "open directory", errno);
    const int synced = ::fsync(fd) == 0 ? 0 : errno;
    ::close(fd);
    if (synced != 0) return PosixError(dir, "fsync directory", synced);
    return absl::OkStatus();
  }
};

}  // namespace

Env* Env::Default() {
  static Env* const env = new PosixEnv;
  return env;
}

}  // namespace esb
