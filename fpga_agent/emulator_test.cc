// The emulator's own contract: what the backend's tests rely on.
#include "fpga_agent/emulator.h"

#include <sys/stat.h>

#include <string>

#include "core/accel/registers.h"
#include "fpga_agent/sysfs.h"
#include "fpga_agent/uio.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::agent {
namespace {

// The emulators' directories go when the tests end (every fixture stops
// its emulator in its teardown, before this runs).
class RemoveRootsAtExit : public ::testing::Environment {
 public:
  void TearDown() override { RemoveEmulatorRoots(); }
};
[[maybe_unused]] ::testing::Environment* const kRemoveRoots =
    ::testing::AddGlobalTestEnvironment(new RemoveRootsAtExit);

std::unique_ptr<Emulator> StartEmulator(EmulatorOptions options) {
  absl::StatusOr<std::string> root = FreshEmulatorRoot(
      ::testing::UnitTest::GetInstance()->current_test_info()->name());
  EXPECT_TRUE(root.ok()) << root.status();
  options.root = *root;
  options.execute = [](absl::Span<uint8_t>, uint64_t,
                       const accel::ArrayConfig&) {
    accel::MachineRun run;
    run.layers_done = 1;
    return run;
  };
  absl::StatusOr<std::unique_ptr<Emulator>> emulator =
      Emulator::Start(std::move(options));
  EXPECT_TRUE(emulator.ok()) << emulator.status();
  return emulator.ok() ? std::move(*emulator) : nullptr;
}

bool WaitFor(const std::function<bool()>& done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

TEST(EmulatorTest, StatusIsWriteOneToClear) {
  std::unique_ptr<Emulator> emulator = StartEmulator({});
  ASSERT_NE(emulator, nullptr);
  auto uio = Uio::Open(UioOptions{emulator->sysfs_root(), emulator->dev_root(),
                                  accel::kUioName});
  ASSERT_TRUE(uio.ok()) << uio.status();
  (*uio)->Write32(accel::kRegCtrl, accel::kCtrlStart);
  ASSERT_TRUE(WaitFor([&] {
    return ((*uio)->Read32(accel::kRegStatus) & accel::kStatusDone) != 0;
  }));
  EXPECT_EQ((*uio)->Read32(accel::kRegCtrl) & accel::kCtrlStart, 0u);
  // Writing 1 to error alone leaves done set; writing 1 to done clears it.
  (*uio)->Write32(accel::kRegStatus, accel::kStatusError);
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ((*uio)->Read32(accel::kRegStatus) & 0xFFFF, accel::kStatusDone);
  (*uio)->Write32(accel::kRegStatus, accel::kStatusDone);
  EXPECT_TRUE(WaitFor(
      [&] { return ((*uio)->Read32(accel::kRegStatus) & 0xFFFF) == 0; }));
}

TEST(EmulatorTest, TheDeviceCanAppearWithTheFirstLoad) {
  EmulatorOptions options;
  options.uio_on_load = true;
  std::unique_ptr<Emulator> emulator = StartEmulator(options);
  ASSERT_NE(emulator, nullptr);
  EXPECT_EQ(emulator->uio_device(), "");
  const UioOptions uio_options{emulator->sysfs_root(), emulator->dev_root(),
                               accel::kUioName};
  EXPECT_EQ(Uio::Open(uio_options).status().code(),
            absl::StatusCode::kNotFound);
  // An image in place and its name written: the device is there.
  FILE* f =
      std::fopen(JoinPath(emulator->firmware_dir(), "x.bin").c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  ASSERT_TRUE(WriteAttribute(JoinPath(emulator->sysfs_root(),
                                      "class/fpga_manager/fpga0/firmware"),
                             "x.bin")
                  .ok());
  ASSERT_TRUE(WaitFor([&] { return emulator->loads() == 1; }));
  EXPECT_EQ(emulator->uio_device(), "uio0");
  EXPECT_TRUE(Uio::Open(uio_options).ok());
}

TEST(EmulatorTest, RailsChangeAndVanish) {
  EmulatorOptions options;
  options.rails = {{"VCCINT", false, 1.5}, {"", false, 0.5}};
  std::unique_ptr<Emulator> emulator = StartEmulator(options);
  ASSERT_NE(emulator, nullptr);
  const std::string hwmon1 =
      JoinPath(emulator->sysfs_root(), "class/hwmon/hwmon1");
  EXPECT_EQ(*ReadAttribute(hwmon1 + "/power1_input"), "500000");
  ASSERT_TRUE(emulator->SetRailWatts(1, 0.25).ok());
  EXPECT_EQ(*ReadAttribute(hwmon1 + "/power1_input"), "250000");
  ASSERT_TRUE(emulator->RemoveRail(1).ok());
  struct stat st {};
  EXPECT_NE(::stat(hwmon1.c_str(), &st), 0);
  EXPECT_EQ(emulator->SetRailWatts(5, 1).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace esb::agent
