// Hostile IDX and .npy files (core/testing/hostile.h) through the readers:
// each must be refused with its own status code and a message naming the
// problem.
#include <filesystem>
#include <fstream>

#include "core/data/idx.h"
#include "core/data/images.h"
#include "core/data/npy.h"
#include "core/testing/hostile.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::data {
namespace {

using ::testing::HasSubstr;

TEST(HostileDataTest, EveryHostileIdxFileIsRefusedWithItsStatus) {
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / "hostile_idx";
  std::filesystem::create_directories(dir);
  const ImageGeometry geometry{"x", 1, 28, 28};
  for (const hostile::HostileCase& c : hostile::HostileIdxFiles()) {
    SCOPED_TRACE(c.name);
    const std::string path = (dir / (c.name + c.extension)).string();
    std::ofstream(path, std::ios::binary) << c.bytes;
    int64_t count = -1;
    auto images = ReadImagesFor(path, -1, geometry, Normalization{}, &count);
    ASSERT_FALSE(images.ok());
    EXPECT_EQ(images.status().code(), c.code) << images.status();
    EXPECT_THAT(std::string(images.status().message()), HasSubstr(path));
    for (const std::string& part : c.message) {
      EXPECT_THAT(std::string(images.status().message()), HasSubstr(part));
    }
  }
}

TEST(HostileDataTest, EveryHostileNpyFileIsRefusedWithItsStatus) {
  for (const hostile::HostileCase& c : hostile::HostileNpyFiles()) {
    SCOPED_TRACE(c.name);
    auto array = ParseNpy(c.bytes, c.name);
    ASSERT_FALSE(array.ok());
    EXPECT_EQ(array.status().code(), c.code) << array.status();
    for (const std::string& part : c.message) {
      EXPECT_THAT(std::string(array.status().message()), HasSubstr(part));
    }
  }
}

}  // namespace
}  // namespace esb::data
