// Image sets fed to a model's NCHW input: IDX images read, checked against
// the input's geometry and normalized.
#ifndef ESB_CORE_DATA_IMAGES_H_
#define ESB_CORE_DATA_IMAGES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data/normalize.h"
#include "core/env/env.h"

namespace esb::data {

// The C x H x W an input takes, and its name for messages.
struct ImageGeometry {
  std::string input_name;
  int64_t channels = 0;
  int64_t height = 0;
  int64_t width = 0;
};

// 8-bit images of an IDX file that fit a model input, not yet normalized
// (a quarter of the floats' memory).
struct RawImages {
  int64_t count = 0;
  ImageGeometry geometry;
  std::vector<uint8_t> data;  // count x C x H x W.
};

// Reads up to `limit` images (all with -1) of an IDX file through `env`,
// N x H x W for one channel or N x C x H x W. INVALID_ARGUMENT naming the
// file when the images do not fit `geometry`; ReadIdx's errors otherwise.
absl::StatusOr<RawImages> ReadRawImagesFor(const std::string& path,
                                           int64_t limit,
                                           const ImageGeometry& geometry,
                                           Env* env = Env::Default());

// The images at `indices`, in that order, normalized to N x C x H x W
// floats. INVALID_ARGUMENT for an index outside [0, count).
absl::StatusOr<std::vector<float>> NormalizeSelected(
    const RawImages& images, const std::vector<int64_t>& indices,
    const Normalization& norm);

// Reads images as ReadRawImagesFor does and normalizes them to
// N x C x H x W floats; `count` receives N.
absl::StatusOr<std::vector<float>> ReadImagesFor(
    const std::string& path, int64_t limit, const ImageGeometry& geometry,
    const Normalization& norm, int64_t* count, Env* env = Env::Default());

}  // namespace esb::data

#endif  // ESB_CORE_DATA_IMAGES_H_
