#include "fpga_agent/uio.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "core/accel/registers.h"
#include "fpga_agent/emulator.h"
#include "fpga_agent/sysfs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::agent {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

accel::MachineRun ThreeLayers(absl::Span<uint8_t> buffer, uint64_t offset,
                              const accel::ArrayConfig&) {
  accel::MachineRun run;
  run.layers_done = 3;
  run.cost.cycles = 1234;
  buffer[offset] ^= 0xFF;
  return run;
}

class UioTest : public ::testing::Test {
 protected:
  void Start(EmulatorOptions options) {
    absl::StatusOr<std::string> root = FreshEmulatorRoot(
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(root.ok()) << root.status();
    options.root = *root;
    if (!options.execute) options.execute = ThreeLayers;
    absl::StatusOr<std::unique_ptr<Emulator>> emulator =
        Emulator::Start(std::move(options));
    ASSERT_TRUE(emulator.ok()) << emulator.status();
    emulator_ = std::move(*emulator);
  }

  absl::StatusOr<std::unique_ptr<Uio>> Open() {
    return Uio::Open(UioOptions{emulator_->sysfs_root(), emulator_->dev_root(),
                                accel::kUioName});
  }

  std::unique_ptr<Emulator> emulator_;
};

TEST_F(UioTest, FindsTheAcceleratorAmongOtherDevicesAndMapsBoth) {
  EmulatorOptions options;
  options.other_uio_names = {"axi-gpio", "axi-dma"};
  options.buffer_bytes = 1 << 20;
  options.buffer_address = 0x70000000;
  Start(options);
  absl::StatusOr<std::unique_ptr<Uio>> uio = Open();
  ASSERT_TRUE(uio.ok()) << uio.status();
  EXPECT_EQ((*uio)->device(), "uio2");
  EXPECT_EQ((*uio)->device_path(), JoinPath(emulator_->dev_root(), "uio2"));
  EXPECT_EQ((*uio)->registers_size(), 4096u);
  EXPECT_EQ((*uio)->buffer().size(), size_t{1} << 20);
  EXPECT_EQ((*uio)->buffer_physical_address(), 0x70000000u);
  EXPECT_EQ((*uio)->Read32(accel::kRegId), accel::kIdValue);

  // map0 is the file's first bytes, map1 starts one page in (the UIO
  // convention), and both are shared with the device.
  (*uio)->Write32(accel::kRegProgramLo, 0x11223344);
  (*uio)->buffer()[7] = 0x5A;
  const int fd = ::open((*uio)->device_path().c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  uint8_t regs[4];
  ASSERT_EQ(::pread(fd, regs, 4, accel::kRegProgramLo), 4);
  EXPECT_EQ(regs[0], 0x44);  // Little-endian.
  EXPECT_EQ(regs[3], 0x11);
  uint8_t byte = 0;
  ASSERT_EQ(::pread(fd, &byte, 1, ::getpagesize() + 7), 1);
  EXPECT_EQ(byte, 0x5A);
  ::close(fd);
  EXPECT_EQ(emulator_->buffer()[7], 0x5A);
}

TEST_F(UioTest, NoDeviceOfThatNameIsNotFoundNamingWhatIsThere) {
  EmulatorOptions options;
  options.uio_name = "";
  options.other_uio_names = {"axi-gpio"};
  Start(options);
  absl::StatusOr<std::unique_ptr<Uio>> uio = Open();
  EXPECT_EQ(uio.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(
      uio.status().message(),
      AllOf(HasSubstr("no UIO device named 'esb-accel'"),
            HasSubstr("sys/class/uio"), HasSubstr("found: uio0 'axi-gpio'")));
}

TEST_F(UioTest, NoUioClassAtAllIsNotFound) {
  absl::StatusOr<std::string> root = FreshEmulatorRoot("NoUioClassAtAll");
  ASSERT_TRUE(root.ok());
  absl::StatusOr<std::unique_ptr<Uio>> uio = Uio::Open(UioOptions{
      JoinPath(*root, "sys"), JoinPath(*root, "dev"), accel::kUioName});
  EXPECT_EQ(uio.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(uio.status().message(), HasSubstr("(none there)"));
}

TEST_F(UioTest, InterruptArrivesAfterUnmaskAndTheWaitIsBounded) {
  Start(EmulatorOptions{});
  absl::StatusOr<std::unique_ptr<Uio>> opened = Open();
  ASSERT_TRUE(opened.ok()) << opened.status();
  Uio& uio = **opened;
  ASSERT_TRUE(uio.has_interrupt());
  ASSERT_TRUE(uio.UnmaskInterrupt().ok());

  const absl::Time start = absl::Now();
  absl::StatusOr<bool> none = uio.WaitForInterrupt(absl::Milliseconds(50));
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(*none);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(50));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));

  uio.buffer()[64] = 0x0F;
  uio.Write32(accel::kRegProgramLo, 64);
  uio.Write32(accel::kRegProgramHi, 0);
  uio.Write32(accel::kRegCtrl, accel::kCtrlStart | accel::kCtrlInterruptEnable);
  absl::StatusOr<bool> got = uio.WaitForInterrupt(absl::Seconds(10));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got);
  EXPECT_EQ(uio.interrupt_count(), 1u);
  EXPECT_EQ(emulator_->interrupts(), 1);
  EXPECT_NE(uio.Read32(accel::kRegStatus) & accel::kStatusDone, 0u);
  EXPECT_EQ(uio.Read32(accel::kRegLayersDone), 3u);
  EXPECT_EQ(uio.buffer()[64], 0xF0);  // The device's write is seen.

  // Masked again after the interrupt: the line stays high, nothing comes.
  absl::StatusOr<bool> masked = uio.WaitForInterrupt(absl::Milliseconds(30));
  ASSERT_TRUE(masked.ok());
  EXPECT_FALSE(*masked);
}

TEST_F(UioTest, WithoutAnInterruptLineThereIsNone) {
  EmulatorOptions options;
  options.interrupt = false;
  Start(options);
  absl::StatusOr<std::unique_ptr<Uio>> uio = Open();
  ASSERT_TRUE(uio.ok()) << uio.status();
  EXPECT_FALSE((*uio)->has_interrupt());
  EXPECT_EQ((*uio)->UnmaskInterrupt().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace esb::agent
