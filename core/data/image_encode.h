// PNG and JPEG encoding of 8-bit images (libpng, libjpeg-turbo), the
// inverse of image_decode.h: to write image sets, such as test folders.
//
// Functions are thread-safe.
#ifndef ESB_CORE_DATA_IMAGE_ENCODE_H_
#define ESB_CORE_DATA_IMAGE_ENCODE_H_

#include <string>

#include "absl/status/statusor.h"
#include "core/data/image_decode.h"

namespace esb::data {

// A PNG of `image` (1 or 3 channels), losslessly. INVALID_ARGUMENT when the
// pixels do not number height x width x channels or libpng fails.
absl::StatusOr<std::string> EncodePng(const DecodedImage& image);

// A baseline JPEG of `image` (1 or 3 channels) at `quality` 1..100.
// INVALID_ARGUMENT as EncodePng.
absl::StatusOr<std::string> EncodeJpeg(const DecodedImage& image, int quality);

}  // namespace esb::data

#endif  // ESB_CORE_DATA_IMAGE_ENCODE_H_
