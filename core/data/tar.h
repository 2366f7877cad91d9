// Tar archives of image folders: the job service uploads a folder as one
// tar blob, and the data set reads its images from it in place.
//
// Read: POSIX ustar as `tar cf` writes it (GNU and pax flavours too): a
// 512-byte header per member (name at 0, octal size at 124, checksum at
// 148, type at 156, "ustar" at 257, name prefix at 345), the data padded to
// 512 bytes, two zero blocks at the end. GNU long names ('L') and pax
// "path" records ('x') are honoured; members other than regular files and
// folders (links, devices) are skipped.
//
// Write: WriteImageTar packs a folder's images and folders in sorted order
// as ustar with every header field fixed (mtime 0, uid and gid 0, no owner
// names, mode 0644 for files and 0755 for folders), so the same folder
// always gives the same bytes; the layout is that of
//   tar --format=ustar --sort=name --mtime=@0 --owner=0 --group=0
//       --numeric-owner -C DIR -cf OUT.tar .
//
// Functions are thread-safe.
#ifndef ESB_CORE_DATA_TAR_H_
#define ESB_CORE_DATA_TAR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/env/env.h"

namespace esb::data {

struct TarMember {
  std::string path;  // As stored, e.g. "./cat/001.jpg" or "cat/".
  bool is_dir = false;
  uint64_t offset = 0;  // The data's first byte in the archive.
  uint64_t size = 0;
};

// True when `header` (the file's first 512 bytes) is a tar header.
bool LooksLikeTar(absl::string_view header);

// The members of the archive `file` (opened with Env::NewRandomAccessFile),
// in archive order. INVALID_ARGUMENT naming the file when a header's
// checksum or size is wrong or a member runs past the end of the file;
// the file's read errors otherwise.
absl::StatusOr<std::vector<TarMember>> ListTar(const RandomAccessFile& file);

// Folders nested deeper than this below an image tree's top are refused.
inline constexpr int kMaxImageTreeDepth = 100;

// The image files (.png, .jpg, .jpeg, any case; regular files, symbolic
// links followed) and the folders under `dir` (empty ones too: a class
// without images keeps its index), hidden names skipped, relative to
// `dir`, sorted by PathLess; folders end with '/'. Listed through `env`.
// INVALID_ARGUMENT when `dir` is not a folder, cannot be listed or nests
// deeper than kMaxImageTreeDepth.
absl::StatusOr<std::vector<std::string>> ListImageTree(
    const std::string& dir, Env* env = Env::Default());

// Packs ListImageTree(dir, env) as a ustar archive (see above) into
// `tar_path` through `env`, written to "<tar_path>.tmp" and renamed over it, so
// that the path holds a complete archive or what it held before.
// INVALID_ARGUMENT for a path too long for ustar (prefix 155 + name 100);
// the Env's errors naming the step otherwise.
absl::Status WriteImageTar(const std::string& dir, Env* env,
                           const std::string& tar_path);

// Path order of trees: component by component ('/' sorts before any other
// byte), so "a/x" comes before "a-b/y" as in GNU tar --sort=name.
bool PathLess(absl::string_view a, absl::string_view b);

// True for names ending in .png, .jpg or .jpeg (any case).
bool HasImageExtension(absl::string_view name);

}  // namespace esb::data

#endif  // ESB_CORE_DATA_TAR_H_
