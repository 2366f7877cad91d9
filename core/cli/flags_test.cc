#include "core/cli/flags.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::cli {
namespace {

TEST(UnderscoreFlagNamesTest, NamesOnly) {
  std::vector<std::string> in = {
      "prog", "--data-dir=/a-b", "--metrics-port", "9-1", "-x-y", "pos-arg",
      "--",   "--keep-this"};
  std::vector<char*> argv;
  for (std::string& s : in) argv.push_back(s.data());
  std::vector<std::string> storage;
  std::vector<char*> out =
      UnderscoreFlagNames(static_cast<int>(argv.size()), argv.data(), &storage);
  ASSERT_EQ(out.size(), in.size() + 1);
  EXPECT_STREQ(out[1], "--data_dir=/a-b");
  EXPECT_STREQ(out[2], "--metrics_port");
  EXPECT_STREQ(out[3], "9-1");
  EXPECT_STREQ(out[4], "-x_y");
  EXPECT_STREQ(out[5], "pos-arg");
  EXPECT_STREQ(out[7], "--keep-this");
  EXPECT_EQ(out.back(), nullptr);
}

TEST(ParseByteSizeTest, SuffixesAndErrors) {
  EXPECT_EQ(*ParseByteSize("4096"), 4096);
  EXPECT_EQ(*ParseByteSize("64K"), 64 << 10);
  EXPECT_EQ(*ParseByteSize("512m"), int64_t{512} << 20);
  EXPECT_EQ(*ParseByteSize("4G"), int64_t{4} << 30);
  EXPECT_TRUE(absl::IsInvalidArgument(ParseByteSize("").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseByteSize("4X").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseByteSize("-1").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseByteSize("9999999999T").status()));
  EXPECT_THAT(ParseByteSize("lots").status().message(),
              ::testing::HasSubstr("'lots'"));
}

TEST(ParsePositiveByteSizeTest, NamesTheFlag) {
  EXPECT_EQ(*ParsePositiveByteSize("--max-plan-bytes", "2G"), int64_t{2} << 30);
  const absl::Status zero =
      ParsePositiveByteSize("--max-plan-bytes", "0").status();
  EXPECT_TRUE(absl::IsInvalidArgument(zero));
  EXPECT_EQ(zero.message(), "--max-plan-bytes must be positive");
  EXPECT_THAT(
      std::string{
          ParsePositiveByteSize("--max-arena-bytes", "big").status().message()},
      ::testing::StartsWith("--max-arena-bytes: 'big' is not"));
}

TEST(FormatByteSizeTest, ShortestExactSuffixAndReadsBack) {
  EXPECT_EQ(FormatByteSize(0), "0");
  EXPECT_EQ(FormatByteSize(4097), "4097");
  EXPECT_EQ(FormatByteSize(64 << 10), "64K");
  EXPECT_EQ(FormatByteSize(int64_t{1536} << 20), "1536M");
  EXPECT_EQ(FormatByteSize(int64_t{4} << 30), "4G");
  EXPECT_EQ(FormatByteSize(int64_t{3} << 40), "3T");
  for (int64_t bytes : {int64_t{1}, int64_t{1023}, int64_t{1} << 20,
                        (int64_t{5} << 30) + 1024, INT64_MAX}) {
    EXPECT_EQ(*ParseByteSize(FormatByteSize(bytes)), bytes) << bytes;
  }
}

}  // namespace
}  // namespace esb::cli
