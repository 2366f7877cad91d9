#include "core/data/image_encode.h"

// libjpeg's header needs size_t and FILE declared first.
#include <jpeglib.h>
#include <png.h>

#include <csetjmp>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace esb::data {
namespace {

absl::Status CheckImage(const DecodedImage& image) {
  if ((image.channels != 1 && image.channels != 3) || image.height < 1 ||
      image.width < 1 ||
      image.pixels.size() !=
          static_cast<size_t>(image.height * image.width * image.channels)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot encode ", image.pixels.size(), " bytes as a ", image.width,
        " x ", image.height, " image of ", image.channels, " channels"));
  }
  return absl::OkStatus();
}

struct JpegError {
  jpeg_error_mgr manager;
  std::jmp_buf jump;
};

void OnJpegError(j_common_ptr info) {
  std::longjmp(reinterpret_cast<JpegError*>(info->err)->jump, 1);
}

// Compresses into a buffer libjpeg allocates (*out, freed by the caller
// with free()). False when libjpeg fails. Only trivially destructible
// locals, as the error jump skips destructors.
bool Compress(const DecodedImage& image, int quality, unsigned char** out,
              unsigned long* size) {  // NOLINT(google-runtime-int): libjpeg's
  jpeg_compress_struct cinfo;
  JpegError error;
  cinfo.err = jpeg_std_error(&error.manager);
  error.manager.error_exit = OnJpegError;
  if (setjmp(error.jump) != 0) {
    jpeg_destroy_compress(&cinfo);
    return false;
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, out, size);
  cinfo.image_width = static_cast<JDIMENSION>(image.width);
  cinfo.image_height = static_cast<JDIMENSION>(image.height);
  cinfo.input_components = image.channels;
  cinfo.in_color_space = image.channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  const size_t stride = static_cast<size_t>(image.width * image.channels);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(image.pixels.data() +
                                        cinfo.next_scanline * stride);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  return true;
}

}  // namespace

absl::StatusOr<std::string> EncodePng(const DecodedImage& image) {
  if (absl::Status s = CheckImage(image); !s.ok()) return s;
  png_image png;
  std::memset(&png, 0, sizeof(png));
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(image.width);
  png.height = static_cast<png_uint_32>(image.height);
  png.format = image.channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&png, nullptr, &size, 0, image.pixels.data(),
                                 0, nullptr)) {
    return absl::InvalidArgumentError(
        absl::StrCat("PNG encoding failed: ", png.message));
  }
  std::string out(size, '\0');
  if (!png_image_write_to_memory(&png, out.data(), &size, 0,
                                 image.pixels.data(), 0, nullptr)) {
    return absl::InvalidArgumentError(
        absl::StrCat("PNG encoding failed: ", png.message));
  }
  out.resize(size);
  return out;
}

absl::StatusOr<std::string> EncodeJpeg(const DecodedImage& image, int quality) {
  if (absl::Status s = CheckImage(image); !s.ok()) return s;
  if (quality < 1 || quality > 100) {
    return absl::InvalidArgumentError(
        absl::StrCat("JPEG quality ", quality, " is outside 1..100"));
  }
  unsigned char* buffer = nullptr;
  unsigned long size = 0;  // NOLINT(google-runtime-int): libjpeg's type
  const bool ok = Compress(image, quality, &buffer, &size);
  std::string out;
  if (ok) out.assign(reinterpret_cast<const char*>(buffer), size);
  std::free(buffer);
  if (!ok) return absl::InvalidArgumentError("JPEG encoding failed");
  return out;
}

}  // namespace esb::data
