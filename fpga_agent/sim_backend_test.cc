#include "fpga_agent/sim_backend.h"

#include <cstring>
#include <memory>

#include "core/accel/runner.h"
#include "core/env/mem_env.h"
#include "core/runtime/esb_executor.h"
#include "fpga_agent/test_package.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::agent {
namespace {

using ::testing::HasSubstr;

TEST(SimBackendTest, OutputsAreTheEsbExecutorsAndCostsAreModelled) {
  const pipeline::PackagedModel package = testing::DemoPackage();
  auto env = NewMemEnv();
  SimBackend backend(env.get(), SimBackendOptions{});
  auto model = backend.Prepare(package, 4);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->max_batch(), 4);
  EXPECT_THAT((*model)->Description(), HasSubstr("modelled on 16x16 PEs"));

  auto executor = runtime::EsbExecutor::Create(package.graph, package.layers,
                                               {}, &package.weight_integers);
  ASSERT_TRUE(executor.ok()) << executor.status();
  const graph::Tensor x = testing::DemoImages(0, 4);
  auto expected = (*executor)->Run({x});
  ASSERT_TRUE(expected.ok());

  BatchStats stats;
  auto got = (*model)->Run(x, &stats);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), expected->size());
  const graph::Tensor& a = got->front();
  const graph::Tensor& b = expected->front();
  EXPECT_EQ(a.shape, b.shape);
  ASSERT_EQ(a.data.size(), b.data.size());
  EXPECT_EQ(
      std::memcmp(a.data.data(), b.data.data(), a.data.size() * sizeof(float)),
      0);

  auto cost = accel::EstimateCost(package, accel::ArrayConfig{}, 4);
  ASSERT_TRUE(cost.ok()) << cost.status();
  EXPECT_GT(cost->macs, 0);
  EXPECT_EQ(stats.operations, 2 * cost->macs);
  EXPECT_EQ(stats.cycles, cost->cycles);
  EXPECT_TRUE(stats.cycles_modelled);
  EXPECT_EQ(stats.energy_source, "model");
  EXPECT_DOUBLE_EQ(stats.energy_joules,
                   accel::EnergyJoules(*cost, accel::ArrayConfig{}));
  EXPECT_GT(stats.compute_seconds, 0);

  BatchStats one;
  ASSERT_TRUE((*model)->Run(testing::DemoImages(0, 1), &one).ok());
  EXPECT_LT(one.operations, stats.operations);
  EXPECT_LT(one.energy_joules, stats.energy_joules);

  auto over = (*model)->Run(testing::DemoImages(0, 5), &one);
  EXPECT_TRUE(absl::IsInvalidArgument(over.status()));
}

TEST(SimBackendTest, BitstreamsMustBeInTheDirectory) {
  auto env = NewMemEnv();
  ASSERT_TRUE(env->CreateDirs("/bits").ok());
  ASSERT_TRUE(WriteFileAtomically(env.get(), "/bits/esb.bit.bin", "x").ok());
  SimBackendOptions options;
  options.bitstream_dir = "/bits";
  SimBackend backend(env.get(), options);
  EXPECT_EQ(backend.Status().bitstream, "");

  absl::Status missing = backend.LoadBitstream("other.bin");
  EXPECT_TRUE(absl::IsNotFound(missing)) << missing;
  EXPECT_THAT(missing.message(), HasSubstr("'other.bin'"));
  absl::Status escape = backend.LoadBitstream("../etc/passwd");
  EXPECT_TRUE(absl::IsInvalidArgument(escape)) << escape;

  ASSERT_TRUE(backend.LoadBitstream("esb.bit.bin").ok());
  const BoardState state = backend.Status();
  EXPECT_EQ(state.backend, "sim");
  EXPECT_EQ(state.bitstream, "esb.bit.bin");
  EXPECT_TRUE(state.healthy);
  EXPECT_FALSE(state.power_measured);
  ASSERT_EQ(state.power.size(), 1u);
  EXPECT_GE(state.power[0].watts, accel::PowerModel{}.static_watts);
  EXPECT_THAT(state.accelerator, HasSubstr("(modelled)"));

  SimBackend no_dir(env.get(), SimBackendOptions{});
  EXPECT_TRUE(absl::IsFailedPrecondition(no_dir.LoadBitstream("esb.bit.bin")));
}

TEST(SimBackendTest, ModelledPowerRisesWithRuns) {
  auto env = NewMemEnv();
  SimBackend backend(env.get(), SimBackendOptions{});
  const double idle = backend.Status().power[0].watts;
  EXPECT_DOUBLE_EQ(idle, accel::PowerModel{}.static_watts);
  backend.RecordRun(5.0);  // 5 J of dynamic energy in the window.
  EXPECT_NEAR(backend.Status().power[0].watts,
              idle + 5.0 / absl::ToDoubleSeconds(SimBackend::kPowerWindow),
              1e-9);
}

}  // namespace
}  // namespace esb::agent
