#include "core/data/image_decode.h"

// libjpeg's header needs size_t and FILE declared first.
#include <jpeglib.h>
#include <png.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstddef>
#include <cstdio>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace esb::data {
namespace {

absl::Status Bad(absl::string_view name, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(name, ": the image does not decode: ", what));
}

absl::Status TooLarge(absl::string_view name, int64_t h, int64_t w,
                      int64_t max_pixels) {
  return absl::ResourceExhaustedError(
      absl::StrCat(name, ": the image is ", w, " x ", h, " = ", w * h,
                   " pixels, more than the limit of ", max_pixels));
}

bool IsPng(absl::string_view b) {
  return b.size() >= 8 && b.substr(0, 8) == "\x89PNG\r\n\x1a\n";
}
bool IsJpeg(absl::string_view b) {
  return b.size() >= 3 && static_cast<uint8_t>(b[0]) == 0xFF &&
         static_cast<uint8_t>(b[1]) == 0xD8 &&
         static_cast<uint8_t>(b[2]) == 0xFF;
}

absl::StatusOr<DecodedImage> DecodePng(absl::string_view bytes,
                                       absl::string_view name,
                                       int64_t max_pixels) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size())) {
    return Bad(name, image.message);
  }
  const int64_t h = image.height;
  const int64_t w = image.width;
  if (h * w > max_pixels) {
    png_image_free(&image);
    return TooLarge(name, h, w, max_pixels);
  }
  // Read with alpha and drop it below: PIL's convert() drops it too, where
  // libpng would composite it onto a background.
  const bool color = (image.format & PNG_FORMAT_FLAG_COLOR) != 0;
  image.format = color ? PNG_FORMAT_RGBA : PNG_FORMAT_GA;
  std::vector<uint8_t> buffer(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, buffer.data(), 0, nullptr)) {
    const std::string message = image.message;
    png_image_free(&image);
    return Bad(name, message);
  }
  DecodedImage out;
  out.height = h;
  out.width = w;
  out.channels = color ? 3 : 1;
  const int in_step = color ? 4 : 2;
  out.pixels.resize(static_cast<size_t>(h * w * out.channels));
  for (int64_t i = 0; i < h * w; ++i) {
    for (int c = 0; c < out.channels; ++c) {
      out.pixels[i * out.channels + c] = buffer[i * in_step + c];
    }
  }
  return out;
}

// libjpeg reports errors through a callback that must not return: it jumps
// back to the setjmp in the functions below, which hold only trivially
// destructible locals so that the jump skips no destructor.
struct JpegError {
  jpeg_error_mgr manager;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void OnJpegError(j_common_ptr info) {
  auto* error = reinterpret_cast<JpegError*>(info->err);
  (*info->err->format_message)(info, error->message);
  std::longjmp(error->jump, 1);
}

// Warnings (level -1) are corrupt or truncated data, which libjpeg would
// paper over with grey: they fail the decode. Trace messages are ignored.
void OnJpegMessage(j_common_ptr info, int level) {
  if (level < 0) OnJpegError(info);
}

struct JpegInfo {
  int64_t height = 0;
  int64_t width = 0;
  int channels = 0;  // As decoded: 1 or 3.
  bool cmyk = false;
};

// Reads the header into `info`, and when `out` is not null, decodes the
// pixels into it (height x width x channels bytes). False with `message`
// set when libjpeg fails.
bool RunJpeg(const uint8_t* data, size_t size, JpegInfo* info, uint8_t* out,
             char* message) {
  jpeg_decompress_struct cinfo;
  JpegError error;
  cinfo.err = jpeg_std_error(&error.manager);
  error.manager.error_exit = OnJpegError;
  error.manager.emit_message = OnJpegMessage;
  if (setjmp(error.jump) != 0) {
    std::memcpy(message, error.message, JMSG_LENGTH_MAX);
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  // libjpeg's own type for the size.
  jpeg_mem_src(&cinfo, data,
               static_cast<unsigned long>(size));  // NOLINT(google-runtime-int)
  jpeg_read_header(&cinfo, TRUE);
  info->height = cinfo.image_height;
  info->width = cinfo.image_width;
  info->cmyk =
      cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  info->channels = cinfo.num_components == 1 ? 1 : 3;
  if (out != nullptr && !info->cmyk) {
    cinfo.out_color_space = info->channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    const size_t stride = static_cast<size_t>(cinfo.output_width) *
                          static_cast<size_t>(cinfo.output_components);
    while (cinfo.output_scanline < cinfo.output_height) {
      JSAMPROW row = out + cinfo.output_scanline * stride;
      jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
  }
  jpeg_destroy_decompress(&cinfo);
  return true;
}

absl::StatusOr<DecodedImage> DecodeJpeg(absl::string_view bytes,
                                        absl::string_view name,
                                        int64_t max_pixels) {
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  char message[JMSG_LENGTH_MAX] = {0};
  JpegInfo info;
  if (!RunJpeg(data, bytes.size(), &info, nullptr, message)) {
    return Bad(name, message);
  }
  if (info.height * info.width > max_pixels) {
    return TooLarge(name, info.height, info.width, max_pixels);
  }
  if (info.cmyk) {
    return Bad(name, "CMYK JPEGs are not supported; save it as RGB");
  }
  DecodedImage out;
  out.height = info.height;
  out.width = info.width;
  out.channels = info.channels;
  out.pixels.resize(
      static_cast<size_t>(info.height * info.width * info.channels));
  if (!RunJpeg(data, bytes.size(), &info, out.pixels.data(), message)) {
    return Bad(name, message);
  }
  return out;
}

// Python's round() of x / 2 for an integer x >= 0: halves go to even.
int64_t HalfRoundEven(int64_t x) {
  const int64_t q = x / 2;
  return (x % 2 == 0 || q % 2 == 0) ? q : q + 1;
}

// PIL's bilinear resampling weights for output pixels [start, start + n)
// of a resize from `in` to `out` pixels.
struct Taps {
  std::vector<int64_t> first;  // First input pixel of each output pixel.
  std::vector<int64_t> count;  // How many input pixels it reads.
  std::vector<float> weights;  // count[i] weights at i * width.
  int64_t width = 0;           // Weights per output pixel, padded.
};

Taps MakeTaps(int64_t in, int64_t out, int64_t start, int64_t n) {
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  const double filter_scale = std::max(scale, 1.0);
  const double support = filter_scale;  // The triangle's support is 1.
  Taps t;
  t.width = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  t.first.resize(n);
  t.count.resize(n);
  t.weights.assign(static_cast<size_t>(n * t.width), 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    const double center = (static_cast<double>(start + i) + 0.5) * scale;
    // Truncation of x + 0.5, as PIL computes the filter's window (lround
    // would differ for negative values and change which pixels count).
    const double lo_edge = center - support + 0.5;
    const double hi_edge = center + support + 0.5;
    const int64_t lo = std::max<int64_t>(static_cast<int64_t>(lo_edge), 0);
    const int64_t hi = std::min<int64_t>(static_cast<int64_t>(hi_edge), in);
    const int64_t k = std::min(hi - lo, t.width);
    double total = 0.0;
    std::vector<double> w(static_cast<size_t>(k));
    for (int64_t j = 0; j < k; ++j) {
      const double x =
          (static_cast<double>(j + lo) - center + 0.5) / filter_scale;
      w[j] = std::max(0.0, 1.0 - std::fabs(x));
      total += w[j];
    }
    for (int64_t j = 0; j < k; ++j) {
      t.weights[i * t.width + j] =
          static_cast<float>(total > 0.0 ? w[j] / total : 0.0);
    }
    t.first[i] = lo;
    t.count[i] = k;
  }
  return t;
}

uint8_t Clip8(float v) {
  return static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
}

}  // namespace

bool IsPngOrJpeg(absl::string_view bytes) {
  return IsPng(bytes) || IsJpeg(bytes);
}

absl::StatusOr<DecodedImage> DecodeImage(absl::string_view bytes,
                                         absl::string_view name,
                                         int64_t max_pixels) {
  if (IsPng(bytes)) return DecodePng(bytes, name, max_pixels);
  if (IsJpeg(bytes)) return DecodeJpeg(bytes, name, max_pixels);
  return Bad(name, "it is neither a PNG nor a JPEG file");
}

ResizedSize ResizeTarget(int64_t h, int64_t w, const ImageGeometry& g) {
  // The covered box: the input scaled by 256/224, rounded down as
  // torchvision's int(size * 256 / 224) recipes write it.
  const int64_t box_h = g.height * 256 / 224;
  const int64_t box_w = g.width * 256 / 224;
  ResizedSize r;
  if (static_cast<double>(box_h) / static_cast<double>(h) >=
      static_cast<double>(box_w) / static_cast<double>(w)) {
    r.height = box_h;
    r.width =
        static_cast<int64_t>(static_cast<double>(box_h) *
                             static_cast<double>(w) / static_cast<double>(h));
  } else {
    r.width = box_w;
    r.height =
        static_cast<int64_t>(static_cast<double>(box_w) *
                             static_cast<double>(h) / static_cast<double>(w));
  }
  r.height = std::max(r.height, g.height);
  r.width = std::max(r.width, g.width);
  return r;
}

absl::StatusOr<std::vector<uint8_t>> FitImage(const DecodedImage& image,
                                              const ImageGeometry& g,
                                              absl::string_view name) {
  if (g.channels != 1 && g.channels != 3) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": the model input '", g.input_name, "' takes ", g.channels,
        " channels; PNG and JPEG images feed 1 (grey) or 3 (RGB)"));
  }
  const int c_out = static_cast<int>(g.channels);
  const int64_t h = image.height;
  const int64_t w = image.width;
  // Channels first, so that a grey input resizes one plane.
  std::vector<uint8_t> converted;
  const std::vector<uint8_t>* src = &image.pixels;
  if (image.channels != c_out) {
    converted.resize(static_cast<size_t>(h * w * c_out));
    for (int64_t i = 0; i < h * w; ++i) {
      if (c_out == 1) {
        const uint8_t* p = &image.pixels[i * 3];
        converted[i] = static_cast<uint8_t>(
            (19595u * p[0] + 38470u * p[1] + 7471u * p[2] + 0x8000u) >> 16);
      } else {
        std::fill_n(&converted[i * 3], 3, image.pixels[i]);
      }
    }
    src = &converted;
  }
  const ResizedSize size = ResizeTarget(h, w, g);
  const int64_t top = HalfRoundEven(size.height - g.height);
  const int64_t left = HalfRoundEven(size.width - g.width);
  const Taps across = MakeTaps(w, size.width, left, g.width);
  const Taps down = MakeTaps(h, size.height, top, g.height);
  // Horizontal pass over the rows the vertical one reads.
  const int64_t row_lo = down.first.front();
  const int64_t row_hi = down.first.back() + down.count.back();
  const int64_t rows = row_hi - row_lo;
  std::vector<uint8_t> mid(static_cast<size_t>(rows * g.width * c_out));
  for (int64_t y = 0; y < rows; ++y) {
    const uint8_t* in_row = src->data() + (row_lo + y) * w * c_out;
    for (int64_t x = 0; x < g.width; ++x) {
      const float* wt = &across.weights[x * across.width];
      const uint8_t* in = in_row + across.first[x] * c_out;
      for (int c = 0; c < c_out; ++c) {
        float v = 0.0f;
        for (int64_t k = 0; k < across.count[x]; ++k) {
          v += wt[k] * static_cast<float>(in[k * c_out + c]);
        }
        mid[(y * g.width + x) * c_out + c] = Clip8(v);
      }
    }
  }
  // Vertical pass, written planar (C x H x W).
  std::vector<uint8_t> out(static_cast<size_t>(c_out * g.height * g.width));
  for (int64_t y = 0; y < g.height; ++y) {
    const float* wt = &down.weights[y * down.width];
    const int64_t first = down.first[y] - row_lo;
    for (int64_t x = 0; x < g.width; ++x) {
      for (int c = 0; c < c_out; ++c) {
        float v = 0.0f;
        for (int64_t k = 0; k < down.count[y]; ++k) {
          v += wt[k] *
               static_cast<float>(mid[((first + k) * g.width + x) * c_out + c]);
        }
        out[(c * g.height + y) * g.width + x] = Clip8(v);
      }
    }
  }
  return out;
}

}  // namespace esb::data
