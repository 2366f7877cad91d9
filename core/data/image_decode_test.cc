#include "core/data/image_decode.h"

#include <zlib.h>

#include <string>

#include "core/data/image_encode.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::data {
namespace {

using ::testing::HasSubstr;

DecodedImage Gradient(int64_t h, int64_t w, int channels) {
  DecodedImage image{h, w, channels, {}};
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      for (int c = 0; c < channels; ++c) {
        image.pixels.push_back(
            static_cast<uint8_t>((x * 7 + y * 3 + c * 50) % 256));
      }
    }
  }
  return image;
}

TEST(ImageDecodeTest, PngRoundTripsExactly) {
  for (int channels : {1, 3}) {
    const DecodedImage image = Gradient(5, 7, channels);
    auto png = EncodePng(image);
    ASSERT_TRUE(png.ok()) << png.status();
    EXPECT_TRUE(IsPngOrJpeg(*png));
    auto back = DecodeImage(*png, "a.png", 1 << 26);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->height, 5);
    EXPECT_EQ(back->width, 7);
    EXPECT_EQ(back->channels, channels);
    EXPECT_EQ(back->pixels, image.pixels);
  }
}

TEST(ImageDecodeTest, JpegDecodesCloseToItsSource) {
  DecodedImage flat{16, 16, 3, std::vector<uint8_t>(16 * 16 * 3, 0)};
  for (size_t i = 0; i < flat.pixels.size(); i += 3) {
    flat.pixels[i] = 200;
    flat.pixels[i + 1] = 100;
    flat.pixels[i + 2] = 50;
  }
  auto jpeg = EncodeJpeg(flat, 95);
  ASSERT_TRUE(jpeg.ok()) << jpeg.status();
  auto back = DecodeImage(*jpeg, "a.jpg", 1 << 26);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->channels, 3);
  ASSERT_EQ(back->pixels.size(), flat.pixels.size());
  for (size_t i = 0; i < flat.pixels.size(); ++i) {
    EXPECT_NEAR(back->pixels[i], flat.pixels[i], 3) << i;
  }
  auto grey = EncodeJpeg(Gradient(8, 8, 1), 90);
  ASSERT_TRUE(grey.ok());
  auto grey_back = DecodeImage(*grey, "g.jpg", 1 << 26);
  ASSERT_TRUE(grey_back.ok()) << grey_back.status();
  EXPECT_EQ(grey_back->channels, 1);
}

TEST(ImageDecodeTest, CorruptAndTruncatedImagesAreNamedErrors) {
  auto jpeg = EncodeJpeg(Gradient(32, 32, 3), 90);
  ASSERT_TRUE(jpeg.ok());
  auto cut = DecodeImage(jpeg->substr(0, jpeg->size() / 2), "cut.jpg", 1 << 26);
  EXPECT_EQ(cut.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(cut.status().message()), HasSubstr("cut.jpg"));

  auto png = EncodePng(Gradient(32, 32, 3));
  ASSERT_TRUE(png.ok());
  auto png_cut =
      DecodeImage(png->substr(0, png->size() - 30), "cut.png", 1 << 26);
  EXPECT_EQ(png_cut.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(png_cut.status().message()), HasSubstr("cut.png"));

  auto text = DecodeImage("hello, world", "notes.png", 1 << 26);
  EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(text.status().message()),
              HasSubstr("notes.png: the image does not decode"));
}

// A PNG whose header announces w x h pixels, with no pixel data.
std::string PngHeaderOnly(uint32_t w, uint32_t h) {
  std::string out = "\x89PNG\r\n\x1a\n";
  auto be32 = [](uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                       static_cast<char>(v >> 8), static_cast<char>(v)};
  };
  auto chunk = [&](const std::string& type, const std::string& data) {
    std::string body = type + data;
    const uLong crc = crc32(0, reinterpret_cast<const Bytef*>(body.data()),
                            static_cast<uInt>(body.size()));
    out += be32(static_cast<uint32_t>(data.size())) + body +
           be32(static_cast<uint32_t>(crc));
  };
  chunk("IHDR", be32(w) + be32(h) + std::string("\x08\x00\x00\x00\x00", 5));
  chunk("IDAT", "");
  chunk("IEND", "");
  return out;
}

TEST(ImageDecodeTest, RefusesImagesOverThePixelBudgetBeforeDecoding) {
  // 9000 x 9000 = 81e6 pixels > 2^26, announced by 60 bytes.
  auto huge = DecodeImage(PngHeaderOnly(9000, 9000), "huge.png", 1 << 26);
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(huge.status().message()), HasSubstr("huge.png"));
  EXPECT_THAT(std::string(huge.status().message()), HasSubstr("67108864"));
  auto jpeg = EncodeJpeg(Gradient(10, 10, 3), 90);
  ASSERT_TRUE(jpeg.ok());
  EXPECT_EQ(DecodeImage(*jpeg, "a.jpg", 99).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(ImageDecodeTest, ResizeTargetFollowsTorchvision) {
  const ImageGeometry g{"x", 3, 224, 224};
  // Resize(256) of a 375 x 500 (H x W) image: 256 x int(256 * 500 / 375).
  ResizedSize r = ResizeTarget(375, 500, g);
  EXPECT_EQ(r.height, 256);
  EXPECT_EQ(r.width, 341);
  r = ResizeTarget(500, 375, g);
  EXPECT_EQ(r.height, 341);
  EXPECT_EQ(r.width, 256);
  r = ResizeTarget(10, 10, ImageGeometry{"x", 1, 28, 28});
  EXPECT_EQ(r.height, 32);
  EXPECT_EQ(r.width, 32);
}

TEST(ImageDecodeTest, FitCropsTheCentreAndConvertsChannels) {
  // 32 x 32 resizes to itself for a 28 x 28 input; the crop starts at 2.
  const DecodedImage grey = Gradient(32, 32, 1);
  auto fitted = FitImage(grey, {"x", 1, 28, 28}, "g.png");
  ASSERT_TRUE(fitted.ok()) << fitted.status();
  ASSERT_EQ(fitted->size(), 28u * 28);
  for (int y = 0; y < 28; ++y) {
    for (int x = 0; x < 28; ++x) {
      ASSERT_EQ((*fitted)[y * 28 + x], grey.pixels[(y + 2) * 32 + x + 2]);
    }
  }
  auto rgb = FitImage(grey, {"x", 3, 28, 28}, "g.png");
  ASSERT_TRUE(rgb.ok());
  for (int c = 0; c < 3; ++c) {
    EXPECT_TRUE(
        std::equal(fitted->begin(), fitted->end(), rgb->begin() + c * 28 * 28));
  }
  DecodedImage color{32, 32, 3, std::vector<uint8_t>(32 * 32 * 3)};
  for (size_t i = 0; i < color.pixels.size(); i += 3) {
    color.pixels[i] = 255;  // Pure red: L = 19595 * 255 / 65536 = 76.
  }
  auto l = FitImage(color, {"x", 1, 28, 28}, "red.png");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ((*l)[0], 76);
  EXPECT_EQ(FitImage(color, {"x", 4, 28, 28}, "red.png").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ImageDecodeTest, DownscalingAveragesRatherThanSkips) {
  // Alternating black and white columns, 4x the target: an antialiased
  // bilinear resize gives mid grey, a point-sampling one black or white.
  DecodedImage stripes{128, 128, 1, std::vector<uint8_t>(128 * 128)};
  for (int64_t i = 0; i < 128 * 128; ++i) {
    stripes.pixels[i] = (i % 2) ? 255 : 0;
  }
  auto fitted = FitImage(stripes, {"x", 1, 28, 28}, "s.png");
  ASSERT_TRUE(fitted.ok());
  for (uint8_t v : *fitted) {
    ASSERT_GT(v, 100);
    ASSERT_LT(v, 156);
  }
}

}  // namespace
}  // namespace esb::data
