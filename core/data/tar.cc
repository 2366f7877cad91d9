#include "core/data/tar.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace esb::data {
namespace {

constexpr size_t kBlock = 512;

absl::Status Bad(const std::string& path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

// A NUL-terminated field of at most `n` bytes.
std::string Field(absl::string_view block, size_t at, size_t n) {
  absl::string_view f = block.substr(at, n);
  const size_t end = f.find('\0');
  return std::string{f.substr(0, end)};
}

// An octal number field (spaces and NULs around it allowed), or GNU's
// base-256 form when the first byte has its top bit set.
bool Number(absl::string_view block, size_t at, size_t n, uint64_t* out) {
  absl::string_view f = block.substr(at, n);
  if (!f.empty() && (static_cast<uint8_t>(f[0]) & 0x80) != 0) {
    uint64_t v = static_cast<uint8_t>(f[0]) & 0x7f;
    for (size_t i = 1; i < f.size(); ++i) {
      if (v > (UINT64_MAX >> 8)) return false;
      v = (v << 8) | static_cast<uint8_t>(f[i]);
    }
    *out = v;
    return true;
  }
  uint64_t v = 0;
  size_t i = 0;
  while (i < f.size() && f[i] == ' ') ++i;
  for (; i < f.size() && f[i] >= '0' && f[i] <= '7'; ++i) {
    if (v > (UINT64_MAX >> 3)) return false;
    v = (v << 3) | static_cast<uint64_t>(f[i] - '0');
  }
  for (; i < f.size(); ++i) {
    if (f[i] != ' ' && f[i] != '\0') return false;
  }
  *out = v;
  return true;
}

uint64_t Checksum(absl::string_view block) {
  uint64_t sum = 0;
  for (size_t i = 0; i < kBlock; ++i) {
    sum +=
        (i >= 148 && i < 156) ? uint8_t{' '} : static_cast<uint8_t>(block[i]);
  }
  return sum;
}

// The "path" record of a pax extended header ("<len> path=<value>\n"...).
std::string PaxPath(absl::string_view data) {
  std::string path;
  while (!data.empty()) {
    const size_t space = data.find(' ');
    uint64_t len = 0;
    if (space == absl::string_view::npos ||
        !absl::SimpleAtoi(data.substr(0, space), &len) || len <= space ||
        len > data.size()) {
      break;
    }
    absl::string_view record = data.substr(space + 1, len - space - 2);
    if (absl::StartsWith(record, "path=")) path = std::string{record.substr(5)};
    data.remove_prefix(len);
  }
  return path;
}

// Writes the ustar header of one member into `block` (512 bytes).
absl::Status Header(const std::string& name, bool is_dir, uint64_t size,
                    std::string* block) {
  block->assign(kBlock, '\0');
  std::string prefix;
  std::string base = name;
  if (base.size() > 100) {
    // Split at a '/' so that the prefix takes at most 155 bytes and the
    // name at most 100.
    size_t cut = base.rfind('/', std::min<size_t>(155, base.size() - 1));
    while (cut != std::string::npos && base.size() - cut - 1 > 100) {
      cut = std::string::npos;
    }
    if (cut == std::string::npos || cut == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", name,
                       "' is too long a path for a ustar archive (at most 155 "
                       "bytes of folders and 100 of name)"));
    }
    prefix = base.substr(0, cut);
    base = base.substr(cut + 1);
  }
  auto put = [&](size_t at, absl::string_view text) {
    std::memcpy(block->data() + at, text.data(), text.size());
  };
  put(0, base);
  put(100, is_dir ? "0000755" : "0000644");
  put(108, "0000000");
  put(116, "0000000");
  put(124, absl::StrFormat("%011o", size));
  put(136, "00000000000");
  (*block)[156] = is_dir ? '5' : '0';
  put(257, "ustar");
  put(263, "00");
  put(329, "0000000");
  put(337, "0000000");
  put(345, prefix);
  put(148, absl::StrFormat("%06o", Checksum(*block)));
  (*block)[154] = '\0';
  (*block)[155] = ' ';
  return absl::OkStatus();
}

}  // namespace

bool PathLess(absl::string_view a, absl::string_view b) {
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    if (a[i] == b[i]) continue;
    if (a[i] == '/') return true;
    if (b[i] == '/') return false;
    return static_cast<uint8_t>(a[i]) < static_cast<uint8_t>(b[i]);
  }
  return a.size() < b.size();
}

bool HasImageExtension(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  return absl::EndsWith(lower, ".png") || absl::EndsWith(lower, ".jpg") ||
         absl::EndsWith(lower, ".jpeg");
}

bool LooksLikeTar(absl::string_view header) {
  return header.size() >= 262 && header.substr(257, 5) == "ustar";
}

absl::StatusOr<std::vector<TarMember>> ListTar(const RandomAccessFile& file) {
  const std::string& path = file.path();
  std::vector<TarMember> members;
  std::string block;
  std::string long_name;  // From a GNU 'L' or pax 'x' member.
  uint64_t at = 0;
  while (true) {
    if (file.size() - at < kBlock) {
      // GNU tar and bsdtar end with zero blocks; a missing end is tolerated
      // only at a block boundary, as tar itself does.
      if (at == file.size()) break;
      return Bad(path, absl::StrCat("ends inside the header at byte ", at,
                                    " (the tar is truncated)"));
    }
    if (absl::Status s = file.ReadAt(at, kBlock, &block); !s.ok()) return s;
    if (std::all_of(block.begin(), block.end(),
                    [](char c) { return c == '\0'; })) {
      break;
    }
    uint64_t stored = 0;
    uint64_t size = 0;
    if (!Number(block, 148, 8, &stored) || stored != Checksum(block)) {
      return Bad(path, absl::StrCat("the tar header at byte ", at,
                                    " has a bad checksum (not a tar, or "
                                    "corrupt)"));
    }
    if (!Number(block, 124, 12, &size)) {
      return Bad(
          path, absl::StrCat("the tar header at byte ", at, " has a bad size"));
    }
    const uint64_t data_at = at + kBlock;
    if (size > file.size() - data_at) {
      return Bad(path, absl::StrCat("member '", Field(block, 0, 100),
                                    "' needs ", size, " bytes from byte ",
                                    data_at, " but the file holds ",
                                    file.size(), " (the tar is truncated)"));
    }
    const char type = block[156];
    std::string name = Field(block, 0, 100);
    const std::string prefix = Field(block, 345, 155);
    if (LooksLikeTar(block) && !prefix.empty() &&
        block.substr(257, 6) == std::string("ustar\0", 6)) {
      name = absl::StrCat(prefix, "/", name);
    }
    if (type == 'L' || type == 'x') {
      if (size > (uint64_t{1} << 20)) {
        return Bad(path, absl::StrCat("the extended header at byte ", at,
                                      " is larger than 1 MiB"));
      }
      std::string data;
      if (absl::Status s = file.ReadAt(data_at, size, &data); !s.ok()) {
        return s;
      }
      long_name = type == 'L' ? Field(data, 0, data.size()) : PaxPath(data);
    } else if (type == '0' || type == '\0' || type == '7' || type == '5') {
      TarMember m;
      m.path = long_name.empty() ? name : long_name;
      m.is_dir = type == '5' || absl::EndsWith(m.path, "/");
      m.offset = data_at;
      m.size = size;
      members.push_back(std::move(m));
      long_name.clear();
    } else {
      long_name.clear();  // A link or device: skipped with its long name.
    }
    at = data_at + (size + kBlock - 1) / kBlock * kBlock;
    if (at > file.size()) at = file.size();
  }
  return members;
}

absl::StatusOr<std::vector<std::string>> ListImageTree(const std::string& dir,
                                                       Env* env) {
  absl::StatusOr<FileType> top = env->GetFileType(dir);
  if (!top.ok() || *top != FileType::kDirectory) {
    return absl::InvalidArgumentError(absl::StrCat(dir, ": not a folder"));
  }
  auto cannot_list = [&](const absl::Status& s) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, ": cannot list: ", s.message()));
  };
  std::vector<std::string> files;
  // Folders still to list, relative to `dir` ("" for itself), and their
  // depth below it.
  std::vector<std::pair<std::string, int>> pending = {{"", 0}};
  while (!pending.empty()) {
    const auto [relative, depth] = pending.back();
    pending.pop_back();
    const std::string folder =
        relative.empty() ? dir : absl::StrCat(dir, "/", relative);
    absl::StatusOr<std::vector<std::string>> names = env->GetChildren(folder);
    if (!names.ok()) return cannot_list(names.status());
    for (const std::string& name : *names) {
      if (absl::StartsWith(name, ".")) continue;
      absl::StatusOr<FileType> type =
          env->GetFileType(absl::StrCat(folder, "/", name));
      if (!type.ok()) return cannot_list(type.status());
      const std::string path =
          relative.empty() ? name : absl::StrCat(relative, "/", name);
      if (*type == FileType::kDirectory) {
        // Symbolic links are followed, so a loop of them nests forever.
        if (depth + 1 > kMaxImageTreeDepth) {
          return absl::InvalidArgumentError(absl::StrCat(
              dir, ": folders nest deeper than ", kMaxImageTreeDepth,
              " levels at '", path, "' (a loop of symbolic links?)"));
        }
        files.push_back(path + "/");
        pending.emplace_back(path, depth + 1);
      } else if (*type == FileType::kRegular && HasImageExtension(name)) {
        files.push_back(path);
      }
    }
  }
  std::sort(files.begin(), files.end(), PathLess);
  return files;
}

absl::Status WriteImageTar(const std::string& dir, Env* env,
                           const std::string& tar_path) {
  absl::StatusOr<std::vector<std::string>> tree = ListImageTree(dir, env);
  if (!tree.ok()) return tree.status();
  const std::string tmp = absl::StrCat(tar_path, ".tmp");
  absl::StatusOr<std::unique_ptr<WritableFile>> out = env->NewWritableFile(tmp);
  if (!out.ok()) return out.status();
  auto write = [&]() -> absl::Status {
    std::string block;
    uint64_t written = 0;
    if (absl::Status s = Header("./", true, 0, &block); !s.ok()) return s;
    if (absl::Status s = (*out)->Append(block); !s.ok()) return s;
    written += block.size();
    for (const std::string& entry : *tree) {
      const bool is_dir = absl::EndsWith(entry, "/");
      std::string bytes;
      if (!is_dir) {
        absl::StatusOr<std::string> read =
            ReadFileToString(env, absl::StrCat(dir, "/", entry));
        if (!read.ok()) return read.status();
        bytes = *std::move(read);
      }
      if (absl::Status s =
              Header(absl::StrCat("./", entry), is_dir, bytes.size(), &block);
          !s.ok()) {
        return s;
      }
      bytes.append((kBlock - bytes.size() % kBlock) % kBlock, '\0');
      if (absl::Status s = (*out)->Append(block); !s.ok()) return s;
      if (absl::Status s = (*out)->Append(bytes); !s.ok()) return s;
      written += block.size() + bytes.size();
    }
    // The end: two zero blocks, padded to GNU tar's 10240-byte record.
    constexpr uint64_t kRecord = 20 * kBlock;
    const uint64_t end =
        (written + 2 * kBlock + kRecord - 1) / kRecord * kRecord;
    return (*out)->Append(std::string(end - written, '\0'));
  };
  absl::Status s = write();
  if (s.ok()) s = (*out)->Sync();
  const absl::Status closed = (*out)->Close();
  if (s.ok()) s = closed;
  if (s.ok()) s = env->RenameFile(tmp, tar_path);
  if (!s.ok()) env->DeleteFile(tmp).IgnoreError();
  return s;
}

}  // namespace esb::data
