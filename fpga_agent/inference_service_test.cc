// The inference and admin services in one process, over a real gRPC
// server on loopback.
#include "fpga_agent/inference_service.h"

#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "core/env/digest.h"
#include "core/env/mem_env.h"
#include "core/runtime/esb_executor.h"
#include "esb/v1/agent.grpc.pb.h"
#include "fpga_agent/agent_service.h"
#include "fpga_agent/metrics.h"
#include "fpga_agent/sim_backend.h"
#include "fpga_agent/test_package.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"

namespace esb::agent {
namespace {

using ::testing::HasSubstr;

std::vector<float> FloatsOf(const std::string& bytes) {
  std::vector<float> out(bytes.size() / sizeof(float));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  return out;
}

constexpr char kToken[] = "s3cret-token";

class ServicesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = NewMemEnv();
    SimBackendOptions sim;
    sim.bitstream_dir = "/bits";
    backend_ = std::make_unique<SimBackend>(env_.get(), sim);
    metrics_ = std::make_unique<AgentMetrics>("test-board");
    ModelRepositoryOptions repo_options;
    repo_options.dir = "/models";
    repo_options.batcher.max_batch = 4;
    repo_options.batcher.max_queue_delay = absl::Milliseconds(20);
    auto repo = ModelRepository::Open(env_.get(), backend_.get(),
                                      metrics_.get(), repo_options, nullptr);
    ASSERT_TRUE(repo.ok()) << repo.status();
    repository_ = *std::move(repo);
    inference_ = std::make_unique<InferenceServiceImpl>(
        repository_.get(), backend_.get(), metrics_.get());
    AgentServiceOptions admin;
    admin.board = "test-board";
    admin.admin_token = kToken;
    admin.bitstream_dir = "/bits";
    admin_ = std::make_unique<AgentServiceImpl>(
        env_.get(), repository_.get(), backend_.get(), metrics_.get(), admin);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(inference_.get());
    builder.RegisterService(admin_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                       grpc::InsecureChannelCredentials());
    infer_ = inference::GRPCInferenceService::NewStub(channel);
    agent_ = esb::v1::AgentService::NewStub(channel);
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  // Streams the demo package in 4 KiB chunks.
  grpc::Status Deploy(const std::string& name, const std::string& token,
                      esb::v1::DeployModelResponse* response) {
    grpc::ClientContext context;
    if (!token.empty()) {
      context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
    }
    auto writer = agent_->DeployModel(&context, response);
    const std::string& bytes = testing::DemoEsbm();
    esb::v1::DeployModelRequest message;
    message.set_name(name);
    message.set_sha256(Sha256Hex(bytes));
    message.set_size(static_cast<int64_t>(bytes.size()));
    for (size_t at = 0; at < bytes.size(); at += 4096) {
      message.set_data(bytes.substr(at, 4096));
      if (!writer->Write(message)) break;
      message.clear_name();
      message.clear_sha256();
      message.clear_size();
    }
    writer->WritesDone();
    return writer->Finish();
  }

  std::vector<float> Expected(int64_t start, int64_t n) {
    const pipeline::PackagedModel package = testing::DemoPackage();
    auto executor = runtime::EsbExecutor::Create(package.graph, package.layers,
                                                 {}, &package.weight_integers);
    EXPECT_TRUE(executor.ok());
    auto out = (*executor)->Run({testing::DemoImages(start, n)});
    EXPECT_TRUE(out.ok());
    return out->front().data;
  }

  inference::ModelInferRequest ImageRequest(int64_t start, int64_t n,
                                            bool raw) {
    inference::ModelInferRequest r;
    r.set_model_name("lenet");
    r.set_id(absl::StrCat("req-", start));
    auto* in = r.add_inputs();
    in->set_name(testing::DemoPackage().graph.inputs[0].name);
    in->set_datatype("FP32");
    for (int64_t d : {n, int64_t{1}, int64_t{28}, int64_t{28}}) {
      in->add_shape(d);
    }
    const graph::Tensor t = testing::DemoImages(start, n);
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

  std::string Metrics() {
    return prometheus::TextSerializer().Serialize(
        metrics_->registry()->Collect());
  }

  std::unique_ptr<Env> env_;
  std::unique_ptr<SimBackend> backend_;
  std::unique_ptr<AgentMetrics> metrics_;
  std::unique_ptr<ModelRepository> repository_;
  std::unique_ptr<InferenceServiceImpl> inference_;
  std::unique_ptr<AgentServiceImpl> admin_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> infer_;
  std::unique_ptr<esb::v1::AgentService::Stub> agent_;
};

TEST_F(ServicesTest, AdminCallsNeedTheTokenAndInferenceDoesNot) {
  esb::v1::DeployModelResponse deployed;
  grpc::Status none = Deploy("lenet", "", &deployed);
  EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(none.error_message(), HasSubstr("authorization: Bearer"));
  grpc::Status wrong = Deploy("lenet", "other", &deployed);
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(wrong.error_message(), HasSubstr("does not match"));
  {
    grpc::ClientContext context;
    esb::v1::BoardStatusResponse status;
    EXPECT_EQ(agent_->BoardStatus(&context, {}, &status).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  EXPECT_TRUE(repository_->List().empty());

  grpc::Status ok = Deploy("lenet", kToken, &deployed);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(deployed.version(), 1);
  EXPECT_EQ(deployed.sha256(), Sha256Hex(testing::DemoEsbm()));
  EXPECT_THAT(deployed.description(), HasSubstr("sim:"));

  grpc::ClientContext context;
  inference::ModelInferResponse response;
  grpc::Status infer =
      infer_->ModelInfer(&context, ImageRequest(0, 1, false), &response);
  ASSERT_TRUE(infer.ok()) << infer.error_message();

  grpc::ClientContext status_context;
  status_context.AddMetadata("authorization", absl::StrCat("Bearer ", kToken));
  esb::v1::BoardStatusResponse status;
  ASSERT_TRUE(agent_->BoardStatus(&status_context, {}, &status).ok());
  EXPECT_EQ(status.board(), "test-board");
  EXPECT_EQ(status.backend(), "sim");
  EXPECT_EQ(status.power_source(), "model");
  EXPECT_TRUE(status.healthy());
  ASSERT_EQ(status.models_size(), 1);
  EXPECT_TRUE(status.models(0).serving());
}

TEST_F(ServicesTest, InferReturnsTheExecutorsLogitsInBothEncodings) {
  esb::v1::DeployModelResponse deployed;
  ASSERT_TRUE(Deploy("lenet", kToken, &deployed).ok());
  const std::vector<float> expected = Expected(3, 2);
  for (bool raw : {false, true}) {
    grpc::ClientContext context;
    inference::ModelInferResponse response;
    grpc::Status s =
        infer_->ModelInfer(&context, ImageRequest(3, 2, raw), &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(response.model_name(), "lenet");
    EXPECT_EQ(response.model_version(), "1");
    EXPECT_EQ(response.id(), "req-3");
    ASSERT_EQ(response.outputs_size(), 1);
    EXPECT_THAT(response.outputs(0).shape(), ::testing::ElementsAre(2, 10));
    std::vector<float> got;
    if (raw) {
      ASSERT_EQ(response.raw_output_contents_size(), 1);
      got.resize(response.raw_output_contents(0).size() / sizeof(float));
      std::memcpy(got.data(), response.raw_output_contents(0).data(),
                  got.size() * sizeof(float));
    } else {
      got.assign(response.outputs(0).contents().fp32_contents().begin(),
                 response.outputs(0).contents().fp32_contents().end());
    }
    EXPECT_EQ(got, expected) << (raw ? "raw" : "typed");
  }
  const std::string metrics = Metrics();
  EXPECT_THAT(metrics,
              HasSubstr("esb_agent_requests_total{board=\"test-board\","
                        "model=\"lenet\",status=\"OK\"} 2"));
  EXPECT_THAT(metrics, HasSubstr("esb_agent_inferences_total{board=\"test-"
                                 "board\",model=\"lenet\"} 4"));
  EXPECT_THAT(metrics, HasSubstr("esb_agent_energy_joules_total{board=\"test-"
                                 "board\",model=\"lenet\",source=\"model\"}"));
  EXPECT_THAT(metrics, HasSubstr("esb_agent_models_loaded{board=\"test-"
                                 "board\"} 1"));
}

TEST_F(ServicesTest, StreamAnswersInOrderWithErrorsInTheirPlace) {
  esb::v1::DeployModelResponse deployed;
  ASSERT_TRUE(Deploy("lenet", kToken, &deployed).ok());
  grpc::ClientContext context;
  auto stream = infer_->ModelStreamInfer(&context);
  std::vector<inference::ModelInferRequest> requests;
  for (int i = 0; i < 6; ++i) requests.push_back(ImageRequest(i, 1, i % 2));
  requests[2].set_model_name("missing");
  requests[4].mutable_inputs(0)->set_datatype("INT8");
  for (const auto& r : requests) ASSERT_TRUE(stream->Write(r));
  stream->WritesDone();
  inference::ModelStreamInferResponse response;
  int i = 0;
  while (stream->Read(&response)) {
    ASSERT_LT(i, 6);
    if (i == 2) {
      EXPECT_THAT(response.error_message(),
                  HasSubstr("model 'missing' is not deployed"));
    } else if (i == 4) {
      EXPECT_THAT(response.error_message(), HasSubstr("datatype 'INT8'"));
    } else {
      EXPECT_EQ(response.error_message(), "");
      EXPECT_EQ(response.infer_response().id(), absl::StrCat("req-", i));
      const auto& out = response.infer_response();
      std::vector<float> got;
      if (i % 2 == 1) {
        got.resize(10);
        std::memcpy(got.data(), out.raw_output_contents(0).data(), 40);
      } else {
        got.assign(out.outputs(0).contents().fp32_contents().begin(),
                   out.outputs(0).contents().fp32_contents().end());
      }
      EXPECT_EQ(got, Expected(i, 1)) << i;
    }
    ++i;
  }
  EXPECT_EQ(i, 6);
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(ServicesTest, MetadataAndReadiness) {
  {
    grpc::ClientContext context;
    inference::ModelReadyRequest request;
    request.set_name("lenet");
    inference::ModelReadyResponse ready;
    ASSERT_TRUE(infer_->ModelReady(&context, request, &ready).ok());
    EXPECT_FALSE(ready.ready());
  }
  esb::v1::DeployModelResponse deployed;
  ASSERT_TRUE(Deploy("lenet", kToken, &deployed).ok());
  {
    grpc::ClientContext context;
    inference::ModelReadyRequest request;
    request.set_name("lenet");
    request.set_version("1");
    inference::ModelReadyResponse ready;
    ASSERT_TRUE(infer_->ModelReady(&context, request, &ready).ok());
    EXPECT_TRUE(ready.ready());
  }
  {
    grpc::ClientContext context;
    inference::ServerMetadataResponse meta;
    ASSERT_TRUE(infer_->ServerMetadata(&context, {}, &meta).ok());
    EXPECT_EQ(meta.name(), "esb-agent");
    EXPECT_EQ(meta.version(), AgentVersion());
  }
  {
    grpc::ClientContext context;
    inference::ModelMetadataRequest request;
    request.set_name("lenet");
    inference::ModelMetadataResponse meta;
    ASSERT_TRUE(infer_->ModelMetadata(&context, request, &meta).ok());
    EXPECT_EQ(meta.platform(), "esb");
    EXPECT_THAT(meta.versions(), ::testing::ElementsAre("1"));
    ASSERT_EQ(meta.inputs_size(), 1);
    EXPECT_EQ(meta.inputs(0).datatype(), "FP32");
    EXPECT_THAT(meta.inputs(0).shape(), ::testing::ElementsAre(-1, 1, 28, 28));
    ASSERT_EQ(meta.outputs_size(), 1);
    EXPECT_THAT(meta.outputs(0).shape(), ::testing::ElementsAre(-1, 10));
  }
  {
    grpc::ClientContext context;
    inference::ModelMetadataRequest request;
    request.set_name("nope");
    inference::ModelMetadataResponse meta;
    EXPECT_EQ(infer_->ModelMetadata(&context, request, &meta).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
}

TEST_F(ServicesTest, ConcurrentCallsAreBatched) {
  esb::v1::DeployModelResponse deployed;
  ASSERT_TRUE(Deploy("lenet", kToken, &deployed).ok());
  std::vector<inference::ModelInferRequest> requests;
  for (int c = 0; c < 8; ++c) requests.push_back(ImageRequest(c, 1, true));
  std::vector<std::thread> callers;
  std::vector<grpc::Status> statuses(8);
  for (int c = 0; c < 8; ++c) {
    callers.emplace_back([&, c] {
      grpc::ClientContext context;
      inference::ModelInferResponse response;
      statuses[c] = infer_->ModelInfer(&context, requests[c], &response);
    });
  }
  for (std::thread& t : callers) t.join();
  for (const grpc::Status& s : statuses) EXPECT_TRUE(s.ok());
  // Batches of 1 fill only the first bucket; a merged batch adds to le=2+
  // without adding to le=1.
  const std::string metrics = Metrics();
  EXPECT_THAT(metrics, HasSubstr("esb_agent_batch_size_sum{board=\"test-"
                                 "board\",model=\"lenet\"} 8"));
  EXPECT_THAT(metrics, ::testing::Not(HasSubstr(
                           "esb_agent_batch_size_count{board=\"test-board\","
                           "model=\"lenet\"} 8")));
}

TEST_F(ServicesTest, ARequestInFlightCompletesWhenItsModelIsUnloaded) {
  esb::v1::DeployModelResponse deployed;
  ASSERT_TRUE(Deploy("lenet", kToken, &deployed).ok());
  const inference::ModelInferRequest request = ImageRequest(0, 1, true);
  absl::Notification finished;
  absl::StatusOr<inference::ModelInferResponse> result;
  // Queued for the batcher's 20 ms; the unload drops the model meanwhile.
  inference_->Infer(request,
                    [&](absl::StatusOr<inference::ModelInferResponse> r) {
                      result = std::move(r);
                      finished.Notify();
                    });
  auto unloaded = repository_->Unload("lenet", 0);
  ASSERT_TRUE(unloaded.ok()) << unloaded.status();
  ASSERT_TRUE(finished.WaitForNotificationWithTimeout(absl::Seconds(30)));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(FloatsOf(result->raw_output_contents(0)), Expected(0, 1));
  grpc::ClientContext context;
  inference::ModelInferResponse response;
  EXPECT_EQ(infer_->ModelInfer(&context, request, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

// LoadBitstream with bytes: checked, stored in the directory, loaded.
TEST_F(ServicesTest, StreamedBitstreamsAreCheckedThenStoredAndLoaded) {
  const std::string bits(100000, '\x5a');
  auto load = [&](const std::string& sha256, int64_t size,
                  esb::v1::LoadBitstreamResponse* response) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", absl::StrCat("Bearer ", kToken));
    auto writer = agent_->LoadBitstream(&context, response);
    esb::v1::LoadBitstreamRequest message;
    message.set_name("new.bit.bin");
    message.set_sha256(sha256);
    message.set_size(size);
    for (size_t at = 0; at < bits.size(); at += 30000) {
      message.set_data(bits.substr(at, 30000));
      writer->Write(message);
      message.Clear();
    }
    writer->WritesDone();
    return writer->Finish();
  };
  esb::v1::LoadBitstreamResponse response;
  grpc::Status bad = load(Sha256Hex("other"), 100000, &response);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(bad.error_message(), HasSubstr("sha256 mismatch"));
  grpc::Status small = load(Sha256Hex(bits), 1000, &response);
  EXPECT_EQ(small.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(small.error_message(), HasSubstr("more than the declared size"));
  EXPECT_FALSE(env_->FileExists("/bits/new.bit.bin"));

  grpc::Status ok = load(Sha256Hex(bits), 100000, &response);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_TRUE(response.stored());
  EXPECT_EQ(response.name(), "new.bit.bin");
  EXPECT_EQ(*ReadFileToString(env_.get(), "/bits/new.bit.bin"), bits);
  EXPECT_EQ(backend_->Status().bitstream, "new.bit.bin");
  EXPECT_THAT(Metrics(),
              HasSubstr("esb_agent_bitstream_loads_total{board=\"test"
                        "-board\",outcome=\"ok\"} 1"));
}

TEST_F(ServicesTest, ListAndUnloadOverRpc) {
  esb::v1::DeployModelResponse deployed;
  ASSERT_TRUE(Deploy("lenet", kToken, &deployed).ok());
  ASSERT_TRUE(Deploy("lenet", kToken, &deployed).ok());
  EXPECT_EQ(deployed.version(), 2);
  auto admin_context = [](grpc::ClientContext* c) {
    c->AddMetadata("authorization", absl::StrCat("Bearer ", kToken));
  };
  {
    grpc::ClientContext context;
    admin_context(&context);
    esb::v1::ListModelsResponse list;
    ASSERT_TRUE(agent_->ListModels(&context, {}, &list).ok());
    ASSERT_EQ(list.models_size(), 2);
    EXPECT_EQ(list.models(0).version(), 1);
    EXPECT_FALSE(list.models(0).serving());
    EXPECT_TRUE(list.models(1).serving());
    EXPECT_EQ(list.models(1).max_batch(), 4);
  }
  {
    grpc::ClientContext context;
    admin_context(&context);
    esb::v1::UnloadModelRequest request;
    request.set_name("lenet");
    request.set_version(2);
    esb::v1::UnloadModelResponse response;
    ASSERT_TRUE(agent_->UnloadModel(&context, request, &response).ok());
    EXPECT_THAT(response.removed_versions(), ::testing::ElementsAre(2));
    EXPECT_EQ(response.serving_version(), 1);
  }
  {
    grpc::ClientContext context;
    admin_context(&context);
    esb::v1::UnloadModelRequest request;
    request.set_name("other");
    esb::v1::UnloadModelResponse response;
    grpc::Status s = agent_->UnloadModel(&context, request, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_THAT(s.error_message(), HasSubstr("'other' is not deployed"));
  }
  grpc::ClientContext context;
  inference::ModelInferResponse response;
  ASSERT_TRUE(
      infer_->ModelInfer(&context, ImageRequest(0, 1, false), &response).ok());
  EXPECT_EQ(response.model_version(), "1");
}

}  // namespace
}  // namespace esb::agent
