#include "core/esb/codes.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb {
namespace {

using ::testing::HasSubstr;

TEST(CodesTest, EveryLevelOfEveryFormatRoundTrips) {
  for (const Format& f : Format::All()) {
    const CodeBook book(f);
    std::vector<int32_t> values;
    for (float level : f.Levels()) values.push_back(f.ToInteger(level));
    absl::StatusOr<std::string> packed = PackIntegers(book, values);
    ASSERT_TRUE(packed.ok()) << f.ToString() << ": " << packed.status();
    EXPECT_EQ(static_cast<int64_t>(packed->size()),
              PackedBytes(static_cast<int64_t>(values.size()), f.bits()));
    absl::StatusOr<std::vector<int32_t>> back =
        UnpackIntegers(book, *packed, static_cast<int64_t>(values.size()));
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, values) << f.ToString();
    // The code is the format's own Encode of the level.
    for (float level : f.Levels()) {
      EXPECT_EQ(*book.Encode(f.ToInteger(level)), *f.Encode(level));
    }
  }
}

TEST(CodesTest, PacksLsbFirst) {
  // b4 sb2 signed: 1.0 is code 0b0010 (exponent field 1, mantissa 0), its
  // integer view 2; -1.0 is 0b1010. Two codes fill one byte, low nibble
  // first.
  const Format f = *Format::Create(4, 2, true);
  const CodeBook book(f);
  absl::StatusOr<std::string> packed = PackIntegers(book, {2, -2, 2});
  ASSERT_TRUE(packed.ok());
  ASSERT_EQ(packed->size(), 2u);
  EXPECT_EQ(static_cast<uint8_t>((*packed)[0]),
            (*f.Encode(-1.0f) << 4) | *f.Encode(1.0f));
  EXPECT_EQ(static_cast<uint8_t>((*packed)[1]), *f.Encode(1.0f));
}

TEST(CodesTest, RefusesNonLevelsBadLengthsAndPadding) {
  const Format f = *Format::Create(4, 2, true);  // Integers 0..12, no 5.
  const CodeBook book(f);
  absl::StatusOr<std::string> bad = PackIntegers(book, {0, 5});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("value 1"));
  EXPECT_FALSE(book.Encode(1000).ok());
  EXPECT_THAT(UnpackIntegers(book, "ab", 5).status().message(),
              HasSubstr("need 3"));
  EXPECT_THAT(UnpackIntegers(book, "\xf0", 1).status().message(),
              HasSubstr("padding"));
  EXPECT_EQ(PackedBytes(-1, 4), -1);
  EXPECT_EQ(PackedBytes(int64_t{1} << 62, 8), -1);
}

}  // namespace
}  // namespace esb
