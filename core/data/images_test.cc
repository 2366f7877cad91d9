#include "core/data/images.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::data {
namespace {

using ::testing::HasSubstr;

constexpr char kImages[] =
    "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";

TEST(ImagesTest, ReadsAndNormalizesForTheInput) {
  int64_t count = 0;
  auto images = ReadImagesFor(kImages, 5, {"input", 1, 28, 28},
                              Normalization{{0.5f}, {0.25f}}, &count);
  ASSERT_TRUE(images.ok()) << images.status();
  EXPECT_EQ(count, 5);
  ASSERT_EQ(images->size(), 5u * 784);
  // (p / 255 - 0.5) / 0.25 lies in [-2, 2].
  for (float v : *images) {
    EXPECT_GE(v, -2.0f);
    EXPECT_LE(v, 2.0f);
  }
}

TEST(ImagesTest, WrongGeometryNamesFileAndInput) {
  int64_t count = 0;
  auto images = ReadImagesFor(kImages, 5, {"image", 3, 224, 224}, {}, &count);
  EXPECT_EQ(images.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(images.status().message());
  EXPECT_THAT(message, HasSubstr(kImages));
  EXPECT_THAT(message, HasSubstr("do not fit the model input 'image'"));
  EXPECT_THAT(message, HasSubstr("5 x 28 x 28"));
}

}  // namespace
}  // namespace esb::data
