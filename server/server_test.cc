// esb-server's gRPC surface in process: uploads, submission, watch,
// download, health and the data dir lock.
#include "server/server.h"

#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "core/env/digest.h"
#include "esb/v1/service.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "gtest/gtest.h"

namespace esb::server {
namespace {

using ::testing::HasSubstr;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(
        ::testing::TempDir(), "/server_",
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    options_.listen = "127.0.0.1:0";
    options_.data_dir = dir_;
    options_.metrics_port = 0;
    options_.max_upload_bytes = 4 << 20;
    options_.jobs.lease_ms = 500;
    Restart();
  }

  void Restart() {
    server_.reset();
    auto server = Server::Start(options_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel(server_->address(),
                                   grpc::InsecureChannelCredentials());
    users_ = esb::v1::QuantizationService::NewStub(channel_);
    workers_ = esb::v1::WorkerService::NewStub(channel_);
  }

  // Uploads `bytes` in chunks of `chunk`; `declared` overrides the size.
  grpc::Status Upload(const std::string& bytes, size_t chunk, std::string* sha,
                      int64_t declared = -1, size_t send = std::string::npos) {
    *sha = Sha256Hex(bytes);
    grpc::ClientContext context;
    esb::v1::UploadBlobResponse response;
    auto writer = users_->UploadBlob(&context, &response);
    const std::string body = bytes.substr(0, send);
    for (size_t at = 0; at == 0 || at < body.size(); at += chunk) {
      esb::v1::UploadBlobRequest r;
      if (at == 0) {
        r.set_sha256(*sha);
        r.set_size(declared >= 0 ? declared
                                 : static_cast<int64_t>(bytes.size()));
      }
      r.set_data(body.substr(at, chunk));
      if (!writer->Write(r)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  }

  std::string dir_;
  ServerOptions options_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<esb::v1::QuantizationService::Stub> users_;
  std::unique_ptr<esb::v1::WorkerService::Stub> workers_;
};

TEST_F(ServerTest, UploadsAreCheckedAndDeduplicated) {
  std::string bytes(3 << 20, 'x');
  for (size_t i = 0; i < bytes.size(); i += 7) bytes[i] = static_cast<char>(i);
  std::string sha;
  ASSERT_TRUE(Upload(bytes, 1 << 20, &sha).ok());
  esb::v1::StatBlobRequest stat;
  stat.set_sha256(sha);
  esb::v1::StatBlobResponse held;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(users_->StatBlob(&context, stat, &held).ok());
  }
  EXPECT_TRUE(held.present());
  EXPECT_EQ(held.blob().size(), static_cast<int64_t>(bytes.size()));

  grpc::Status s = Upload("abc", 1, &sha, /*declared=*/5);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("ended after 3 of 5 bytes"));
  s = Upload(std::string(5 << 20, 'y'), 1 << 20, &sha);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("limit of 4194304 bytes"));

  // A digest that does not match the bytes.
  {
    grpc::ClientContext context;
    esb::v1::UploadBlobResponse response;
    auto writer = users_->UploadBlob(&context, &response);
    esb::v1::UploadBlobRequest r;
    r.set_sha256(Sha256Hex("other"));
    r.set_size(5);
    r.set_data("bytes");
    writer->Write(r);
    writer->WritesDone();
    s = writer->Finish();
  }
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("sha256"));
}

TEST_F(ServerTest, JobLifecycleOverGrpcSurvivesARestart) {
  std::string model, calib;
  ASSERT_TRUE(Upload("model bytes", 4, &model).ok());
  ASSERT_TRUE(Upload("calib bytes", 4, &calib).ok());
  esb::v1::SubmitJobRequest submit;
  submit.mutable_inputs()->mutable_model()->set_sha256(model);
  submit.mutable_inputs()->mutable_calib()->mutable_blob()->set_sha256(calib);
  submit.set_idempotency_key("once");
  esb::v1::SubmitJobResponse submitted;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(users_->SubmitJob(&context, submit, &submitted).ok());
  }
  const std::string id = submitted.job().id();

  // Accepted means on disk: a restarted server has it, with its key.
  Restart();
  {
    grpc::ClientContext context;
    esb::v1::SubmitJobResponse again;
    ASSERT_TRUE(users_->SubmitJob(&context, submit, &again).ok());
    EXPECT_EQ(again.job().id(), id);
    EXPECT_TRUE(again.existing());
  }

  // Watch from another thread while a worker runs the job.
  std::vector<esb::v1::JobState> states;
  grpc::Status watch_status;
  absl::Notification first_event;
  std::thread watcher([&] {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(20));
    esb::v1::WatchJobRequest r;
    r.set_id(id);
    auto reader = users_->WatchJob(&context, r);
    esb::v1::JobEvent event;
    while (reader->Read(&event)) {
      states.push_back(event.job().state());
      if (!first_event.HasBeenNotified()) first_event.Notify();
    }
    watch_status = reader->Finish();
  });
  // The watch starts with the job as it stands: queued.
  ASSERT_TRUE(first_event.WaitForNotificationWithTimeout(absl::Seconds(20)));

  esb::v1::LeaseJobRequest lease_request;
  lease_request.set_worker("test-worker");
  lease_request.set_wait_ms(5000);
  esb::v1::LeaseJobResponse lease;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(workers_->LeaseJob(&context, lease_request, &lease).ok());
  }
  ASSERT_TRUE(lease.leased());
  EXPECT_EQ(lease.job().id(), id);

  // The worker reads its inputs back.
  {
    grpc::ClientContext context;
    esb::v1::ReadBlobRequest r;
    r.set_sha256(model);
    auto reader = workers_->ReadBlob(&context, r);
    esb::v1::BlobChunk chunk;
    std::string got;
    while (reader->Read(&chunk)) got += chunk.data();
    ASSERT_TRUE(reader->Finish().ok());
    EXPECT_EQ(got, "model bytes");
  }
  esb::v1::CompleteJobRequest complete;
  complete.set_job_id(id);
  complete.set_lease_id(lease.lease_id());
  for (const char* name : {"model.esb.onnx", "model.esbm", "report.json"}) {
    std::string sha;
    const std::string bytes =
        std::string(name) == "report.json" ? "{}" : absl::StrCat(name, "!");
    ASSERT_TRUE(Upload(bytes, 3, &sha).ok());
    auto* a = complete.add_artifacts();
    a->set_name(name);
    a->mutable_blob()->set_sha256(sha);
  }
  {
    grpc::ClientContext context;
    esb::v1::CompleteJobResponse done;
    ASSERT_TRUE(workers_->CompleteJob(&context, complete, &done).ok());
    EXPECT_EQ(done.job().state(), esb::v1::JOB_STATE_SUCCEEDED);
  }
  watcher.join();
  EXPECT_TRUE(watch_status.ok()) << watch_status.error_message();
  ASSERT_GE(states.size(), 2u);
  EXPECT_EQ(states.front(), esb::v1::JOB_STATE_QUEUED);
  EXPECT_EQ(states.back(), esb::v1::JOB_STATE_SUCCEEDED);

  {
    grpc::ClientContext context;
    esb::v1::DownloadArtifactRequest r;
    r.set_job_id(id);
    r.set_name("model.esbm");
    auto reader = users_->DownloadArtifact(&context, r);
    esb::v1::BlobChunk chunk;
    std::string got;
    while (reader->Read(&chunk)) got += chunk.data();
    ASSERT_TRUE(reader->Finish().ok());
    EXPECT_EQ(got, "model.esbm!");
  }
  {
    grpc::ClientContext context;
    esb::v1::DownloadArtifactRequest r;
    r.set_job_id(id);
    r.set_name("weights.bin");
    auto reader = users_->DownloadArtifact(&context, r);
    esb::v1::BlobChunk chunk;
    while (reader->Read(&chunk)) {
    }
    grpc::Status s = reader->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_THAT(s.error_message(), HasSubstr("model.esbm"));
  }
  {
    grpc::ClientContext context;
    esb::v1::CancelJobRequest r;
    r.set_id(id);
    esb::v1::Job job;
    grpc::Status s = users_->CancelJob(&context, r, &job);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  }
}

TEST_F(ServerTest, HealthServiceAndDataDirLock) {
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckRequest r;
  grpc::health::v1::HealthCheckResponse response;
  auto health = grpc::health::v1::Health::NewStub(channel_);
  ASSERT_TRUE(health->Check(&context, r, &response).ok());
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_FALSE(server_->metrics_address().empty());

  ServerOptions second = options_;
  auto other = Server::Start(second);
  EXPECT_TRUE(absl::IsFailedPrecondition(other.status()));
  EXPECT_THAT(other.status().message(), HasSubstr("another esb-server"));
}

TEST_F(ServerTest, UnknownJobAndBadPage) {
  grpc::ClientContext context;
  esb::v1::GetJobRequest r;
  r.set_id("nope");
  esb::v1::Job job;
  EXPECT_EQ(users_->GetJob(&context, r, &job).error_code(),
            grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext list_context;
  esb::v1::ListJobsRequest list;
  list.set_page_token("garbage");
  esb::v1::ListJobsResponse page;
  EXPECT_EQ(users_->ListJobs(&list_context, list, &page).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace esb::server
