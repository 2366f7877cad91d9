// esb-agent assembled in process on the zcu102 backend over the device
// emulator: the standard health checking service (grpc.health.v1) says
// SERVING exactly while the board is healthy, from the start and as the
// sampler sees the board change.
#include "fpga_agent/agent.h"

#include <chrono>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/env/env.h"
#include "core/runtime/cpu_paths.h"
#include "esb/v1/agent.grpc.pb.h"
#include "fpga_agent/emulator.h"
#include "fpga_agent/sysfs.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace esb::agent {
namespace {

using ::grpc::health::v1::HealthCheckResponse;
using ::testing::StartsWith;

class AgentHealthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> root = FreshEmulatorRootWithBitstream(
        ::testing::UnitTest::GetInstance()->current_test_info()->name(),
        "esb.bin", "image");
    ASSERT_TRUE(root.ok()) << root.status();
    root_ = *root;
    bitstreams_ = JoinPath(root_, "bitstreams");
  }

  void TearDown() override {
    agent_.reset();  // Before the board it drives.
    emulator_.reset();
    RemoveEmulatorRoots();
  }

  // The emulated board, then an agent on it sampling every `interval`.
  void Start(EmulatorOptions board, absl::Duration interval) {
    board.root = root_;
    absl::StatusOr<std::unique_ptr<Emulator>> emulator =
        Emulator::Start(std::move(board));
    ASSERT_TRUE(emulator.ok()) << emulator.status();
    emulator_ = *std::move(emulator);

    AgentOptions options;
    options.backend = "zcu102";
    options.listen = "127.0.0.1:0";
    options.model_dir = JoinPath(root_, "models");
    options.backend_options.sysfs_root = emulator_->sysfs_root();
    options.backend_options.dev_root = emulator_->dev_root();
    options.backend_options.firmware_dir = emulator_->firmware_dir();
    options.backend_options.bitstream_dir = bitstreams_;
    options.backend_options.host_threads = 1;
    options.power_interval = interval;
    absl::StatusOr<std::unique_ptr<Agent>> agent = Agent::Start(options, &log_);
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_ = *std::move(agent);
    channel_ = grpc::CreateChannel(agent_->address(),
                                   grpc::InsecureChannelCredentials());
  }

  // The overall status ("" service) the agent's health service reports.
  HealthCheckResponse::ServingStatus Health() {
    auto stub = grpc::health::v1::Health::NewStub(channel_);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    HealthCheckResponse response;
    const grpc::Status status = stub->Check(&context, {}, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.status();
  }

  // Asks until the health service says `want`, for at most 10 s.
  bool HealthBecomes(HealthCheckResponse::ServingStatus want) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (Health() != want) {
      if (absl::Now() >= deadline) return false;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return true;
  }

  // AgentService.LoadBitstream of the stored `name`.
  grpc::Status LoadBitstream(const std::string& name) {
    auto stub = esb::v1::AgentService::NewStub(channel_);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
    esb::v1::LoadBitstreamResponse response;
    auto writer = stub->LoadBitstream(&context, &response);
    esb::v1::LoadBitstreamRequest request;
    request.set_name(name);
    writer->Write(request);
    writer->WritesDone();
    return writer->Finish();
  }

  std::string root_;
  std::string bitstreams_;
  std::ostringstream log_;
  std::unique_ptr<Emulator> emulator_;
  std::unique_ptr<Agent> agent_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(AgentHealthTest, StartsWithTheBoardsHealth) {
  // No accelerator until a bitstream brings one: the board is unhealthy
  // when the agent starts. The sampler would not run for an hour, so only
  // the agent's start can have said so.
  EmulatorOptions board;
  board.uio_on_load = true;
  Start(board, absl::Hours(1));
  EXPECT_EQ(Health(), HealthCheckResponse::NOT_SERVING);
}

// The agent's first log line and BoardStatus say which code paths the
// host's part of a model takes on this CPU.
TEST_F(AgentHealthTest, LogsAndReportsTheCpusCodePaths) {
  EmulatorOptions board;
  Start(board, absl::Hours(1));
  const std::string line = runtime::CpuPathsLine();
  EXPECT_THAT(log_.str(), StartsWith("esb-agent: " + line + "\n"));

  auto stub = esb::v1::AgentService::NewStub(channel_);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(30));
  esb::v1::BoardStatusResponse status;
  const grpc::Status s = stub->BoardStatus(&context, {}, &status);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(status.cpu(), line);
#if defined(__aarch64__)
  // The board's build: the exact f32 path for ESB layers and the scalar
  // quantizer (the ISA, asimd on the Cortex-A53, scripts/cross_arm64.sh
  // checks).
  EXPECT_THAT(line, StartsWith("cpu aarch64: oneDNN ISA "));
  EXPECT_THAT(line, ::testing::HasSubstr("ESB layers on the exact f32 path"));
  EXPECT_THAT(line, ::testing::HasSubstr("quantizer scalar"));
#elif defined(__x86_64__)
  EXPECT_THAT(line, StartsWith("cpu x86_64: oneDNN ISA "));
#endif
  std::cout << "[ cpu paths ] " << line << std::endl;
}

TEST_F(AgentHealthTest, FollowsTheBoard) {
  EmulatorOptions board;
  board.uio_on_load = true;
  Start(board, absl::Milliseconds(20));
  EXPECT_EQ(Health(), HealthCheckResponse::NOT_SERVING);

  // A load brings the accelerator: healthy, SERVING.
  const grpc::Status loaded = LoadBitstream("esb.bin");
  ASSERT_TRUE(loaded.ok()) << loaded.error_message();
  EXPECT_TRUE(HealthBecomes(HealthCheckResponse::SERVING));

  // A load the FPGA Manager fails leaves it in an error state: unhealthy,
  // NOT_SERVING. (The call's own status may be read before the manager
  // takes the load; the board's state is what counts.)
  emulator_->FailLoads("write error", "bitstream CRC mismatch");
  (void)LoadBitstream("esb.bin");
  EXPECT_TRUE(HealthBecomes(HealthCheckResponse::NOT_SERVING));
}

}  // namespace
}  // namespace esb::agent
