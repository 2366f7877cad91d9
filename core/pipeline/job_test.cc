#include "core/pipeline/job.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/pipeline/esbm.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace esb::pipeline {
namespace {

using ::testing::HasSubstr;

constexpr char kTrain[] =
    "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
constexpr char kTest[] =
    "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
constexpr char kLabels[] =
    "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream b;
  b << in.rdbuf();
  return b.str();
}

JobInputs Inputs(const std::string& model, const std::string& out,
                 int threads) {
  JobInputs in;
  in.model_path = std::string(ESB_SOURCE_DIR) + "/models/" + model + ".onnx";
  in.calib_images = kTrain;
  in.output_dir = std::string(testing::TempDir()) + "/" + out;
  in.threads = threads;
  return in;
}

esb::v1::JobConfig SmallConfig() {
  esb::v1::JobConfig c;
  c.set_calib_count(96);
  c.set_seed(7);
  return c;
}

TEST(JobTest, WritesCheckedArtifactsAndAReport) {
  JobInputs in = Inputs("lenet", "job_lenet", 0);
  in.eval_images = kTest;
  in.eval_labels = kLabels;
  in.eval_limit = 500;
  auto result = RunJob(in, SmallConfig(), nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  const esb::v1::QuantReport& r = result->report;
  EXPECT_EQ(r.layers_size(), 4);
  EXPECT_EQ(r.eval_images(), 500);
  EXPECT_EQ(r.calib_images(), 96);
  ASSERT_TRUE(r.has_top1_esb());
  EXPECT_GT(r.top1_esb(), 0.8);
  EXPECT_GT(r.agreement(), 0.9);
  EXPECT_TRUE(r.layers(0).edge());
  EXPECT_EQ(r.layers(0).weight_format().bits(), 8);
  EXPECT_EQ(r.layers(1).weight_format().bits(), 4);
  for (const char* stage : {"load", "calibrate", "fit", "export", "eval"}) {
    EXPECT_TRUE(r.timings().count(stage)) << stage;
  }
  // report.json is the report, as JSON with the keys scripts rely on.
  const std::string json = Slurp(result->report_path);
  for (const char* key : {"\"top1_fp32\"", "\"top1_esb\"", "\"agreement\"",
                          "\"layers\"", "\"timings\""}) {
    EXPECT_THAT(json, HasSubstr(key));
  }
  esb::v1::QuantReport parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &parsed).ok());
  EXPECT_EQ(parsed.layers_size(), 4);
  // The package parses (checksum included) and unpacks.
  auto package = ParsePackage(Slurp(result->esbm_path));
  ASSERT_TRUE(package.ok()) << package.status();
  EXPECT_TRUE(UnpackPackage(*package).ok());
  EXPECT_GT(Slurp(result->onnx_path).size(), 1000u);
}

// Same model, data, config and seed: identical artifact bytes with one
// thread or two; the report differs only in its timings.
TEST(JobTest, ArtifactsAreDeterministicWhateverTheThreadCount) {
  auto a = RunJob(Inputs("resnet", "det_a", 1), SmallConfig(), nullptr);
  auto b = RunJob(Inputs("resnet", "det_b", 2), SmallConfig(), nullptr);
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
  EXPECT_EQ(Slurp(a->onnx_path), Slurp(b->onnx_path));
  EXPECT_EQ(Slurp(a->esbm_path), Slurp(b->esbm_path));
  esb::v1::QuantReport ra = a->report, rb = b->report;
  ra.clear_timings();
  rb.clear_timings();
  ra.clear_model();
  rb.clear_model();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(ra, rb));
}

class CancelAfter : public ProgressSink {
 public:
  explicit CancelAfter(std::string stage) : stage_(std::move(stage)) {}
  void OnProgress(const ProgressEvent& e) override {
    if (cancelled_) ++events_after_cancel_;
    if (e.stage == stage_) cancelled_ = true;
  }
  bool Cancelled() override { return cancelled_; }
  int events_after_cancel() const { return events_after_cancel_; }

 private:
  std::string stage_;
  bool cancelled_ = false;
  int events_after_cancel_ = 0;
};

TEST(JobTest, CancellationStopsWithinOneStep) {
  for (const char* stage : {"calibrate", "fit"}) {
    CancelAfter sink(stage);
    auto r = RunJob(Inputs("resnet", std::string("cancel_") + stage, 0),
                    SmallConfig(), &sink);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled) << stage;
    EXPECT_LE(sink.events_after_cancel(), 1) << stage;
  }
}

TEST(JobTest, BadConfigsAndDataGetNamedErrors) {
  esb::v1::JobConfig bad = SmallConfig();
  bad.set_weight_sb(9);
  auto r = RunJob(Inputs("lenet", "bad1", 0), bad, nullptr);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("weight_sb"));

  esb::v1::JobConfig unknown = SmallConfig();
  unknown.add_overrides()->set_node("no_such_layer");
  r = RunJob(Inputs("lenet", "bad2", 0), unknown, nullptr);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("no_such_layer"));

  JobInputs missing = Inputs("lenet", "bad3", 0);
  missing.calib_images = "/nonexistent/images.gz";
  r = RunJob(missing, SmallConfig(), nullptr);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("/nonexistent/images.gz"));

  JobInputs labels_as_images = Inputs("lenet", "bad4", 0);
  labels_as_images.calib_images = kLabels;
  r = RunJob(labels_as_images, SmallConfig(), nullptr);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("do not fit"));
}

}  // namespace
}  // namespace esb::pipeline
