#include "fpga_agent/zcu102_device.h"

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/accel/registers.h"
#include "fpga_agent/emulator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::agent {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr int64_t kCycles = (int64_t{1} << 32) + 5;  // Needs CYCLES hi.

// Stands in for the accelerator model: flips the program's first byte
// (so a test sees the device's write to map1) and reports fixed figures.
accel::MachineRun FlipFirstByte(absl::Span<uint8_t> buffer, uint64_t offset,
                                const accel::ArrayConfig&) {
  accel::MachineRun run;
  if (offset >= buffer.size()) {
    run.error = accel::DeviceError::kBadProgramOffset;
    return run;
  }
  buffer[offset] ^= 0xFF;
  run.layers_done = 3;
  run.cost.cycles = kCycles;
  return run;
}

class Zcu102DeviceTest : public ::testing::Test {
 protected:
  void Start(EmulatorOptions options) {
    absl::StatusOr<std::string> root = FreshEmulatorRoot(
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(root.ok()) << root.status();
    options.root = *root;
    if (!options.execute) options.execute = FlipFirstByte;
    absl::StatusOr<std::unique_ptr<Emulator>> emulator =
        Emulator::Start(std::move(options));
    ASSERT_TRUE(emulator.ok()) << emulator.status();
    emulator_ = std::move(*emulator);
  }

  absl::StatusOr<std::unique_ptr<Zcu102Device>> Open(bool poll = false) {
    absl::StatusOr<std::unique_ptr<Uio>> uio = Uio::Open(UioOptions{
        emulator_->sysfs_root(), emulator_->dev_root(), accel::kUioName});
    if (!uio.ok()) return uio.status();
    return Zcu102Device::Open(std::move(*uio), Zcu102DeviceOptions{poll});
  }

  std::unique_ptr<Emulator> emulator_;
};

TEST_F(Zcu102DeviceTest, ConfigComesFromCapsAndClock) {
  EmulatorOptions options;
  options.config.rows = 8;
  options.config.cols = 12;
  options.config.max_sb = 3;
  options.config.clock_khz = 150000;
  Start(options);
  auto device = Open();
  ASSERT_TRUE(device.ok()) << device.status();
  EXPECT_EQ((*device)->config().rows, 8);
  EXPECT_EQ((*device)->config().cols, 12);
  EXPECT_EQ((*device)->config().max_sb, 3);
  EXPECT_EQ((*device)->config().clock_khz, 150000u);
  EXPECT_TRUE((*device)->uses_interrupt());
}

class RunModes : public Zcu102DeviceTest,
                 public ::testing::WithParamInterface<int> {
 protected:
  // 0: interrupt, 1: polled with an interrupt line, 2: no interrupt line.
  bool poll() const { return GetParam() == 1; }
  bool line() const { return GetParam() != 2; }
};

TEST_P(RunModes, RunsReadCyclesAndLayersAndSeeTheDevicesWrites) {
  EmulatorOptions options;
  options.interrupt = line();
  Start(options);
  auto opened = Open(poll());
  ASSERT_TRUE(opened.ok()) << opened.status();
  Zcu102Device& device = **opened;
  EXPECT_EQ(device.uses_interrupt(), GetParam() == 0);
  for (int i = 0; i < 40; ++i) {
    const uint64_t offset = 4096 + 64 * i;
    device.buffer()[offset] = static_cast<uint8_t>(i);
    absl::StatusOr<accel::DeviceRun> run =
        device.Run(offset, absl::Seconds(10));
    ASSERT_TRUE(run.ok()) << run.status();
    EXPECT_EQ(run->cycles, kCycles);
    EXPECT_EQ(run->layers_done, 3);
    EXPECT_EQ(device.buffer()[offset], static_cast<uint8_t>(i) ^ 0xFF);
    EXPECT_EQ(emulator_->last_program_offset(), offset);
  }
  EXPECT_EQ(emulator_->runs(), 40);
  EXPECT_EQ(emulator_->interrupts(), GetParam() == 0 ? 40 : 0);
  EXPECT_FALSE(device.wedged());
}

TEST_P(RunModes, ATimeoutResetsTheDeviceAndMarksItWedged) {
  EmulatorOptions options;
  options.interrupt = line();
  Start(options);
  auto opened = Open(poll());
  ASSERT_TRUE(opened.ok()) << opened.status();
  Zcu102Device& device = **opened;
  emulator_->SetHang(true);
  const absl::Time start = absl::Now();
  absl::StatusOr<accel::DeviceRun> run =
      device.Run(4096, absl::Milliseconds(200));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(200));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(run.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(run.status().message(),
              AllOf(HasSubstr("did not finish the program at 0x1000"),
                    HasSubstr("200ms"), HasSubstr("reset")));
  EXPECT_TRUE(device.wedged());
  EXPECT_EQ(device.last_failure(), run.status().message());

  // The reset reaches the device; a run after it completes.
  emulator_->SetHang(false);
  absl::StatusOr<accel::DeviceRun> again = device.Run(4096, absl::Seconds(10));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(emulator_->resets(), 1);
  EXPECT_FALSE(device.wedged());
  EXPECT_EQ(device.last_failure(), "");
}

INSTANTIATE_TEST_SUITE_P(Modes, RunModes, ::testing::Values(0, 1, 2));

TEST_F(Zcu102DeviceTest, ADeviceErrorIsInternalNamingTheCode) {
  EmulatorOptions options;
  options.execute = [](absl::Span<uint8_t>, uint64_t,
                       const accel::ArrayConfig&) {
    accel::MachineRun run;
    run.error = accel::DeviceError::kBadDescriptor;
    run.layers_done = 2;
    return run;
  };
  Start(options);
  auto device = Open();
  ASSERT_TRUE(device.ok()) << device.status();
  absl::StatusOr<accel::DeviceRun> run = (*device)->Run(256, absl::Seconds(10));
  EXPECT_EQ(run.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(run.status().message(),
              AllOf(HasSubstr(absl::StrCat("'", accel::DeviceErrorName(4),
                                           "' (code 4)")),
                    HasSubstr("after 2 layers"), HasSubstr("0x100")));
  EXPECT_FALSE((*device)->wedged());  // It answered.

  // The error is cleared by the next run, which ends in error again: the
  // code is this run's, not a left-over.
  run = (*device)->Run(512, absl::Seconds(10));
  EXPECT_THAT(run.status().message(), HasSubstr("0x200"));
}

TEST_F(Zcu102DeviceTest, ProgramOffsetsPast4GiBUseTheHighWord) {
  Start(EmulatorOptions{});
  auto device = Open();
  ASSERT_TRUE(device.ok());
  const uint64_t offset = (uint64_t{3} << 32) | 0x40;
  absl::StatusOr<accel::DeviceRun> run =
      (*device)->Run(offset, absl::Seconds(10));
  EXPECT_EQ(emulator_->last_program_offset(), offset);
  EXPECT_EQ(run.status().code(), absl::StatusCode::kInternal);  // Outside map1.
}

TEST_F(Zcu102DeviceTest, WrongIdIsRefused) {
  EmulatorOptions options;
  options.id = 0xDEADBEEF;
  Start(options);
  auto device = Open();
  EXPECT_EQ(device.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(device.status().message(),
              AllOf(HasSubstr("0xdeadbeef"), HasSubstr("ESB1")));
}

TEST_F(Zcu102DeviceTest, AnotherMajorVersionIsRefused) {
  EmulatorOptions options;
  options.version = (2u << 16) | 3;
  Start(options);
  auto device = Open();
  EXPECT_EQ(device.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(device.status().message(), HasSubstr("version 2.3"));

  // A newer minor version is fine.
  EmulatorOptions minor;
  minor.version = (accel::kVersionMajor << 16) | 9;
  emulator_.reset();
  Start(minor);
  EXPECT_TRUE(Open().ok());
}

TEST_F(Zcu102DeviceTest, CapsWithoutAnArrayAreRefused) {
  EmulatorOptions options;
  options.config.rows = 0;
  Start(options);
  auto device = Open();
  EXPECT_EQ(device.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(device.status().message(), HasSubstr("describe no PE array"));
}

}  // namespace
}  // namespace esb::agent
