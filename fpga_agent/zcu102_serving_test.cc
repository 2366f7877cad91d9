// The zcu102 backend serving demo packages on the emulated board: outputs
// bit for bit those of the CPU ESB executor, cycles from the device's
// CYCLES register, energy integrated from the INA226 rails (or modelled
// without them), and a device that never finishes leaving the board
// unhealthy until it runs again.
#include <cstring>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/accel/array.h"
#include "core/accel/machine.h"
#include "core/accel/runner.h"
#include "core/env/env.h"
#include "core/package/esbm.h"
#include "core/runtime/esb_executor.h"
#include "core/testing/demo.h"
#include "fpga_agent/emulator.h"
#include "fpga_agent/sysfs.h"
#include "fpga_agent/zcu102_backend.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::agent {
namespace {

using ::testing::HasSubstr;

constexpr int kMaxBatch = 16;

pipeline::PackagedModel DemoPackage(const std::string& name) {
  const graph::Graph g = demo::LoadDemoModel(name);
  const auto layers = demo::DemoLayers(g, demo::MakeFormat(5, 2, true),
                                       demo::MakeFormat(4, 2, false));
  auto package = pipeline::BuildPackage(
      g, layers, data::Normalization{{0.286f}, {0.353f}}, name);
  EXPECT_TRUE(package.ok()) << package.status();
  auto parsed = pipeline::ParsePackage(pipeline::SerializePackage(*package));
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  auto unpacked = pipeline::UnpackPackage(*parsed);
  EXPECT_TRUE(unpacked.ok()) << unpacked.status();
  return *std::move(unpacked);
}

class ServingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> root = FreshEmulatorRootWithBitstream(
        ::testing::UnitTest::GetInstance()->current_test_info()->name(),
        "esb.bin", "image");
    ASSERT_TRUE(root.ok()) << root.status();
    root_ = *root;
    bitstreams_ = JoinPath(root_, "bitstreams");
    images_ = demo::DemoImages("t10k-images-idx3-ubyte.gz", 48);
  }

  void StartEmulator(EmulatorOptions options) {
    options.root = root_;
    options.buffer_bytes = uint64_t{64} << 20;
    absl::StatusOr<std::unique_ptr<Emulator>> emulator =
        Emulator::Start(std::move(options));
    ASSERT_TRUE(emulator.ok()) << emulator.status();
    emulator_ = std::move(*emulator);
  }

  std::unique_ptr<Backend> LoadedBackend(
      bool poll = false, absl::Duration timeout = absl::Seconds(30)) {
    Zcu102Options options;
    options.sysfs_root = emulator_->sysfs_root();
    options.dev_root = emulator_->dev_root();
    options.firmware_dir = emulator_->firmware_dir();
    options.bitstream_dir = bitstreams_;
    options.device_timeout = timeout;
    options.poll = poll;
    options.power_period = absl::Milliseconds(1);
    absl::StatusOr<std::unique_ptr<Backend>> backend =
        MakeZcu102Backend(options);
    EXPECT_TRUE(backend.ok()) << backend.status();
    if (!backend.ok()) return nullptr;
    const absl::Status loaded = (*backend)->LoadBitstream("esb.bin");
    EXPECT_TRUE(loaded.ok()) << loaded;
    return std::move(*backend);
  }

  // Runs images [start, start + n) on `model` and on the CPU executor of
  // `package`; true when the outputs are the same bits.
  void ExpectSameBits(LoadedModel& model,
                      const pipeline::PackagedModel& package, int64_t start,
                      int64_t n, BatchStats* stats) {
    auto cpu = runtime::EsbExecutor::Create(package.graph, package.layers, {},
                                            &package.weight_integers);
    ASSERT_TRUE(cpu.ok()) << cpu.status();
    const graph::Tensor x = demo::DemoBatch(images_, start, n);
    auto want = (*cpu)->Run({x});
    ASSERT_TRUE(want.ok()) << want.status();
    auto got = model.Run(x, stats);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->size(), want->size());
    for (size_t i = 0; i < got->size(); ++i) {
      ASSERT_EQ((*got)[i].shape, (*want)[i].shape);
      ASSERT_EQ((*got)[i].data.size(), (*want)[i].data.size());
      EXPECT_EQ(std::memcmp((*got)[i].data.data(), (*want)[i].data.data(),
                            (*got)[i].data.size() * sizeof(float)),
                0)
          << "output " << i << " of images " << start << ".." << start + n;
    }
  }

  std::string root_;
  std::string bitstreams_;
  std::vector<float> images_;
  std::unique_ptr<Emulator> emulator_;
};

struct Mode {
  std::string model;
  bool poll;
};
void PrintTo(const Mode& mode, std::ostream* os) {
  *os << mode.model << (mode.poll ? " polled" : " interrupt");
}

class ServingModes : public ServingTest,
                     public ::testing::WithParamInterface<Mode> {};

TEST_P(ServingModes, OutputsAreTheEsbExecutorsAndEnergyIsMeasured) {
  EmulatorOptions options;
  options.rails = {{"VCCINT", false, 2.5}, {"VCCBRAM", false, 1.25}};
  StartEmulator(options);
  std::unique_ptr<Backend> backend = LoadedBackend(GetParam().poll);
  ASSERT_NE(backend, nullptr);
  const pipeline::PackagedModel package = DemoPackage(GetParam().model);
  absl::StatusOr<std::unique_ptr<LoadedModel>> model =
      backend->Prepare(package, kMaxBatch);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->max_batch(), kMaxBatch);
  EXPECT_THAT((*model)->Description(), HasSubstr("device program"));

  const accel::ArrayConfig config;  // The emulator's.
  for (const auto& [start, n] :
       {std::pair<int64_t, int64_t>{0, 16}, {16, 16}, {32, 5}}) {
    const int runs_before = emulator_->runs();
    BatchStats stats;
    ExpectSameBits(**model, package, start, n, &stats);
    EXPECT_GT(emulator_->runs(), runs_before);
    // Cycles are CYCLES as the device wrote them: the model's for this
    // batch, since the emulated device runs the model.
    absl::StatusOr<accel::Cost> cost =
        accel::EstimateCost(package, config, static_cast<int>(n));
    ASSERT_TRUE(cost.ok()) << cost.status();
    EXPECT_EQ(stats.cycles, cost->cycles);
    EXPECT_FALSE(stats.cycles_modelled);
    EXPECT_EQ(stats.operations, 2 * cost->macs);
    // 3.75 W held over the run: energy is that times the run's time.
    EXPECT_EQ(stats.energy_source, "measured");
    EXPECT_GT(stats.compute_seconds, 0.0);
    EXPECT_NEAR(stats.energy_joules, 3.75 * stats.compute_seconds,
                1e-9 * stats.energy_joules);
  }
  if (GetParam().poll) {
    EXPECT_EQ(emulator_->interrupts(), 0);
  } else {
    EXPECT_EQ(emulator_->interrupts(), emulator_->runs());
  }
  EXPECT_TRUE(backend->Status().healthy);
}

INSTANTIATE_TEST_SUITE_P(Demo, ServingModes,
                         ::testing::Values(Mode{"lenet", false},
                                           Mode{"resnet", false},
                                           Mode{"lenet", true}),
                         [](const auto& info) {
                           return info.param.model +
                                  (info.param.poll ? "_polled" : "_interrupt");
                         });

TEST_F(ServingTest, PowerThatChangesDuringARunIsIntegrated) {
  EmulatorOptions options;
  options.rails = {{"VCCINT", false, 1.0}};
  // The rail reads 1 W before the device runs and 3 W once it has started.
  options.execute = [this](absl::Span<uint8_t> buffer, uint64_t offset,
                           const accel::ArrayConfig& config) {
    (void)emulator_->SetRailWatts(0, 3.0);
    absl::SleepFor(absl::Milliseconds(20));
    return accel::Execute(buffer, offset, config);
  };
  StartEmulator(options);
  std::unique_ptr<Backend> backend = LoadedBackend();
  ASSERT_NE(backend, nullptr);
  const pipeline::PackagedModel package = DemoPackage("lenet");
  auto model = backend->Prepare(package, kMaxBatch);
  ASSERT_TRUE(model.ok()) << model.status();
  BatchStats stats;
  ExpectSameBits(**model, package, 0, 4, &stats);
  EXPECT_EQ(stats.energy_source, "measured");
  // Between 1 W and 3 W over the run, and well above 1 W: the device ran
  // at 3 W for at least 20 ms of it.
  EXPECT_GT(stats.energy_joules, 1.0 * stats.compute_seconds + 0.02);
  EXPECT_LE(stats.energy_joules, 3.0 * stats.compute_seconds * (1 + 1e-9));
}

TEST_F(ServingTest, OutputsComeFromTheDevice) {
  // A device that reports done without computing anything: the outputs
  // are whatever map1 held, not the executor's.
  EmulatorOptions options;
  options.execute = [](absl::Span<uint8_t>, uint64_t,
                       const accel::ArrayConfig&) {
    return accel::MachineRun{};
  };
  StartEmulator(options);
  std::unique_ptr<Backend> backend = LoadedBackend();
  ASSERT_NE(backend, nullptr);
  const pipeline::PackagedModel package = DemoPackage("lenet");
  auto model = backend->Prepare(package, kMaxBatch);
  ASSERT_TRUE(model.ok()) << model.status();
  auto cpu = runtime::EsbExecutor::Create(package.graph, package.layers, {},
                                          &package.weight_integers);
  ASSERT_TRUE(cpu.ok());
  const graph::Tensor x = demo::DemoBatch(images_, 0, 4);
  auto want = (*cpu)->Run({x});
  auto got = (*model)->Run(x, nullptr);
  ASSERT_TRUE(want.ok() && got.ok()) << want.status() << got.status();
  EXPECT_NE(got->front().data, want->front().data);
}

TEST_F(ServingTest, EnergyIsModelledWithoutRails) {
  StartEmulator(EmulatorOptions{});
  std::unique_ptr<Backend> backend = LoadedBackend();
  ASSERT_NE(backend, nullptr);
  const pipeline::PackagedModel package = DemoPackage("lenet");
  auto model = backend->Prepare(package, kMaxBatch);
  ASSERT_TRUE(model.ok()) << model.status();
  BatchStats stats;
  ExpectSameBits(**model, package, 0, 8, &stats);
  absl::StatusOr<accel::Cost> cost =
      accel::EstimateCost(package, accel::ArrayConfig{}, 8);
  ASSERT_TRUE(cost.ok());
  EXPECT_EQ(stats.energy_source, "model");
  EXPECT_DOUBLE_EQ(stats.energy_joules,
                   accel::EnergyJoules(*cost, accel::ArrayConfig{}));
  EXPECT_FALSE(stats.cycles_modelled);
  const BoardState state = backend->Status();
  EXPECT_FALSE(state.power_measured);
  EXPECT_TRUE(state.power.empty());
}

TEST_F(ServingTest, ARailThatVanishesMidRunIsSkipped) {
  EmulatorOptions options;
  options.rails = {{"VCCINT", false, 2.0}, {"VCCBRAM", false, 1.0}};
  options.execute = [this](absl::Span<uint8_t> buffer, uint64_t offset,
                           const accel::ArrayConfig& config) {
    (void)emulator_->RemoveRail(1);  // Its driver unbinds during the run.
    return accel::Execute(buffer, offset, config);
  };
  StartEmulator(options);
  std::unique_ptr<Backend> backend = LoadedBackend();
  ASSERT_NE(backend, nullptr);
  const pipeline::PackagedModel package = DemoPackage("lenet");
  auto model = backend->Prepare(package, kMaxBatch);
  ASSERT_TRUE(model.ok()) << model.status();
  BatchStats stats;
  ExpectSameBits(**model, package, 0, 4, &stats);
  EXPECT_EQ(stats.energy_source, "measured");
  EXPECT_GE(stats.energy_joules, 2.0 * stats.compute_seconds * (1 - 1e-9));
  EXPECT_LT(stats.energy_joules, 3.0 * stats.compute_seconds);
  const BoardState state = backend->Status();
  ASSERT_EQ(state.power.size(), 1u);
  EXPECT_EQ(state.power[0].rail, "VCCINT");
  EXPECT_TRUE(state.healthy) << state.health_detail;
}

TEST_F(ServingTest, ADeviceThatNeverFinishesLeavesTheBoardUnhealthy) {
  StartEmulator(EmulatorOptions{});
  std::unique_ptr<Backend> backend =
      LoadedBackend(false, absl::Milliseconds(300));
  ASSERT_NE(backend, nullptr);
  const pipeline::PackagedModel package = DemoPackage("lenet");
  auto model = backend->Prepare(package, kMaxBatch);
  ASSERT_TRUE(model.ok()) << model.status();
  emulator_->SetHang(true);
  const graph::Tensor x = demo::DemoBatch(images_, 0, 4);
  BatchStats stats;
  auto out = (*model)->Run(x, &stats);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kDeadlineExceeded)
      << out.status();
  EXPECT_THAT(out.status().message(), HasSubstr("did not finish"));
  BoardState state = backend->Status();
  EXPECT_FALSE(state.healthy);
  EXPECT_THAT(state.health_detail, HasSubstr("the accelerator failed a run"));
  EXPECT_THAT(state.health_detail, HasSubstr("300ms"));

  // Reset, the device works again: the next batch is right and the board
  // healthy.
  emulator_->SetHang(false);
  ExpectSameBits(**model, package, 0, 4, &stats);
  EXPECT_GE(emulator_->resets(), 1);
  state = backend->Status();
  EXPECT_TRUE(state.healthy) << state.health_detail;
}

TEST_F(ServingTest, ModelsTakeTurnsOnTheOneArray) {
  StartEmulator(EmulatorOptions{});
  std::unique_ptr<Backend> backend = LoadedBackend();
  ASSERT_NE(backend, nullptr);
  const pipeline::PackagedModel lenet = DemoPackage("lenet");
  const pipeline::PackagedModel resnet = DemoPackage("resnet");
  auto a = backend->Prepare(lenet, kMaxBatch);
  auto b = backend->Prepare(resnet, 8);
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
  for (int round = 0; round < 2; ++round) {
    ExpectSameBits(**a, lenet, 8 * round, 8, nullptr);
    ExpectSameBits(**b, resnet, 8 * round, 8, nullptr);
  }
  b->reset();  // A model dropped while the other is kept.
  ExpectSameBits(**a, lenet, 40, 8, nullptr);
}

TEST_F(ServingTest, AReloadedBitstreamServesThePreparedModels) {
  StartEmulator(EmulatorOptions{});
  std::unique_ptr<Backend> backend = LoadedBackend();
  ASSERT_NE(backend, nullptr);
  const pipeline::PackagedModel package = DemoPackage("lenet");
  auto model = backend->Prepare(package, kMaxBatch);
  ASSERT_TRUE(model.ok()) << model.status();
  ExpectSameBits(**model, package, 0, 4, nullptr);
  ASSERT_EQ(emulator_->loads(), 1);
  ASSERT_TRUE(backend->LoadBitstream("esb.bin").ok());
  ExpectSameBits(**model, package, 4, 4, nullptr);  // On the new mapping.
  // The model may outlive the backend.
  backend.reset();
  ExpectSameBits(**model, package, 8, 4, nullptr);
}

}  // namespace
}  // namespace esb::agent

namespace esb::agent {
namespace {

// DESIGN's acceptance figure: both demo models over 1000 test images
// through the whole zcu102 path (program in map1, START, interrupt, read
// back) on the emulated device, bit for bit the CPU ESB executor's.
class ThousandImages : public ServingTest,
                       public ::testing::WithParamInterface<std::string> {};

TEST_P(ThousandImages, AreTheEsbExecutorsBitForBit) {
  StartEmulator(EmulatorOptions{});
  std::unique_ptr<Backend> backend = LoadedBackend();
  ASSERT_NE(backend, nullptr);
  const pipeline::PackagedModel package = DemoPackage(GetParam());
  auto model = backend->Prepare(package, 50);
  ASSERT_TRUE(model.ok()) << model.status();
  auto cpu = runtime::EsbExecutor::Create(package.graph, package.layers, {},
                                          &package.weight_integers);
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  const std::vector<float> images =
      demo::DemoImages("t10k-images-idx3-ubyte.gz", 1000);
  int64_t differing = 0;
  for (int64_t start = 0; start < 1000; start += 50) {
    const graph::Tensor x = demo::DemoBatch(images, start, 50);
    auto want = (*cpu)->Run({x});
    BatchStats stats;
    auto got = (*model)->Run(x, &stats);
    ASSERT_TRUE(want.ok()) << want.status();
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->front().data.size(), want->front().data.size());
    differing +=
        std::memcmp(got->front().data.data(), want->front().data.data(),
                    got->front().data.size() * sizeof(float)) != 0;
  }
  EXPECT_EQ(differing, 0);
  EXPECT_EQ(emulator_->runs(), emulator_->interrupts());
}

INSTANTIATE_TEST_SUITE_P(Demo, ThousandImages,
                         ::testing::Values("lenet", "resnet"));

}  // namespace
}  // namespace esb::agent
