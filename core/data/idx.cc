#include "core/data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"

namespace esb::data {
namespace {

// Headers announcing more than this are rejected outright.
constexpr uint64_t kMaxBytes = uint64_t{1} << 40;
// Data is read in steps that grow with what has arrived (inflate takes an
// unsigned count, so at most kMaxStep at once).
constexpr size_t kMinStep = size_t{1} << 20;
constexpr size_t kMaxStep = size_t{1} << 30;
// Bytes are read from the file this many at a time (raw data in pieces of
// it, compressed data in chunks of it).
constexpr uint64_t kInputChunk = uint64_t{1} << 17;

absl::Status Bad(const std::string& path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

absl::string_view TypeName(uint8_t type) {
  switch (type) {
    case 0x08:
      return "unsigned byte";
    case 0x09:
      return "signed byte";
    case 0x0B:
      return "int16";
    case 0x0C:
      return "int32";
    case 0x0D:
      return "float32";
    case 0x0E:
      return "float64";
    default:
      return "unknown";
  }
}

// "2 x 28 x 28 = 1568 bytes".
std::string Describe(const std::vector<int64_t>& shape, uint64_t bytes) {
  return absl::StrCat(absl::StrJoin(shape, " x "), " = ", bytes, " bytes");
}

// The bytes of an IDX file as the reader sees them: the file's own, or,
// when it starts with the gzip magic 1f 8b, those of the gzip stream it
// holds, inflated as they are asked for, so that compressed bytes past the
// last one asked for are never read. As zlib's gzread does, gzip members
// one after another read as one stream, and bytes after a member that do
// not start with the magic are ignored.
//
// Not thread-safe: one reader per call of ReadIdx.
class IdxBytes {
 public:
  // The Env's status naming `path` when it cannot be opened;
  // RESOURCE_EXHAUSTED when zlib has no memory.
  static absl::StatusOr<std::unique_ptr<IdxBytes>> Open(
      Env* env, const std::string& path) {
    absl::StatusOr<std::unique_ptr<RandomAccessFile>> file =
        env->NewRandomAccessFile(path);
    if (!file.ok()) return file.status();
    std::string magic;
    if ((*file)->size() >= 2) {
      if (absl::Status s = (*file)->ReadAt(0, 2, &magic); !s.ok()) return s;
    }
    auto bytes = std::unique_ptr<IdxBytes>(new IdxBytes(*std::move(file)));
    if (magic == "\x1f\x8b") {
      // 15 + 16: a 32 KiB window, gzip wrapping only.
      if (inflateInit2(&bytes->z_, 15 + 16) != Z_OK) {
        return absl::ResourceExhaustedError(
            absl::StrCat(path, ": cannot open: out of memory"));
      }
      bytes->gzip_ = true;
    }
    return bytes;
  }
  ~IdxBytes() {
    if (gzip_) inflateEnd(&z_);
  }
  IdxBytes(const IdxBytes&) = delete;
  IdxBytes& operator=(const IdxBytes&) = delete;

  const std::string& path() const { return file_->path(); }
  bool gzip() const { return gzip_; }
  uint64_t file_size() const { return file_->size(); }
  // True once the gzip stream was found to end before its trailer.
  bool cut() const { return cut_; }

  // Reads up to `n` <= kMaxStep bytes into `dst` and returns how many were
  // read: fewer than `n` only at the end of the data. A gzip stream cut
  // short is not an error here (cut() then says so) so that the caller can
  // say how much the file holds; corrupt gzip data and read errors are.
  absl::StatusOr<size_t> Read(uint8_t* dst, size_t n) {
    return gzip_ ? Inflate(dst, n) : ReadRaw(dst, n);
  }

 private:
  explicit IdxBytes(std::unique_ptr<RandomAccessFile> file)
      : file_(std::move(file)) {}

  absl::StatusOr<size_t> ReadRaw(uint8_t* dst, size_t n) {
    const auto take =
        static_cast<size_t>(std::min<uint64_t>(n, file_->size() - pos_));
    // In pieces, so that the scratch buffer stays small.
    for (size_t done = 0; done < take;) {
      const auto piece =
          static_cast<size_t>(std::min<uint64_t>(take - done, kInputChunk));
      if (absl::Status s = file_->ReadAt(pos_, piece, &scratch_); !s.ok()) {
        return s;
      }
      std::memcpy(dst + done, scratch_.data(), piece);
      pos_ += piece;
      done += piece;
    }
    return take;
  }

  absl::StatusOr<size_t> Inflate(uint8_t* dst, size_t n) {
    size_t produced = 0;
    while (produced < n && !ended_) {
      if (member_ended_) {
        // Another member follows only when the next bytes are the magic.
        if (absl::Status s = FillInput(2); !s.ok()) return s;
        if (z_.avail_in < 2 || z_.next_in[0] != 0x1f || z_.next_in[1] != 0x8b) {
          ended_ = true;
          break;
        }
        inflateReset(&z_);
        member_ended_ = false;
      }
      if (absl::Status s = FillInput(1); !s.ok()) return s;
      if (z_.avail_in == 0) {
        cut_ = true;
        ended_ = true;
        break;
      }
      z_.next_out = dst + produced;
      z_.avail_out = static_cast<uInt>(n - produced);
      const uInt room = z_.avail_out;
      const int ret = inflate(&z_, Z_NO_FLUSH);
      produced += room - z_.avail_out;
      if (ret == Z_STREAM_END) {
        member_ended_ = true;
      } else if (ret == Z_MEM_ERROR) {
        return absl::ResourceExhaustedError(
            absl::StrCat(path(), ": out of memory"));
      } else if (ret == Z_DATA_ERROR) {
        return Bad(path(), absl::StrCat("corrupt gzip data: ",
                                        z_.msg != nullptr ? z_.msg
                                                          : "compressed data "
                                                            "error"));
      } else if (ret == Z_STREAM_ERROR || ret == Z_NEED_DICT) {
        return Bad(path(),
                   "corrupt gzip data: internal error: inflate stream corrupt");
      }
    }
    return produced;
  }

  // Tops the compressed input up to at least `want` bytes, or to what the
  // file has left.
  absl::Status FillInput(size_t want) {
    if (z_.avail_in >= want || pos_ == file_->size()) return absl::OkStatus();
    const uint64_t chunk = std::min(kInputChunk, file_->size() - pos_);
    if (absl::Status s = file_->ReadAt(pos_, chunk, &scratch_); !s.ok()) {
      return s;
    }
    pos_ += chunk;
    // What inflate has not consumed yet stays in front.
    if (z_.avail_in > 0) {
      input_.erase(0, input_.size() - z_.avail_in);
    } else {
      input_.clear();
    }
    input_ += scratch_;
    z_.next_in = reinterpret_cast<Bytef*>(input_.data());
    z_.avail_in = static_cast<uInt>(input_.size());
    return absl::OkStatus();
  }

  const std::unique_ptr<RandomAccessFile> file_;
  uint64_t pos_ = 0;  // The next byte of the file to read.
  std::string scratch_;
  bool gzip_ = false;
  z_stream z_{};
  std::string input_;  // Compressed bytes; z_.next_in points into it.
  bool member_ended_ = false;
  bool ended_ = false;
  bool cut_ = false;
};

// Appends up to `n` bytes to `out` and returns how many were appended. The
// buffer grows as data arrives, so a header announcing far more than the file
// holds costs no huge allocation.
absl::StatusOr<uint64_t> Append(IdxBytes& bytes, uint64_t n,
                                std::vector<uint8_t>* out) {
  const size_t start = out->size();
  uint64_t got = 0;
  while (got < n) {
    const size_t step = static_cast<size_t>(std::min<uint64_t>(
        n - got, std::clamp<uint64_t>(got, kMinStep, kMaxStep)));
    out->resize(start + got + step);
    auto read = bytes.Read(out->data() + start + got, step);
    if (!read.ok()) return read.status();
    got += *read;
    if (*read < step) break;
  }
  out->resize(start + got);
  return got;
}

// Reads to the end of the data and returns how many bytes were left. This also
// makes inflate check the gzip trailer (CRC and length).
absl::StatusOr<uint64_t> CountRest(IdxBytes& bytes) {
  std::vector<uint8_t> scratch(size_t{1} << 16);
  uint64_t rest = 0;
  while (true) {
    auto read = bytes.Read(scratch.data(), scratch.size());
    if (!read.ok()) return read.status();
    rest += *read;
    if (*read < scratch.size()) return rest;
  }
}

}  // namespace

absl::StatusOr<std::vector<int64_t>> ReadIdxShape(const std::string& path,
                                                  Env* env) {
  absl::StatusOr<std::unique_ptr<IdxBytes>> opened = IdxBytes::Open(env, path);
  if (!opened.ok()) return opened.status();
  IdxBytes& bytes = **opened;
  std::vector<uint8_t> header;
  auto got = Append(bytes, 4, &header);
  if (!got.ok()) return got.status();
  if (*got < 4 || header[0] != 0 || header[1] != 0) {
    return Bad(path, "bad magic: an IDX file starts 00 00 <type> <rank>");
  }
  const int rank = header[3];
  got = Append(bytes, 4 * static_cast<uint64_t>(rank), &header);
  if (!got.ok()) return got.status();
  if (header.size() < 4 + 4 * static_cast<size_t>(rank)) {
    return Bad(path, "header is truncated");
  }
  std::vector<int64_t> shape(rank);
  for (int i = 0; i < rank; ++i) {
    const uint8_t* b = &header[4 + 4 * i];
    shape[i] =
        static_cast<int64_t>((uint64_t{b[0]} << 24) | (uint64_t{b[1]} << 16) |
                             (uint64_t{b[2]} << 8) | uint64_t{b[3]});
  }
  return shape;
}

absl::StatusOr<IdxArray> ReadIdx(const std::string& path, int64_t limit,
                                 Env* env) {
  absl::StatusOr<std::unique_ptr<IdxBytes>> opened = IdxBytes::Open(env, path);
  if (!opened.ok()) return opened.status();
  IdxBytes& bytes = **opened;

  std::vector<uint8_t> header;
  auto got = Append(bytes, 4, &header);
  if (!got.ok()) return got.status();
  if (*got < 4) {
    return Bad(path, absl::StrCat("holds ", *got,
                                  " bytes, too few for the IDX magic "
                                  "00 00 08 <rank>"));
  }
  if (header[0] != 0 || header[1] != 0) {
    return Bad(path,
               absl::StrFormat("bad magic %02x %02x %02x %02x: an IDX file "
                               "starts 00 00 <type> <rank>",
                               header[0], header[1], header[2], header[3]));
  }
  if (header[2] != 0x08) {
    return Bad(path, absl::StrFormat("data type 0x%02x (%s) is not supported; "
                                     "only 0x08 (unsigned byte) is read",
                                     header[2], TypeName(header[2])));
  }
  const int rank = header[3];
  if (rank == 0) {
    return Bad(path, "rank is 0; an IDX array needs at least one dimension");
  }
  const uint64_t header_bytes = 4 + 4 * static_cast<uint64_t>(rank);
  got = Append(bytes, header_bytes - 4, &header);
  if (!got.ok()) return got.status();
  if (header.size() < header_bytes) {
    return Bad(path,
               absl::StrCat("header is truncated: rank ", rank, " needs ",
                            header_bytes, " header bytes but the file holds ",
                            header.size()));
  }

  std::vector<int64_t> shape(rank);
  uint64_t item_bytes = 1;  // One item along the first dimension.
  for (int i = 0; i < rank; ++i) {
    const uint8_t* b = &header[4 + 4 * i];
    const uint64_t d = (uint64_t{b[0]} << 24) | (uint64_t{b[1]} << 16) |
                       (uint64_t{b[2]} << 8) | uint64_t{b[3]};
    shape[i] = static_cast<int64_t>(d);
    if (i > 0) {
      if (d != 0 && item_bytes > kMaxBytes / d) {
        return Bad(path,
                   absl::StrCat("header dimensions ",
                                absl::StrJoin(shape.begin(),
                                              shape.begin() + i + 1, " x "),
                                " x ... describe more than 1 TiB"));
      }
      item_bytes *= d;
    }
  }
  const auto items = static_cast<uint64_t>(shape[0]);
  if (item_bytes != 0 && items > kMaxBytes / item_bytes) {
    return Bad(path,
               absl::StrCat("header dimensions ", absl::StrJoin(shape, " x "),
                            " describe more than 1 TiB"));
  }
  const uint64_t total = items * item_bytes;
  const uint64_t keep =
      limit < 0 ? items : std::min(items, static_cast<uint64_t>(limit));
  const uint64_t need = keep * item_bytes;

  IdxArray array;
  array.shape = shape;
  array.shape[0] = static_cast<int64_t>(keep);
  got = Append(bytes, need, &array.data);
  if (!got.ok()) return got.status();
  if (*got < need) {
    return Bad(path, absl::StrCat(
                         "header says ", Describe(shape, total),
                         " but the file holds ", *got,
                         bytes.cut() ? " (the gzip stream is truncated)" : ""));
  }

  if (keep == items) {
    auto rest = CountRest(bytes);
    if (!rest.ok()) return rest.status();
    if (*rest > 0) {
      return Bad(path, absl::StrCat("header says ", Describe(shape, total),
                                    " but the file holds ", total + *rest));
    }
    if (bytes.cut()) {
      return Bad(path, "the gzip stream is truncated (its trailer is missing)");
    }
  } else if (!bytes.gzip()) {
    // Raw file: its size tells whether the items not read are all there.
    const uint64_t size = bytes.file_size();
    if (size != header_bytes + total) {
      return Bad(path,
                 absl::StrCat("header says ", Describe(shape, total),
                              " but the file holds ",
                              size < header_bytes ? 0 : size - header_bytes));
    }
  }
  return array;
}

}  // namespace esb::data
