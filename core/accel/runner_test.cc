// The accelerator model against the CPU ESB executor: a package run on the
// modelled device (device layers through the layer program and the PE
// array model, the rest on the host) gives the executor's outputs bit for
// bit.
#include "core/accel/runner.h"

#include <cstring>
#include <memory>

#include "core/accel/model_device.h"
#include "core/package/esbm.h"
#include "core/runtime/esb_executor.h"
#include "core/testing/demo.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::accel {
namespace {

using ::testing::HasSubstr;

struct Case {
  std::string model;
  int weight_bits, weight_sb;
  int input_bits, input_sb;
  int64_t images = 200;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.model << " weights b" << c.weight_bits << " sb" << c.weight_sb
      << ", inputs b" << c.input_bits << " sb" << c.input_sb;
}

pipeline::PackagedModel DemoPackage(const Case& c) {
  const graph::Graph g = demo::LoadDemoModel(c.model);
  const auto layers =
      demo::DemoLayers(g, demo::MakeFormat(c.weight_bits, c.weight_sb, true),
                       demo::MakeFormat(c.input_bits, c.input_sb, false));
  auto package = pipeline::BuildPackage(
      g, layers, data::Normalization{{0.286f}, {0.353f}}, c.model);
  EXPECT_TRUE(package.ok()) << package.status();
  auto parsed = pipeline::ParsePackage(pipeline::SerializePackage(*package));
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  auto unpacked = pipeline::UnpackPackage(*parsed);
  EXPECT_TRUE(unpacked.ok()) << unpacked.status();
  return *std::move(unpacked);
}

class RunnerTest : public ::testing::TestWithParam<Case> {};

TEST_P(RunnerTest, DeviceOutputsAreTheEsbExecutorsBitForBit) {
  const pipeline::PackagedModel model = DemoPackage(GetParam());
  auto cpu = runtime::EsbExecutor::Create(model.graph, model.layers, {},
                                          &model.weight_integers);
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  ModelDevice device(ArrayConfig{}, int64_t{64} << 20);
  RunnerOptions options;
  options.max_batch = 50;
  auto runner = ModelRunner::Create(model, &device, options);
  ASSERT_TRUE(runner.ok()) << runner.status();
  EXPECT_THAT((*runner)->Description(), HasSubstr("device program"));

  const int64_t count = GetParam().images;
  const std::vector<float> test =
      demo::DemoImages("t10k-images-idx3-ubyte.gz", count);
  int64_t differing = 0;
  int64_t cycles = 0;
  for (int64_t start = 0; start < count; start += 100) {
    // 100 images: two device batches of max_batch.
    const graph::Tensor x = demo::DemoBatch(test, start, 100);
    auto want = (*cpu)->Run({x});
    RunStats stats;
    auto got = (*runner)->Run({x}, &stats);
    ASSERT_TRUE(want.ok()) << want.status();
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->size(), want->size());
    ASSERT_EQ(got->front().shape, want->front().shape);
    ASSERT_EQ(got->front().data.size(), want->front().data.size());
    differing +=
        std::memcmp(got->front().data.data(), want->front().data.data(),
                    got->front().data.size() * sizeof(float)) != 0;
    EXPECT_GE(stats.device_runs, 2);
    EXPECT_EQ(stats.device_cycles, stats.cost.cycles);
    cycles += stats.device_cycles;
  }
  EXPECT_EQ(differing, 0);
  EXPECT_GT(cycles, 0);

  // The estimate without data is the cost the runs reported.
  auto estimate = EstimateCost(model, ArrayConfig{}, 50);
  ASSERT_TRUE(estimate.ok()) << estimate.status();
  EXPECT_GT(estimate->macs, 0);
  EXPECT_EQ(estimate->shift_adds, estimate->macs * GetParam().weight_sb);
}

INSTANTIATE_TEST_SUITE_P(Demo, RunnerTest,
                         ::testing::Values(Case{"lenet", 5, 2, 4, 2, 1000},
                                           Case{"resnet", 5, 2, 4, 2, 1000},
                                           Case{"lenet", 6, 3, 8, 5},
                                           Case{"resnet", 4, 1, 8, 5}),
                         [](const auto& info) {
                           return info.param.model + "_w" +
                                  std::to_string(info.param.weight_bits) +
                                  "sb" + std::to_string(info.param.weight_sb) +
                                  "_x" + std::to_string(info.param.input_bits) +
                                  "sb" + std::to_string(info.param.input_sb);
                         });

TEST(RunnerTest, ResnetKeepsGlobalAveragePoolOnTheHost) {
  const pipeline::PackagedModel model = DemoPackage({"resnet", 5, 2, 4, 2});
  ModelDevice device(ArrayConfig{}, int64_t{64} << 20);
  auto runner = ModelRunner::Create(model, &device);
  ASSERT_TRUE(runner.ok()) << runner.status();
  EXPECT_THAT((*runner)->Description(), HasSubstr("GlobalAveragePool"));
}

TEST(RunnerTest, WeightsBeyondTheArraysSbRunOnTheHostAndStillMatch) {
  const pipeline::PackagedModel model = DemoPackage({"lenet", 6, 3, 4, 2});
  ArrayConfig small;
  small.max_sb = 2;  // Every layer's sb 3 is beyond it.
  ModelDevice device(small, int64_t{16} << 20);
  auto runner = ModelRunner::Create(model, &device);
  ASSERT_TRUE(runner.ok()) << runner.status();
  // The convolutions and FC layers go to the host; the pools stay.
  EXPECT_THAT((*runner)->Description(),
              HasSubstr("host segments (Conv, Conv, Gemm, Gemm)"));
  auto cpu = runtime::EsbExecutor::Create(model.graph, model.layers, {},
                                          &model.weight_integers);
  ASSERT_TRUE(cpu.ok());
  const std::vector<float> test =
      demo::DemoImages("t10k-images-idx3-ubyte.gz", 8);
  const graph::Tensor x = demo::DemoBatch(test, 0, 8);
  auto a = (*runner)->Run({x});
  auto b = (*cpu)->Run({x});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->front().data, b->front().data);
}

TEST(RunnerTest, TooSmallABufferRegionIsResourceExhausted) {
  const pipeline::PackagedModel model = DemoPackage({"lenet", 5, 2, 4, 2});
  ModelDevice device(ArrayConfig{}, 4096);
  auto runner = ModelRunner::Create(model, &device);
  ASSERT_FALSE(runner.ok());
  EXPECT_EQ(runner.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(runner.status().message(), HasSubstr("it has 4096"));
}

TEST(RunnerTest, WrongInputShapeNamesTheInput) {
  const pipeline::PackagedModel model = DemoPackage({"lenet", 5, 2, 4, 2});
  ModelDevice device(ArrayConfig{}, int64_t{16} << 20);
  auto runner = ModelRunner::Create(model, &device);
  ASSERT_TRUE(runner.ok()) << runner.status();
  graph::Tensor x;
  x.shape = {2, 1, 27, 28};
  x.data.assign(2 * 27 * 28, 0.0f);
  auto out = (*runner)->Run({x});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(out.status().message(), HasSubstr("expected [-1,1,28,28]"));
}

TEST(RunnerTest, MaxBatchOutsideItsRangeIsRefused) {
  const pipeline::PackagedModel model = DemoPackage({"lenet", 5, 2, 4, 2});
  ModelDevice device(ArrayConfig{}, int64_t{16} << 20);
  RunnerOptions options;
  options.max_batch = 0;
  auto runner = ModelRunner::Create(model, &device, options);
  ASSERT_FALSE(runner.ok());
  EXPECT_THAT(runner.status().message(), HasSubstr("max_batch 0"));
}

}  // namespace
}  // namespace esb::accel
