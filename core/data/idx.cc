#include "core/data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <memory>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace esb::data {
namespace {

// zlib reads raw files through the same calls: gzread copies them as they are.
struct GzClose {
  void operator()(gzFile_s* file) const { gzclose(file); }
};
using GzFile = std::unique_ptr<gzFile_s, GzClose>;

// Headers announcing more than this are rejected outright.
constexpr uint64_t kMaxBytes = uint64_t{1} << 40;
// gzread takes an unsigned count and returns an int: read in bounded steps.
constexpr size_t kMinStep = size_t{1} << 20;
constexpr size_t kMaxStep = size_t{1} << 30;

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

// Reads up to `n` <= kMaxStep bytes into `dst` and returns how many were
// read: fewer than `n` only at the end of the data. A gzip stream cut short is
// not an error here (gzerror then reports Z_BUF_ERROR) so that the caller can
// say how much the file holds; corrupt gzip data and I/O errors are.
absl::StatusOr<size_t> Read(gzFile file, const std::string& path, uint8_t* dst,
                            size_t n) {
  const int got = gzread(file, dst, static_cast<unsigned>(n));
  if (got == static_cast<int>(n)) return n;
  int code = Z_OK;
  const char* message = gzerror(file, &code);
  if (code == Z_OK || code == Z_BUF_ERROR) {
    return static_cast<size_t>(std::max(got, 0));
  }
  // zlib prefixes its messages with the path it was given.
  const absl::string_view what =
      absl::StripPrefix(message, absl::StrCat(path, ": "));
  if (code == Z_ERRNO) {
    return absl::DataLossError(absl::StrCat(path, ": read error: ", what));
  }
  if (code == Z_MEM_ERROR) {
    return absl::ResourceExhaustedError(absl::StrCat(path, ": ", what));
  }
  return Bad(path, absl::StrCat("corrupt gzip data: ", what));
}

// Appends up to `n` bytes to `out` and returns how many were appended. The
// buffer grows as data arrives, so a header announcing far more than the file
// holds costs no huge allocation.
absl::StatusOr<uint64_t> Append(gzFile file, const std::string& path,
                                uint64_t n, std::vector<uint8_t>* out) {
  const size_t start = out->size();
  uint64_t got = 0;
  while (got < n) {
    const size_t step = static_cast<size_t>(std::min<uint64_t>(
        n - got, std::clamp<uint64_t>(got, kMinStep, kMaxStep)));
    out->resize(start + got + step);
    auto read = Read(file, path, out->data() + start + got, step);
    if (!read.ok()) return read.status();
    got += *read;
    if (*read < step) break;
  }
  out->resize(start + got);
  return got;
}

// Reads to the end of the data and returns how many bytes were left. This also
// makes zlib check the gzip trailer (CRC and length).
absl::StatusOr<uint64_t> CountRest(gzFile file, const std::string& path) {
  std::vector<uint8_t> scratch(size_t{1} << 16);
  uint64_t rest = 0;
  while (true) {
    auto read = Read(file, path, scratch.data(), scratch.size());
    if (!read.ok()) return read.status();
    rest += *read;
    if (*read < scratch.size()) return rest;
  }
}

bool GzipCut(gzFile file) {
  int code = Z_OK;
  gzerror(file, &code);
  return code == Z_BUF_ERROR;
}

// Opens `path`, gzipped or not; the status names the path.
absl::StatusOr<GzFile> OpenGz(const std::string& path) {
  errno = 0;
  GzFile file(gzopen(path.c_str(), "rb"));
  if (file == nullptr) {
    if (errno == 0) {
      return absl::ResourceExhaustedError(
          absl::StrCat(path, ": cannot open: out of memory"));
    }
    return absl::ErrnoToStatus(errno, absl::StrCat(path, ": cannot open"));
  }
  return file;
}

}  // namespace

absl::StatusOr<std::vector<int64_t>> ReadIdxShape(const std::string& path) {
  absl::StatusOr<GzFile> opened = OpenGz(path);
  if (!opened.ok()) return opened.status();
  GzFile file = *std::move(opened);
  std::vector<uint8_t> header;
  auto got = Append(file.get(), path, 4, &header);
  if (!got.ok()) return got.status();
  if (*got < 4 || header[0] != 0 || header[1] != 0) {
    return Bad(path, "bad magic: an IDX file starts 00 00 <type> <rank>");
  }
  const int rank = header[3];
  got = Append(file.get(), path, 4 * static_cast<uint64_t>(rank), &header);
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

absl::StatusOr<IdxArray> ReadIdx(const std::string& path, int64_t limit) {
  absl::StatusOr<GzFile> opened = OpenGz(path);
  if (!opened.ok()) return opened.status();
  GzFile file = *std::move(opened);
  gzbuffer(file.get(), 1 << 17);

  std::vector<uint8_t> header;
  auto got = Append(file.get(), path, 4, &header);
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
  got = Append(file.get(), path, header_bytes - 4, &header);
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
  got = Append(file.get(), path, need, &array.data);
  if (!got.ok()) return got.status();
  if (*got < need) {
    return Bad(path, absl::StrCat("header says ", Describe(shape, total),
                                  " but the file holds ", *got,
                                  GzipCut(file.get())
                                      ? " (the gzip stream is truncated)"
                                      : ""));
  }

  if (keep == items) {
    auto rest = CountRest(file.get(), path);
    if (!rest.ok()) return rest.status();
    if (*rest > 0) {
      return Bad(path, absl::StrCat("header says ", Describe(shape, total),
                                    " but the file holds ", total + *rest));
    }
    if (GzipCut(file.get())) {
      return Bad(path, "the gzip stream is truncated (its trailer is missing)");
    }
  } else if (gzdirect(file.get()) == 1) {
    // Raw file: its size tells whether the items not read are all there.
    std::error_code error;
    const uintmax_t size = std::filesystem::file_size(path, error);
    if (!error && size != header_bytes + total) {
      return Bad(path,
                 absl::StrCat("header says ", Describe(shape, total),
                              " but the file holds ",
                              size < header_bytes ? 0 : size - header_bytes));
    }
  }
  return array;
}

}  // namespace esb::data
