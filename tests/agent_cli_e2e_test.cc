// esbctl's board-agent commands end to end: a real esb-agent (sim backend)
// on loopback, driven by the esbctl binary as a user would, its outputs
// checked against the ESB executor run in this process on the same
// package and images.
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/data/normalize.h"
#include "core/package/esbm.h"
#include "core/runtime/cpu_paths.h"
#include "core/runtime/esb_executor.h"
#include "core/runtime/esb_paths_testing.h"
#include "core/testing/demo.h"
#include "esb/v1/agent.pb.h"
#include "esb/v1/report.pb.h"
#include "esb/v1/service.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/process.h"

namespace esb::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kData[] = "/usr/share/datasets/fashion-mnist";
constexpr int kImages = 500;

std::string TestImages() {
  return absl::StrCat(kData, "/t10k-images-idx3-ubyte.gz");
}
std::string TestLabels() {
  return absl::StrCat(kData, "/t10k-labels-idx1-ubyte.gz");
}

template <typename Message>
Message FromJson(const std::string& json) {
  Message m;
  google::protobuf::util::JsonParseOptions options;
  EXPECT_TRUE(
      google::protobuf::util::JsonStringToMessage(json, &m, options).ok())
      << json;
  return m;
}

// The demo LeNet as a package (DemoLayers' W4A4 sb 2), with the demo
// models' normalization, as a quantization job would write it.
esb::v1::Package DemoPackage() {
  const graph::Graph g = demo::LoadDemoModel("lenet");
  absl::StatusOr<data::Normalization> norm =
      data::ParseNormalization("0.2860", "0.3530");
  EXPECT_TRUE(norm.ok());
  absl::StatusOr<esb::v1::Package> package =
      pipeline::BuildPackage(g,
                             demo::DemoLayers(g, demo::MakeFormat(4, 2, true),
                                              demo::MakeFormat(4, 2, false)),
                             *norm, "lenet");
  EXPECT_TRUE(package.ok()) << package.status();
  return *package;
}

// The in-process ESB executor's prediction for each of the first `count`
// test images.
std::vector<int> InProcessPredictions(const esb::v1::Package& package,
                                      int count) {
  absl::StatusOr<pipeline::PackagedModel> model =
      pipeline::UnpackPackage(package);
  EXPECT_TRUE(model.ok()) << model.status();
  absl::StatusOr<std::unique_ptr<runtime::EsbExecutor>> executor =
      runtime::EsbExecutor::Create(model->graph, model->layers, {},
                                   &model->weight_integers);
  EXPECT_TRUE(executor.ok()) << executor.status();
  const std::vector<float> images =
      demo::DemoImages("t10k-images-idx3-ubyte.gz", count);
  absl::StatusOr<std::vector<graph::Tensor>> out =
      (*executor)->Run({demo::DemoBatch(images, 0, count)});
  EXPECT_TRUE(out.ok()) << out.status();
  const std::vector<float>& logits = (*out)[0].data;
  const int classes = static_cast<int>(logits.size()) / count;
  std::vector<int> predictions;
  for (int i = 0; i < count; ++i) {
    const float* row = logits.data() + i * classes;
    predictions.push_back(
        static_cast<int>(std::max_element(row, row + classes) - row));
  }
  return predictions;
}

class AgentCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(FreshDir("agent_cli"));
    package_ = new esb::v1::Package(DemoPackage());
    std::ofstream(*dir_ + "/lenet.esbm", std::ios::binary)
        << pipeline::SerializePackage(*package_);
    absl::StatusOr<std::unique_ptr<Process>> agent = Process::Start(
        {ESB_AGENT_PATH, "--backend", "sim", "--listen", "127.0.0.1:0",
         "--model-dir", *dir_ + "/models", "--metrics-port", "0", "--max-batch",
         "16", "--board", "test-board"},
        *dir_ + "/agent.log");
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_ = agent->release();
    absl::StatusOr<std::string> line =
        agent_->WaitForLine("listening on", absl::Seconds(30));
    ASSERT_TRUE(line.ok()) << line.status();
    address_ = new std::string(std::string{absl::StripAsciiWhitespace(
        std::vector<std::string>(absl::StrSplit(*line, ' ')).back())});
    line = agent_->WaitForLine("metrics on", absl::Seconds(30));
    ASSERT_TRUE(line.ok()) << line.status();
    // "metrics on http://HOST:PORT/metrics"
    absl::string_view url = *line;
    url = url.substr(url.rfind(' ') + 1);
    absl::ConsumePrefix(&url, "http://");
    metrics_ = new std::string(url.substr(0, url.find('/')));
  }

  static void TearDownTestSuite() {
    if (agent_ != nullptr) {
      agent_->Signal(SIGTERM);
      EXPECT_TRUE(agent_->Wait(absl::Seconds(20)).ok());
    }
    delete agent_;  // SIGKILLs it if SIGTERM did not stop it.
    agent_ = nullptr;
  }

  static RunResult Esbctl(std::vector<std::string> args) {
    args.insert(args.begin(), ESBCTL_PATH);
    return RunCommand(args, absl::Seconds(60));
  }
  static RunResult AtAgent(std::vector<std::string> args) {
    args.push_back("--agent");
    args.push_back(*address_);
    return Esbctl(std::move(args));
  }

  static std::string* dir_;
  static esb::v1::Package* package_;
  static Process* agent_;
  static std::string* address_;
  static std::string* metrics_;
};

std::string* AgentCliTest::dir_ = nullptr;
esb::v1::Package* AgentCliTest::package_ = nullptr;
Process* AgentCliTest::agent_ = nullptr;
std::string* AgentCliTest::address_ = nullptr;
std::string* AgentCliTest::metrics_ = nullptr;

// One test for the life of a deployed model: each step needs the last.
TEST_F(AgentCliTest, DeployListBoardInferBenchUndeploy) {
  const std::string esbm = *dir_ + "/lenet.esbm";
  RunResult r = AtAgent({"deploy", esbm});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("as model lenet version 1 on " + *address_));
  EXPECT_THAT(r.out,
              HasSubstr(esb::runtime::NoInt8Here().empty() ? "int8 fast path"
                                                           : "exact f32 path"));

  r = AtAgent({"models", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto list = FromJson<esb::v1::ListModelsResponse>(r.out);
  ASSERT_EQ(list.models_size(), 1) << r.out;
  EXPECT_EQ(list.models(0).name(), "lenet");
  EXPECT_TRUE(list.models(0).serving());
  EXPECT_EQ(list.models(0).max_batch(), 16);
  r = AtAgent({"models"});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("lenet"));

  r = AtAgent({"board"});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("board        test-board"));
  EXPECT_THAT(r.out, HasSubstr("backend      sim"));
  // The agent's CPU and the paths it takes (the same machine here).
  EXPECT_THAT(r.out,
              HasSubstr("host         " + esb::runtime::CpuPathsLine() + "\n"));
  EXPECT_THAT(r.out, HasSubstr("(source: model)"));
  EXPECT_THAT(r.out, HasSubstr("model        lenet version 1 (serving)"));
  EXPECT_THAT(r.out, HasSubstr("health       ok"));

  // Remote inference equals the executor here, image by image.
  r = AtAgent({"infer", "--model", "lenet", "--input", TestImages(), "--labels",
               TestLabels(), "--limit", absl::StrCat(kImages), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto report = FromJson<esb::v1::InferReport>(r.out);
  EXPECT_EQ(report.images(), kImages);
  EXPECT_EQ(report.batch(), 16);  // The default 32, lowered to the model's.
  EXPECT_EQ(report.requests(), (kImages + 15) / 16);
  EXPECT_EQ(report.datatype(), "UINT8");
  ASSERT_EQ(report.predictions_size(), kImages);
  const std::vector<int> expected = InProcessPredictions(*package_, kImages);
  int correct = 0;
  for (int i = 0; i < kImages; ++i) {
    ASSERT_EQ(report.predictions(i).classes(0), expected[i]) << "image " << i;
    if (expected[i] == report.predictions(i).label()) ++correct;
  }
  EXPECT_EQ(report.correct(), correct);
  EXPECT_DOUBLE_EQ(report.top1(), static_cast<double>(correct) / kImages);
  EXPECT_GT(report.top1(), 0.5);  // A trained model, not chance.
  EXPECT_GT(report.images_per_second(), 0);
  EXPECT_GT(report.latency().p50_ms(), 0);

  // The same through FP32 normalized by esbctl.
  r = AtAgent({"infer", "--model", "lenet", "--input", TestImages(), "--labels",
               TestLabels(), "--limit", absl::StrCat(kImages), "--mean",
               "0.2860", "--std", "0.3530", "--batch", "7"});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr(absl::StrFormat("top-1 %.2f%% (%d of %d images)",
                                               100.0 * correct / kImages,
                                               correct, kImages)));
  EXPECT_THAT(r.out, HasSubstr("as FP32"));
  EXPECT_THAT(r.out, HasSubstr("images/s"));
  EXPECT_THAT(r.out, HasSubstr("p99"));

  // Without labels: the first 10 predictions, then a count.
  r = AtAgent({"infer", "--model", "lenet", "--input", TestImages(), "--limit",
               "12", "--top", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("image 0: class ", expected[0],
                                            " (logit ")));
  EXPECT_THAT(r.out, HasSubstr("image 9: "));
  EXPECT_THAT(r.out, Not(HasSubstr("image 10: ")));
  EXPECT_THAT(r.out, HasSubstr("... and 2 more images"));

  r = AtAgent({"bench", "--model", "lenet", "--duration", "1", "--concurrency",
               "4", "--metrics", *metrics_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto bench = FromJson<esb::v1::BenchReport>(r.out);
  EXPECT_EQ(bench.concurrency(), 4);
  EXPECT_GT(bench.requests(), 10);
  EXPECT_EQ(bench.errors(), 0) << r.out;
  EXPECT_EQ(bench.inferences(), bench.requests());
  EXPECT_GT(bench.inferences_per_second(), 0);
  EXPECT_LE(bench.latency().p50_ms(), bench.latency().p99_ms());
  ASSERT_TRUE(bench.has_joules_per_inference()) << r.out;
  EXPECT_GT(bench.joules_per_inference(), 0);
  EXPECT_EQ(bench.energy_source(), "model");
  EXPECT_EQ(bench.power_source(), "model");
  r = AtAgent({"bench", "--model", "lenet", "--duration", "0.5", "--input",
               TestImages(), "--batch", "4"});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("energy: unknown"));
  EXPECT_THAT(r.out, HasSubstr("errors      none"));

  r = AtAgent({"undeploy", "lenet"});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("removed model lenet version 1"));
  r = AtAgent(
      {"infer", "--model", "lenet", "--input", TestImages(), "--limit", "1"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("model 'lenet' is not deployed"));
  r = AtAgent({"models"});
  EXPECT_THAT(r.out, HasSubstr("no models on"));
}

TEST_F(AgentCliTest, UnknownModelIsNamed) {
  RunResult r = AtAgent(
      {"infer", "--model", "mystery", "--input", TestImages(), "--limit", "1"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("'mystery'"));
  r = AtAgent({"bench", "--model", "mystery", "--duration", "0.2"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("'mystery'"));
  r = AtAgent({"undeploy", "mystery"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("model 'mystery' is not deployed"));
}

TEST_F(AgentCliTest, NoAgentAtTheAddressSaysHowToStartOne) {
  const std::string nowhere = absl::StrCat("127.0.0.1:", FreePort());
  RunResult r = Esbctl({"models", "--agent", nowhere});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("no esb-agent answers at " + nowhere));
  EXPECT_THAT(r.out, HasSubstr("esb-agent --backend sim --listen " + nowhere));
}

TEST_F(AgentCliTest, BadInputsAndUsage) {
  // A missing file and a file that is no data set: failures, named.
  RunResult r =
      AtAgent({"infer", "--model", "lenet", "--input", *dir_ + "/none.idx"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("--input: "));
  EXPECT_THAT(r.out, HasSubstr("none.idx"));
  const std::string junk = *dir_ + "/junk.bin";
  std::ofstream(junk) << "neither IDX nor npy";
  r = AtAgent({"infer", "--model", "lenet", "--input", junk});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("junk.bin"));
  r = AtAgent({"deploy", junk});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("is not a model.esbm package"));

  // Mistakes in the command line: exit 2, before any connection.
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {"infer", "--input", TestImages()},  // No --model.
           {"infer", "--model", "m", "--input", TestImages(), "--batch", "0"},
           {"infer", "--model", "m", "--input", TestImages(), "--top", "0"},
           {"infer", "--model", "m", "--input", TestImages(), "--mean", "x",
            "--std", "1"},
           {"bench", "--model", "m", "--concurrency", "0"},
           {"bench", "--model", "m", "--duration", "0"},
           {"bench", "--model", "m", "--metrics", "nowhere"},
           {"undeploy", "m", "--version", "-1"},
           {"deploy", *dir_ + "/lenet.esbm", "--name", "no/slash"},
           {"models", "extra-arg"},
       }) {
    r = AtAgent(args);
    EXPECT_EQ(r.exit_code, 2) << absl::StrJoin(args, " ") << "\n" << r.out;
  }
  r = Esbctl({"board", "--agent", "no-port"});
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("--agent 'no-port' is not HOST:PORT"));
}

// An agent with an admin token: the admin commands send it from
// --admin-token-file, and say how when it is missing or wrong.
TEST_F(AgentCliTest, AdminTokenComesFromItsFile) {
  const std::string token = *dir_ + "/token";
  std::ofstream(token) << "s3cret\n";
  const std::string wrong = *dir_ + "/wrong";
  std::ofstream(wrong) << "guess\n";
  absl::StatusOr<std::unique_ptr<Process>> p = Process::Start(
      {ESB_AGENT_PATH, "--backend", "sim", "--listen", "127.0.0.1:0",
       "--model-dir", *dir_ + "/models-token", "--admin-token-file", token},
      *dir_ + "/agent-token.log");
  ASSERT_TRUE(p.ok()) << p.status();
  absl::StatusOr<std::string> line =
      (*p)->WaitForLine("listening on", absl::Seconds(30));
  ASSERT_TRUE(line.ok()) << line.status();
  const std::string address{line->substr(line->rfind(' ') + 1)};
  const std::string esbm = *dir_ + "/lenet.esbm";

  RunResult r = Esbctl({"deploy", esbm, "--agent", address});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("--admin-token-file FILE"));
  r = Esbctl({"board", "--agent", address, "--admin-token-file", wrong});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("the admin token does not match"));
  r = Esbctl({"deploy", esbm, "--agent", address, "--admin-token-file", token});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  // Inference needs no token.
  r = Esbctl({"infer", "--agent", address, "--model", "lenet", "--input",
              TestImages(), "--limit", "3"});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("image 2: class "));
}

// `esbctl deploy JOB`: the job's model.esbm comes from esb-server.
TEST_F(AgentCliTest, DeployOfAJobFetchesItsPackageFromTheServer) {
  const std::string server = absl::StrCat("127.0.0.1:", FreePort());
  absl::StatusOr<std::unique_ptr<Process>> p = Process::Start(
      {ESB_SERVER_PATH, "--listen", server, "--data-dir", *dir_ + "/server"},
      *dir_ + "/server.log");
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE((*p)->WaitForLine("listening on", absl::Seconds(30)).ok());
  RunResult r = AtAgent({"deploy", "j-nosuchjob", "--server", server});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("model.esbm of job j-nosuchjob"));

  absl::StatusOr<std::unique_ptr<Process>> worker = Process::Start(
      {ESB_WORKER_PATH, "--server", server, "--work-dir", *dir_ + "/worker"},
      *dir_ + "/worker.log");
  ASSERT_TRUE(worker.ok()) << worker.status();
  ASSERT_TRUE((*worker)->WaitForLine("serving", absl::Seconds(30)).ok());
  r = Esbctl({"submit", absl::StrCat(ESB_SOURCE_DIR, "/models/lenet.onnx"),
              "--server", server, "--calib",
              absl::StrCat(kData, "/train-images-idx3-ubyte.gz"),
              "--calib-count", "64", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const std::string job = FromJson<esb::v1::Job>(r.out).id();
  ASSERT_FALSE(job.empty()) << r.out;
  r = Esbctl({"watch", job, "--server", server, "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.out;

  r = AtAgent({"deploy", job, "--server", server});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  // The package's model name, from the job's model file.
  EXPECT_THAT(r.out,
              HasSubstr(absl::StrCat("deployed job ", job, " on ", server,
                                     " as model lenet version 1")));
  r = AtAgent({"infer", "--model", "lenet", "--input", TestImages(), "--labels",
               TestLabels(), "--limit", "200"});
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("top-1 "));
}

}  // namespace
}  // namespace esb::testing
