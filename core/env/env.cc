#include "core/env/env.h"

#include <unistd.h>

#include <atomic>

#include "absl/strings/str_cat.h"

namespace esb {

std::string DirName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

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
    size_t got = 0;
    if (absl::Status s = ReadSome(offset + done, static_cast<size_t>(n - done),
                                  out->data() + done, &got);
        !s.ok()) {
      return s;
    }
    if (got == 0) {
      return absl::DataLossError(absl::StrCat(path_, ": ends at byte ",
                                              offset + done, " while reading ",
                                              offset + n, " (it shrank)"));
    }
    done += got;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFileToString(Env* env, const std::string& path,
                                             int64_t max_bytes) {
  absl::StatusOr<uint64_t> size = env->GetFileSize(path);
  if (!size.ok()) return size.status();
  if (*size > static_cast<uint64_t>(max_bytes)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        path, ": ", *size, " bytes, over the limit of ", max_bytes, " bytes"));
  }
  absl::StatusOr<std::unique_ptr<SequentialFile>> file =
      env->NewSequentialFile(path);
  if (!file.ok()) return file.status();
  std::string out;
  out.reserve(*size);
  std::string scratch;
  constexpr size_t kChunk = size_t{1} << 20;
  for (;;) {
    absl::string_view piece;
    if (absl::Status s = (*file)->Read(kChunk, &scratch, &piece); !s.ok()) {
      return s;
    }
    if (piece.empty()) break;
    if (out.size() + piece.size() > static_cast<uint64_t>(max_bytes)) {
      return absl::ResourceExhaustedError(absl::StrCat(
          path, ": grew past the limit of ", max_bytes, " bytes while read"));
    }
    out.append(piece.data(), piece.size());
  }
  return out;
}

absl::Status WriteFileAtomically(Env* env, const std::string& path,
                                 absl::string_view bytes) {
  static std::atomic<uint64_t> counter{0};
  const std::string tmp =
      absl::StrCat(path, ".tmp.", ::getpid(), ".", counter.fetch_add(1));
  // Every failure removes the temporary file; the final path is untouched.
  auto fail = [&](const absl::Status& s) {
    env->DeleteFile(tmp).IgnoreError();
    return s;
  };
  absl::StatusOr<std::unique_ptr<WritableFile>> file =
      env->NewWritableFile(tmp);
  if (!file.ok()) return file.status();
  if (absl::Status s = (*file)->Append(bytes); !s.ok()) return fail(s);
  if (absl::Status s = (*file)->Sync(); !s.ok()) return fail(s);
  if (absl::Status s = (*file)->Close(); !s.ok()) return fail(s);
  if (absl::Status s = env->RenameFile(tmp, path); !s.ok()) return fail(s);
  return env->SyncDir(DirName(path));
}

}  // namespace esb
