#include "fpga_agent/zcu102_backend.h"

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

class Zcu102BackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> root = FreshEmulatorRootWithBitstream(
        ::testing::UnitTest::GetInstance()->current_test_info()->name(),
        "esb_16x16.bin", "bitstream");
    ASSERT_TRUE(root.ok()) << root.status();
    root_ = *root;
    bitstreams_ = JoinPath(root_, "bitstreams");
  }

  void StartEmulator(EmulatorOptions options) {
    options.root = root_;
    absl::StatusOr<std::unique_ptr<Emulator>> emulator =
        Emulator::Start(std::move(options));
    ASSERT_TRUE(emulator.ok()) << emulator.status();
    emulator_ = std::move(*emulator);
  }

  Zcu102Options Options() const {
    Zcu102Options options;
    options.sysfs_root = emulator_->sysfs_root();
    options.dev_root = emulator_->dev_root();
    options.firmware_dir = emulator_->firmware_dir();
    options.bitstream_dir = bitstreams_;
    options.load_timeout = absl::Seconds(10);
    options.power_period = absl::Milliseconds(1);
    return options;
  }

  std::unique_ptr<Backend> MakeBackend(const Zcu102Options& options) {
    absl::StatusOr<std::unique_ptr<Backend>> backend =
        MakeZcu102Backend(options);
    EXPECT_TRUE(backend.ok()) << backend.status();
    return backend.ok() ? std::move(*backend) : nullptr;
  }

  std::string root_;
  std::string bitstreams_;
  std::unique_ptr<Emulator> emulator_;
};

TEST_F(Zcu102BackendTest, OptionsAreChecked) {
  StartEmulator({});
  Zcu102Options options = Options();
  options.bitstream_dir = "";
  EXPECT_EQ(MakeZcu102Backend(options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options = Options();
  options.sysfs_root = JoinPath(root_, "no-sysfs");
  absl::StatusOr<std::unique_ptr<Backend>> backend = MakeZcu102Backend(options);
  EXPECT_EQ(backend.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(backend.status().message(), HasSubstr("fpga_manager/fpga0"));
}

TEST_F(Zcu102BackendTest, LoadBringsTheAcceleratorAndStatusDescribesTheBoard) {
  EmulatorOptions options;
  options.uio_on_load = true;
  options.config.rows = 8;
  options.config.cols = 16;
  options.config.max_sb = 4;
  options.config.clock_khz = 250000;
  options.rails = {{"VCCINT", false, 2.5}, {"VCC1V8", true, 0.5}};
  options.temperature_c = 41.5;
  StartEmulator(options);
  std::unique_ptr<Backend> backend = MakeBackend(Options());
  ASSERT_NE(backend, nullptr);
  EXPECT_EQ(backend->name(), "zcu102");

  BoardState before = backend->Status();
  EXPECT_EQ(before.backend, "zcu102");
  EXPECT_EQ(before.bitstream, "");
  EXPECT_EQ(before.bitstream_state, "unknown");
  EXPECT_EQ(before.accelerator, "");
  EXPECT_FALSE(before.healthy);
  EXPECT_THAT(before.health_detail,
              HasSubstr("no UIO device named 'esb-accel'"));

  ASSERT_TRUE(backend->LoadBitstream("esb_16x16.bin").ok());
  BoardState after = backend->Status();
  EXPECT_EQ(after.bitstream, "esb_16x16.bin");
  EXPECT_EQ(after.bitstream_state, "operating");
  EXPECT_THAT(after.accelerator, AllOf(HasSubstr("8x16"), HasSubstr("uio0"),
                                       HasSubstr("interrupt")));
  EXPECT_TRUE(after.healthy) << after.health_detail;
  EXPECT_EQ(after.health_detail, "");
  ASSERT_TRUE(after.temperature_c.has_value());
  EXPECT_DOUBLE_EQ(*after.temperature_c, 41.5);
  ASSERT_EQ(after.power.size(), 2u);
  EXPECT_EQ(after.power[0].rail, "VCCINT");
  EXPECT_DOUBLE_EQ(after.power[0].watts, 2.5);
  EXPECT_EQ(after.power[1].rail, "VCC1V8");
  EXPECT_DOUBLE_EQ(after.power[1].watts, 0.5);
  EXPECT_TRUE(after.power_measured);
}

TEST_F(Zcu102BackendTest, MissingBitstreamIsNotFound) {
  StartEmulator({});
  std::unique_ptr<Backend> backend = MakeBackend(Options());
  const absl::Status s = backend->LoadBitstream("absent.bin");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_THAT(s.message(), HasSubstr("absent.bin"));
}

TEST_F(Zcu102BackendTest, BadNamesAreRefused) {
  StartEmulator({});
  std::unique_ptr<Backend> backend = MakeBackend(Options());
  for (const char* name : {"../esb_16x16.bin", "", "..", "a/b.bin"}) {
    EXPECT_EQ(backend->LoadBitstream(name).code(),
              absl::StatusCode::kInvalidArgument)
        << name;
  }
  EXPECT_EQ(emulator_->loads(), 0);
}

TEST_F(Zcu102BackendTest, WriteErrorIsFailedPreconditionAndUnhealthy) {
  StartEmulator({});
  emulator_->FailLoads("write error", "Bitstream is for another device");
  std::unique_ptr<Backend> backend = MakeBackend(Options());
  const absl::Status s = backend->LoadBitstream("esb_16x16.bin");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(s.message(), AllOf(HasSubstr("'write error'"),
                                 HasSubstr("Bitstream is for another device")));
  const BoardState state = backend->Status();
  EXPECT_EQ(state.bitstream, "");
  EXPECT_EQ(state.bitstream_state, "write error");
  EXPECT_FALSE(state.healthy);
  EXPECT_THAT(state.health_detail,
              HasSubstr("FPGA Manager state 'write error'"));
  EXPECT_EQ(state.accelerator, "");  // The old mapping is gone.
}

TEST_F(Zcu102BackendTest, MissingFirmwareFileIsFailedPrecondition) {
  StartEmulator({});
  Zcu102Options options = Options();
  options.firmware_dir = JoinPath(root_, "not-where-the-kernel-looks");
  std::unique_ptr<Backend> backend = MakeBackend(options);
  const absl::Status s = backend->LoadBitstream("esb_16x16.bin");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(s.message(), HasSubstr("'firmware request error'"));
}

TEST_F(Zcu102BackendTest, ABitstreamWithoutTheAcceleratorIsReported) {
  EmulatorOptions options;
  options.uio_name = "";
  options.other_uio_names = {"axi-gpio"};
  StartEmulator(options);
  std::unique_ptr<Backend> backend = MakeBackend(Options());
  const absl::Status s = backend->LoadBitstream("esb_16x16.bin");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(s.message(),
              AllOf(HasSubstr("'esb_16x16.bin' is loaded but holds no "
                              "accelerator"),
                    HasSubstr("no UIO device named 'esb-accel'"),
                    HasSubstr("uio0 'axi-gpio'")));
  const BoardState state = backend->Status();
  EXPECT_EQ(state.bitstream, "esb_16x16.bin");
  EXPECT_FALSE(state.healthy);
  EXPECT_THAT(state.health_detail, HasSubstr("no accelerator"));

  absl::StatusOr<std::unique_ptr<LoadedModel>> model =
      backend->Prepare(pipeline::PackagedModel{}, 4);
  EXPECT_EQ(model.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(model.status().message(), HasSubstr("no accelerator"));
}

}  // namespace
}  // namespace esb::agent
