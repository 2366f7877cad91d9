// A read-only file read at offsets (POSIX pread), for data sets that are
// read in pieces: members of a tar, rows of a .npy array.
//
// Thread-safe: ReadAt may be called from several threads at once.
#ifndef ESB_CORE_DATA_RANDOM_FILE_H_
#define ESB_CORE_DATA_RANDOM_FILE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace esb::data {

class RandomAccessFile {
 public:
  // NOT_FOUND naming `path` when it does not exist; the errno's status
  // otherwise.
  static absl::StatusOr<std::unique_ptr<RandomAccessFile>> Open(
      const std::string& path);
  ~RandomAccessFile();
  RandomAccessFile(const RandomAccessFile&) = delete;
  RandomAccessFile& operator=(const RandomAccessFile&) = delete;

  const std::string& path() const { return path_; }
  // The size when opened.
  uint64_t size() const { return size_; }

  // Exactly `n` bytes from `offset` into `out`. INVALID_ARGUMENT naming the
  // file when they lie past its end (it was truncated); DATA_LOSS when
  // reading fails.
  absl::Status ReadAt(uint64_t offset, uint64_t n, std::string* out) const;

 private:
  RandomAccessFile(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}

  const std::string path_;
  const int fd_;
  const uint64_t size_;
};

}  // namespace esb::data

#endif  // ESB_CORE_DATA_RANDOM_FILE_H_
