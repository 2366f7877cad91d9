#include "fpga_agent/sysfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace esb::agent {
namespace {

constexpr size_t kMaxAttributeBytes = size_t{64} << 10;

}  // namespace

absl::Status ErrnoStatus(int err, absl::string_view what,
                         const std::string& path) {
  return absl::Status(absl::ErrnoToStatusCode(err),
                      absl::StrCat(what, " ", path, ": ", std::strerror(err)));
}

absl::StatusOr<std::string> ReadAttribute(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open", path);
  std::string text;
  char chunk[4096];
  for (;;) {
    const ssize_t n = ::read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return ErrnoStatus(err, "read", path);
    }
    if (n == 0) break;
    text.append(chunk, static_cast<size_t>(n));
    if (text.size() > kMaxAttributeBytes) {
      ::close(fd);
      return absl::ResourceExhaustedError(absl::StrCat(
          path, " is larger than an attribute (", text.size(), " bytes read)"));
    }
  }
  ::close(fd);
  absl::StripTrailingAsciiWhitespace(&text);
  return text;
}

absl::StatusOr<uint64_t> ReadUintAttribute(const std::string& path) {
  absl::StatusOr<std::string> text = ReadAttribute(path);
  if (!text.ok()) return text.status();
  absl::string_view digits = absl::StripAsciiWhitespace(*text);
  uint64_t value = 0;
  bool ok = false;
  if (absl::ConsumePrefix(&digits, "0x") ||
      absl::ConsumePrefix(&digits, "0X")) {
    ok = !digits.empty() && absl::SimpleHexAtoi(digits, &value);
  } else {
    ok = absl::SimpleAtoi(digits, &value);
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " holds '", *text, "', not a number"));
  }
  return value;
}

absl::StatusOr<int64_t> ReadIntAttribute(const std::string& path) {
  absl::StatusOr<std::string> text = ReadAttribute(path);
  if (!text.ok()) return text.status();
  int64_t value = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &value)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " holds '", *text, "', not a number"));
  }
  return value;
}

absl::Status WriteAttribute(const std::string& path, absl::string_view value) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open", path);
  ssize_t n = 0;
  do {
    n = ::write(fd, value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  const int err = errno;
  if (::close(fd) != 0 && n >= 0) return ErrnoStatus(errno, "close", path);
  if (n < 0) {
    return ErrnoStatus(err, absl::StrCat("write '", value, "' to"), path);
  }
  if (static_cast<size_t>(n) != value.size()) {
    return absl::DataLossError(absl::StrCat("short write to ", path, ": ", n,
                                            " of ", value.size(), " bytes"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ListNumbered(
    const std::string& dir, absl::string_view prefix) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return ErrnoStatus(errno, "list", dir);
  std::vector<std::pair<uint64_t, std::string>> found;
  while (const struct dirent* entry = ::readdir(d)) {
    absl::string_view name(entry->d_name);
    if (!absl::ConsumePrefix(&name, prefix)) continue;
    uint64_t index = 0;
    if (name.empty() || !absl::SimpleAtoi(name, &index)) continue;
    found.emplace_back(index, entry->d_name);
  }
  ::closedir(d);
  std::sort(found.begin(), found.end());
  std::vector<std::string> names;
  names.reserve(found.size());
  for (auto& [index, name] : found) names.push_back(std::move(name));
  return names;
}

std::string JoinPath(absl::string_view root, absl::string_view rest) {
  while (!root.empty() && root.back() == '/') root.remove_suffix(1);
  while (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
  return absl::StrCat(root, "/", rest);
}

}  // namespace esb::agent
