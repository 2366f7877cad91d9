#include "worker/worker.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "core/env/env.h"
#include "core/pipeline/job.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "worker/worker_test_server.h"

namespace esb::worker {
namespace {

using testing::FakeServer;
using testing::FakeState;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kImages[] =
    "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
constexpr char kLabels[] =
    "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";

std::string Slurp(const std::string& path) {
  absl::StatusOr<std::string> s = ReadFileToString(Env::Default(), path);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : "";
}

std::string Model(const std::string& name) {
  return absl::StrCat(ESB_SOURCE_DIR, "/models/", name, ".onnx");
}

// The processes whose parent is this one (the workers' job processes).
std::vector<pid_t> Children() {
  std::vector<pid_t> out;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return out;
  while (dirent* e = readdir(dir)) {
    int pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
    std::string line;
    std::getline(stat, line);
    // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
    const size_t paren = line.rfind(')');
    if (paren == std::string::npos) continue;
    std::vector<std::string> fields =
        absl::StrSplit(line.substr(paren + 2), ' ');
    int ppid = 0;
    if (fields.size() > 1 && absl::SimpleAtoi(fields[1], &ppid) &&
        ppid == getpid() && fields[0] != "Z") {
      out.push_back(pid);
    }
  }
  closedir(dir);
  return out;
}

double MetricValue(prometheus::Registry& registry, const std::string& name,
                   const std::string& label_value) {
  for (const prometheus::MetricFamily& f : registry.Collect()) {
    if (f.name != name) continue;
    for (const prometheus::ClientMetric& m : f.metric) {
      const bool match = label_value.empty() ||
                         (!m.label.empty() && m.label[0].value == label_value);
      if (!match) continue;
      if (f.type == prometheus::MetricType::Counter) return m.counter.value;
      if (f.type == prometheus::MetricType::Gauge) return m.gauge.value;
    }
  }
  return 0;
}

// The metric once it reaches `want` (it is counted just after the server
// was told), or its value after 5 s.
double AwaitMetric(prometheus::Registry& registry, const std::string& name,
                   const std::string& label_value, double want) {
  const absl::Time end = absl::Now() + absl::Seconds(5);
  double v = MetricValue(registry, name, label_value);
  while (v != want && absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(10));
    v = MetricValue(registry, name, label_value);
  }
  return v;
}

class WorkerTest : public ::testing::Test {
 protected:
  void TearDown() override { Stop(); }

  // Starts a worker of `concurrency` slots against the fake server.
  void Start(int64_t memory_limit = int64_t{8} << 30) {
    WorkerOptions o;
    o.name = "test-worker";
    o.work_dir = absl::StrCat(
        ::testing::TempDir(), "/worker_",
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(o.work_dir);
    o.job_binary = ESB_WORKER_BINARY;
    o.threads_per_job = 1;
    o.job_memory_limit = memory_limit;
    o.heartbeat_interval = absl::Milliseconds(100);
    o.lease_wait = absl::Milliseconds(200);
    o.backoff_min = absl::Milliseconds(10);
    o.backoff_max = absl::Milliseconds(200);
    auto w =
        Worker::Create(o,
                       grpc::CreateChannel(server_.address(),
                                           grpc::InsecureChannelCredentials()),
                       &metrics_);
    ASSERT_TRUE(w.ok()) << w.status();
    worker_ = *std::move(w);
    thread_ = std::thread([this] { worker_->Run(); });
  }

  void Stop() {
    if (worker_ != nullptr) worker_->Abort();
    if (thread_.joinable()) thread_.join();
    worker_.reset();
  }

  // A job on the demo model `model` calibrated on Fashion-MNIST test
  // images, with the blobs in the fake server.
  esb::v1::Job MakeJob(const std::string& id, const std::string& model_bytes,
                       int calib_count) {
    esb::v1::Job job;
    job.set_id(id);
    esb::v1::JobInputs& in = *job.mutable_inputs();
    *in.mutable_model() = server_.AddBlob(model_bytes);
    in.set_model_name("demo-net");
    *in.mutable_calib()->mutable_blob() = server_.AddBlob(Slurp(kImages));
    job.mutable_config()->set_calib_count(calib_count);
    job.mutable_config()->set_seed(7);
    return job;
  }

  // The FailJob of `id` (waits up to `timeout`); null if none came.
  const esb::v1::FailJobRequest* WaitFail(const std::string& id,
                                          absl::Duration timeout,
                                          absl::Time* at = nullptr) {
    FakeState& s = server_.state();
    const esb::v1::FailJobRequest* found = nullptr;
    server_.WaitFor(
        [&] {
          for (const auto& [f, t] : s.fails) {
            if (f.job_id() == id) {
              found = &f;
              if (at != nullptr) *at = t;
              return true;
            }
          }
          return false;
        },
        timeout);
    return found;
  }

  FakeServer server_;
  prometheus::Registry registry_;
  WorkerMetrics metrics_{registry_};
  std::unique_ptr<Worker> worker_;
  std::thread thread_;
};

TEST_F(WorkerTest, CompletesAJobWithTheArtifactsOfALocalRun) {
  esb::v1::Job job = MakeJob("job-1", Slurp(Model("lenet")), 64);
  *job.mutable_inputs()->mutable_eval()->mutable_blob() =
      server_.AddBlob(Slurp(kImages));
  *job.mutable_inputs()->mutable_eval_labels()->mutable_blob() =
      server_.AddBlob(Slurp(kLabels));
  job.mutable_inputs()->set_eval_limit(200);
  server_.Enqueue(job);
  Start();
  FakeState& s = server_.state();
  ASSERT_TRUE(
      server_.WaitFor([&] { return !s.completes.empty(); }, absl::Seconds(120)))
      << "no CompleteJob";

  // The same job run here.
  pipeline::JobInputs local;
  local.model_path = Model("lenet");
  local.model_name = "demo-net";
  local.calib_images = kImages;
  local.eval_images = kImages;
  local.eval_labels = kLabels;
  local.eval_limit = 200;
  local.output_dir = absl::StrCat(::testing::TempDir(), "/worker_local");
  auto expected = pipeline::RunJob(local, job.config(), nullptr);
  ASSERT_TRUE(expected.ok()) << expected.status();

  absl::MutexLock lock(&s.mu);
  ASSERT_EQ(s.completes.size(), 1u);
  const esb::v1::CompleteJobRequest& done = s.completes[0];
  EXPECT_EQ(done.job_id(), "job-1");
  EXPECT_EQ(done.lease_id(), "lease-1");
  ASSERT_EQ(done.artifacts_size(), 3);
  std::map<std::string, std::string> got;
  for (const esb::v1::Artifact& a : done.artifacts()) {
    got[a.name()] = s.blobs[a.blob().sha256()];
    EXPECT_EQ(a.blob().size(), static_cast<int64_t>(got[a.name()].size()));
  }
  EXPECT_EQ(got["model.esb.onnx"], Slurp(expected->onnx_path));
  EXPECT_EQ(got["model.esbm"], Slurp(expected->esbm_path));
  esb::v1::QuantReport report;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(got["report.json"], &report)
          .ok());
  EXPECT_EQ(report.model(), "demo-net");
  EXPECT_EQ(report.eval_images(), 200);
  esb::v1::QuantReport want = expected->report;
  report.clear_timings();
  want.clear_timings();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(report, want))
      << report.DebugString() << "\nvs\n"
      << want.DebugString();
  EXPECT_TRUE(s.fails.empty());

  // Heartbeats carried the progress, stage by stage.
  std::set<esb::v1::Stage> stages;
  esb::v1::Stage last = esb::v1::STAGE_UNSPECIFIED;
  for (const testing::Heartbeat& h : s.heartbeats) {
    EXPECT_EQ(h.request.lease_id(), "lease-1");
    EXPECT_GE(h.request.progress().stage(), last);
    last = h.request.progress().stage();
    stages.insert(last);
  }
  EXPECT_TRUE(stages.count(esb::v1::STAGE_CALIBRATE) ||
              stages.count(esb::v1::STAGE_FIT))
      << s.heartbeats.size() << " heartbeats";
  EXPECT_GE(stages.size(), 2u);
  EXPECT_EQ(AwaitMetric(registry_, "esb_worker_jobs_total", "succeeded", 1), 1);
  EXPECT_EQ(MetricValue(registry_, "esb_worker_layers_quantized_total", ""),
            report.layers_size());
  for (const auto& [sha, n] : s.reads) EXPECT_EQ(n, 1) << sha;
}

TEST_F(WorkerTest, ASecondJobOnTheSameBlobsFetchesAndUploadsNothingNew) {
  server_.Enqueue(MakeJob("first", Slurp(Model("lenet")), 64));
  server_.Enqueue(MakeJob("second", Slurp(Model("lenet")), 64));
  Start();
  FakeState& s = server_.state();
  ASSERT_TRUE(server_.WaitFor([&] { return s.completes.size() == 2; },
                              absl::Seconds(120)));
  absl::MutexLock lock(&s.mu);
  for (const auto& [sha, n] : s.reads) EXPECT_EQ(n, 1) << sha;
  // The models are identical: StatBlob finds them and only the second
  // report.json (other timings) is uploaded.
  EXPECT_EQ(s.uploads, 4);
}

// Long enough (calibration over 10000 images) to be stopped midway.
constexpr int kLongCalib = 10000;

TEST_F(WorkerTest, CancelKillsTheJobWithinASecond) {
  server_.Enqueue(MakeJob("to-cancel", Slurp(Model("lenet")), kLongCalib));
  FakeState& s = server_.state();
  {
    absl::MutexLock lock(&s.mu);
    s.on_heartbeat = [&](const esb::v1::HeartbeatRequest& h) {
      if (h.progress().stage() >= esb::v1::STAGE_CALIBRATE) {
        s.cancel.insert(h.job_id());
      }
    };
  }
  Start();
  absl::Time failed_at;
  const esb::v1::FailJobRequest* fail =
      WaitFail("to-cancel", absl::Seconds(60), &failed_at);
  ASSERT_NE(fail, nullptr);
  EXPECT_EQ(fail->error().code(),
            static_cast<int>(absl::StatusCode::kCancelled));
  absl::MutexLock lock(&s.mu);
  absl::Time asked = absl::InfiniteFuture();
  for (const testing::Heartbeat& h : s.heartbeats) {
    if (h.answered_cancel) asked = std::min(asked, h.at);
  }
  EXPECT_LT(failed_at - asked, absl::Seconds(1));
  EXPECT_TRUE(s.completes.empty());
  EXPECT_TRUE(Children().empty()) << "the job process survived";
  EXPECT_EQ(AwaitMetric(registry_, "esb_worker_jobs_total", "cancelled", 1), 1);
}

TEST_F(WorkerTest, AJobKilledByASignalFailsNamingTheSignalAndStage) {
  server_.Enqueue(MakeJob("to-kill", Slurp(Model("lenet")), kLongCalib));
  FakeState& s = server_.state();
  {
    absl::MutexLock lock(&s.mu);
    s.on_heartbeat = [&](const esb::v1::HeartbeatRequest& h) {
      if (h.progress().stage() == esb::v1::STAGE_CALIBRATE) {
        for (pid_t pid : Children()) kill(pid, SIGKILL);
      }
    };
  }
  Start();
  const esb::v1::FailJobRequest* fail = WaitFail("to-kill", absl::Seconds(60));
  ASSERT_NE(fail, nullptr);
  EXPECT_THAT(fail->error().message(),
              HasSubstr("job process killed by SIGKILL in stage calibrate"));
  EXPECT_EQ(fail->error().stage(), esb::v1::STAGE_CALIBRATE);
  EXPECT_EQ(AwaitMetric(registry_, "esb_worker_jobs_total", "failed", 1), 1);
}

TEST_F(WorkerTest, AJobErrorFailsTheJobAndTheWorkerGoesOn) {
  server_.Enqueue(MakeJob("bad-model", "not an ONNX model", 64));
  server_.Enqueue(MakeJob("good", Slurp(Model("lenet")), 64));
  Start();
  const esb::v1::FailJobRequest* fail =
      WaitFail("bad-model", absl::Seconds(60));
  ASSERT_NE(fail, nullptr);
  EXPECT_EQ(fail->error().code(),
            static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(fail->error().stage(), esb::v1::STAGE_LOAD);
  // The message names the model, not the worker's cache path.
  EXPECT_THAT(fail->error().message(), HasSubstr("demo-net: "));
  EXPECT_THAT(fail->error().message(), Not(HasSubstr("/blobs/")));
  FakeState& s = server_.state();
  EXPECT_TRUE(server_.WaitFor([&] { return s.completes.size() == 1; },
                              absl::Seconds(120)));
}

TEST_F(WorkerTest, ATinyMemoryLimitFailsJobsClearlyAndTheWorkerGoesOn) {
  server_.Enqueue(MakeJob("small-1", Slurp(Model("lenet")), 64));
  server_.Enqueue(MakeJob("small-2", Slurp(Model("lenet")), 64));
  Start(/*memory_limit=*/int64_t{64} << 20);
  for (const char* id : {"small-1", "small-2"}) {
    const esb::v1::FailJobRequest* fail = WaitFail(id, absl::Seconds(60));
    ASSERT_NE(fail, nullptr) << id;
    EXPECT_EQ(fail->error().code(),
              static_cast<int>(absl::StatusCode::kResourceExhausted))
        << fail->error().message();
    EXPECT_THAT(fail->error().message(), HasSubstr("memory limit 64 MiB"));
  }
}

TEST_F(WorkerTest, AnAbortedHeartbeatDropsTheJob) {
  server_.Enqueue(MakeJob("stolen", Slurp(Model("lenet")), kLongCalib));
  server_.Enqueue(MakeJob("next", Slurp(Model("lenet")), 64));
  FakeState& s = server_.state();
  {
    absl::MutexLock lock(&s.mu);
    s.aborted.insert("stolen");
  }
  Start();
  // The worker drops the job (no Complete/Fail, its process killed) and
  // leases the next one.
  ASSERT_TRUE(server_.WaitFor([&] { return s.completes.size() == 1; },
                              absl::Seconds(120)));
  absl::MutexLock lock(&s.mu);
  EXPECT_EQ(s.completes[0].job_id(), "next");
  EXPECT_TRUE(s.fails.empty());
  int stolen_heartbeats = 0;
  for (const testing::Heartbeat& h : s.heartbeats) {
    stolen_heartbeats += h.request.job_id() == "stolen";
  }
  EXPECT_EQ(stolen_heartbeats, 1) << "heartbeats went on after ABORTED";
  EXPECT_EQ(AwaitMetric(registry_, "esb_worker_jobs_total", "lost", 1), 1);
}

TEST_F(WorkerTest, CallsAreRetriedWhileTheServerIsAway) {
  FakeState& s = server_.state();
  {
    absl::MutexLock lock(&s.mu);
    s.unavailable_heartbeats = 5;
    s.unavailable_completes = 3;
  }
  server_.Enqueue(MakeJob("patient", Slurp(Model("lenet")), 64));
  Start();
  ASSERT_TRUE(server_.WaitFor([&] { return s.completes.size() == 1; },
                              absl::Seconds(120)));
  absl::MutexLock lock(&s.mu);
  EXPECT_EQ(s.unavailable_completes, 0);
  EXPECT_TRUE(s.fails.empty());
}

TEST_F(WorkerTest, DrainLetsTheRunningJobFinish) {
  server_.Enqueue(MakeJob("draining", Slurp(Model("lenet")), 64));
  server_.Enqueue(MakeJob("never", Slurp(Model("lenet")), 64));
  FakeState& s = server_.state();
  Start();
  ASSERT_TRUE(server_.WaitFor([&] { return !s.heartbeats.empty(); },
                              absl::Seconds(60)));
  worker_->Drain();
  thread_.join();  // Run() returns once the job is reported.
  absl::MutexLock lock(&s.mu);
  ASSERT_EQ(s.completes.size(), 1u);
  EXPECT_EQ(s.completes[0].job_id(), "draining");
  EXPECT_EQ(s.leases, 1);
  EXPECT_EQ(s.queue.size(), 1u);
}

TEST_F(WorkerTest, ALeaseThatLapsesWithoutAHeartbeatIsGivenUp) {
  FakeState& s = server_.state();
  {
    absl::MutexLock lock(&s.mu);
    s.lease = absl::Seconds(1);
    s.unavailable_heartbeats = 1 << 20;
    s.unavailable_completes = 1 << 20;
  }
  server_.Enqueue(MakeJob("lapsed", Slurp(Model("lenet")), kLongCalib));
  Start();
  EXPECT_EQ(AwaitMetric(registry_, "esb_worker_jobs_total", "lost", 1), 1);
  absl::MutexLock lock(&s.mu);
  EXPECT_TRUE(s.completes.empty());
  EXPECT_TRUE(s.fails.empty());
  EXPECT_TRUE(Children().empty()) << "the job process survived";
}

TEST_F(WorkerTest, AMissingInputBlobFailsTheJob) {
  esb::v1::Job job = MakeJob("no-data", Slurp(Model("lenet")), 64);
  const std::string missing(64, 'a');
  job.mutable_inputs()->mutable_calib()->mutable_blob()->set_sha256(missing);
  server_.Enqueue(job);
  Start();
  const esb::v1::FailJobRequest* fail = WaitFail("no-data", absl::Seconds(30));
  ASSERT_NE(fail, nullptr);
  EXPECT_EQ(fail->error().code(),
            static_cast<int>(absl::StatusCode::kNotFound));
  EXPECT_THAT(fail->error().message(), HasSubstr(missing));
}

}  // namespace
}  // namespace esb::worker
