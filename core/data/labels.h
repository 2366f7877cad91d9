// Class labels of an image set, from a labels file: IDX labels (a 1-D
// unsigned-byte array, gzipped or not, as MNIST's) or text with one
// integer class index per line (spaces around it and a last newline
// allowed). Told apart by content: IDX starts 00 00 or 1f 8b.
//
// Functions are thread-safe.
#ifndef ESB_CORE_DATA_LABELS_H_
#define ESB_CORE_DATA_LABELS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/env/env.h"

namespace esb::data {

// Text labels files larger than this are refused (RESOURCE_EXHAUSTED).
inline constexpr int64_t kMaxLabelTextBytes = int64_t{1} << 30;

// The labels of `path`, read through `env`, the first `limit` only when
// limit >= 0. INVALID_ARGUMENT naming the file (and the line of a text
// file) for an IDX array that is not 1-D or a line that is not an integer
// in [0, 2^31); NOT_FOUND when it does not exist; the readers' errors
// otherwise.
absl::StatusOr<std::vector<int32_t>> ReadLabelFile(const std::string& path,
                                                   int64_t limit,
                                                   Env* env = Env::Default());

}  // namespace esb::data

#endif  // ESB_CORE_DATA_LABELS_H_
