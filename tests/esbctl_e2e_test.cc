// Runs the esbctl binary as a user would and checks what it prints.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include "core/esb/format.h"
#include "esb/v1/report.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace {

using ::testing::HasSubstr;

struct Result {
  int exit_code;
  std::string out;  // stdout and stderr together.
};

Result RunEsbctl(const std::string& args) {
  const std::string command = std::string(ESBCTL_PATH) + " " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  Result r{-1, ""};
  if (pipe == nullptr) return r;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    r.out.append(buffer.data(), n);
  }
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(EsbctlTest, LevelsJsonHasTheKeysScriptsUse) {
  for (const esb::Format& f : esb::Format::All()) {
    const Result r = RunEsbctl(
        "levels --json --bits " + std::to_string(f.bits()) + " --sb " +
        std::to_string(f.sb()) + (f.is_signed() ? "" : " --unsigned"));
    ASSERT_EQ(r.exit_code, 0) << r.out;
    for (const char* key :
         {"\"bits\"", "\"sb\"", "\"signed\"", "\"levels\"", "\"integers\"",
          "\"codes\"", "\"max_integer\"", "\"int8_fast_path\""}) {
      EXPECT_THAT(r.out, HasSubstr(key)) << f.ToString();
    }
    esb::v1::LevelsReport report;
    ASSERT_TRUE(
        google::protobuf::util::JsonStringToMessage(r.out, &report).ok())
        << r.out;
    EXPECT_EQ(report.bits(), f.bits());
    EXPECT_EQ(report.signed_(), f.is_signed());
    ASSERT_EQ(static_cast<size_t>(report.levels_size()), f.Levels().size());
    for (int i = 0; i < report.levels_size(); ++i) {
      EXPECT_EQ(report.levels(i), f.Levels()[i]);
    }
    EXPECT_EQ(report.max_integer(), f.max_integer());
    EXPECT_EQ(report.int8_fast_path(), f.fits_int8());
  }
}

TEST(EsbctlTest, LevelsTextShowsTheFp4Grid) {
  const Result r = RunEsbctl("levels --bits 4 --sb 2");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("largest integer 12"));
  EXPECT_THAT(r.out, HasSubstr("0b0111"));
}

TEST(EsbctlTest, InvalidFormatExitsNonZeroListingValidSb) {
  const Result r = RunEsbctl("levels --bits 8 --sb 2");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, HasSubstr("valid sb for bits = 8: {4, 5, 6, 7}"));
  const Result u = RunEsbctl("levels --bits 8 --sb 2 --unsigned");
  EXPECT_EQ(u.exit_code, 2);
  EXPECT_THAT(u.out, HasSubstr("{5, 6, 7, 8}"));
  EXPECT_EQ(RunEsbctl("levels --bits 12 --sb 2").exit_code, 2);
}

TEST(EsbctlTest, UnknownCommandAndFlagFail) {
  EXPECT_EQ(RunEsbctl("frobnicate").exit_code, 2);
  EXPECT_NE(RunEsbctl("levels --no-such-flag").exit_code, 0);
  const Result help = RunEsbctl("help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("esbctl levels"));
}

TEST(EsbctlTest, FitOnTheBundledTensor) {
  const std::string tensor =
      std::string(ESB_SOURCE_DIR) + "/models/resnet_stage3_conv.npy";
  const Result mse = RunEsbctl("fit --json --bits 4 --sb 2 " + tensor);
  ASSERT_EQ(mse.exit_code, 0) << mse.out;
  esb::v1::TensorFit fit;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(mse.out, &fit).ok());
  EXPECT_GT(fit.alpha_size(), 1);
  EXPECT_LE(fit.mse(), fit.mse_gaussian());
  EXPECT_GT(fit.sqnr_db(), 0.0);

  const Result gauss =
      RunEsbctl("fit --json --bits 4 --sb 2 --dda gaussian " + tensor);
  ASSERT_EQ(gauss.exit_code, 0) << gauss.out;
  esb::v1::TensorFit g;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(gauss.out, &g).ok());
  EXPECT_LE(fit.mse(), g.mse());
  EXPECT_EQ(RunEsbctl("fit --dda minmax " + tensor).exit_code, 2);
  EXPECT_EQ(RunEsbctl("fit /nonexistent.npy").exit_code, 1);
}

}  // namespace
