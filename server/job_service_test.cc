#include "server/job_service.h"

#include <atomic>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/env/mem_env.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/sqlite_job_store.h"

namespace esb::server {
namespace {

using ::testing::HasSubstr;

class JobServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string dir = absl::StrCat(
        ::testing::TempDir(), "/jobsvc_",
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    store_ = *SqliteJobStore::Open(dir + "/jobs.db");
    env_ = NewMemEnv();
    blobs_ = *BlobStore::Open(env_.get(), "/data", 1 << 20);
    metrics_ = std::make_unique<ServerMetrics>(60000);
    JobServiceOptions options;
    options.max_attempts = 2;
    options.lease_ms = 1000;
    service_ =
        std::make_unique<JobService>(store_.get(), blobs_.get(), metrics_.get(),
                                     options, [this] { return now_.load(); });
    ASSERT_TRUE(blobs_->Put("onnx bytes", &model_).ok());
    ASSERT_TRUE(blobs_->Put("idx bytes", &calib_).ok());
  }

  esb::v1::SubmitJobRequest Request(const std::string& key = "") {
    esb::v1::SubmitJobRequest r;
    r.mutable_inputs()->mutable_model()->set_sha256(model_);
    r.mutable_inputs()->set_model_name("lenet");
    r.mutable_inputs()->mutable_calib()->mutable_blob()->set_sha256(calib_);
    r.mutable_config()->set_weight_bits(4);
    r.mutable_config()->set_weight_sb(2);
    r.set_idempotency_key(key);
    return r;
  }

  esb::v1::LeaseJobResponse Lease(const std::string& worker = "w1") {
    esb::v1::LeaseJobRequest r;
    r.set_worker(worker);
    r.set_wait_ms(0);
    auto leased = service_->Lease(r, nullptr);
    EXPECT_TRUE(leased.ok()) << leased.status();
    return *leased;
  }

  // Uploads the three artifacts and returns a CompleteJob request.
  esb::v1::CompleteJobRequest Completion(const esb::v1::LeaseJobResponse& l) {
    esb::v1::CompleteJobRequest r;
    r.set_job_id(l.job().id());
    r.set_lease_id(l.lease_id());
    for (const auto& [name, bytes] :
         std::vector<std::pair<std::string, std::string>>{
             {"model.esb.onnx", "qdq"},
             {"model.esbm", "esbm"},
             {"report.json", R"({"top1Fp32": 0.9, "top1Esb": 0.88,
                                 "agreement": 0.95, "futureField": 1})"}}) {
      std::string sha;
      EXPECT_TRUE(blobs_->Put(bytes, &sha).ok());
      auto* a = r.add_artifacts();
      a->set_name(name);
      a->mutable_blob()->set_sha256(sha);
    }
    return r;
  }

  std::atomic<int64_t> now_{1000000};
  std::unique_ptr<SqliteJobStore> store_;
  std::unique_ptr<Env> env_;
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<ServerMetrics> metrics_;
  std::unique_ptr<JobService> service_;
  std::string model_, calib_;
};

TEST_F(JobServiceTest, SubmitLeaseHeartbeatComplete) {
  auto submitted = service_->Submit(Request());
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  const esb::v1::Job& job = submitted->job();
  EXPECT_EQ(job.state(), esb::v1::JOB_STATE_QUEUED);
  EXPECT_EQ(job.inputs().model().size(), 10);

  esb::v1::LeaseJobResponse lease = Lease();
  ASSERT_TRUE(lease.leased());
  EXPECT_EQ(lease.job().id(), job.id());
  EXPECT_EQ(lease.job().attempts(), 1);
  EXPECT_EQ(lease.lease_deadline_unix_ms(), now_ + 1000);
  EXPECT_FALSE(Lease("w2").leased());

  esb::v1::HeartbeatRequest beat;
  beat.set_job_id(job.id());
  beat.set_lease_id(lease.lease_id());
  beat.mutable_progress()->set_stage(esb::v1::STAGE_FIT);
  beat.mutable_progress()->set_step(3);
  now_ += 800;
  auto hb = service_->Heartbeat(beat);
  ASSERT_TRUE(hb.ok());
  EXPECT_FALSE(hb->cancel_requested());
  EXPECT_EQ(hb->lease_deadline_unix_ms(), now_ + 1000);
  EXPECT_EQ(service_->Get(job.id())->progress().step(), 3);
  // Past the first deadline but within the renewed one: still leased.
  now_ += 800;
  EXPECT_EQ(*service_->ExpireLeases(), 0);

  esb::v1::CompleteJobRequest done = Completion(lease);
  auto completed = service_->Complete(done);
  ASSERT_TRUE(completed.ok()) << completed.status();
  EXPECT_EQ(completed->state(), esb::v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(completed->artifacts_size(), 3);
  EXPECT_TRUE(completed->has_eval());
  EXPECT_DOUBLE_EQ(completed->esb_top1(), 0.88);
  // Idempotent: a retried CompleteJob returns the same job.
  auto again = service_->Complete(done);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->finished_unix_ms(), completed->finished_unix_ms());
  // A heartbeat after the end is refused: the lease is over.
  EXPECT_TRUE(absl::IsAborted(service_->Heartbeat(beat).status()));
}

TEST_F(JobServiceTest, BadSubmissionsNameTheProblem) {
  esb::v1::SubmitJobRequest r = Request();
  r.mutable_inputs()->mutable_model()->set_sha256(std::string(64, 'e'));
  auto s = service_->Submit(r).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(s));
  EXPECT_THAT(s.message(), HasSubstr("inputs.model"));
  EXPECT_THAT(s.message(), HasSubstr("never uploaded"));

  r = Request();
  r.mutable_inputs()->clear_calib();
  EXPECT_THAT(service_->Submit(r).status().message(),
              HasSubstr("inputs.calib is required"));
  r = Request();
  r.mutable_config()->set_weight_sb(5);
  s = service_->Submit(r).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_THAT(s.message(), HasSubstr("config:"));
  r = Request();
  r.mutable_inputs()->set_model_name("../../etc");
  EXPECT_TRUE(absl::IsInvalidArgument(service_->Submit(r).status()));
  EXPECT_TRUE(absl::IsNotFound(service_->Get("missing").status()));
  EXPECT_TRUE(absl::IsNotFound(service_->Cancel("missing").status()));
}

TEST_F(JobServiceTest, IdempotencyKeyReturnsTheFirstJob) {
  auto first = service_->Submit(Request("key-1"));
  auto second = service_->Submit(Request("key-1"));
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->job().id(), second->job().id());
  EXPECT_FALSE(first->existing());
  EXPECT_TRUE(second->existing());
  auto other = service_->Submit(Request("key-2"));
  EXPECT_NE(other->job().id(), first->job().id());
}

TEST_F(JobServiceTest, LostWorkerRequeuesThenFailsWithTheStage) {
  const std::string id = service_->Submit(Request())->job().id();
  esb::v1::LeaseJobResponse first = Lease("w1");
  esb::v1::HeartbeatRequest beat;
  beat.set_job_id(id);
  beat.set_lease_id(first.lease_id());
  beat.mutable_progress()->set_stage(esb::v1::STAGE_CALIBRATE);
  ASSERT_TRUE(service_->Heartbeat(beat).ok());
  now_ += 1001;
  EXPECT_EQ(*service_->ExpireLeases(), 1);
  EXPECT_EQ(service_->Get(id)->state(), esb::v1::JOB_STATE_QUEUED);
  // The old worker's calls now fail: it must drop the job.
  EXPECT_TRUE(absl::IsAborted(service_->Heartbeat(beat).status()));
  EXPECT_TRUE(absl::IsAborted(service_->Complete(Completion(first)).status()));

  esb::v1::LeaseJobResponse second = Lease("w2");
  ASSERT_TRUE(second.leased());
  EXPECT_EQ(second.job().attempts(), 2);
  beat.set_lease_id(second.lease_id());
  ASSERT_TRUE(service_->Heartbeat(beat).ok());
  now_ += 1001;
  EXPECT_EQ(*service_->ExpireLeases(), 1);
  auto job = service_->Get(id);
  EXPECT_EQ(job->state(), esb::v1::JOB_STATE_FAILED);
  EXPECT_EQ(job->error().message(),
            "worker lost 2 times, last seen in stage calibrate (worker w2)");
  EXPECT_EQ(job->error().stage(), esb::v1::STAGE_CALIBRATE);
}

TEST_F(JobServiceTest, RestartRenewsRunningLeases) {
  const std::string id = service_->Submit(Request())->job().id();
  esb::v1::LeaseJobResponse lease = Lease();
  // The server was down past the lease's deadline; on start it renews it.
  now_ += 5000;
  ASSERT_TRUE(service_->RenewRunningLeases().ok());
  EXPECT_EQ(*service_->ExpireLeases(), 0);
  esb::v1::HeartbeatRequest beat;
  beat.set_job_id(id);
  beat.set_lease_id(lease.lease_id());
  EXPECT_TRUE(service_->Heartbeat(beat).ok());
  now_ += 1001;
  EXPECT_EQ(*service_->ExpireLeases(), 1);
}

TEST_F(JobServiceTest, CancelQueuedRunningAndFinished) {
  const std::string queued = service_->Submit(Request())->job().id();
  auto cancelled = service_->Cancel(queued);
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->state(), esb::v1::JOB_STATE_CANCELLED);
  auto twice = service_->Cancel(queued).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(twice));
  EXPECT_THAT(twice.message(), HasSubstr("already cancelled"));

  const std::string running = service_->Submit(Request())->job().id();
  esb::v1::LeaseJobResponse lease = Lease();
  ASSERT_EQ(lease.job().id(), running);
  ASSERT_TRUE(service_->Cancel(running).ok());
  EXPECT_EQ(service_->Get(running)->state(), esb::v1::JOB_STATE_RUNNING);
  esb::v1::HeartbeatRequest beat;
  beat.set_job_id(running);
  beat.set_lease_id(lease.lease_id());
  EXPECT_TRUE(service_->Heartbeat(beat)->cancel_requested());
  esb::v1::FailJobRequest fail;
  fail.set_job_id(running);
  fail.set_lease_id(lease.lease_id());
  fail.mutable_error()->set_code(
      static_cast<int>(absl::StatusCode::kCancelled));
  fail.mutable_error()->set_message("cancelled");
  EXPECT_EQ(service_->Fail(fail)->state(), esb::v1::JOB_STATE_CANCELLED);
}

TEST_F(JobServiceTest, LongPollWakesOnSubmitAndWatchSeesChanges) {
  std::atomic<bool> leased{false};
  std::thread poller([&] {
    esb::v1::LeaseJobRequest r;
    r.set_worker("w");
    r.set_wait_ms(10000);
    auto got = service_->Lease(r, nullptr);
    leased = got.ok() && got->leased();
  });
  absl::SleepFor(absl::Milliseconds(100));
  const absl::Time start = absl::Now();
  const std::string id = service_->Submit(Request())->job().id();
  poller.join();
  EXPECT_TRUE(leased);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));

  esb::v1::Job seen = *service_->Get(id);
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(50));
    service_->Cancel(id).IgnoreError();
  });
  auto changed = service_->WaitForChange(id, &seen, absl::Seconds(10));
  canceller.join();
  ASSERT_TRUE(changed.ok());
  EXPECT_TRUE(changed->cancel_requested());
  // Unchanged: returns after the timeout with the same job.
  auto same = service_->WaitForChange(id, &*changed, absl::Milliseconds(50));
  EXPECT_EQ(same->SerializeAsString(), changed->SerializeAsString());
}

TEST_F(JobServiceTest, RetentionDeletesOnlyUnreferencedBlobs) {
  const std::string id = service_->Submit(Request())->job().id();
  esb::v1::LeaseJobResponse lease = Lease();
  esb::v1::CompleteJobRequest done = Completion(lease);
  ASSERT_TRUE(service_->Complete(done).ok());
  // A second job still uses the same model and calibration blobs.
  ASSERT_TRUE(service_->Submit(Request()).ok());
  now_ += 10000;
  auto deleted = service_->Retain(5000);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 3);  // The three artifacts.
  EXPECT_TRUE(service_->Get(id)->artifacts_expired());
  EXPECT_TRUE(blobs_->Size(model_).ok());
  EXPECT_TRUE(blobs_->Size(calib_).ok());
  EXPECT_TRUE(absl::IsNotFound(
      blobs_->Size(done.artifacts(0).blob().sha256()).status()));
}

}  // namespace
}  // namespace esb::server
