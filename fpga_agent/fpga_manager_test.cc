#include "fpga_agent/fpga_manager.h"

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "core/env/env.h"
#include "fpga_agent/emulator.h"
#include "fpga_agent/sysfs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::agent {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

class FpgaManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> root = FreshEmulatorRootWithBitstream(
        ::testing::UnitTest::GetInstance()->current_test_info()->name(),
        "esb_16x16.bin", "bitstream bytes");
    ASSERT_TRUE(root.ok()) << root.status();
    root_ = *root;
    bitstreams_ = JoinPath(root_, "bitstreams");
  }

  void StartEmulator(EmulatorOptions options = {}) {
    options.root = root_;
    absl::StatusOr<std::unique_ptr<Emulator>> emulator =
        Emulator::Start(std::move(options));
    ASSERT_TRUE(emulator.ok()) << emulator.status();
    emulator_ = std::move(*emulator);
  }

  std::unique_ptr<FpgaManager> Manager(std::string firmware_dir = "") {
    FpgaManagerOptions options;
    options.sysfs_root = emulator_->sysfs_root();
    options.firmware_dir =
        firmware_dir.empty() ? emulator_->firmware_dir() : firmware_dir;
    options.load_timeout = absl::Seconds(5);
    absl::StatusOr<std::unique_ptr<FpgaManager>> manager =
        FpgaManager::Create(options);
    EXPECT_TRUE(manager.ok()) << manager.status();
    return manager.ok() ? std::move(*manager) : nullptr;
  }

  std::string root_;
  std::string bitstreams_;
  std::unique_ptr<Emulator> emulator_;
};

TEST_F(FpgaManagerTest, LoadCopiesTheImageAndEndsOperating) {
  StartEmulator();
  std::unique_ptr<FpgaManager> manager = Manager();
  ASSERT_NE(manager, nullptr);
  EXPECT_EQ(*manager->State(), "unknown");
  ASSERT_TRUE(manager->Load(JoinPath(bitstreams_, "esb_16x16.bin")).ok());
  EXPECT_EQ(*manager->State(), "operating");
  EXPECT_EQ(emulator_->loads(), 1);
  EXPECT_EQ(emulator_->last_firmware(), "esb_16x16.bin");
  EXPECT_EQ(emulator_->last_flags(), "0");
  absl::StatusOr<std::string> installed = ReadFileToString(
      Env::Default(), JoinPath(emulator_->firmware_dir(), "esb_16x16.bin"));
  ASSERT_TRUE(installed.ok()) << installed.status();
  EXPECT_EQ(*installed, "bitstream bytes");
}

TEST_F(FpgaManagerTest, MissingBitstreamIsNotFound) {
  StartEmulator();
  std::unique_ptr<FpgaManager> manager = Manager();
  const absl::Status s = manager->Load(JoinPath(bitstreams_, "absent.bin"));
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_THAT(s.message(), HasSubstr("absent.bin"));
  EXPECT_EQ(emulator_->loads(), 0);  // Nothing reached the manager.
}

TEST_F(FpgaManagerTest, WriteErrorIsFailedPreconditionWithTheStatus) {
  StartEmulator();
  emulator_->FailLoads("write error", "CRC error in frame 0x2a");
  std::unique_ptr<FpgaManager> manager = Manager();
  const absl::Status s = manager->Load(JoinPath(bitstreams_, "esb_16x16.bin"));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(s.message(), AllOf(HasSubstr("fpga0"), HasSubstr("esb_16x16.bin"),
                                 HasSubstr("'write error'"),
                                 HasSubstr("status: CRC error in frame 0x2a")));
  EXPECT_EQ(*manager->State(), "write error");
}

TEST_F(FpgaManagerTest, ImageMissingFromTheKernelsFirmwareDirectory) {
  StartEmulator();
  // The agent installs the image where the kernel does not look.
  std::unique_ptr<FpgaManager> manager = Manager(JoinPath(root_, "elsewhere"));
  const absl::Status s = manager->Load(JoinPath(bitstreams_, "esb_16x16.bin"));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(s.message(), HasSubstr("'firmware request error'"));
}

TEST_F(FpgaManagerTest, AManagerThatNeverAnswersTimesOut) {
  StartEmulator();
  emulator_->SetFpgaSilent(true);
  FpgaManagerOptions options;
  options.sysfs_root = emulator_->sysfs_root();
  options.firmware_dir = emulator_->firmware_dir();
  options.load_timeout = absl::Milliseconds(200);
  auto manager = FpgaManager::Create(options);
  ASSERT_TRUE(manager.ok());
  const absl::Time start = absl::Now();
  const absl::Status s =
      (*manager)->Load(JoinPath(bitstreams_, "esb_16x16.bin"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(s.message(), HasSubstr("still in state 'unknown' after 200ms"));
}

TEST_F(FpgaManagerTest, NamesThatAreNotPlainFilesAreRefused) {
  StartEmulator();
  std::unique_ptr<FpgaManager> manager = Manager();
  EXPECT_EQ(manager->Load(bitstreams_ + "/").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(manager->Load(bitstreams_ + "/..").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(IsPlainFileName("../x.bin"));
  EXPECT_FALSE(IsPlainFileName(""));
  EXPECT_FALSE(IsPlainFileName(".."));
  EXPECT_TRUE(IsPlainFileName("esb_16x16.bin"));
}

TEST_F(FpgaManagerTest, NoManagerIsNotFound) {
  FpgaManagerOptions options;
  options.sysfs_root = JoinPath(root_, "nothing");
  absl::StatusOr<std::unique_ptr<FpgaManager>> manager =
      FpgaManager::Create(options);
  EXPECT_EQ(manager.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(manager.status().message(),
              HasSubstr("nothing/class/fpga_manager/fpga0"));
}

TEST(FpgaStateTest, FinalStates) {
  EXPECT_TRUE(IsFinalFpgaState("operating"));
  EXPECT_TRUE(IsFinalFpgaState("write error"));
  EXPECT_TRUE(IsFinalFpgaState("firmware request error"));
  EXPECT_FALSE(IsFinalFpgaState("write init"));
  EXPECT_FALSE(IsFinalFpgaState("unknown"));
}

}  // namespace
}  // namespace esb::agent
