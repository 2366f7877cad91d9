// Image sets fed to a model's NCHW input: IDX images read, checked against
// the input's geometry and normalized.
#ifndef ESB_CORE_DATA_IMAGES_H_
#define ESB_CORE_DATA_IMAGES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data/normalize.h"

namespace esb::data {

// The C x H x W an input takes, and its name for messages.
struct ImageGeometry {
  std::string input_name;
  int64_t channels = 0;
  int64_t height = 0;
  int64_t width = 0;
};

// Reads up to `limit` images (all with -1) of an IDX file, N x H x W for one
// channel or N x C x H x W, and normalizes them to N x C x H x W floats;
// `count` receives N. INVALID_ARGUMENT naming the file when the images do
// not fit `geometry`; the reader's errors otherwise.
absl::StatusOr<std::vector<float>> ReadImagesFor(const std::string& path,
                                                 int64_t limit,
                                                 const ImageGeometry& geometry,
                                                 const Normalization& norm,
                                                 int64_t* count);

}  // namespace esb::data

#endif  // ESB_CORE_DATA_IMAGES_H_
