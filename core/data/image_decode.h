// PNG and JPEG images decoded (libpng, libjpeg-turbo) and fitted to a
// model's C x H x W input the way torchvision's
//   Resize(round-down(S * 256 / 224)), CenterCrop((H, W))
// with PIL images does, S being the input's size:
//
//   channels  grey -> RGB repeats the grey value; RGB -> grey is PIL's
//             convert("L"): (19595 R + 38470 G + 7471 B + 2^15) >> 16;
//             an alpha channel is dropped.
//   resize    the image is scaled so that it covers H*256/224 x W*256/224
//             (for a square input: its shorter side becomes
//             floor(H * 256 / 224), the longer one floor(side * long /
//             short), as Resize(int) does), with PIL's bilinear filter: a
//             triangle of support max(1, in/out) input pixels, so that a
//             downscale averages (antialias) rather than skipping pixels;
//             each of the two passes (horizontal, then vertical) rounds to
//             8 bits as PIL does.
//   crop      the H x W centre, offsets round((size - H) / 2) with
//             Python's round-half-to-even, as CenterCrop.
//
// Functions are thread-safe.
#ifndef ESB_CORE_DATA_IMAGE_DECODE_H_
#define ESB_CORE_DATA_IMAGE_DECODE_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/data/images.h"

namespace esb::data {

// Decoded pixels, H x W x channels interleaved.
struct DecodedImage {
  int64_t height = 0;
  int64_t width = 0;
  int channels = 0;  // 1 (grey) or 3 (RGB).
  std::vector<uint8_t> pixels;
};

// True when `bytes` start with the PNG or JPEG signature.
bool IsPngOrJpeg(absl::string_view bytes);

// Decodes a PNG (any bit depth, palette, alpha) or baseline/progressive
// JPEG (grey, YCbCr). INVALID_ARGUMENT naming `name` when the bytes are
// neither, are corrupt or truncated (libjpeg's warnings count as errors),
// or are a CMYK JPEG; RESOURCE_EXHAUSTED when the header announces more
// than `max_pixels` pixels (checked before any pixel is decoded).
absl::StatusOr<DecodedImage> DecodeImage(absl::string_view bytes,
                                         absl::string_view name,
                                         int64_t max_pixels);

// `image` converted to `geometry`'s channels, resized and centre-cropped as
// the header says: C x H x W bytes. INVALID_ARGUMENT naming `name` when the
// input takes neither 1 nor 3 channels.
absl::StatusOr<std::vector<uint8_t>> FitImage(const DecodedImage& image,
                                              const ImageGeometry& geometry,
                                              absl::string_view name);

// The size an image of h x w is resized to before the crop (see above).
struct ResizedSize {
  int64_t height = 0;
  int64_t width = 0;
};
ResizedSize ResizeTarget(int64_t h, int64_t w, const ImageGeometry& geometry);

}  // namespace esb::data

#endif  // ESB_CORE_DATA_IMAGE_DECODE_H_
