// esb-agent end to end: the real binary with the sim backend on loopback,
// driven over gRPC as esbctl and KServe clients drive it. A demo package is
// deployed through esb.v1.AgentService, inferred with both encodings, both
// datatypes and the stream, its logits compared bit for bit with an
// in-process EsbExecutor run of the same package; every bad request's code
// and message checked; then the agent is SIGKILLed and started again on
// the same model directory, and serves the model again. The zcu102 backend
// runs the same way on the device emulator (fpga_agent/emulator.h).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/env/digest.h"
#include "core/runtime/esb_executor.h"
#include "core/runtime/esb_paths_testing.h"
#include "esb/v1/agent.grpc.pb.h"
#include "fpga_agent/emulator.h"
#include "fpga_agent/test_package.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "inference/grpc_service.grpc.pb.h"
#include "tests/process.h"

namespace esb::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kToken[] = "e2e-admin-token";
constexpr int kMaxBatch = 4;

// The body of GET http://address/metrics ("" on failure).
std::string HttpGet(const std::string& address, const std::string& path) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port)) return "";
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  if (write(fd, request.data(), request.size()) < 0) {
    close(fd);
    return "";
  }
  std::string response;
  char buffer[4096];
  ssize_t n = 0;
  while ((n = read(fd, buffer, sizeof(buffer))) > 0) response.append(buffer, n);
  close(fd);
  return response;
}

std::vector<float> FloatsOf(const std::string& bytes) {
  std::vector<float> out(bytes.size() / sizeof(float));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  return out;
}

class AgentE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshDir("agent_e2e");
    std::ofstream(dir_ + "/token") << kToken << "\n";
    std::filesystem::create_directories(dir_ + "/bitstreams");
    std::ofstream(dir_ + "/bitstreams/esb_accel.bit.bin") << "bitstream";
    package_ = agent::testing::DemoPackage();
    input_name_ = package_.graph.inputs[0].name;
    output_name_ = package_.graph.outputs[0].name;
    auto executor = runtime::EsbExecutor::Create(
        package_.graph, package_.layers, {}, &package_.weight_integers);
    ASSERT_TRUE(executor.ok()) << executor.status();
    executor_ = *std::move(executor);
  }

  // Starts (or starts again) the agent on the same model dir.
  void StartAgent() {
    std::vector<std::string> argv = {ESB_AGENT_PATH,
                                     "--listen",
                                     "127.0.0.1:0",
                                     "--model-dir",
                                     dir_ + "/models",
                                     "--metrics-port",
                                     "0",
                                     "--max-batch",
                                     absl::StrCat(kMaxBatch),
                                     "--max-queue-delay-us",
                                     "2000",
                                     "--board",
                                     "e2e-board",
                                     "--admin-token-file",
                                     dir_ + "/token",
                                     "--bitstream-dir",
                                     dir_ + "/bitstreams"};
    argv.insert(argv.end(), backend_flags_.begin(), backend_flags_.end());
    agent_ =
        *Process::Start(argv, absl::StrCat(dir_, "/agent-", ++starts_, ".log"));
    absl::StatusOr<std::string> line =
        agent_->WaitForLine("esb-agent listening on", absl::Seconds(60));
    ASSERT_TRUE(line.ok()) << line.status();
    const std::string address = line->substr(line->find("listening on ") + 13);
    absl::StatusOr<std::string> metrics =
        agent_->WaitForLine("metrics on http://", absl::Seconds(10));
    ASSERT_TRUE(metrics.ok()) << metrics.status();
    metrics_address_ = metrics->substr(metrics->find("http://") + 7);
    metrics_address_ = metrics_address_.substr(0, metrics_address_.find('/'));
    auto channel =
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
    infer_ = inference::GRPCInferenceService::NewStub(channel);
    admin_ = esb::v1::AgentService::NewStub(channel);
  }

  void AddToken(grpc::ClientContext* context) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", kToken));
  }

  grpc::Status Deploy(const std::string& name,
                      esb::v1::DeployModelResponse* response,
                      bool with_token = true) {
    grpc::ClientContext context;
    if (with_token) AddToken(&context);
    auto writer = admin_->DeployModel(&context, response);
    const std::string& bytes = agent::testing::DemoEsbm();
    esb::v1::DeployModelRequest message;
    message.set_name(name);
    message.set_sha256(Sha256Hex(bytes));
    message.set_size(static_cast<int64_t>(bytes.size()));
    for (size_t at = 0; at < bytes.size(); at += 64 << 10) {
      message.set_data(bytes.substr(at, 64 << 10));
      if (!writer->Write(message)) break;
      message.Clear();
    }
    writer->WritesDone();
    return writer->Finish();
  }

  // A request for images [start, start + n): FP32 or UINT8 pixels, typed
  // or raw.
  inference::ModelInferRequest Request(int64_t start, int64_t n,
                                       const std::string& datatype, bool raw) {
    inference::ModelInferRequest r;
    r.set_model_name("fashion");
    r.set_id(absl::StrCat("img-", start));
    auto* in = r.add_inputs();
    in->set_name(input_name_);
    in->set_datatype(datatype);
    for (int64_t d : {n, int64_t{1}, int64_t{28}, int64_t{28}}) {
      in->add_shape(d);
    }
    if (datatype == "UINT8") {
      const std::vector<uint8_t> pixels = agent::testing::DemoPixels(start, n);
      if (raw) {
        r.add_raw_input_contents(std::string(pixels.begin(), pixels.end()));
      } else {
        for (uint8_t p : pixels) in->mutable_contents()->add_uint_contents(p);
      }
      return r;
    }
    const graph::Tensor t = agent::testing::DemoImages(start, n);
    if (raw) {
      std::string bytes(t.data.size() * sizeof(float), '\0');
      std::memcpy(bytes.data(), t.data.data(), bytes.size());
      r.add_raw_input_contents(bytes);
    } else {
      in->mutable_contents()->mutable_fp32_contents()->Add(t.data.begin(),
                                                           t.data.end());
    }
    return r;
  }

  // The in-process executor's logits for images [start, start + n).
  std::vector<float> Expected(int64_t start, int64_t n) {
    auto out = executor_->Run({agent::testing::DemoImages(start, n)});
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? out->front().data : std::vector<float>{};
  }

  std::vector<float> Logits(const inference::ModelInferResponse& response) {
    if (response.raw_output_contents_size() > 0) {
      return FloatsOf(response.raw_output_contents(0));
    }
    const auto& c = response.outputs(0).contents().fp32_contents();
    return std::vector<float>(c.begin(), c.end());
  }

  grpc::Status Infer(const inference::ModelInferRequest& request,
                     inference::ModelInferResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
    return infer_->ModelInfer(&context, request, response);
  }

  // The request's status code, and that its message holds `part`.
  void ExpectError(const inference::ModelInferRequest& request,
                   grpc::StatusCode code, const std::string& part) {
    inference::ModelInferResponse response;
    grpc::Status s = Infer(request, &response);
    EXPECT_EQ(s.error_code(), code) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(part));
  }

  std::string dir_;
  pipeline::PackagedModel package_;
  std::string input_name_;
  std::string output_name_;
  std::unique_ptr<runtime::EsbExecutor> executor_;
  std::unique_ptr<Process> agent_;
  std::string metrics_address_;
  int starts_ = 0;
  std::vector<std::string> backend_flags_ = {
      "--backend",
      "sim"};  // One log per start: WaitForLine reads from the top.
  std::unique_ptr<inference::GRPCInferenceService::Stub> infer_;
  std::unique_ptr<esb::v1::AgentService::Stub> admin_;
};

TEST_F(AgentE2eTest, DeployInferAndServeAgainAfterAKill) {
  ASSERT_NO_FATAL_FAILURE(StartAgent());

  // Admin calls need the token.
  esb::v1::DeployModelResponse deployed;
  grpc::Status refused = Deploy("fashion", &deployed, /*with_token=*/false);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  grpc::Status ok = Deploy("fashion", &deployed);
  ASSERT_TRUE(ok.ok()) << ok.error_message() << agent_->Log();
  EXPECT_EQ(deployed.name(), "fashion");
  EXPECT_EQ(deployed.version(), 1);
  EXPECT_EQ(deployed.sha256(), Sha256Hex(agent::testing::DemoEsbm()));
  // The host executor's path on this CPU.
  EXPECT_THAT(deployed.description(),
              HasSubstr(runtime::NoInt8Here().empty() ? "sim: int8 fast path"
                                                      : "sim: exact f32 path"));

  // Every encoding gives the executor's bits.
  const std::vector<float> expected = Expected(10, 3);
  for (const std::string datatype : {"FP32", "UINT8"}) {
    for (bool raw : {false, true}) {
      inference::ModelInferResponse response;
      grpc::Status s = Infer(Request(10, 3, datatype, raw), &response);
      ASSERT_TRUE(s.ok()) << datatype << " raw=" << raw << ": "
                          << s.error_message();
      EXPECT_EQ(response.model_name(), "fashion");
      EXPECT_EQ(response.model_version(), "1");
      EXPECT_EQ(response.id(), "img-10");
      ASSERT_EQ(response.outputs_size(), 1);
      EXPECT_EQ(response.outputs(0).name(), output_name_);
      EXPECT_EQ(response.outputs(0).datatype(), "FP32");
      EXPECT_THAT(response.outputs(0).shape(), ElementsAre(3, 10));
      EXPECT_EQ(response.raw_output_contents_size(), raw ? 1 : 0);
      const std::vector<float> logits = Logits(response);
      ASSERT_EQ(logits.size(), expected.size());
      EXPECT_EQ(std::memcmp(logits.data(), expected.data(),
                            expected.size() * sizeof(float)),
                0)
          << datatype << " raw=" << raw;
    }
  }

  // The stream: one response per request, in order, an error in its place.
  {
    grpc::ClientContext context;
    auto stream = infer_->ModelStreamInfer(&context);
    for (int i = 0; i < 5; ++i) {
      inference::ModelInferRequest r = Request(i, 1, "FP32", i % 2 == 1);
      if (i == 3) r.mutable_inputs(0)->set_name("wrong");
      ASSERT_TRUE(stream->Write(r));
    }
    stream->WritesDone();
    inference::ModelStreamInferResponse response;
    int i = 0;
    while (stream->Read(&response)) {
      if (i == 3) {
        EXPECT_THAT(response.error_message(),
                    HasSubstr("input 'wrong' is not an input"));
      } else {
        EXPECT_EQ(response.error_message(), "") << i;
        EXPECT_EQ(response.infer_response().id(), absl::StrCat("img-", i));
        EXPECT_EQ(Logits(response.infer_response()), Expected(i, 1)) << i;
      }
      ++i;
    }
    EXPECT_EQ(i, 5);
    EXPECT_TRUE(stream->Finish().ok());
  }

  // Each bad request: its code and a message naming the field.
  {
    inference::ModelInferRequest r = Request(0, 1, "FP32", false);
    r.set_model_name("nope");
    ExpectError(r, grpc::StatusCode::NOT_FOUND, "model 'nope' is not deployed");
    r = Request(0, 1, "FP32", false);
    r.set_model_version("9");
    ExpectError(r, grpc::StatusCode::NOT_FOUND, "has no version 9");
    r = Request(0, 1, "FP32", false);
    r.mutable_inputs(0)->set_name("pixels");
    ExpectError(r, grpc::StatusCode::INVALID_ARGUMENT,
                absl::StrCat("input 'pixels' is not an input of model "
                             "'fashion'; expected '",
                             input_name_, "'"));
    r = Request(0, 1, "FP32", false);
    r.mutable_inputs(0)->set_datatype("FP16");
    ExpectError(r, grpc::StatusCode::INVALID_ARGUMENT,
                "datatype 'FP16'; expected FP32");
    r = Request(0, 1, "FP32", false);
    r.mutable_inputs(0)->clear_shape();
    for (int64_t d : {1, 784}) r.mutable_inputs(0)->add_shape(d);
    ExpectError(r, grpc::StatusCode::INVALID_ARGUMENT,
                "shape [1,784]; expected [-1,1,28,28]");
    r = Request(0, 1, "FP32", false);
    r.mutable_inputs(0)->set_shape(2, 27);
    ExpectError(r, grpc::StatusCode::INVALID_ARGUMENT,
                "shape [1,1,27,28]; expected [-1,1,28,28]");
    r = Request(0, 1, "FP32", true);
    r.mutable_raw_input_contents(0)->resize(3000);
    ExpectError(r, grpc::StatusCode::INVALID_ARGUMENT,
                "has 3000 bytes; shape [1,1,28,28] of FP32 needs 3136");
    r = Request(0, 1, "FP32", false);
    r.mutable_inputs(0)
        ->mutable_contents()
        ->mutable_fp32_contents()
        ->RemoveLast();
    ExpectError(r, grpc::StatusCode::INVALID_ARGUMENT,
                "783 values in contents.fp32_contents; shape [1,1,28,28] of "
                "FP32 needs 784");
    r = Request(0, 1, "FP32", true);
    r.mutable_inputs(0)->mutable_contents()->add_fp32_contents(1);
    ExpectError(r, grpc::StatusCode::INVALID_ARGUMENT,
                "both contents and raw_input_contents");
    r = Request(0, kMaxBatch + 1, "FP32", true);
    ExpectError(
        r, grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("batch of ", kMaxBatch + 1, "; expected 1..", kMaxBatch));
    r = Request(0, 1, "FP32", false);
    r.add_outputs()->set_name("probabilities");
    ExpectError(r, grpc::StatusCode::INVALID_ARGUMENT,
                absl::StrCat("output 'probabilities' is not an output of "
                             "model 'fashion'; its outputs are '",
                             output_name_, "'"));
    r = Request(0, 1, "FP32", false);
    r.set_model_version("latest");
    ExpectError(r, grpc::StatusCode::INVALID_ARGUMENT,
                "model_version 'latest' is not a version number");
  }

  // Bitstreams: by name from the directory; a missing one is NOT_FOUND.
  {
    grpc::ClientContext context;
    AddToken(&context);
    esb::v1::LoadBitstreamResponse loaded;
    auto writer = admin_->LoadBitstream(&context, &loaded);
    esb::v1::LoadBitstreamRequest message;
    message.set_name("esb_accel.bit.bin");
    ASSERT_TRUE(writer->Write(message));
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(loaded.name(), "esb_accel.bit.bin");
    EXPECT_FALSE(loaded.stored());
  }
  {
    grpc::ClientContext context;
    AddToken(&context);
    esb::v1::LoadBitstreamResponse loaded;
    auto writer = admin_->LoadBitstream(&context, &loaded);
    esb::v1::LoadBitstreamRequest message;
    message.set_name("absent.bit.bin");
    ASSERT_TRUE(writer->Write(message));
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_THAT(s.error_message(), HasSubstr("'absent.bit.bin'"));
  }
  {
    grpc::ClientContext context;
    AddToken(&context);
    esb::v1::BoardStatusResponse status;
    ASSERT_TRUE(admin_->BoardStatus(&context, {}, &status).ok());
    EXPECT_EQ(status.board(), "e2e-board");
    EXPECT_EQ(status.backend(), "sim");
    EXPECT_EQ(status.bitstream(), "esb_accel.bit.bin");
    EXPECT_EQ(status.power_source(), "model");
    ASSERT_EQ(status.models_size(), 1);
    EXPECT_EQ(status.models(0).name(), "fashion");
  }

  // The metrics saw all of it, labelled with the board.
  const std::string metrics = HttpGet(metrics_address_, "/metrics");
  EXPECT_THAT(metrics, HasSubstr("esb_agent_requests_total{board=\"e2e-"
                                 "board\",model=\"fashion\",status=\"OK\"}"));
  EXPECT_THAT(metrics, HasSubstr("status=\"INVALID_ARGUMENT\""));
  EXPECT_THAT(metrics, HasSubstr("esb_agent_operations_total{board=\"e2e-"
                                 "board\",model=\"fashion\"}"));
  EXPECT_THAT(metrics, HasSubstr("esb_agent_power_watts{board=\"e2e-board\","
                                 "rail=\"accel\",source=\"model\"}"));
  EXPECT_THAT(metrics, HasSubstr("esb_agent_bitstream_loads_total{board=\"e2e-"
                                 "board\",outcome=\"ok\"} 1"));
  EXPECT_THAT(metrics,
              HasSubstr("esb_agent_models_loaded{board=\"e2e-board\"} 1"));

  // Killed: started again on the same model dir, it serves the model.
  agent_->Signal(SIGKILL);
  ASSERT_TRUE(agent_->Wait(absl::Seconds(10)).ok());
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  {
    grpc::ClientContext context;
    inference::ModelReadyRequest request;
    request.set_name("fashion");
    inference::ModelReadyResponse ready;
    ASSERT_TRUE(infer_->ModelReady(&context, request, &ready).ok());
    EXPECT_TRUE(ready.ready());
  }
  inference::ModelInferResponse again;
  grpc::Status s = Infer(Request(10, 3, "FP32", true), &again);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(again.model_version(), "1");
  EXPECT_EQ(Logits(again), expected);

  // A second deploy is version 2; SIGTERM stops the agent cleanly.
  ASSERT_TRUE(Deploy("fashion", &deployed).ok());
  EXPECT_EQ(deployed.version(), 2);
  // (With a client still connected, gRPC's shutdown waits out the agent's
  // 5 s grace for the connection; a client that has gone lets it stop now.)
  infer_.reset();
  admin_.reset();
  agent_->Signal(SIGTERM);
  absl::StatusOr<int> status = agent_->Wait(absl::Seconds(20));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << agent_->Log();
  EXPECT_THAT(agent_->Log(), HasSubstr("esb-agent: stopped"));
}

TEST_F(AgentE2eTest, BadFlagsAndAMissingBoardFailClearly) {
  RunResult no_dir =
      RunCommand({ESB_AGENT_PATH, "--backend", "sim"}, absl::Seconds(30));
  EXPECT_EQ(no_dir.exit_code, 1);
  EXPECT_THAT(no_dir.out, HasSubstr("--model-dir is required"));
  // zcu102 without a board: the missing FPGA Manager is named.
  RunResult zcu =
      RunCommand({ESB_AGENT_PATH, "--backend", "zcu102", "--model-dir",
                  dir_ + "/m", "--listen", "127.0.0.1:0", "--bitstream-dir",
                  dir_ + "/bitstreams", "--sysfs-root", dir_ + "/no-sysfs"},
                 absl::Seconds(30));
  EXPECT_EQ(zcu.exit_code, 1);
  EXPECT_THAT(zcu.out, HasSubstr("backend zcu102: no FPGA Manager"));
  RunResult no_bits = RunCommand(
      {ESB_AGENT_PATH, "--backend", "zcu102", "--model-dir", dir_ + "/m"},
      absl::Seconds(30));
  EXPECT_EQ(no_bits.exit_code, 1);
  EXPECT_THAT(no_bits.out, HasSubstr("needs a bitstream directory"));
  RunResult other = RunCommand(
      {ESB_AGENT_PATH, "--backend", "gpu", "--model-dir", dir_ + "/m"},
      absl::Seconds(30));
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_THAT(other.out, HasSubstr("unknown backend 'gpu'"));
  RunResult budget = RunCommand(
      {ESB_AGENT_PATH, "--model-dir", dir_ + "/m", "--max-arena-bytes", "1Q"},
      absl::Seconds(30));
  EXPECT_EQ(budget.exit_code, 1);
  EXPECT_THAT(budget.out,
              HasSubstr("--max-arena-bytes: '1Q' is not a byte size"));
  RunResult help = RunCommand({ESB_AGENT_PATH, "--help"}, absl::Seconds(30));
  EXPECT_THAT(help.out, HasSubstr("--max-queue-delay-us U"));
  EXPECT_THAT(help.out, HasSubstr("--admin_token_file"));
  EXPECT_THAT(help.out, HasSubstr("--max_plan_bytes"));
}

// --max-plan-bytes bounds each model's host plan: a package whose plan is
// larger is refused at deploy, naming the limit, and the agent serves on.
TEST_F(AgentE2eTest, PlanBudgetRefusesALargerModelAtDeploy) {
  backend_flags_.insert(backend_flags_.end(), {"--max-plan-bytes", "64K"});
  StartAgent();
  esb::v1::DeployModelResponse response;
  const grpc::Status s = Deploy("fashion", &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("65536"));
  ExpectError(Request(0, 1, "FP32", false), grpc::StatusCode::NOT_FOUND,
              "fashion");
  agent_->Signal(SIGTERM);
  absl::StatusOr<int> status = agent_->Wait(absl::Seconds(20));
  ASSERT_TRUE(status.ok()) << status.status();
}

// The zcu102 backend end to end: esb-agent on an emulated board (a fake
// sysfs and dev tree with the FPGA Manager, the accelerator behind UIO and
// two INA226 rails, played by this process), loading the bitstream over
// AgentService and serving the package bit for bit, with measured power.
TEST_F(AgentE2eTest, Zcu102BackendServesOnAnEmulatedBoard) {
  absl::StatusOr<std::string> root = agent::FreshEmulatorRoot("agent_e2e");
  ASSERT_TRUE(root.ok()) << root.status();
  // Declared before the emulator: runs after it stops, pass or fail.
  absl::Cleanup remove_roots = [] { agent::RemoveEmulatorRoots(); };
  agent::EmulatorOptions options;
  options.root = *root;
  options.buffer_bytes = uint64_t{64} << 20;
  options.rails = {{"VCCINT", false, 2.5}, {"VCCBRAM", false, 1.25}};
  options.temperature_c = 41.5;
  absl::StatusOr<std::unique_ptr<agent::Emulator>> emulator =
      agent::Emulator::Start(options);
  ASSERT_TRUE(emulator.ok()) << emulator.status();
  backend_flags_ = {"--backend",      "zcu102",
                    "--sysfs-root",   (*emulator)->sysfs_root(),
                    "--dev-root",     (*emulator)->dev_root(),
                    "--firmware-dir", (*emulator)->firmware_dir()};
  ASSERT_NO_FATAL_FAILURE(StartAgent());

  {
    grpc::ClientContext context;
    AddToken(&context);
    esb::v1::LoadBitstreamResponse loaded;
    auto writer = admin_->LoadBitstream(&context, &loaded);
    esb::v1::LoadBitstreamRequest message;
    message.set_name("esb_accel.bit.bin");
    ASSERT_TRUE(writer->Write(message));
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    ASSERT_TRUE(s.ok()) << s.error_message() << agent_->Log();
    EXPECT_EQ(loaded.state(), "operating");
  }
  EXPECT_EQ((*emulator)->loads(), 1);
  esb::v1::DeployModelResponse deployed;
  grpc::Status ok = Deploy("fashion", &deployed);
  ASSERT_TRUE(ok.ok()) << ok.error_message() << agent_->Log();

  for (bool raw : {true, false}) {
    inference::ModelInferResponse response;
    grpc::Status s = Infer(Request(20, 3, "FP32", raw), &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(Logits(response), Expected(20, 3)) << "raw=" << raw;
  }
  EXPECT_GT((*emulator)->runs(), 0);

  grpc::ClientContext context;
  AddToken(&context);
  esb::v1::BoardStatusResponse status;
  ASSERT_TRUE(admin_->BoardStatus(&context, {}, &status).ok());
  EXPECT_EQ(status.backend(), "zcu102");
  EXPECT_EQ(status.bitstream(), "esb_accel.bit.bin");
  EXPECT_EQ(status.power_source(), "measured");
  ASSERT_EQ(status.power_size(), 2);
  EXPECT_TRUE(status.has_temperature_c());
  EXPECT_TRUE(status.healthy()) << status.health_detail();

  const std::string metrics = HttpGet(metrics_address_, "/metrics");
  EXPECT_THAT(metrics, HasSubstr("esb_agent_energy_joules_total{board=\"e2e-"
                                 "board\",model=\"fashion\",source=\""
                                 "measured\"}"));
  EXPECT_THAT(metrics, HasSubstr("source=\"measured\""));

  // The agent goes before the board it drives.
  infer_.reset();
  admin_.reset();
  agent_->Signal(SIGTERM);
  EXPECT_TRUE(agent_->Wait(absl::Seconds(20)).ok());
}

}  // namespace
}  // namespace esb::testing
