#include "client/fit.h"

#include <filesystem>
#include <fstream>
#include <random>

#include "core/data/npy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::client {
namespace {

using ::testing::HasSubstr;

std::string WriteTensor(const std::string& name,
                        const std::vector<float>& values,
                        const std::vector<int64_t>& shape) {
  std::string path =
      (std::filesystem::path(testing::TempDir()) / name).string();
  std::ofstream(path, std::ios::binary) << data::SerializeNpy(values, shape);
  return path;
}

TEST(FitTest, PerChannelAndPerTensor) {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<float> w(size_t{8} * 4 * 3 * 3);
  for (size_t i = 0; i < w.size(); ++i) {
    const size_t channel = i / 36;
    w[i] = normal(rng) * static_cast<float>(1 + channel);
  }
  const std::string path = WriteTensor("w.npy", w, {8, 4, 3, 3});
  const Format format = *Format::Create(4, 2, true);

  FitOptions options;
  options.path = path;
  auto fit = FitTensorFile(format, options);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_EQ(fit->alpha_size(), 8);
  EXPECT_EQ(fit->axis(), 0);
  EXPECT_EQ(fit->count(), 288);
  // Channel i has spread ~(1 + i): its scale must grow with it.
  EXPECT_GT(fit->alpha(7), 4 * fit->alpha(0));
  EXPECT_LE(fit->mse(), fit->mse_gaussian());
  EXPECT_GT(fit->sqnr_db(), 10.0);
  EXPECT_THAT(FitText(*fit, 3), HasSubstr("5 more"));

  options.per_channel = false;
  auto one = FitTensorFile(format, options);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->alpha_size(), 1);
  EXPECT_EQ(one->axis(), -1);
  // One scale for channels of very different spread loses accuracy.
  EXPECT_GT(one->mse(), fit->mse());
}

TEST(FitTest, ErrorsNameTheFile) {
  const Format format = *Format::Create(4, 2, true);
  FitOptions options;
  options.path = "/nonexistent/w.npy";
  auto missing = FitTensorFile(format, options);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);

  options.path =
      WriteTensor("bad_axis.npy", std::vector<float>(6, 1.0f), {2, 3});
  options.axis = 4;
  auto bad = FitTensorFile(format, options);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("bad_axis.npy"));
  EXPECT_THAT(bad.status().message(), HasSubstr("axis 4"));
}

}  // namespace
}  // namespace esb::client
