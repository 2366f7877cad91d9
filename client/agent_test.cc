// The agent commands' pieces that need no agent: option checks, the
// deploy payload and its name, requests built from data sets, replies read
// back, top-K, latency percentiles, the energy counter in a Prometheus
// page and the HTTP GET that fetches it.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/agent_bench.h"
#include "client/agent_deploy.h"
#include "client/agent_infer.h"
#include "client/http_get.h"
#include "core/data/normalize.h"
#include "core/data/npy.h"
#include "core/package/esbm.h"
#include "core/testing/demo.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::client {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string TempPath(const std::string& name) {
  return (std::filesystem::path(::testing::TempDir()) / name).string();
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string BigEndian32(uint32_t v) {
  return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
}

// An uncompressed IDX file of n images h x w with pixel i = (i * 7) % 256.
std::string WriteIdxImages(const std::string& name, int n, int h, int w,
                           std::vector<uint8_t>* pixels) {
  std::string bytes = std::string{"\0\0\x08\x03", 4} + BigEndian32(n) +
                      BigEndian32(h) + BigEndian32(w);
  pixels->clear();
  for (int i = 0; i < n * h * w; ++i) {
    pixels->push_back(static_cast<uint8_t>((i * 7) % 256));
    bytes.push_back(static_cast<char>(pixels->back()));
  }
  const std::string path = TempPath(name);
  WriteFile(path, bytes);
  return path;
}

std::string WriteIdxLabels(const std::string& name,
                           const std::vector<uint8_t>& labels) {
  std::string bytes = std::string{"\0\0\x08\x01", 4} +
                      BigEndian32(static_cast<uint32_t>(labels.size()));
  for (uint8_t l : labels) bytes.push_back(static_cast<char>(l));
  const std::string path = TempPath(name);
  WriteFile(path, bytes);
  return path;
}

ModelInput TinyInput() {
  ModelInput in;
  in.model = "tiny";
  in.version = "1";
  in.name = "x";
  in.geometry = data::ImageGeometry{"x", 1, 2, 3};
  in.output = "y";
  return in;
}

std::vector<float> RawFloats(const std::string& bytes) {
  std::vector<float> out(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), out.size() * 4);
  return out;
}

TEST(LatencyTest, NearestRankPercentiles) {
  std::vector<double> seconds;
  for (int i = 100; i >= 1; --i) seconds.push_back(i * 1e-3);  // 1..100 ms.
  const esb::v1::LatencySummary s = SummarizeLatency(seconds);
  EXPECT_EQ(s.count(), 100);
  EXPECT_DOUBLE_EQ(s.p50_ms(), 50);
  EXPECT_DOUBLE_EQ(s.p90_ms(), 90);
  EXPECT_DOUBLE_EQ(s.p99_ms(), 99);
  EXPECT_DOUBLE_EQ(s.max_ms(), 100);
  EXPECT_NEAR(s.mean_ms(), 50.5, 1e-9);
  const esb::v1::LatencySummary one = SummarizeLatency({0.002});
  EXPECT_DOUBLE_EQ(one.p50_ms(), 2);
  EXPECT_DOUBLE_EQ(one.p99_ms(), 2);
  EXPECT_EQ(SummarizeLatency({}).count(), 0);
}

TEST(TopKTest, LargestFirstTiesToTheLowerIndex) {
  const std::vector<float> v = {1, 5, 3, 5, -2};
  EXPECT_THAT(TopK(v, 1), ElementsAre(1));
  EXPECT_THAT(TopK(v, 3), ElementsAre(1, 3, 2));
  EXPECT_THAT(TopK(v, 10), ElementsAre(1, 3, 2, 0, 4));
  EXPECT_TRUE(TopK({}, 3).empty());
}

TEST(ModelInputTest, TakesOneNchwInputWithAFreeBatch) {
  inference::ModelMetadataResponse m;
  m.set_name("lenet");
  m.add_versions("3");
  auto* in = m.add_inputs();
  in->set_name("input");
  for (int64_t d : {-1, 1, 28, 28}) in->add_shape(d);
  m.add_outputs()->set_name("logits");
  absl::StatusOr<ModelInput> input = ModelInputOf(m);
  ASSERT_TRUE(input.ok()) << input.status();
  EXPECT_EQ(input->version, "3");
  EXPECT_EQ(input->name, "input");
  EXPECT_EQ(input->geometry.channels, 1);
  EXPECT_EQ(input->geometry.height, 28);
  EXPECT_EQ(input->output, "logits");

  in->set_shape(0, 8);  // A fixed batch.
  EXPECT_THAT(std::string{ModelInputOf(m).status().message()},
              HasSubstr("has shape [8,1,28,28]"));
  in->clear_shape();
  for (int64_t d : {-1, 10}) in->add_shape(d);
  EXPECT_EQ(ModelInputOf(m).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(InferInputsTest, PixelsTravelAsUint8Unchanged) {
  std::vector<uint8_t> pixels;
  const std::string path = WriteIdxImages("u8.idx", 5, 2, 3, &pixels);
  absl::StatusOr<std::unique_ptr<InferInputs>> inputs =
      InferInputs::Open(path, "", -1, TinyInput(), {});
  ASSERT_TRUE(inputs.ok()) << inputs.status();
  EXPECT_EQ((*inputs)->wire(), InferInputs::Wire::kUint8);
  EXPECT_THAT((*inputs)->normalization(), HasSubstr("package"));
  absl::StatusOr<inference::ModelInferRequest> r = (*inputs)->Request(1, 3);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model_name(), "tiny");
  ASSERT_EQ(r->inputs_size(), 1);
  EXPECT_EQ(r->inputs(0).name(), "x");
  EXPECT_EQ(r->inputs(0).datatype(), "UINT8");
  EXPECT_THAT(r->inputs(0).shape(), ElementsAre(3, 1, 2, 3));
  ASSERT_EQ(r->raw_input_contents_size(), 1);
  const std::string& bytes = r->raw_input_contents(0);
  ASSERT_EQ(bytes.size(), 18u);
  for (size_t i = 0; i < bytes.size(); ++i) {
    EXPECT_EQ(static_cast<uint8_t>(bytes[i]), pixels[6 + i]) << i;
  }
  EXPECT_FALSE((*inputs)->Request(4, 2).ok());  // Past the end.
}

TEST(InferInputsTest, MeanAndStdNormalizeHereAsFp32) {
  std::vector<uint8_t> pixels;
  const std::string path = WriteIdxImages("fp32.idx", 2, 2, 3, &pixels);
  absl::StatusOr<data::Normalization> norm =
      data::ParseNormalization("0.25", "0.5");
  ASSERT_TRUE(norm.ok());
  absl::StatusOr<std::unique_ptr<InferInputs>> inputs =
      InferInputs::Open(path, "", -1, TinyInput(), *norm);
  ASSERT_TRUE(inputs.ok()) << inputs.status();
  EXPECT_EQ((*inputs)->wire(), InferInputs::Wire::kFp32);
  absl::StatusOr<inference::ModelInferRequest> r = (*inputs)->Request(0, 2);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->inputs(0).datatype(), "FP32");
  std::vector<float> expected(12);
  ASSERT_TRUE(
      data::NormalizeImages(pixels.data(), 2, 1, 6, *norm, expected.data())
          .ok());
  EXPECT_EQ(RawFloats(r->raw_input_contents(0)), expected);
}

TEST(InferInputsTest, Float32NpyGoesAsIs) {
  const std::vector<float> values = {0.5f, -1, 2, 3, 4, 5.25f};
  const std::string path = TempPath("f.npy");
  WriteFile(path, data::SerializeNpy(values, {1, 1, 2, 3}));
  absl::StatusOr<data::Normalization> norm =
      data::ParseNormalization("0.25", "0.5");
  absl::StatusOr<std::unique_ptr<InferInputs>> inputs =
      InferInputs::Open(path, "", -1, TinyInput(), *norm);
  ASSERT_TRUE(inputs.ok()) << inputs.status();
  EXPECT_EQ((*inputs)->wire(), InferInputs::Wire::kFp32);
  EXPECT_THAT((*inputs)->normalization(), HasSubstr("as they are"));
  absl::StatusOr<inference::ModelInferRequest> r = (*inputs)->Request(0, 1);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(RawFloats(r->raw_input_contents(0)), values);
}

TEST(InferInputsTest, LabelsAndLimitAndShapeMismatch) {
  std::vector<uint8_t> pixels;
  const std::string path = WriteIdxImages("lab.idx", 4, 2, 3, &pixels);
  const std::string labels = WriteIdxLabels("lab.labels", {3, 1, 4, 1});
  absl::StatusOr<std::unique_ptr<InferInputs>> inputs =
      InferInputs::Open(path, labels, 3, TinyInput(), {});
  ASSERT_TRUE(inputs.ok()) << inputs.status();
  EXPECT_EQ((*inputs)->count(), 3);
  ASSERT_TRUE((*inputs)->dataset().has_labels());
  EXPECT_THAT((*inputs)->dataset().labels(), ElementsAre(3, 1, 4));

  ModelInput other = TinyInput();
  other.geometry.width = 5;
  absl::StatusOr<std::unique_ptr<InferInputs>> wrong =
      InferInputs::Open(path, "", -1, other, {});
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(InferInputs::Open(TempPath("missing.idx"), "", -1, TinyInput(), {})
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

TEST(RandomRequestTest, UniformFloatsOfTheInputShape) {
  const inference::ModelInferRequest r = RandomRequest(TinyInput(), 4, 7);
  EXPECT_EQ(r.inputs(0).datatype(), "FP32");
  EXPECT_THAT(r.inputs(0).shape(), ElementsAre(4, 1, 2, 3));
  const std::vector<float> v = RawFloats(r.raw_input_contents(0));
  ASSERT_EQ(v.size(), 24u);
  for (float x : v) {
    EXPECT_GE(x, 0.0f);
    EXPECT_LT(x, 1.0f);
  }
  EXPECT_NE(v,
            RawFloats(RandomRequest(TinyInput(), 4, 8).raw_input_contents(0)));
}

inference::ModelInferResponse Reply(const std::vector<int64_t>& shape,
                                    const std::vector<float>& values,
                                    bool raw) {
  inference::ModelInferResponse r;
  auto* out = r.add_outputs();
  out->set_name("y");
  out->set_datatype("FP32");
  for (int64_t d : shape) out->add_shape(d);
  if (raw) {
    std::string bytes(values.size() * 4, '\0');
    std::memcpy(bytes.data(), values.data(), bytes.size());
    r.add_raw_output_contents(bytes);
  } else {
    for (float v : values) out->mutable_contents()->add_fp32_contents(v);
  }
  return r;
}

TEST(FirstOutputTest, RawOrTypedAndChecked) {
  const std::vector<float> values = {1, 2, 3, 4, 5, 6};
  for (bool raw : {true, false}) {
    int64_t per_image = 0;
    absl::StatusOr<std::vector<float>> got =
        FirstOutput(Reply({2, 3}, values, raw), 2, &per_image);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, values);
    EXPECT_EQ(per_image, 3);
    EXPECT_THAT(
        std::string{FirstOutput(Reply({3, 2}, values, raw), 2, &per_image)
                        .status()
                        .message()},
        HasSubstr("for a request of 2 images"));
    EXPECT_FALSE(FirstOutput(Reply({2, 4}, values, raw), 2, &per_image).ok());
  }
  int64_t per_image = 0;
  EXPECT_FALSE(
      FirstOutput(inference::ModelInferResponse{}, 1, &per_image).ok());
}

TEST(InferOptionsTest, FlagsAreChecked) {
  InferOptions ok;
  ok.model = "lenet";
  ok.input_path = "x.idx";
  EXPECT_TRUE(CheckInferOptions(ok).ok());
  auto message = [](InferOptions o) {
    return std::string{CheckInferOptions(o).message()};
  };
  InferOptions o = ok;
  o.model = "";
  EXPECT_THAT(message(o), HasSubstr("--model"));
  o = ok;
  o.batch = 70000;
  EXPECT_THAT(message(o), HasSubstr("--batch 70000"));
  o = ok;
  o.top = 0;
  EXPECT_THAT(message(o), HasSubstr("--top 0"));
  o = ok;
  o.limit = 0;
  EXPECT_THAT(message(o), HasSubstr("--limit 0"));
  o = ok;
  o.input_path = "";
  EXPECT_THAT(message(o), HasSubstr("--input"));
  EXPECT_EQ(CheckInputPath(TempPath("nothing-here")).code(),
            absl::StatusCode::kNotFound);
  const std::string junk = TempPath("junk.bin");
  WriteFile(junk, "not a data set at all");
  EXPECT_THAT(std::string{CheckInputPath(junk).message()},
              HasSubstr("--input: "));
}

TEST(BenchOptionsTest, FlagsAreChecked) {
  BenchOptions ok;
  ok.model = "lenet";
  EXPECT_TRUE(CheckBenchOptions(ok).ok());
  BenchOptions o = ok;
  o.concurrency = 0;
  EXPECT_THAT(std::string{CheckBenchOptions(o).message()},
              HasSubstr("--concurrency 0"));
  o = ok;
  o.duration = absl::Milliseconds(10);
  EXPECT_THAT(std::string{CheckBenchOptions(o).message()},
              HasSubstr("--duration"));
  o = ok;
  o.batch = 0;
  EXPECT_THAT(std::string{CheckBenchOptions(o).message()},
              HasSubstr("--batch 0"));
  o = ok;
  o.metrics_address = "localhost";
  EXPECT_THAT(std::string{CheckBenchOptions(o).message()},
              HasSubstr("--metrics"));
  o.metrics_address = "localhost:9100";
  EXPECT_TRUE(CheckBenchOptions(o).ok());
}

TEST(HostPortTest, Splits) {
  std::string host;
  int port = 0;
  ASSERT_TRUE(SplitHostPort("board-7:8001", &host, &port).ok());
  EXPECT_EQ(host, "board-7");
  EXPECT_EQ(port, 8001);
  ASSERT_TRUE(SplitHostPort("[::1]:80", &host, &port).ok());
  EXPECT_EQ(host, "::1");
  for (const char* bad : {"board", ":80", "h:0", "h:70000", "h:x", "[]:1"}) {
    EXPECT_FALSE(SplitHostPort(bad, &host, &port).ok()) << bad;
  }
}

TEST(DeployTest, NamesAndTargets) {
  EXPECT_TRUE(CheckModelName("mnist-esb_v1.2").ok());
  for (const char* bad : {"", ".", "..", "a/b", "a b"}) {
    EXPECT_FALSE(CheckModelName(bad).ok()) << bad;
  }
  EXPECT_FALSE(CheckModelName(std::string(65, 'a')).ok());
  EXPECT_EQ(DefaultDeployName("lenet", "/x/model.esbm"), "lenet");
  EXPECT_EQ(DefaultDeployName("bad name", "/x/model.esbm"), "model");
  EXPECT_EQ(DefaultDeployName("", ""), "");
  EXPECT_TRUE(IsPackagePath("not-there.esbm"));
  EXPECT_FALSE(IsPackagePath("a1b2c3"));
  const std::string file = TempPath("job-looking-file");
  WriteFile(file, "x");
  EXPECT_TRUE(IsPackagePath(file));
}

TEST(DeployTest, PayloadOfAPackageFile) {
  const graph::Graph g = demo::LoadDemoModel("lenet");
  absl::StatusOr<esb::v1::Package> package =
      pipeline::BuildPackage(g,
                             demo::DemoLayers(g, demo::MakeFormat(4, 2, true),
                                              demo::MakeFormat(4, 2, false)),
                             {}, "lenet");
  ASSERT_TRUE(package.ok()) << package.status();
  const std::string bytes = pipeline::SerializePackage(*package);
  const std::string path = TempPath("pkg.esbm");
  WriteFile(path, bytes);
  absl::StatusOr<DeployPayload> payload =
      LoadDeployPayload(path, "", "localhost:1");
  ASSERT_TRUE(payload.ok()) << payload.status();
  EXPECT_EQ(payload->bytes, bytes);
  EXPECT_EQ(payload->name, "lenet");
  EXPECT_EQ(payload->source, path);
  payload = LoadDeployPayload(path, "other", "localhost:1");
  ASSERT_TRUE(payload.ok());
  EXPECT_EQ(payload->name, "other");
  EXPECT_THAT(
      std::string{
          LoadDeployPayload(path, "a/b", "localhost:1").status().message()},
      HasSubstr("--name"));
  const std::string corrupt = TempPath("corrupt.esbm");
  WriteFile(corrupt, bytes.substr(0, bytes.size() / 2));
  EXPECT_THAT(
      std::string{
          LoadDeployPayload(corrupt, "", "localhost:1").status().message()},
      HasSubstr("is not a model.esbm package"));
  EXPECT_EQ(LoadDeployPayload(TempPath("none.esbm"), "", "localhost:1")
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

TEST(EnergyTest, SumsTheModelsSeriesWithTheirSources) {
  const std::string page =
      "# HELP esb_agent_energy_joules_total Energy.\n"
      "# TYPE esb_agent_energy_joules_total counter\n"
      "esb_agent_energy_joules_total{board=\"b\",model=\"lenet\","
      "source=\"model\"} 1.5\n"
      "esb_agent_energy_joules_total{board=\"b\",model=\"resnet\","
      "source=\"model\"} 100\n"
      "esb_agent_energy_joules_total{board=\"a \\\"q\\\"\",model=\"lenet\","
      "source=\"measured\"} 0.25 1700000000000\n"
      "esb_agent_energy_joules_total_other{model=\"lenet\"} 7\n"
      "esb_agent_requests_total{model=\"lenet\",status=\"OK\"} 9\n";
  absl::StatusOr<EnergyReading> r = EnergyOf(page, "lenet");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->found);
  EXPECT_DOUBLE_EQ(r->joules, 1.75);
  EXPECT_THAT(r->sources, ElementsAre("measured", "model"));
  absl::StatusOr<EnergyReading> none = EnergyOf(page, "mobilenet");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->found);
  EXPECT_FALSE(
      EnergyOf("esb_agent_energy_joules_total{model=\"lenet\" 3\n", "lenet")
          .ok());
  EXPECT_FALSE(
      EnergyOf("esb_agent_energy_joules_total{model=\"lenet\"} x\n", "lenet")
          .ok());
}

// A one-shot HTTP server on a loopback port: answers one connection with
// `reply` after reading the request.
class OneShotServer {
 public:
  explicit OneShotServer(std::string reply) : reply_(std::move(reply)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    listen(fd_, 1);
    thread_ = std::thread([this] {
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      char buffer[4096];
      const ssize_t n = recv(c, buffer, sizeof(buffer), 0);
      if (n > 0) request_.assign(buffer, static_cast<size_t>(n));
      send(c, reply_.data(), reply_.size(), MSG_NOSIGNAL);
      close(c);
    });
  }
  ~OneShotServer() {
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  const std::string& request() const { return request_; }

 private:
  std::string reply_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::string request_;
};

TEST(HttpGetTest, ReadsTheBodyOfA200) {
  std::string body;
  {
    OneShotServer server(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nline 1\nline 2\n");
    absl::StatusOr<std::string> got = HttpGet(server.address(), "/metrics");
    ASSERT_TRUE(got.ok()) << got.status();
    body = *got;
    EXPECT_THAT(server.request(), HasSubstr("GET /metrics HTTP/1.0\r\n"));
  }
  EXPECT_EQ(body, "line 1\nline 2\n");
}

TEST(HttpGetTest, NamesWhatWentWrong) {
  {
    OneShotServer server("HTTP/1.1 404 Not Found\r\n\r\nnope");
    absl::StatusOr<std::string> got = HttpGet(server.address(), "/metrics");
    EXPECT_THAT(std::string{got.status().message()},
                HasSubstr("answered 'HTTP/1.1 404 Not Found'"));
  }
  // A port nothing listens on: bind one and close it.
  std::string closed;
  {
    OneShotServer server("");
    closed = server.address();
    ASSERT_TRUE(HttpGet(closed, "/").status().code() !=
                absl::StatusCode::kInvalidArgument);
  }
  const absl::Status refused = HttpGet(closed, "/metrics").status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable) << refused;
  EXPECT_THAT(std::string{refused.message()}, HasSubstr(closed));
  EXPECT_EQ(HttpGet("nohostport", "/").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace esb::client
