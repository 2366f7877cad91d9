// Runs the esbctl binary on every hostile model and data file
// (core/testing/hostile.h): each run must end with exit status 1 or 2 and a
// message on stderr naming the problem, never with a signal.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "core/testing/hostile.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace {

using ::testing::HasSubstr;

constexpr char kData[] = "/usr/share/datasets/fashion-mnist/";

struct Outcome {
  bool exited = false;  // False: killed by a signal (or not run).
  int code = -1;        // Exit status when exited.
  int signal = 0;
  std::string err;  // stderr.
};

// One folder per test process: CTest runs this binary's tests in parallel.
std::filesystem::path Dir() {
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) /
      ("hostile_e2e_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

Outcome RunEsbctl(const std::string& args) {
  const std::string err_path = (Dir() / "stderr.txt").string();
  const std::string command =
      std::string(ESBCTL_PATH) + " " + args + " >/dev/null 2>" + err_path;
  const int status = std::system(command.c_str());
  Outcome o;
  // std::system runs the command through sh, which reports a child killed by
  // signal s as exit status 128 + s.
  if (status != -1 && WIFEXITED(status)) {
    o.code = WEXITSTATUS(status);
    o.exited = o.code < 128;
    if (!o.exited) o.signal = o.code - 128;
  } else if (status != -1 && WIFSIGNALED(status)) {
    o.signal = WTERMSIG(status);
  }
  std::ifstream in(err_path);
  std::stringstream text;
  text << in.rdbuf();
  o.err = text.str();
  return o;
}

std::string Write(const esb::hostile::HostileCase& c) {
  const std::string path = (Dir() / (c.name + c.extension)).string();
  std::ofstream(path, std::ios::binary) << c.bytes;
  return path;
}

// Exit status 1 or 2, "esbctl: ..." on stderr holding every part of the
// expected message.
void ExpectCleanFailure(const Outcome& o, const esb::hostile::HostileCase& c) {
  ASSERT_TRUE(o.exited) << "killed by signal " << o.signal << "\n" << o.err;
  EXPECT_TRUE(o.code == 1 || o.code == 2) << o.code << "\n" << o.err;
  EXPECT_THAT(o.err, HasSubstr("esbctl: "));
  for (const std::string& part : c.message) {
    EXPECT_THAT(o.err, HasSubstr(part));
  }
}

std::string Lenet() {
  return std::string(ESB_SOURCE_DIR) + "/models/lenet.onnx";
}

TEST(HostileE2eTest, EvalAndQuantizeRefuseEveryHostileModel) {
  const std::string out = (Dir() / "out").string();
  for (const auto& c : esb::hostile::HostileModels()) {
    SCOPED_TRACE(c.name);
    const std::string path = Write(c);
    ExpectCleanFailure(RunEsbctl("eval " + path + " --images " + kData +
                                 "t10k-images-idx3-ubyte.gz --labels " + kData +
                                 "t10k-labels-idx1-ubyte.gz --limit 64"),
                       c);
    ExpectCleanFailure(
        RunEsbctl("quantize " + path + " --sb 2 --calib " + kData +
                  "train-images-idx3-ubyte.gz --calib-count 16 -o " + out),
        c);
  }
}

TEST(HostileE2eTest, EvalAndQuantizeRefuseEveryHostileImageFile) {
  const std::string out = (Dir() / "out").string();
  for (const auto& c : esb::hostile::HostileIdxFiles()) {
    SCOPED_TRACE(c.name);
    const std::string path = Write(c);
    ExpectCleanFailure(
        RunEsbctl("eval " + Lenet() + " --images " + path + " --labels " +
                  kData + "t10k-labels-idx1-ubyte.gz"),
        c);
    ExpectCleanFailure(RunEsbctl("quantize " + Lenet() + " --sb 2 --calib " +
                                 path + " -o " + out),
                       c);
  }
}

TEST(HostileE2eTest, FitAndRunRefuseEveryHostileNpyFile) {
  const std::string out = (Dir() / "y.npy").string();
  for (const auto& c : esb::hostile::HostileNpyFiles()) {
    SCOPED_TRACE(c.name);
    const std::string path = Write(c);
    ExpectCleanFailure(RunEsbctl("fit " + path + " --bits 4 --sb 2"), c);
    ExpectCleanFailure(
        RunEsbctl("run " + Lenet() + " --input " + path + " --output " + out),
        c);
  }
}

TEST(HostileE2eTest, TheValidBaseModelEvaluates) {
  const esb::hostile::HostileCase valid{
      "valid", ".onnx", esb::hostile::ValidModel(), absl::StatusCode::kOk, {}};
  const Outcome o = RunEsbctl("eval " + Write(valid) + " --images " + kData +
                              "t10k-images-idx3-ubyte.gz --labels " + kData +
                              "t10k-labels-idx1-ubyte.gz --limit 64");
  ASSERT_TRUE(o.exited) << o.err;
  EXPECT_EQ(o.code, 0) << o.err;
}

}  // namespace
