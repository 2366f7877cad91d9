// NumPy .npy files (format versions 1.0, 2.0 and 3.0): little-endian float32
// ('<f4') and uint8 ('|u1') arrays in C order.
//
// Functions are thread-safe.
#ifndef ESB_CORE_DATA_NPY_H_
#define ESB_CORE_DATA_NPY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/env/env.h"

namespace esb::data {

struct NpyArray {
  enum class DType { kFloat32, kUInt8 };
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  std::vector<float> f32;   // Set when dtype == kFloat32.
  std::vector<uint8_t> u8;  // Set when dtype == kUInt8.

  // The number of elements; -1 if the shape overflows int64 (ParseNpy
  // refuses such shapes).
  int64_t size() const;
};

// The header of an .npy file: what its data holds and where it starts.
struct NpyHeader {
  NpyArray::DType dtype = NpyArray::DType::kFloat32;
  std::vector<int64_t> shape;
  int64_t count = 0;       // prod(shape), at most 2^40.
  size_t item_bytes = 4;   // 4 for float32, 1 for uint8.
  size_t data_offset = 0;  // The data's first byte.
};

// Headers longer than this are refused (numpy writes a few hundred bytes).
inline constexpr size_t kMaxNpyHeaderBytes = size_t{1} << 20;

// Parses the header at the start of `bytes`, which must hold at least
// data_offset bytes (the data need not follow); `name` names the file in
// errors, which are INVALID_ARGUMENT as ParseNpy's.
absl::StatusOr<NpyHeader> ParseNpyHeader(absl::string_view bytes,
                                         absl::string_view name);

// Parses an .npy image held in memory; `name` names it in errors.
absl::StatusOr<NpyArray> ParseNpy(absl::string_view bytes,
                                  absl::string_view name);

// Reads `path` through `env`. The Env's status naming the file when it
// cannot be opened (NOT_FOUND when it does not exist); DATA_LOSS naming it
// when reading fails or the file shrinks while it is read; INVALID_ARGUMENT
// naming it and the problem when it is not a supported .npy array.
absl::StatusOr<NpyArray> ReadNpy(const std::string& path,
                                 Env* env = Env::Default());

// Serialises a float32 C-order array as .npy version 1.0.
std::string SerializeNpy(absl::Span<const float> values,
                         absl::Span<const int64_t> shape);

}  // namespace esb::data

#endif  // ESB_CORE_DATA_NPY_H_
