// The job service end to end: a real esb-server and esb-worker processes
// on loopback, driven by esbctl and by a gRPC client, with workers and the
// server killed with SIGKILL in the middle of jobs.
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/remote.h"
#include "core/data/image_encode.h"
#include "core/env/digest.h"
#include "core/env/env.h"
#include "core/testing/hostile.h"
#include "esb/v1/service.grpc.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/process.h"

namespace esb::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kData[] = "/usr/share/datasets/fashion-mnist";

std::string Model(const std::string& name) {
  return absl::StrCat(ESB_SOURCE_DIR, "/models/", name, ".onnx");
}
std::string Train() {
  return absl::StrCat(kData, "/train-images-idx3-ubyte.gz");
}
std::string TestImages() {
  return absl::StrCat(kData, "/t10k-images-idx3-ubyte.gz");
}
std::string TestLabels() {
  return absl::StrCat(kData, "/t10k-labels-idx1-ubyte.gz");
}

std::string ReadFile(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFileToString(Env::Default(), path);
  return bytes.ok() ? *bytes : "";
}

// `count` random 28 x 28 images as an IDX file: calibration data for jobs
// that only need to be small.
std::string WriteNoiseIdx(const std::string& path, int count, int side = 28) {
  std::string bytes = {0, 0, 8, 3};
  for (int v : {count, side, side}) {
    for (int shift : {24, 16, 8, 0})
      bytes.push_back(static_cast<char>(v >> shift));
  }
  absl::BitGen gen;
  for (int i = 0; i < count * side * side; ++i) {
    bytes.push_back(static_cast<char>(absl::Uniform(gen, 0, 256)));
  }
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

// A server and its workers, each a process, all killed when it goes.
class Cluster {
 public:
  explicit Cluster(const std::string& name) : dir_(FreshDir(name)) {}

  // Starts (or restarts, on the same port and data dir) the server.
  void StartServer(const std::vector<std::string>& flags = {}) {
    if (port_ == 0) port_ = FreePort();
    std::vector<std::string> argv = {ESB_SERVER_PATH, "--listen",
                                     absl::StrCat("127.0.0.1:", port_),
                                     "--data-dir", dir_ + "/server"};
    server_flags_ = flags.empty() ? server_flags_ : flags;
    argv.insert(argv.end(), server_flags_.begin(), server_flags_.end());
    server_ = *Process::Start(argv, dir_ + "/server.log");
    absl::StatusOr<std::string> line =
        server_->WaitForLine("listening on", absl::Seconds(30));
    ASSERT_TRUE(line.ok()) << line.status();
  }

  void KillServer() {
    server_->Signal(SIGKILL);
    ASSERT_TRUE(server_->Wait(absl::Seconds(10)).ok());
  }

  // Starts a worker named `name`; returns its index.
  int StartWorker(const std::string& name,
                  const std::vector<std::string>& flags = {}) {
    std::vector<std::string> argv = {
        ESB_WORKER_PATH,        "--server", address(), "--work-dir",
        dir_ + "/work-" + name, "--name",   name};
    argv.insert(argv.end(), flags.begin(), flags.end());
    workers_.push_back(
        *Process::Start(argv, absl::StrCat(dir_, "/worker-", name, ".log")));
    names_.push_back(name);
    EXPECT_TRUE(
        workers_.back()->WaitForLine("serving", absl::Seconds(30)).ok());
    return static_cast<int>(workers_.size()) - 1;
  }

  // SIGKILLs the worker called `name` (and its job process).
  void KillWorker(const std::string& name) {
    for (size_t i = 0; i < names_.size(); ++i) {
      if (names_[i] == name && workers_[i]->running()) {
        workers_[i]->Signal(SIGKILL);
        EXPECT_TRUE(workers_[i]->Wait(absl::Seconds(10)).ok());
      }
    }
  }

  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  const std::string& dir() const { return dir_; }
  Process& server() { return *server_; }
  Process& worker(int i) { return *workers_[i]; }
  int workers() const { return static_cast<int>(workers_.size()); }

  // Every worker log line that says a job succeeded, by job id.
  std::map<std::string, int> Successes() {
    std::map<std::string, int> ids;
    for (auto& w : workers_) {
      for (absl::string_view line : absl::StrSplit(w->Log(), '\n')) {
        if (!absl::EndsWith(line, " succeeded")) continue;
        const size_t at = line.find("job ");
        if (at == absl::string_view::npos) continue;
        std::vector<std::string> words =
            absl::StrSplit(line.substr(at + 4), ' ');
        ++ids[words[0]];
      }
    }
    return ids;
  }

  std::unique_ptr<client::Remote> Connect() {
    auto remote = client::Remote::Connect(address(), absl::Seconds(10));
    EXPECT_TRUE(remote.ok()) << remote.status();
    return remote.ok() ? *std::move(remote) : nullptr;
  }

  RunResult Esbctl(std::vector<std::string> args,
                   absl::Duration timeout = absl::Seconds(300)) {
    args.insert(args.begin(), ESBCTL_PATH);
    args.push_back("--server");
    args.push_back(address());
    return RunCommand(args, timeout);
  }

 private:
  std::string dir_;
  int port_ = 0;
  std::vector<std::string> server_flags_;
  std::unique_ptr<Process> server_;
  std::vector<std::unique_ptr<Process>> workers_;
  std::vector<std::string> names_;
};

// Polls until every job is final (bounded by `timeout`).
std::vector<esb::v1::Job> WaitAllFinal(client::Remote& remote,
                                       const std::vector<std::string>& ids,
                                       absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::vector<esb::v1::Job> jobs(ids.size());
  std::vector<bool> done(ids.size(), false);
  size_t left = ids.size();
  while (left > 0 && absl::Now() < deadline) {
    for (size_t i = 0; i < ids.size(); ++i) {
      if (done[i]) continue;
      absl::StatusOr<esb::v1::Job> job = remote.Get(ids[i]);
      if (!job.ok()) continue;  // The server may be restarting.
      jobs[i] = *job;
      const esb::v1::JobState s = job->state();
      if (s == esb::v1::JOB_STATE_SUCCEEDED || s == esb::v1::JOB_STATE_FAILED ||
          s == esb::v1::JOB_STATE_CANCELLED) {
        done[i] = true;
        --left;
      }
    }
    if (left > 0) absl::SleepFor(absl::Milliseconds(200));
  }
  return jobs;
}

std::string ArtifactSha(const esb::v1::Job& job, const std::string& name) {
  for (const auto& a : job.artifacts()) {
    if (a.name() == name) return a.blob().sha256();
  }
  return "";
}

// The job's id and state from `esbctl ... --json`.
esb::v1::Job ParseJob(const std::string& out) {
  esb::v1::Job job;
  const size_t start = out.find('{');
  const size_t end = out.rfind('}');
  if (start == std::string::npos || end == std::string::npos) return job;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(
           out.substr(start, end - start + 1), &job, options)
           .ok()) {
    job.Clear();
  }
  return job;
}

TEST(ServiceTest, ArtifactsEqualLocalQuantizeThroughTwoWorkers) {
  Cluster cluster("service_artifacts");
  cluster.StartServer();
  cluster.StartWorker("a");
  cluster.StartWorker("b");
  for (const char* model : {"lenet", "resnet"}) {
    const std::vector<std::string> flags = {
        "--sb",     "2",          "--calib", Train(), "--eval", TestImages(),
        "--labels", TestLabels(), "--limit", "500",   "--seed", "7"};
    const std::string local = cluster.dir() + "/local-" + model;
    std::vector<std::string> quantize = {ESBCTL_PATH, "quantize", Model(model),
                                         "-o",        local,      "--quiet"};
    quantize.insert(quantize.end(), flags.begin(), flags.end());
    const RunResult q = RunCommand(quantize);
    ASSERT_EQ(q.exit_code, 0) << q.out;

    const std::string remote = cluster.dir() + "/remote-" + model;
    std::vector<std::string> submit = {
        "submit", Model(model), "--wait", "--json", "--quiet", "-o", remote};
    submit.insert(submit.end(), flags.begin(), flags.end());
    const RunResult s = cluster.Esbctl(submit);
    ASSERT_EQ(s.exit_code, 0) << s.out;
    const esb::v1::Job job = ParseJob(s.out);
    EXPECT_EQ(job.state(), esb::v1::JOB_STATE_SUCCEEDED) << s.out;
    ASSERT_FALSE(job.id().empty()) << s.out;
    EXPECT_EQ(job.inputs().model_name(), model);
    EXPECT_TRUE(job.has_eval());
    for (const char* name : {"model.esb.onnx", "model.esbm"}) {
      const std::string want = ReadFile(local + "/" + name);
      ASSERT_FALSE(want.empty());
      EXPECT_EQ(ReadFile(remote + "/" + name), want) << model << " " << name;
    }
    // fetch writes the same three files; report prints the summary.
    const std::string fetched = cluster.dir() + "/fetched-" + model;
    const RunResult f = cluster.Esbctl({"fetch", job.id(), "-o", fetched});
    ASSERT_EQ(f.exit_code, 0) << f.out;
    EXPECT_EQ(ReadFile(fetched + "/model.esbm"),
              ReadFile(local + "/model.esbm"));
    EXPECT_THAT(ReadFile(fetched + "/report.json"), HasSubstr(model));
    const RunResult fj =
        cluster.Esbctl({"fetch", job.id(), "-o", fetched, "--json"});
    EXPECT_EQ(fj.exit_code, 0) << fj.out;
    EXPECT_THAT(fj.out, HasSubstr(fetched + "/report.json"));
    const RunResult r = cluster.Esbctl({"report", job.id()});
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_THAT(r.out, HasSubstr("top-1 on 500 images"));
  }
  const RunResult list = cluster.Esbctl({"list"});
  EXPECT_EQ(list.exit_code, 0);
  EXPECT_THAT(list.out, HasSubstr("lenet"));
  EXPECT_THAT(list.out, HasSubstr("resnet"));
  // Watching a finished job prints its report at once.
  const esb::v1::ListJobsResponse listed = [&] {
    esb::v1::ListJobsResponse page;
    const RunResult l = cluster.Esbctl({"list", "--json"});
    if (!google::protobuf::util::JsonStringToMessage(l.out, &page).ok()) {
      page.Clear();
    }
    return page;
  }();
  ASSERT_EQ(listed.jobs_size(), 2);
  const RunResult watch = cluster.Esbctl({"watch", listed.jobs(0).id()});
  EXPECT_EQ(watch.exit_code, 0) << watch.out;
  EXPECT_THAT(watch.out, HasSubstr("resnet"));
}

// Jobs long enough to be killed in the middle: resnet with 2048
// calibration images.
std::vector<std::string> LongJobFlags() {
  return {"--sb", "2", "--calib", Train(), "--calib-count", "2048"};
}

esb::v1::Job WaitRunning(client::Remote& remote, const std::string& id,
                         absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  esb::v1::Job job;
  while (absl::Now() < deadline) {
    absl::StatusOr<esb::v1::Job> got = remote.Get(id);
    if (got.ok()) {
      job = *got;
      if (job.state() != esb::v1::JOB_STATE_QUEUED &&
          (job.state() != esb::v1::JOB_STATE_RUNNING ||
           job.progress().stage() != esb::v1::STAGE_UNSPECIFIED)) {
        return job;
      }
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return job;
}

TEST(ServiceTest, KilledWorkersJobsCompleteElsewhereWithTheSameArtifacts) {
  Cluster cluster("service_kill_worker");
  cluster.StartServer({"--lease-ms", "1500", "--max-attempts", "5"});
  int generation = 0;
  cluster.StartWorker("w0-0");
  cluster.StartWorker("w1-0");
  auto remote = cluster.Connect();
  ASSERT_NE(remote, nullptr);

  const std::string local = cluster.dir() + "/local";
  std::vector<std::string> quantize = {ESBCTL_PATH, "quantize", Model("resnet"),
                                       "-o",        local,      "--quiet"};
  for (const std::string& f : LongJobFlags()) quantize.push_back(f);
  ASSERT_EQ(RunCommand(quantize).exit_code, 0);
  const std::string want = Sha256Hex(ReadFile(local + "/model.esbm"));
  const std::string want_onnx = Sha256Hex(ReadFile(local + "/model.esb.onnx"));

  std::vector<std::string> ids;
  std::set<std::string> killed;
  for (int round = 0; round < 20; ++round) {
    std::vector<std::string> submit = {"submit", Model("resnet"), "--json"};
    for (const std::string& f : LongJobFlags()) submit.push_back(f);
    const RunResult s = cluster.Esbctl(submit);
    ASSERT_EQ(s.exit_code, 0) << s.out;
    const std::string id = ParseJob(s.out).id();
    ids.push_back(id);
    const esb::v1::Job job = WaitRunning(*remote, id, absl::Seconds(120));
    if (job.state() != esb::v1::JOB_STATE_RUNNING) continue;
    const std::string victim = job.worker();
    cluster.KillWorker(victim);
    killed.insert(id);
    // A fresh worker takes the dead one's place.
    const std::string slot = victim.substr(0, 2);
    cluster.StartWorker(absl::StrCat(slot, "-", ++generation));
  }
  // Most rounds catch their job running; every caught job was lost once.
  EXPECT_GE(killed.size(), 15u);
  const std::vector<esb::v1::Job> jobs =
      WaitAllFinal(*remote, ids, absl::Seconds(600));
  for (const esb::v1::Job& job : jobs) {
    EXPECT_EQ(job.state(), esb::v1::JOB_STATE_SUCCEEDED)
        << job.id() << ": " << job.error().message();
    EXPECT_EQ(ArtifactSha(job, "model.esbm"), want) << job.id();
    EXPECT_EQ(ArtifactSha(job, "model.esb.onnx"), want_onnx) << job.id();
    if (killed.count(job.id()) > 0) {
      EXPECT_GE(job.attempts(), 2) << job.id();
    }
  }
}

TEST(ServiceTest, KilledServerLosesNoJobAndRunsNoneTwice) {
  Cluster cluster("service_kill_server");
  cluster.StartServer();
  cluster.StartWorker("a");
  cluster.StartWorker("b");
  std::vector<std::string> ids;
  {
    auto remote = cluster.Connect();
    ASSERT_NE(remote, nullptr);
    for (int i = 0; i < 10; ++i) {
      std::vector<std::string> submit = {"submit", Model("resnet"), "--json",
                                         "--seed", absl::StrCat(i)};
      for (const std::string& f : LongJobFlags()) submit.push_back(f);
      const RunResult s = cluster.Esbctl(submit);
      ASSERT_EQ(s.exit_code, 0) << s.out;
      ids.push_back(ParseJob(s.out).id());
    }
    WaitRunning(*remote, ids[0], absl::Seconds(60));
  }
  cluster.KillServer();
  absl::SleepFor(absl::Seconds(2));
  cluster.StartServer();
  auto remote = cluster.Connect();
  ASSERT_NE(remote, nullptr);
  const std::vector<esb::v1::Job> jobs =
      WaitAllFinal(*remote, ids, absl::Seconds(600));
  for (const esb::v1::Job& job : jobs) {
    EXPECT_EQ(job.state(), esb::v1::JOB_STATE_SUCCEEDED)
        << job.id() << ": " << job.error().message();
    EXPECT_EQ(job.attempts(), 1) << job.id();
  }
  const std::map<std::string, int> successes = cluster.Successes();
  EXPECT_EQ(successes.size(), 10u);
  for (const auto& [id, count] : successes) EXPECT_EQ(count, 1) << id;
}

// The job process of the first running job of `worker`.
pid_t JobProcessOf(pid_t worker) {
  const std::string tasks = absl::StrCat("/proc/", worker, "/task");
  std::error_code error;
  for (const auto& task : std::filesystem::directory_iterator(tasks, error)) {
    std::ifstream in(task.path() / "children");
    pid_t child = 0;
    if (in >> child) return child;
  }
  return 0;
}

TEST(ServiceTest, CrashedOrStarvedJobProcessFailsTheJobAndTheWorkerGoesOn) {
  Cluster cluster("service_crash");
  cluster.StartServer();
  const int worker = cluster.StartWorker("crash");
  auto remote = cluster.Connect();
  ASSERT_NE(remote, nullptr);

  std::vector<std::string> submit = {"submit", Model("resnet"), "--json"};
  for (const std::string& f : LongJobFlags()) submit.push_back(f);
  const RunResult s = cluster.Esbctl(submit);
  ASSERT_EQ(s.exit_code, 0) << s.out;
  const std::string id = ParseJob(s.out).id();
  const esb::v1::Job running = WaitRunning(*remote, id, absl::Seconds(60));
  ASSERT_EQ(running.state(), esb::v1::JOB_STATE_RUNNING);
  const pid_t child = JobProcessOf(cluster.worker(worker).pid());
  ASSERT_GT(child, 0);
  kill(child, SIGSEGV);
  esb::v1::Job failed = WaitAllFinal(*remote, {id}, absl::Seconds(60))[0];
  EXPECT_EQ(failed.state(), esb::v1::JOB_STATE_FAILED);
  EXPECT_THAT(failed.error().message(), HasSubstr("SIGSEGV"));
  EXPECT_THAT(failed.error().message(), HasSubstr("in stage"));

  // The same worker serves the next job.
  const std::string calib = WriteNoiseIdx(cluster.dir() + "/noise.idx", 64);
  const RunResult ok = cluster.Esbctl({"submit", Model("lenet"), "--sb", "2",
                                       "--calib", calib, "--wait", "--json"});
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
  EXPECT_EQ(ParseJob(ok.out).state(), esb::v1::JOB_STATE_SUCCEEDED);

  // A worker whose jobs get too little memory fails them, naming the limit.
  cluster.KillWorker("crash");
  cluster.StartWorker("starved", {"--job-memory-limit", "96M"});
  const RunResult starved =
      cluster.Esbctl({"submit", Model("resnet"), "--sb", "2", "--calib",
                      Train(), "--wait", "--json"});
  EXPECT_EQ(starved.exit_code, 1) << starved.out;
  const esb::v1::Job starved_job = ParseJob(starved.out);
  EXPECT_EQ(starved_job.state(), esb::v1::JOB_STATE_FAILED);
  EXPECT_THAT(starved_job.error().message(), HasSubstr("memory limit"));
  EXPECT_EQ(cluster.Esbctl({"health"}).exit_code, 0);
}

TEST(ServiceTest, ConcurrentSubmitsCompleteAndIdempotencyKeysHold) {
  Cluster cluster("service_concurrent");
  cluster.StartServer();
  cluster.StartWorker("a");
  cluster.StartWorker("b");
  const std::string calib = WriteNoiseIdx(cluster.dir() + "/noise.idx", 64);
  std::vector<std::string> ids(20);
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < 5; ++i) {
        const RunResult s = cluster.Esbctl(
            {"submit", Model("lenet"), "--sb", "2", "--calib", calib,
             "--calib-count", "32", "--seed", absl::StrCat(c * 5 + i), "--json",
             "--idempotency-key", absl::StrCat("client", c, "-", i)});
        ids[c * 5 + i] = ParseJob(s.out).id();
      }
    });
  }
  for (std::thread& t : clients) t.join();
  auto remote = cluster.Connect();
  ASSERT_NE(remote, nullptr);
  std::set<std::string> distinct(ids.begin(), ids.end());
  EXPECT_EQ(distinct.size(), 20u);
  EXPECT_EQ(distinct.count(""), 0u);
  for (const esb::v1::Job& job :
       WaitAllFinal(*remote, ids, absl::Seconds(300))) {
    EXPECT_EQ(job.state(), esb::v1::JOB_STATE_SUCCEEDED) << job.id();
  }
  // The same key again: the same job, not a new one.
  const RunResult again = cluster.Esbctl(
      {"submit", Model("lenet"), "--sb", "2", "--calib", calib, "--calib-count",
       "32", "--json", "--idempotency-key", "client2-3"});
  EXPECT_EQ(ParseJob(again.out).id(), ids[13]);
}

// Rows of the store by state, read with SQLite itself.
std::map<int, int> RowsByState(const std::string& db_path) {
  std::map<int, int> rows;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) !=
      SQLITE_OK) {
    sqlite3_close(db);
    return rows;
  }
  sqlite3_stmt* q = nullptr;
  sqlite3_prepare_v2(db, "SELECT state, COUNT(*) FROM jobs GROUP BY state", -1,
                     &q, nullptr);
  while (sqlite3_step(q) == SQLITE_ROW) {
    rows[sqlite3_column_int(q, 0)] = sqlite3_column_int(q, 1);
  }
  sqlite3_finalize(q);
  sqlite3_close(db);
  return rows;
}

TEST(ServiceScaleTest, ThousandJobsSixteenWorkersNoneLostNoneTwice) {
  Cluster cluster("service_scale");
  cluster.StartServer();
  for (int w = 0; w < 16; ++w) {
    cluster.StartWorker(absl::StrCat("s", w), {"--threads", "1"});
  }
  auto remote = cluster.Connect();
  ASSERT_NE(remote, nullptr);
  const std::string calib = WriteNoiseIdx(cluster.dir() + "/noise.idx", 16);
  absl::StatusOr<esb::v1::BlobRef> model =
      remote->UploadFile(Model("lenet"), nullptr);
  absl::StatusOr<esb::v1::BlobRef> data = remote->UploadFile(calib, nullptr);
  ASSERT_TRUE(model.ok() && data.ok());
  constexpr int kJobs = 1000;
  std::vector<std::string> ids;
  for (int i = 0; i < kJobs; ++i) {
    esb::v1::SubmitJobRequest request;
    *request.mutable_inputs()->mutable_model() = *model;
    request.mutable_inputs()->set_model_name("lenet");
    *request.mutable_inputs()->mutable_calib()->mutable_blob() = *data;
    request.mutable_config()->set_weight_sb(2);
    request.mutable_config()->set_calib_count(16);
    request.mutable_config()->set_seed(i);
    absl::StatusOr<esb::v1::SubmitJobResponse> submitted =
        remote->Submit(request);
    ASSERT_TRUE(submitted.ok()) << submitted.status();
    ids.push_back(submitted->job().id());
  }
  const std::vector<esb::v1::Job> jobs =
      WaitAllFinal(*remote, ids, absl::Seconds(1500));
  int succeeded = 0;
  for (const esb::v1::Job& job : jobs) {
    succeeded += job.state() == esb::v1::JOB_STATE_SUCCEEDED;
    EXPECT_EQ(job.attempts(), 1) << job.id();
  }
  EXPECT_EQ(succeeded, kJobs);
  const std::map<int, int> rows =
      RowsByState(cluster.dir() + "/server/jobs.db");
  EXPECT_EQ(rows, (std::map<int, int>{{esb::v1::JOB_STATE_SUCCEEDED, kJobs}}));
  const std::map<std::string, int> successes = cluster.Successes();
  EXPECT_EQ(successes.size(), static_cast<size_t>(kJobs));
  for (const auto& [id, count] : successes) EXPECT_EQ(count, 1) << id;
}

TEST(ServiceTest, BadInputGetsItsStatusAndTheServerStaysHealthy) {
  Cluster cluster("service_bad_input");
  cluster.StartServer({"--max-upload-bytes", "2M"});
  cluster.StartWorker("a");
  auto remote = cluster.Connect();
  ASSERT_NE(remote, nullptr);
  const std::string calib = WriteNoiseIdx(cluster.dir() + "/noise.idx", 32);

  // Models the job refuses: the job fails with the importer's status.
  for (const hostile::HostileCase& c : hostile::HostileModels()) {
    if (c.name != "not_protobuf" && c.name != "unsupported_op") continue;
    const std::string path = cluster.dir() + "/" + c.name + ".onnx";
    std::ofstream(path, std::ios::binary) << c.bytes;
    const RunResult r = cluster.Esbctl(
        {"submit", path, "--sb", "2", "--calib", calib, "--wait", "--json"});
    EXPECT_EQ(r.exit_code, 1) << r.out;
    const esb::v1::Job job = ParseJob(r.out);
    EXPECT_EQ(job.state(), esb::v1::JOB_STATE_FAILED) << c.name;
    EXPECT_EQ(job.error().code(), static_cast<int>(c.code)) << c.name;
    for (const std::string& m : c.message) {
      EXPECT_THAT(job.error().message(), HasSubstr(m)) << c.name;
    }
  }
  // Images that do not fit the model's 28 x 28 input.
  const std::string wide = WriteNoiseIdx(cluster.dir() + "/wide.idx", 8, 32);
  RunResult r = cluster.Esbctl({"submit", Model("lenet"), "--sb", "2",
                                "--calib", wide, "--wait", "--json"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(ParseJob(r.out).error().code(),
            static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseJob(r.out).error().message(), HasSubstr("32"));

  // Invalid (b, sb) reach the server's check when sent by another client.
  esb::v1::SubmitJobRequest bad;
  *bad.mutable_inputs()->mutable_model() =
      *remote->UploadFile(Model("lenet"), nullptr);
  *bad.mutable_inputs()->mutable_calib()->mutable_blob() =
      *remote->UploadFile(calib, nullptr);
  bad.mutable_config()->set_weight_bits(4);
  bad.mutable_config()->set_weight_sb(4);
  absl::Status s = remote->Submit(bad).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("sb"));

  // Uploads: over the limit, a wrong digest, one cut short.
  const std::string big = cluster.dir() + "/big.bin";
  std::ofstream(big, std::ios::binary) << std::string(3 << 20, 'z');
  s = remote->UploadFile(big, nullptr).status();
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("--max-upload-bytes"));
  auto channel = grpc::CreateChannel(cluster.address(),
                                     grpc::InsecureChannelCredentials());
  auto stub = esb::v1::QuantizationService::NewStub(channel);
  for (bool truncated : {false, true}) {
    grpc::ClientContext context;
    esb::v1::UploadBlobResponse response;
    auto writer = stub->UploadBlob(&context, &response);
    esb::v1::UploadBlobRequest m;
    m.set_sha256(Sha256Hex(truncated ? "twelve bytes" : "something else"));
    m.set_size(12);
    m.set_data(truncated ? "twelve" : "twelve bytes");
    writer->Write(m);
    writer->WritesDone();
    const grpc::Status g = writer->Finish();
    EXPECT_EQ(g.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(g.error_message(),
                HasSubstr(truncated ? "ended after 6 of 12 bytes" : "sha256"));
  }

  // Unknown jobs and finished ones.
  r = cluster.Esbctl({"get", "no-such-job"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("no job 'no-such-job'"));
  const RunResult done = cluster.Esbctl({"submit", Model("lenet"), "--sb", "2",
                                         "--calib", calib, "--wait", "--json"});
  ASSERT_EQ(done.exit_code, 0) << done.out;
  r = cluster.Esbctl({"cancel", ParseJob(done.out).id()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("already succeeded"));
  const RunResult health = cluster.Esbctl({"health", "--json"});
  EXPECT_EQ(health.exit_code, 0) << health.out;
  EXPECT_THAT(health.out, HasSubstr("\"serving\": true"));
  EXPECT_TRUE(cluster.server().running());

  // SIGTERM shuts the server down cleanly, long-polling worker and all.
  cluster.server().Signal(SIGTERM);
  absl::StatusOr<int> status = cluster.server().Wait(absl::Seconds(15));
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  EXPECT_THAT(cluster.server().Log(), HasSubstr("shutting down"));
}

// A folder per class of PNG images (RGB, 40 x 36: resized and cropped to
// the model's 1 x 28 x 28) and JPEG ones.
std::string WriteImageFolder(const std::string& dir) {
  absl::BitGen gen;
  for (int c = 0; c < 3; ++c) {
    const std::string cls = absl::StrCat(dir, "/class", c);
    std::filesystem::create_directories(cls);
    for (int i = 0; i < 8; ++i) {
      data::DecodedImage image;
      image.height = 36;
      image.width = 40;
      image.channels = 3;
      for (int p = 0; p < 36 * 40 * 3; ++p) {
        image.pixels.push_back(
            static_cast<uint8_t>(absl::Uniform(gen, 0, 256)));
      }
      const bool png = i % 2 == 0;
      absl::StatusOr<std::string> bytes =
          png ? data::EncodePng(image) : data::EncodeJpeg(image, 90);
      std::ofstream(absl::StrCat(cls, "/", i, png ? ".png" : ".jpg"),
                    std::ios::binary)
          << *bytes;
    }
  }
  return dir;
}

TEST(ServiceTest, ImageFoldersTravelAsTarsAndGiveTheLocalArtifacts) {
  Cluster cluster("service_folders");
  cluster.StartServer();
  cluster.StartWorker("a");
  const std::string images = WriteImageFolder(cluster.dir() + "/images");
  const std::vector<std::string> flags = {"--sb",   "2",    "--calib", images,
                                          "--eval", images, "--seed",  "3"};
  std::vector<std::string> quantize = {
      ESBCTL_PATH, "quantize", Model("lenet"), "-o", cluster.dir() + "/local",
      "--quiet"};
  quantize.insert(quantize.end(), flags.begin(), flags.end());
  const RunResult q = RunCommand(quantize);
  ASSERT_EQ(q.exit_code, 0) << q.out;
  std::vector<std::string> submit = {"submit", Model("lenet"),
                                     "--wait", "--json",
                                     "-o",     cluster.dir() + "/remote"};
  submit.insert(submit.end(), flags.begin(), flags.end());
  const RunResult s = cluster.Esbctl(submit);
  ASSERT_EQ(s.exit_code, 0) << s.out;
  const esb::v1::Job job = ParseJob(s.out);
  EXPECT_EQ(job.inputs().calib().format(), esb::v1::DATA_FORMAT_IMAGE_TAR);
  EXPECT_EQ(job.inputs().calib().name(), "images");
  EXPECT_TRUE(job.has_eval());
  for (const char* name : {"model.esb.onnx", "model.esbm"}) {
    EXPECT_EQ(ReadFile(cluster.dir() + "/remote/" + name),
              ReadFile(cluster.dir() + "/local/" + name))
        << name;
  }
  // The folder packs to the same bytes every time: the same blob again.
  std::vector<std::string> again = {"submit", Model("lenet"), "--json"};
  again.insert(again.end(), flags.begin(), flags.end());
  const esb::v1::Job second = ParseJob(cluster.Esbctl(again).out);
  ASSERT_FALSE(second.id().empty());
  EXPECT_NE(second.id(), job.id());
  EXPECT_EQ(second.inputs().calib().blob().sha256(),
            job.inputs().calib().blob().sha256());
}

TEST(ServiceTest, NoServerSaysHowToStartOne) {
  const RunResult r = RunCommand(
      {ESBCTL_PATH, "list", "--server", absl::StrCat("127.0.0.1:", FreePort())},
      absl::Seconds(30));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("no esb-server answers"));
  EXPECT_THAT(r.out, HasSubstr("esb-server --listen"));
}

TEST(ServiceTest, CancelReachesARunningJob) {
  Cluster cluster("service_cancel");
  cluster.StartServer();
  cluster.StartWorker("a");
  auto remote = cluster.Connect();
  ASSERT_NE(remote, nullptr);
  std::vector<std::string> submit = {"submit", Model("resnet"), "--json"};
  for (const std::string& f : LongJobFlags()) submit.push_back(f);
  const std::string id = ParseJob(cluster.Esbctl(submit).out).id();
  ASSERT_EQ(WaitRunning(*remote, id, absl::Seconds(60)).state(),
            esb::v1::JOB_STATE_RUNNING);
  const absl::Time start = absl::Now();
  const RunResult c = cluster.Esbctl({"cancel", id});
  EXPECT_EQ(c.exit_code, 0) << c.out;
  const esb::v1::Job job = WaitAllFinal(*remote, {id}, absl::Seconds(30))[0];
  EXPECT_EQ(job.state(), esb::v1::JOB_STATE_CANCELLED);
  // A bound, not a figure: the worker hears it in its next heartbeat.
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  const RunResult w = cluster.Esbctl({"watch", id, "--quiet"});
  EXPECT_EQ(w.exit_code, 1);
  EXPECT_THAT(w.out, HasSubstr("cancelled"));
}

}  // namespace
}  // namespace esb::testing
