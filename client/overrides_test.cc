#include "client/overrides.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::client {
namespace {

using ::testing::HasSubstr;

TEST(ParseOverridesTest, ReadsEveryKeyOfEveryEntry) {
  esb::v1::JobConfig config;
  ASSERT_TRUE(
      ParseOverrides("conv1:bits=8:sb=7; fc:act_bits=6:act_sb=3;", &config)
          .ok());
  ASSERT_EQ(config.overrides_size(), 2);
  const esb::v1::LayerOverride& conv = config.overrides(0);
  EXPECT_EQ(conv.node(), "conv1");
  EXPECT_EQ(conv.bits(), 8);
  EXPECT_EQ(conv.sb(), 7);
  EXPECT_FALSE(conv.has_act_bits());
  EXPECT_FALSE(conv.has_act_sb());
  const esb::v1::LayerOverride& fc = config.overrides(1);
  EXPECT_EQ(fc.node(), "fc");
  EXPECT_FALSE(fc.has_bits());
  EXPECT_EQ(fc.act_bits(), 6);
  EXPECT_EQ(fc.act_sb(), 3);
}

TEST(ParseOverridesTest, EmptyTextSetsNothing) {
  esb::v1::JobConfig config;
  EXPECT_TRUE(ParseOverrides("", &config).ok());
  EXPECT_TRUE(ParseOverrides(";;", &config).ok());
  EXPECT_EQ(config.overrides_size(), 0);
}

TEST(ParseOverridesTest, RefusesMalformedEntriesNamingThem) {
  struct Case {
    const char* text;
    const char* message;
  };
  for (const Case& c : {
           Case{"conv1", "sets nothing for layer 'conv1'"},
           Case{"conv1:", "'' is not key=integer"},
           Case{":bits=8", "names no layer"},
           Case{"a:bits=8;a:sb=3", "layer 'a' is named twice"},
           Case{"a:bits=8:bits=4", "key 'bits' is given twice"},
           Case{"a:bits=eight", "'bits=eight' is not key=integer"},
           Case{"a:bits", "'bits' is not key=integer"},
           Case{"a:width=3", "key 'width' is unknown"},
       }) {
    esb::v1::JobConfig config;
    const absl::Status s = ParseOverrides(c.text, &config);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(s.message(), HasSubstr(c.message)) << c.text;
    EXPECT_THAT(s.message(), HasSubstr("--override")) << c.text;
  }
}

}  // namespace
}  // namespace esb::client
