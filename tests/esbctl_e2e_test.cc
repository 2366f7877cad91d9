// Runs the esbctl binary as a user would and checks what it prints.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/data/npy.h"
#include "core/esb/format.h"
#include "esb/v1/report.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct RunResult {
  int exit_code;
  std::string out;  // stdout and stderr together.
};

RunResult RunEsbctl(const std::string& args) {
  const std::string command = std::string(ESBCTL_PATH) + " " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  RunResult r{-1, ""};
  if (pipe == nullptr) return r;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    r.out.append(buffer.data(), n);
  }
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(EsbctlTest, LevelsJsonHasTheKeysScriptsUse) {
  for (const esb::Format& f : esb::Format::All()) {
    const RunResult r = RunEsbctl(
        "levels --json --bits " + std::to_string(f.bits()) + " --sb " +
        std::to_string(f.sb()) + (f.is_signed() ? "" : " --unsigned"));
    ASSERT_EQ(r.exit_code, 0) << r.out;
    for (const char* key :
         {"\"bits\"", "\"sb\"", "\"signed\"", "\"levels\"", "\"integers\"",
          "\"codes\"", "\"max_integer\"", "\"int8_fast_path\""}) {
      EXPECT_THAT(r.out, HasSubstr(key)) << f.ToString();
    }
    esb::v1::LevelsReport report;
    ASSERT_TRUE(
        google::protobuf::util::JsonStringToMessage(r.out, &report).ok())
        << r.out;
    EXPECT_EQ(report.bits(), f.bits());
    EXPECT_EQ(report.signed_(), f.is_signed());
    ASSERT_EQ(static_cast<size_t>(report.levels_size()), f.Levels().size());
    for (int i = 0; i < report.levels_size(); ++i) {
      EXPECT_EQ(report.levels(i), f.Levels()[i]);
    }
    EXPECT_EQ(report.max_integer(), f.max_integer());
    EXPECT_EQ(report.int8_fast_path(), f.fits_int8());
  }
}

TEST(EsbctlTest, LevelsTextShowsTheFp4Grid) {
  const RunResult r = RunEsbctl("levels --bits 4 --sb 2");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("largest integer 12"));
  EXPECT_THAT(r.out, HasSubstr("0b0111"));
}

TEST(EsbctlTest, InvalidFormatExitsNonZeroListingValidSb) {
  const RunResult r = RunEsbctl("levels --bits 8 --sb 2");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, HasSubstr("valid sb for bits = 8: {4, 5, 6, 7}"));
  const RunResult u = RunEsbctl("levels --bits 8 --sb 2 --unsigned");
  EXPECT_EQ(u.exit_code, 2);
  EXPECT_THAT(u.out, HasSubstr("{5, 6, 7, 8}"));
  EXPECT_EQ(RunEsbctl("levels --bits 12 --sb 2").exit_code, 2);
}

// Every mistake in the flags exits 2 with a message naming the flag, the
// command and where its help is.
TEST(EsbctlTest, UsageErrorsExit2NamingFlagAndCommand) {
  struct Case {
    std::string args;
    std::vector<std::string> said;
  };
  const std::vector<Case> cases = {
      {"levels --bits abc",
       {"--bits 'abc' is not an integer", "levels --help"}},
      {"levels --bits=4x", {"--bits '4x' is not an integer"}},
      {"levels --no-such-flag",
       {"unknown flag --no-such-flag", "'esbctl levels'",
        "see 'esbctl levels --help'"}},
      {"levels --calib x",
       {"'esbctl levels' does not take --calib", "esbctl levels --help"}},
      {"fit --json", {"'esbctl fit' takes 1 argument (TENSOR.npy); got 0"}},
      {"levels extra", {"takes no arguments; got 'extra'"}},
      {"levels --bits 4 --bits 5", {"--bits is given twice"}},
      {"levels --bits", {"--bits needs a value"}},
      {"eval m.onnx --labels x", {"'esbctl eval' needs --images"}},
      {"submit m.onnx --sb 2", {"'esbctl submit' needs --calib"}},
      {"list --state done", {"--state: 'done' is not one of queued"}},
      {"--bits 4 levels", {"the command comes first"}},
      {"help frobnicate", {"'esbctl help' takes one command name"}},
      {"run m.onnx --input x.npy --output y.npy --threads 0",
       {"--threads 0 is out of range [1, 1024]"}},
  };
  for (const Case& c : cases) {
    const RunResult r = RunEsbctl(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.out;
    for (const std::string& s : c.said) {
      EXPECT_THAT(r.out, HasSubstr(s)) << c.args;
    }
  }
}

// esbctl COMMAND --help and esbctl help COMMAND: the command's usage and
// every flag it takes, with its default.
TEST(EsbctlTest, EachCommandPrintsItsOwnHelp) {
  struct Case {
    std::string command;
    std::vector<std::string> said;
    std::vector<std::string> not_said;
  };
  const std::vector<Case> cases = {
      {"levels",
       {"usage: esbctl levels [flags]", "--bits N", "(default: 4)",
        "--unsigned", "--json"},
       {"--calib", "--images"}},
      {"fit",
       {"usage: esbctl fit TENSOR.npy [flags]", "--dda mse|gaussian",
        "(default: mse)", "--axis N", "--per-tensor", "--rows N"},
       {"--calib", "--max-sb"}},
      {"run",
       {"usage: esbctl run MODEL.onnx --input X.npy --output Y.npy [flags]",
        "--precision fp32|esb", "(default: fp32)", "--act-sb N", "(default: 2)",
        "--threads N", "(default: every core)"},
       {"--json", "--labels"}},
      {"eval",
       {"usage: esbctl eval MODEL.onnx --images IMAGES [flags]",
        "--labels LABELS", "subfolder per class", "--limit N",
        "(default: every image)", "--batch N", "(default: 64)",
        "--calib-count N", "(default: 512)", "--max-arena-bytes SIZE",
        "(default: 4G)", "--max-plan-bytes SIZE", "(default: 8G)"},
       {"--max-sb", "-o OUTDIR"}},
      {"quantize",
       {"usage: esbctl quantize MODEL.onnx --calib IMAGES -o OUTDIR [flags]",
        "--max-sb N", "(default: bits - 1)", "--act-sb N",
        "(default: 2; per layer with --sb auto)", "--dda output|mse|gaussian",
        "(default: output)", "--override SPEC", "--edge-bits N",
        "(default: 8)"},
       {"--input", "--unsigned"}},
      {"submit",
       {"usage: esbctl submit MODEL.onnx --calib IMAGES [flags]",
        "--server HOST:PORT", "(default: localhost:50051)", "--wait",
        "--idempotency-key KEY", "--sb N|auto", "--calib-count N"},
       {"--threads", "--max-tensor-elements", "--max-arena-bytes",
        "--max-plan-bytes", "--input"}},
      {"watch", {"usage: esbctl watch JOB", "--server HOST:PORT"}, {"--sb"}},
      {"fetch", {"usage: esbctl fetch JOB -o OUTDIR"}, {"--calib"}},
  };
  for (const Case& c : cases) {
    const RunResult r = RunEsbctl(c.command + " --help");
    EXPECT_EQ(r.exit_code, 0) << c.command;
    EXPECT_EQ(r.out.rfind("usage: esbctl " + c.command, 0), 0u) << r.out;
    for (const std::string& s : c.said) {
      EXPECT_THAT(r.out, HasSubstr(s)) << c.command;
    }
    for (const std::string& s : c.not_said) {
      EXPECT_THAT(r.out, Not(HasSubstr(s))) << c.command;
    }
    const RunResult same = RunEsbctl("help " + c.command);
    EXPECT_EQ(same.exit_code, 0);
    EXPECT_EQ(same.out, r.out);
    // --help wins over flags that would not parse.
    EXPECT_EQ(RunEsbctl(c.command + " --bits abc --help").out, r.out);
  }
}

TEST(EsbctlTest, GeneralHelpPrintsOnceAndCleanly) {
  const RunResult help = RunEsbctl("help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_EQ(help.out.rfind("esbctl: the ESB quantization client\n", 0), 0u)
      << help.out;
  EXPECT_EQ(help.out.find("esbctl: esbctl"), std::string::npos);
  EXPECT_EQ(help.out.find("usage:"), help.out.rfind("usage:"));
  for (const char* command :
       {"esbctl levels", "esbctl fit TENSOR.npy", "esbctl run MODEL.onnx",
        "esbctl eval MODEL.onnx", "esbctl quantize MODEL.onnx"}) {
    EXPECT_THAT(help.out, HasSubstr(command));
  }
  EXPECT_THAT(help.out, HasSubstr("esbctl COMMAND --help"));
  EXPECT_EQ(RunEsbctl("--help").out, help.out);
  // No command at all is a usage error that shows the same help.
  const RunResult none = RunEsbctl("");
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_EQ(none.out, help.out);
}

TEST(EsbctlTest, UnknownCommandAndFlagFail) {
  EXPECT_EQ(RunEsbctl("frobnicate").exit_code, 2);
  EXPECT_NE(RunEsbctl("levels --no-such-flag").exit_code, 0);
  const RunResult help = RunEsbctl("help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("esbctl levels"));
}

TEST(EsbctlTest, FitOnTheBundledTensor) {
  const std::string tensor =
      std::string(ESB_SOURCE_DIR) + "/models/resnet_stage3_conv.npy";
  const RunResult mse = RunEsbctl("fit --json --bits 4 --sb 2 " + tensor);
  ASSERT_EQ(mse.exit_code, 0) << mse.out;
  esb::v1::TensorFit fit;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(mse.out, &fit).ok());
  EXPECT_GT(fit.alpha_size(), 1);
  EXPECT_LE(fit.mse(), fit.mse_gaussian());
  EXPECT_GT(fit.sqnr_db(), 0.0);

  const RunResult gauss =
      RunEsbctl("fit --json --bits 4 --sb 2 --dda gaussian " + tensor);
  ASSERT_EQ(gauss.exit_code, 0) << gauss.out;
  esb::v1::TensorFit g;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(gauss.out, &g).ok());
  EXPECT_LE(fit.mse(), g.mse());
  EXPECT_EQ(RunEsbctl("fit --dda minmax " + tensor).exit_code, 2);
  EXPECT_EQ(RunEsbctl("fit /nonexistent.npy").exit_code, 1);
}

constexpr char kTestImages[] =
    "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
constexpr char kTestLabels[] =
    "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";

// The import budget is a flag of eval, run and quantize: a model over it is
// refused at run time (1) naming the tensor and the limit; a budget that is
// no number of elements is a usage error (2).
TEST(EsbctlEvalTest, ImportBudgetIsAFlag) {
  const std::string model = std::string(ESB_SOURCE_DIR) + "/models/lenet.onnx";
  const RunResult eval =
      RunEsbctl("eval " + model + " --images " + kTestImages + " --labels " +
                kTestLabels + " --limit 8 --quiet --max-tensor-elements 1000");
  EXPECT_EQ(eval.exit_code, 1) << eval.out;
  EXPECT_THAT(eval.out, HasSubstr("limit of 1000 elements per tensor"));
  const RunResult quantize = RunEsbctl(
      "quantize " + model + " --calib " + kTestImages + " -o " +
      ::testing::TempDir() + "/budget --quiet --max-tensor-elements 1000");
  EXPECT_EQ(quantize.exit_code, 1) << quantize.out;
  EXPECT_THAT(quantize.out, HasSubstr("initializer 'conv2.weight'"));
  const RunResult zero =
      RunEsbctl("eval " + model + " --images " + kTestImages + " --labels " +
                kTestLabels + " --max-tensor-elements 0");
  EXPECT_EQ(zero.exit_code, 2) << zero.out;
  EXPECT_THAT(zero.out, HasSubstr("--max-tensor-elements 0 is out of range"));
}

// The executor's memory budgets are flags of eval, run and quantize: a
// batch whose values do not fit the arena, or a plan over its limit, is
// refused at run time (1) naming the limit in bytes; a size that does not
// parse, or zero, is a usage error (2) naming the flag.
TEST(EsbctlEvalTest, ExecutorBudgetsAreFlags) {
  const std::string model = std::string(ESB_SOURCE_DIR) + "/models/lenet.onnx";
  const std::string eval = "eval " + model + " --images " + kTestImages +
                           " --labels " + kTestLabels + " --limit 64 --quiet";
  const RunResult small_arena = RunEsbctl(eval + " --max-arena-bytes 64K");
  EXPECT_EQ(small_arena.exit_code, 1) << small_arena.out;
  EXPECT_THAT(small_arena.out, HasSubstr("arena limit of 65536 bytes"));
  const RunResult roomy = RunEsbctl(eval + " --max-arena-bytes 256M");
  EXPECT_EQ(roomy.exit_code, 0) << roomy.out;
  const RunResult small_plan =
      RunEsbctl("quantize " + model + " --calib " + kTestImages +
                " --calib-count 64 -o " + ::testing::TempDir() +
                "/plan_budget --quiet --max-plan-bytes 64K");
  EXPECT_EQ(small_plan.exit_code, 1) << small_plan.out;
  EXPECT_THAT(small_plan.out, HasSubstr("65536"));
  const RunResult bad = RunEsbctl(eval + " --max-arena-bytes 12X");
  EXPECT_EQ(bad.exit_code, 2) << bad.out;
  EXPECT_THAT(bad.out,
              HasSubstr("--max-arena-bytes: '12X' is not a byte size"));
  const RunResult zero = RunEsbctl(eval + " --max-plan-bytes 0");
  EXPECT_EQ(zero.exit_code, 2) << zero.out;
  EXPECT_THAT(zero.out, HasSubstr("--max-plan-bytes must be positive"));
}

// top1_fp32 of `model` in models/accuracy.json (written at training time).
double RecordedTop1(const std::string& model) {
  std::ifstream in(std::string(ESB_SOURCE_DIR) + "/models/accuracy.json");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string json = buffer.str();
  const size_t at = json.find("\"" + model + "\"");
  const size_t key = json.find("\"top1_fp32\":", at);
  if (at == std::string::npos || key == std::string::npos) return -1;
  return std::stod(json.substr(key + 12));
}

// The FP32 top-1 of esbctl eval on the full 10k test set must be the one
// measured in PyTorch at training time (within 0.05 points).
TEST(EsbctlEvalTest, DemoModelsMatchTheirTrainingAccuracy) {
  for (const std::string model : {"lenet", "resnet"}) {
    const RunResult r = RunEsbctl(
        "eval --json --quiet " + std::string(ESB_SOURCE_DIR) + "/models/" +
        model + ".onnx --images " + kTestImages + " --labels " + kTestLabels);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    esb::v1::EvalReport report;
    ASSERT_TRUE(
        google::protobuf::util::JsonStringToMessage(r.out, &report).ok())
        << r.out;
    EXPECT_EQ(report.images(), 10000);
    EXPECT_EQ(report.precision(), "fp32");
    EXPECT_EQ(report.normalization(), "model metadata");
    EXPECT_GT(report.images_per_second(), 0.0);
    const double recorded = RecordedTop1(model);
    ASSERT_GT(recorded, 0.5) << model;
    EXPECT_NEAR(report.top1(), recorded, 0.0005) << model;
  }
}

TEST(EsbctlEvalTest, BadInputsAreNamed) {
  const std::string lenet = std::string(ESB_SOURCE_DIR) + "/models/lenet.onnx";
  RunResult r = RunEsbctl("eval " + lenet + " --images /nonexistent.gz " +
                          "--labels " + kTestLabels);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("/nonexistent.gz"));
  r = RunEsbctl("eval " + lenet + " --images " + kTestLabels + " --labels " +
                kTestLabels);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("do not fit the model input"));
  r = RunEsbctl("eval " + lenet + " --images " + kTestImages + " --labels " +
                kTestLabels + " --mean 0.5 --std 0");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, HasSubstr("std"));
  // A file that is not a model is a failure of the run, not of the flags.
  r = RunEsbctl("eval " + std::string(ESB_SOURCE_DIR) +
                "/models/accuracy.json --images " + kTestImages + " --labels " +
                kTestLabels);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("accuracy.json"));
  // --act-sb 0 is a value like any other (no longer "the default").
  r = RunEsbctl("eval " + lenet + " --images " + kTestImages + " --labels " +
                kTestLabels + " --precision esb --act-sb 0 --calib " +
                kTestImages);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, HasSubstr("--act-sb"));
  EXPECT_THAT(r.out, HasSubstr("sb = 0"));
  r = RunEsbctl("eval " + lenet + " --images " + kTestImages + " --labels " +
                kTestLabels + " --precision esb");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, HasSubstr("--calib"));
  r = RunEsbctl("eval " + lenet + " --images " + kTestImages + " --labels " +
                kTestLabels + " --limit 0");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, HasSubstr("--limit 0 is out of range"));
}

// run: a float32 .npy through the model to an .npy of logits, whose argmax
// matches eval's verdict on the same images.
TEST(EsbctlRunTest, WritesTheOutputTensor) {
  const std::string dir = testing::TempDir();
  // Ten normalized zero images: every pixel (0 - mean) / std.
  std::vector<float> x(10 * 784, (0.0f - 0.2860f) / 0.3530f);
  std::ofstream(dir + "/x.npy", std::ios::binary)
      << esb::data::SerializeNpy(x, std::vector<int64_t>{10, 1, 28, 28});
  const RunResult r = RunEsbctl("run --quiet " + std::string(ESB_SOURCE_DIR) +
                                "/models/resnet.onnx" + " --input " + dir +
                                "/x.npy --output " + dir + "/y.npy");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto y = esb::data::ReadNpy(dir + "/y.npy");
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->shape, (std::vector<int64_t>{10, 10}));
  // Identical inputs give identical logits in every row.
  for (int i = 1; i < 10; ++i) {
    for (int k = 0; k < 10; ++k) EXPECT_EQ(y->f32[i * 10 + k], y->f32[k]);
  }
  const RunResult bad =
      RunEsbctl("run " + std::string(ESB_SOURCE_DIR) +
                "/models/resnet.onnx --input " + std::string(ESB_SOURCE_DIR) +
                "/models/resnet_stage3_conv.npy --output " + dir + "/z.npy");
  // The flags are fine; the file's content does not fit: a run failure.
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.out, HasSubstr("does not fit the model input"));
}

TEST(EsbctlQuantizeTest, WritesArtifactsAndPrintsTheReport) {
  const std::string out = testing::TempDir() + "/quantize_e2e";
  const RunResult r = RunEsbctl(
      "quantize --json --quiet " + std::string(ESB_SOURCE_DIR) +
      "/models/lenet.onnx --sb auto --calib-count 64 --calib "
      "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz --eval " +
      kTestImages + " --labels " + kTestLabels + " --limit 300 -o " + out);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  esb::v1::QuantReport report;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &report).ok())
      << r.out;
  EXPECT_EQ(report.eval_images(), 300);
  EXPECT_EQ(report.calib_images(), 64);
  EXPECT_GT(report.top1_esb(), 0.8);
  ASSERT_EQ(report.layers_size(), 4);
  // --sb auto explains its choice on the inner layers.
  EXPECT_THAT(report.layers(1).sb_reason(), HasSubstr("lowest output error"));
  for (const char* artifact : {"model.esb.onnx", "model.esbm", "report.json"}) {
    EXPECT_TRUE(std::ifstream(out + "/" + artifact).good()) << artifact;
  }

  // A given --act-sb stays fixed under --sb auto.
  const RunResult fixed = RunEsbctl(
      "quantize --json --quiet " + std::string(ESB_SOURCE_DIR) +
      "/models/lenet.onnx --sb auto --act-sb 3 --calib-count 64 --calib "
      "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz -o " +
      out);
  ASSERT_EQ(fixed.exit_code, 0) << fixed.out;
  esb::v1::QuantReport fixed_report;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(fixed.out, &fixed_report)
          .ok());
  ASSERT_EQ(fixed_report.layers_size(), 4);
  for (int i : {1, 2}) {
    EXPECT_EQ(fixed_report.layers(i).input_format().sb(), 3);
    EXPECT_THAT(fixed_report.layers(i).sb_reason(), Not(HasSubstr("input sb")));
  }
}

TEST(EsbctlQuantizeTest, BadFlagsExitWithStatus2) {
  const std::string lenet = std::string(ESB_SOURCE_DIR) + "/models/lenet.onnx";
  RunResult r = RunEsbctl("quantize " + lenet + " --bits 4 --sb 4 --calib " +
                          kTestImages + " -o /tmp/x");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, HasSubstr("weight_sb"));
  EXPECT_THAT(r.out, HasSubstr("{1, 2, 3}"));
  r = RunEsbctl("quantize " + lenet + " -o /tmp/x");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, HasSubstr("--calib"));
  r = RunEsbctl("quantize " + lenet + " --method int3 --calib " + kTestImages +
                " -o /tmp/x");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, HasSubstr("method"));
  struct Case {
    std::string flags;
    std::string said;
  };
  for (const Case& c : std::vector<Case>{
           {"--override conv1", "sets nothing for layer 'conv1'"},
           {"--override 'a:bits=8;a:sb=3'", "layer 'a' is named twice"},
           {"--override 'a:bits=8:bits=4'", "key 'bits' is given twice"},
           {"--override 'a:bits=99'", "bits 99 out of range"},
           // --max-sb 0 is a bound like any other (no longer "bits - 1").
           {"--sb auto --max-sb 0", "max_sb"},
           {"--max-sb 3", "max_sb: applies to sb_auto only"},
           {"--all-layers --edge-bits 6", "edge_bits: given together"},
           {"--scale-rule minmax --dda mse", "minmax scales take no DDA rule"},
           {"--calib-count 0", "--calib-count 0 is out of range"},
           {"--limit 10", "--limit applies to --eval only"},
           {"--input x.npy", "'esbctl quantize' does not take --input"},
       }) {
    r = RunEsbctl("quantize " + lenet + " --calib " + kTestImages +
                  " -o /tmp/x " + c.flags);
    EXPECT_EQ(r.exit_code, 2) << c.flags << "\n" << r.out;
    EXPECT_THAT(r.out, HasSubstr(c.said)) << c.flags;
  }
  // A corrupt model: the flags are fine, the run fails.
  const std::string corrupt = testing::TempDir() + "/corrupt.onnx";
  std::ofstream(corrupt, std::ios::binary) << "not a protobuf \xff\xff";
  r = RunEsbctl("quantize --quiet " + corrupt + " --calib " + kTestImages +
                " -o " + testing::TempDir() + "/corrupt_out");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("corrupt.onnx"));
}

}  // namespace
