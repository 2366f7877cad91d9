// Normalization of 8-bit images into a network's float input:
//
//   out[n][c][i] = (p[n][c][i] / 255 - mean[c]) / std[c]
//
// in NCHW order, each step rounded to float in this order, which is what
// torchvision's ToTensor() followed by Normalize(mean, std) computes, so the
// result is bit-identical to a PyTorch preprocessing pipeline. Without a mean
// and std, out = p / 255.
//
// Functions are thread-safe.
#ifndef ESB_CORE_DATA_NORMALIZE_H_
#define ESB_CORE_DATA_NORMALIZE_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace esb::data {

// Both empty (no normalization), or both of size 1 (every channel) or both of
// size C (one value per channel).
struct Normalization {
  std::vector<float> mean;
  std::vector<float> std;  // Every value > 0.

  bool empty() const { return mean.empty() && std.empty(); }
};

// Parses comma-separated floats such as "0.485,0.456,0.406" (spaces around
// values allowed). Both empty gives an empty Normalization. Otherwise both
// must be set, values finite, std values > 0, and the counts equal or one of
// them 1, in which case it is repeated to the other's count.
// INVALID_ARGUMENT naming the offending value otherwise.
absl::StatusOr<Normalization> ParseNormalization(absl::string_view mean_csv,
                                                 absl::string_view std_csv);

// Writes count * channels * pixels_per_channel floats to `out` from as many
// pixels, both in NCHW order (formula above). INVALID_ARGUMENT when a size is
// negative or `norm` has neither 0, 1 nor `channels` values, or mean and std
// counts differ.
absl::Status NormalizeImages(const uint8_t* pixels, int64_t count, int channels,
                             int64_t pixels_per_channel,
                             const Normalization& norm, float* out);

}  // namespace esb::data

#endif  // ESB_CORE_DATA_NORMALIZE_H_
