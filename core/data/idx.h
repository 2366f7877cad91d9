// IDX files, the format of MNIST and Fashion-MNIST, raw or gzip-compressed.
//
// An IDX file is, all integers big-endian:
//   bytes 0-1   0x00 0x00
//   byte  2     data type (0x08 unsigned byte, 0x09 signed byte, 0x0B int16,
//               0x0C int32, 0x0D float32, 0x0E float64)
//   byte  3     rank r
//   4 r bytes   the r dimensions, uint32 each
//   then        d0 * d1 * ... * d(r-1) items in C order.
// Fashion-MNIST's images are rank 3 (N x 28 x 28), its labels rank 1 (N).
// Only unsigned bytes (0x08) are read, of any rank >= 1.
//
// Functions are thread-safe.
#ifndef ESB_CORE_DATA_IDX_H_
#define ESB_CORE_DATA_IDX_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/env/env.h"

namespace esb::data {

struct IdxArray {
  std::vector<int64_t> shape;  // Rank >= 1; shape[0] is the item count.
  std::vector<uint8_t> data;   // prod(shape) bytes in C order.
};

// Reads the IDX file at `path` through `env`, gzip-compressed (it starts
// with 1f 8b) or raw. When `limit` >= 0, only the first min(limit, d0) items
// along the first dimension are returned (and decompressed); the other
// dimensions are kept.
//
// The file must hold exactly the bytes its header announces: a truncated or
// over-long file, a corrupt gzip stream (bad deflate data or CRC), a bad
// magic, a data type other than 0x08 or rank 0 are INVALID_ARGUMENT, with a
// message naming `path` and the problem. With a limit, a raw file's size is
// still checked, but a gzip stream is only decompressed (and read) up to the
// items returned, so damage after them goes unnoticed. As gzip(1) and zlib's
// gzread do, concatenated gzip members read as one stream and bytes after
// the last member are ignored. The Env's status naming `path` when it
// cannot be opened (NOT_FOUND when it does not exist); DATA_LOSS naming it
// when reading fails or the file shrinks while it is read.
absl::StatusOr<IdxArray> ReadIdx(const std::string& path, int64_t limit = -1,
                                 Env* env = Env::Default());

// The dimensions the header of `path` announces, read without the data (to
// check a budget before reading). Errors as ReadIdx's for the header.
absl::StatusOr<std::vector<int64_t>> ReadIdxShape(const std::string& path,
                                                  Env* env = Env::Default());

}  // namespace esb::data

#endif  // ESB_CORE_DATA_IDX_H_
