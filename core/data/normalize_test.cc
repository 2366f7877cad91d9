#include "core/data/normalize.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::data {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(NormalizationTest, ParsesListsAndRepeatsASingleValue) {
  auto rgb = ParseNormalization("0.485, 0.456,0.406", "0.229,0.224,0.225");
  ASSERT_TRUE(rgb.ok()) << rgb.status();
  EXPECT_THAT(rgb->mean, ElementsAre(0.485f, 0.456f, 0.406f));
  EXPECT_THAT(rgb->std, ElementsAre(0.229f, 0.224f, 0.225f));

  auto one_mean = ParseNormalization("0.5", "0.25,0.5");
  ASSERT_TRUE(one_mean.ok()) << one_mean.status();
  EXPECT_THAT(one_mean->mean, ElementsAre(0.5f, 0.5f));
  EXPECT_THAT(one_mean->std, ElementsAre(0.25f, 0.5f));

  auto one_std = ParseNormalization("0.1,0.2,0.3", "2");
  ASSERT_TRUE(one_std.ok()) << one_std.status();
  EXPECT_THAT(one_std->std, ElementsAre(2.0f, 2.0f, 2.0f));

  auto none = ParseNormalization("", " ");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
}

TEST(NormalizationTest, BadValuesAreNamed) {
  auto r = ParseNormalization("0.5,abc", "0.5,0.5");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(),
              HasSubstr("mean '0.5,abc': 'abc' is not a finite number"));

  EXPECT_THAT(ParseNormalization("0.5", "nan").status().message(),
              HasSubstr("std 'nan': 'nan' is not a finite number"));
  EXPECT_THAT(ParseNormalization("0.5,,0.5", "1").status().message(),
              HasSubstr("mean '0.5,,0.5': value 2 is empty"));
  EXPECT_THAT(ParseNormalization("0.5,0.5", "0.2,0").status().message(),
              HasSubstr("std '0.2,0': value 2 is 0 but every value must be "
                        "> 0"));
  EXPECT_THAT(ParseNormalization("0.5", "-1").status().message(),
              HasSubstr("value 1 is -1"));
  EXPECT_THAT(ParseNormalization("0.1,0.2", "0.1,0.2,0.3").status().message(),
              HasSubstr("mean '0.1,0.2' has 2 values and std '0.1,0.2,0.3' "
                        "has 3"));
  EXPECT_THAT(ParseNormalization("0.5", "").status().message(),
              HasSubstr("give both or neither"));
}

TEST(NormalizationTest, WithoutMeanAndStdDividesBy255) {
  const std::vector<uint8_t> pixels = {0, 51, 255, 17};
  std::vector<float> out(4);
  ASSERT_TRUE(NormalizeImages(pixels.data(), 1, 1, 4, {}, out.data()).ok());
  EXPECT_THAT(out, ElementsAre(0.0f, 51.0f / 255.0f, 1.0f, 17.0f / 255.0f));
  EXPECT_EQ(out[1], 0.2f);  // 51/255 = 0.2 rounds to the float nearest 0.2.
}

TEST(NormalizationTest, AppliesPerChannelValuesInNchwOrder) {
  // Two images of two channels of two pixels. Values with exact binary
  // fractions give exact results: (1 - 0.5) / 0.25 = 2, (0 - 0.5) / 0.25 = -2,
  // (1 - 0) / 2 = 0.5, (0 - 0) / 2 = 0.
  const Normalization norm = {{0.5f, 0.0f}, {0.25f, 2.0f}};
  const std::vector<uint8_t> pixels = {255, 0, 255, 0, 0, 255, 0, 255};
  std::vector<float> out(8, -99.0f);
  ASSERT_TRUE(NormalizeImages(pixels.data(), 2, 2, 2, norm, out.data()).ok());
  EXPECT_THAT(out, ElementsAre(2.0f, -2.0f, 0.5f, 0.0f,  //
                               -2.0f, 2.0f, 0.0f, 0.5f));
}

TEST(NormalizationTest, MatchesTorchvisionRounding) {
  // ToTensor then Normalize: divide by 255, subtract, divide, in float.
  auto norm = ParseNormalization("0.2860", "0.3530");
  ASSERT_TRUE(norm.ok()) << norm.status();
  std::vector<uint8_t> pixels(256);
  for (int p = 0; p < 256; ++p) pixels[p] = static_cast<uint8_t>(p);
  std::vector<float> out(256);
  ASSERT_TRUE(
      NormalizeImages(pixels.data(), 1, 1, 256, *norm, out.data()).ok());
  for (int p = 0; p < 256; ++p) {
    const float x = static_cast<float>(p) / 255.0f;
    const float centred = x - 0.2860f;
    EXPECT_EQ(out[p], centred / 0.3530f) << "pixel " << p;
  }
  EXPECT_FLOAT_EQ(out[0], -0.2860f / 0.3530f);
  EXPECT_FLOAT_EQ(out[255], (1.0f - 0.2860f) / 0.3530f);
}

TEST(NormalizationTest, OneValueAppliesToEveryChannel) {
  const Normalization norm = {{0.5f}, {0.5f}};
  const std::vector<uint8_t> pixels = {0, 255, 255};
  std::vector<float> out(3);
  ASSERT_TRUE(NormalizeImages(pixels.data(), 1, 3, 1, norm, out.data()).ok());
  EXPECT_THAT(out, ElementsAre(-1.0f, 1.0f, 1.0f));
}

TEST(NormalizationTest, MismatchedShapesAreErrors) {
  const Normalization rgb = {{0.1f, 0.2f, 0.3f}, {1.0f, 1.0f, 1.0f}};
  uint8_t pixel = 0;
  float out = 0.0f;
  absl::Status s = NormalizeImages(&pixel, 1, 1, 1, rgb, &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("3 values per channel but the images "
                                     "have 1 channel"));
  const Normalization uneven = {{0.1f, 0.2f}, {1.0f}};
  EXPECT_THAT(NormalizeImages(&pixel, 1, 2, 1, uneven, &out).message(),
              HasSubstr("2 mean and 1 std values"));
  EXPECT_FALSE(NormalizeImages(&pixel, -1, 1, 1, {}, &out).ok());
  EXPECT_FALSE(NormalizeImages(&pixel, 1, 0, 1, {}, &out).ok());
}

}  // namespace
}  // namespace esb::data
