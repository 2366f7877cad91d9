#include "core/pipeline/job.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/data/idx.h"
#include "core/data/image_encode.h"
#include "core/data/images.h"
#include "core/data/normalize.h"
#include "core/data/npy.h"
#include "core/data/tar.h"
#include "core/env/digest.h"
#include "core/env/fault_env.h"
#include "core/package/esbm.h"
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
  // The model by name and digest, not by the local path; the ESB figure is
  // that of the package as written.
  EXPECT_EQ(r.model(), "lenet");
  EXPECT_EQ(r.model_sha256(), Sha256Hex(Slurp(in.model_path)));
  EXPECT_EQ(r.esb_source(), "model.esbm");
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
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(ra, rb));
}

class CancelAfter : public ProgressSink {
 public:
  explicit CancelAfter(esb::v1::Stage stage) : stage_(stage) {}
  void OnProgress(const ProgressEvent& e) override {
    if (cancelled_) ++events_after_cancel_;
    if (e.stage == stage_) cancelled_ = true;
  }
  bool Cancelled() override { return cancelled_; }
  int events_after_cancel() const { return events_after_cancel_; }

 private:
  esb::v1::Stage stage_;
  bool cancelled_ = false;
  int events_after_cancel_ = 0;
};

TEST(JobTest, CancellationStopsWithinOneStep) {
  for (esb::v1::Stage stage : {esb::v1::STAGE_CALIBRATE, esb::v1::STAGE_FIT}) {
    CancelAfter sink(stage);
    auto r = RunJob(Inputs("resnet", absl::StrCat("cancel_", stage), 0),
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

void Put(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(
      std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

// The first `n` images of an IDX file, as 8-bit pixels.
data::RawImages FirstImages(const char* path, int64_t n) {
  auto raw = data::ReadRawImagesFor(path, n, {"input", 1, 28, 28});
  EXPECT_TRUE(raw.ok()) << raw.status();
  return raw.ok() ? *raw : data::RawImages{};
}

// Image `i` as a 32 x 32 PNG with a 2-pixel black border: the fitting
// (resize to 28 * 256 / 224 = 32, centre crop 28) gives back its pixels.
std::string PaddedPng(const data::RawImages& raw, int64_t i) {
  data::DecodedImage image{32, 32, 1, std::vector<uint8_t>(32 * 32, 0)};
  for (int y = 0; y < 28; ++y) {
    std::copy_n(&raw.data[i * 784 + y * 28], 28,
                &image.pixels[(y + 2) * 32 + 2]);
  }
  auto png = data::EncodePng(image);
  EXPECT_TRUE(png.ok()) << png.status();
  return png.ok() ? *png : std::string{};
}

std::string TempPath(const std::string& name) {
  return absl::StrCat(testing::TempDir(), "/", name);
}

// The same calibration images as IDX, as a float32 .npy normalized by the
// config's mean and std, as a folder of PNGs and as its tar: the same
// artifacts, byte for byte.
TEST(JobTest, CalibratesFromNpyImageFoldersAndTarsAsFromIdx) {
  constexpr int64_t kCount = 150;
  const data::RawImages raw = FirstImages(kTrain, kCount);
  ASSERT_EQ(raw.count, kCount);
  esb::v1::JobConfig config = SmallConfig();
  config.add_mean(0.25f);
  config.add_std(0.375f);

  std::string idx("\x00\x00\x08\x03", 4);
  for (uint32_t d : {static_cast<uint32_t>(kCount), 28u, 28u}) {
    for (int shift : {24, 16, 8, 0})
      idx.push_back(static_cast<char>(d >> shift));
  }
  idx.append(raw.data.begin(), raw.data.end());
  const std::string idx_path = TempPath("calib150.idx");
  Put(idx_path, idx);

  std::vector<float> normalized(raw.data.size());
  ASSERT_TRUE(data::NormalizeImages(raw.data.data(), kCount, 1, 784,
                                    data::Normalization{{0.25f}, {0.375f}},
                                    normalized.data())
                  .ok());
  const std::string npy_path = TempPath("calib150.npy");
  Put(npy_path,
      data::SerializeNpy(normalized, std::vector<int64_t>{kCount, 1, 28, 28}));

  const std::string folder = TempPath("calib150_png");
  std::filesystem::remove_all(folder);
  for (int64_t i = 0; i < kCount; ++i) {
    Put(absl::StrFormat("%s/%05d.png", folder, i), PaddedPng(raw, i));
  }
  const std::string tar_path = TempPath("calib150.tar");
  ASSERT_TRUE(data::WriteImageTar(folder, Env::Default(), tar_path).ok());

  JobInputs in = Inputs("lenet", "calib_idx", 0);
  in.calib_images = idx_path;
  auto expected = RunJob(in, config, nullptr);
  ASSERT_TRUE(expected.ok()) << expected.status();
  EXPECT_EQ(expected->report.calib_images(), 96);
  const std::string esbm = Slurp(expected->esbm_path);
  const std::string onnx = Slurp(expected->onnx_path);
  for (const std::string& calib : {npy_path, folder, tar_path}) {
    JobInputs other = Inputs("lenet", "calib_other", 0);
    other.calib_images = calib;
    auto r = RunJob(other, config, nullptr);
    ASSERT_TRUE(r.ok()) << calib << ": " << r.status();
    EXPECT_EQ(Slurp(r->esbm_path), esbm) << calib;
    EXPECT_EQ(Slurp(r->onnx_path), onnx) << calib;
  }
}

// Eval images as a folder with one subfolder per class (no labels file),
// and flat with a text labels file: the same top-1 as IDX images with
// IDX labels.
TEST(JobTest, EvaluatesOnClassFoldersAndTextLabelsAsOnIdx) {
  constexpr int64_t kCount = 300;
  const data::RawImages raw = FirstImages(kTest, kCount);
  auto labels = data::ReadIdx(kLabels, kCount);
  ASSERT_TRUE(labels.ok());
  const std::string classes = TempPath("eval_classes");
  const std::string flat = TempPath("eval_flat");
  std::filesystem::remove_all(classes);
  std::filesystem::remove_all(flat);
  std::string text;
  for (int64_t i = 0; i < kCount; ++i) {
    const std::string png = PaddedPng(raw, i);
    Put(absl::StrFormat("%s/%d/%05d.png", classes, labels->data[i], i), png);
    Put(absl::StrFormat("%s/%05d.png", flat, i), png);
    absl::StrAppend(&text, labels->data[i], "\n");
  }
  const std::string text_labels = TempPath("eval_flat_labels.txt");
  Put(text_labels, text);

  JobInputs in = Inputs("lenet", "eval_idx", 0);
  in.eval_images = kTest;
  in.eval_labels = kLabels;
  in.eval_limit = kCount;
  auto expected = RunJob(in, SmallConfig(), nullptr);
  ASSERT_TRUE(expected.ok()) << expected.status();
  const esb::v1::QuantReport& e = expected->report;
  EXPECT_GT(e.top1_fp32(), 0.5);

  JobInputs by_class = Inputs("lenet", "eval_classes", 0);
  by_class.eval_images = classes;
  auto c = RunJob(by_class, SmallConfig(), nullptr);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->report.eval_images(), kCount);
  EXPECT_EQ(c->report.top1_fp32(), e.top1_fp32());
  EXPECT_EQ(c->report.top1_esb(), e.top1_esb());
  EXPECT_EQ(c->report.agreement(), e.agreement());

  JobInputs by_text = Inputs("lenet", "eval_flat", 0);
  by_text.eval_images = flat;
  by_text.eval_labels = text_labels;
  auto t = RunJob(by_text, SmallConfig(), nullptr);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->report.top1_fp32(), e.top1_fp32());
  EXPECT_EQ(t->report.top1_esb(), e.top1_esb());

  JobInputs unlabelled = Inputs("lenet", "eval_unlabelled", 0);
  unlabelled.eval_images = flat;
  auto u = RunJob(unlabelled, SmallConfig(), nullptr);
  EXPECT_EQ(u.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(u.status().message()), HasSubstr("no labels"));
}

// The artifacts a failed job leaves in its output folder: none but those
// that were complete before it started.
std::vector<std::string> Listing(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

TEST(JobTest, AFullDiskLeavesNoPartialArtifact) {
  FaultInjectionEnv env(Env::Default());
  JobInputs in = Inputs("lenet", "full_disk", 0);
  std::filesystem::remove_all(in.output_dir);
  in.env = &env;
  // Room for part of model.esb.onnx only.
  env.SetDiskSpace(2000);
  auto r = RunJob(in, SmallConfig(), nullptr);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(r.status().message(), HasSubstr("No space left on device"));
  EXPECT_THAT(r.status().message(), HasSubstr("model.esb.onnx.tmp."));
  EXPECT_TRUE(Listing(in.output_dir).empty());

  // Room for model.esb.onnx but not model.esbm: the first artifact is
  // whole, the second absent.
  env.SetDiskSpace(-1);
  auto ok =
      RunJob(Inputs("lenet", "full_disk_sizes", 0), SmallConfig(), nullptr);
  ASSERT_TRUE(ok.ok()) << ok.status();
  const std::string onnx = Slurp(ok->onnx_path);
  env.SetDiskSpace(static_cast<int64_t>(onnx.size()) + 100);
  r = RunJob(in, SmallConfig(), nullptr);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(r.status().message(), HasSubstr("model.esbm.tmp."));
  EXPECT_THAT(Listing(in.output_dir), ::testing::ElementsAre("model.esb.onnx"));
  EXPECT_EQ(Slurp(in.output_dir + "/model.esb.onnx"), onnx);
}

TEST(JobTest, AFailedRenameOrACrashKeepsThePreviousArtifacts) {
  JobInputs in = Inputs("lenet", "rename", 0);
  std::filesystem::remove_all(in.output_dir);
  auto first = RunJob(in, SmallConfig(), nullptr);
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string old_esbm = Slurp(first->esbm_path);
  const std::vector<std::string> old_listing = Listing(in.output_dir);

  FaultInjectionEnv env(Env::Default());
  in.env = &env;
  esb::v1::JobConfig other = SmallConfig();
  other.set_seed(8);  // Other bytes, so a half-done write would show.
  env.SetFailRename(true);
  auto r = RunJob(in, other, nullptr);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(r.status().message(), HasSubstr("rename to " + in.output_dir +
                                              "/model.esb.onnx failed"));
  EXPECT_EQ(Listing(in.output_dir), old_listing);
  EXPECT_EQ(Slurp(first->esbm_path), old_esbm);

  env.SetFailRename(false);
  env.SetCrashAtRename(true);
  r = RunJob(in, other, nullptr);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAborted);
  // After the crash: every artifact as before, plus the temporary file the
  // dying writer left, never under an artifact's name.
  std::vector<std::string> after = Listing(in.output_dir);
  ASSERT_EQ(after.size(), old_listing.size() + 1);
  for (const std::string& name : old_listing) {
    EXPECT_TRUE(std::count(after.begin(), after.end(), name)) << name;
  }
  EXPECT_EQ(Slurp(first->esbm_path), old_esbm);
}

}  // namespace
}  // namespace esb::pipeline
