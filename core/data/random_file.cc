#include "core/data/random_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace esb::data {

absl::StatusOr<std::unique_ptr<RandomAccessFile>> RandomAccessFile::Open(
    const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat(path, ": cannot open"));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int error = errno;
    ::close(fd);
    return absl::ErrnoToStatus(error, absl::StrCat(path, ": cannot stat"));
  }
  return std::unique_ptr<RandomAccessFile>(
      new RandomAccessFile(path, fd, static_cast<uint64_t>(st.st_size)));
}

RandomAccessFile::~RandomAccessFile() { ::close(fd_); }

absl::Status RandomAccessFile::ReadAt(uint64_t offset, uint64_t n,
                                      std::string* out) const {
  if (offset > size_ || n > size_ - offset) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ": needs bytes ", offset, "..", offset + n,
                     " but the file holds ", size_, " (it is truncated)"));
  }
  out->resize(static_cast<size_t>(n));
  uint64_t done = 0;
  while (done < n) {
    const ssize_t got =
        ::pread(fd_, out->data() + done, static_cast<size_t>(n - done),
                static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      return absl::DataLossError(
          absl::StrCat(path_, ": read error at byte ", offset + done, ": ",
                       absl::ErrnoToStatus(errno, "").message()));
    }
    if (got == 0) {
      return absl::DataLossError(absl::StrCat(path_, ": ends at byte ",
                                              offset + done, " while reading ",
                                              offset + n, " (it shrank)"));
    }
    done += static_cast<uint64_t>(got);
  }
  return absl::OkStatus();
}

}  // namespace esb::data
