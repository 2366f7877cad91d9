#include "client/levels.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::client {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(LevelsTest, Fp4Report) {
  const auto report = BuildLevelsReport(*Format::Create(4, 2, true));
  EXPECT_THAT(report.levels(), ElementsAre(-6, -4, -3, -2, -1.5, -1, -0.5, 0,
                                           0.5, 1, 1.5, 2, 3, 4, 6));
  EXPECT_THAT(report.integers(), ElementsAre(-12, -8, -6, -4, -3, -2, -1, 0, 1,
                                             2, 3, 4, 6, 8, 12));
  EXPECT_EQ(report.codes(7), 0u);
  EXPECT_EQ(report.codes(14), 0b0111u);
  EXPECT_EQ(report.codes(0), 0b1111u);
  EXPECT_EQ(report.max_integer(), 12);
  EXPECT_TRUE(report.int8_fast_path());
  EXPECT_THAT(LevelsText(report), HasSubstr("fits the int8 fast path"));
}

TEST(LevelsTest, WideFormatsSayTheyMissTheFastPath) {
  const auto report = BuildLevelsReport(*Format::Create(8, 4, true));
  EXPECT_EQ(report.max_integer(), 245760);  // (2^15 - 2^11) * 2^3.
  EXPECT_FALSE(report.int8_fast_path());
  EXPECT_THAT(LevelsText(report), HasSubstr("does not fit int8"));
  const auto u = BuildLevelsReport(*Format::Create(8, 8, false));
  EXPECT_EQ(u.max_integer(), 255);
  EXPECT_TRUE(u.int8_fast_path());
  EXPECT_EQ(u.levels_size(), 256);
}

}  // namespace
}  // namespace esb::client
