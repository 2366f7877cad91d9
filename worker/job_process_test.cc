#include "worker/job_process.h"

#include <signal.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/env/digest.h"
#include "core/env/env.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::worker {
namespace {

using ::testing::HasSubstr;

constexpr char kCalib[] =
    "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";

// Puts `bytes` in the blob folder and returns its reference.
esb::v1::BlobRef PutBlob(const std::string& blob_dir,
                         const std::string& bytes) {
  EXPECT_TRUE(Env::Default()->CreateDirs(blob_dir).ok());
  esb::v1::BlobRef ref;
  ref.set_sha256(Sha256Hex(bytes));
  ref.set_size(static_cast<int64_t>(bytes.size()));
  EXPECT_TRUE(
      WriteFileAtomically(Env::Default(), blob_dir + "/" + ref.sha256(), bytes)
          .ok());
  return ref;
}

std::string Slurp(const std::string& path) {
  absl::StatusOr<std::string> s = ReadFileToString(Env::Default(), path);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : "";
}

class JobProcessTest : public ::testing::Test {
 protected:
  // A job of `model_bytes` calibrated on Fashion-MNIST test images.
  JobSpawnOptions Prepare(const std::string& name,
                          const std::string& model_bytes, int calib_count) {
    JobSpawnOptions o;
    o.binary = ESB_WORKER_BINARY;
    o.job_dir = absl::StrCat(::testing::TempDir(), "/job_process_", name);
    o.blob_dir = absl::StrCat(::testing::TempDir(), "/job_process_blobs");
    o.threads = 1;
    std::filesystem::remove_all(o.job_dir);
    esb::v1::Job job;
    job.set_id(name);
    *job.mutable_inputs()->mutable_model() = PutBlob(o.blob_dir, model_bytes);
    job.mutable_inputs()->set_model_name("demo");
    *job.mutable_inputs()->mutable_calib()->mutable_blob() =
        PutBlob(o.blob_dir, Slurp(kCalib));
    job.mutable_config()->set_calib_count(calib_count);
    EXPECT_TRUE(WriteJobSpec(o.job_dir, job).ok());
    return o;
  }

  // Reads progress until the child closes the pipe (at most `limit`).
  static std::vector<esb::v1::JobProgress> Drain(JobProcess& p,
                                                 absl::Duration limit) {
    std::vector<esb::v1::JobProgress> events;
    const absl::Time end = absl::Now() + limit;
    while (p.ReadProgress(absl::Milliseconds(100), &events)) {
      if (absl::Now() > end) {
        ADD_FAILURE() << "job process still running after " << limit;
        p.Kill();
        break;
      }
    }
    return events;
  }

  std::string lenet_ =
      Slurp(std::string(ESB_SOURCE_DIR) + "/models/lenet.onnx");
};

TEST_F(JobProcessTest, RunsTheJobAndStreamsProgress) {
  JobSpawnOptions o = Prepare("ok", lenet_, 64);
  auto p = JobProcess::Spawn(o);
  ASSERT_TRUE(p.ok()) << p.status();
  std::vector<esb::v1::JobProgress> events = Drain(**p, absl::Seconds(120));
  JobExit exit = (*p)->Wait();
  ASSERT_TRUE(exit.ok) << exit.error.DebugString();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.front().stage(), esb::v1::STAGE_LOAD);
  EXPECT_EQ(events.back().stage(), esb::v1::STAGE_EXPORT);
  for (size_t i = 1; i < events.size(); ++i) {
    EXPECT_GE(events[i].stage(), events[i - 1].stage()) << i;
  }
  EXPECT_THAT(Slurp(exit.output_dir + "/report.json"),
              HasSubstr("\"model\": \"demo\""));
  EXPECT_TRUE(Env::Default()->FileExists(exit.output_dir + "/model.esbm"));
}

TEST_F(JobProcessTest, AJobErrorComesBackWithItsCodeAndStage) {
  JobSpawnOptions o = Prepare("bad_model", "this is not an ONNX model", 64);
  auto p = JobProcess::Spawn(o);
  ASSERT_TRUE(p.ok()) << p.status();
  Drain(**p, absl::Seconds(60));
  JobExit exit = (*p)->Wait();
  EXPECT_FALSE(exit.ok);
  EXPECT_EQ(exit.error.code(),
            static_cast<int>(absl::StatusCode::kInvalidArgument))
      << exit.error.DebugString();
  EXPECT_EQ(exit.error.stage(), esb::v1::STAGE_LOAD);
  EXPECT_FALSE(exit.error.message().empty());
}

TEST_F(JobProcessTest, ASignalIsNamedWithTheLastStage) {
  // Enough calibration images that the job is still running when killed.
  JobSpawnOptions o = Prepare("killed", lenet_, 10000);
  auto p = JobProcess::Spawn(o);
  ASSERT_TRUE(p.ok()) << p.status();
  std::vector<esb::v1::JobProgress> events;
  const absl::Time end = absl::Now() + absl::Seconds(60);
  while ((*p)->last_progress().stage() < esb::v1::STAGE_CALIBRATE &&
         absl::Now() < end) {
    ASSERT_TRUE((*p)->ReadProgress(absl::Milliseconds(50), &events))
        << "the job ended before it was killed";
  }
  ASSERT_EQ((*p)->last_progress().stage(), esb::v1::STAGE_CALIBRATE);
  ASSERT_EQ(kill((*p)->pid(), SIGKILL), 0);
  Drain(**p, absl::Seconds(10));
  JobExit exit = (*p)->Wait();
  EXPECT_FALSE(exit.ok);
  EXPECT_THAT(exit.error.message(),
              HasSubstr("job process killed by SIGKILL in stage calibrate"));
  EXPECT_EQ(exit.error.stage(), esb::v1::STAGE_CALIBRATE);
}

// 64 MiB is too little for the loader to map the program; 80 MiB lets it
// start and fail in its first allocations. Either way the reason names the
// limit.
TEST_F(JobProcessTest, ATinyMemoryLimitFailsWithAClearReason) {
  for (int mib : {64, 80}) {
    JobSpawnOptions o = Prepare(absl::StrCat("tiny_memory_", mib), lenet_, 64);
    o.memory_limit = int64_t{mib} << 20;
    auto p = JobProcess::Spawn(o);
    ASSERT_TRUE(p.ok()) << p.status();
    Drain(**p, absl::Seconds(60));
    JobExit exit = (*p)->Wait();
    EXPECT_FALSE(exit.ok) << mib;
    EXPECT_EQ(exit.error.code(),
              static_cast<int>(absl::StatusCode::kResourceExhausted))
        << exit.error.DebugString();
    EXPECT_THAT(exit.error.message(),
                HasSubstr(absl::StrCat("memory limit ", mib, " MiB")));
  }
}

}  // namespace
}  // namespace esb::worker
