// ONNX's own operator tests (Debian package libonnx-testdata), run through
// import and the FP32 executor.
//
// The product takes weights as constants, so the harness bakes every graph
// input but the first into an initializer holding the case's input data
// (what a trained model carries); the first input stays a run-time input.
//
// kCases lists every case whose ops are all supported; each must import,
// run and match the expected outputs (rtol 1e-3, atol 1e-5). Every other
// case in the same folders must be refused at import with INVALID_ARGUMENT:
// a case that imports but is not listed fails the suite, so nothing is
// skipped silently.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "core/graph/passes.h"
#include "core/onnx/onnx_import.h"
#include "core/runtime/executor.h"
#include "core/runtime/onnx_conformance_cases.h"
#include "gtest/gtest.h"
#include "onnx/onnx_pb.h"

namespace esb::runtime {
namespace {

constexpr char kRoot[] = "/usr/share/libonnx-testdata/data";
constexpr double kRtol = 1e-3;
constexpr double kAtol = 1e-5;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The case's model with inputs 1.. baked in as initializers, imported.
absl::StatusOr<graph::Graph> ImportCase(const std::string& dir) {
  onnx::ModelProto model;
  if (!model.ParseFromString(Slurp(dir + "/model.onnx"))) {
    return absl::InvalidArgumentError("model.onnx does not parse");
  }
  onnx::GraphProto* g = model.mutable_graph();
  std::set<std::string> initializers;
  for (const auto& t : g->initializer()) initializers.insert(t.name());
  std::vector<onnx::ValueInfoProto> kept;
  int index = 0;
  for (const auto& vi : g->input()) {
    if (initializers.count(vi.name()) || index++ == 0) {
      kept.push_back(vi);
      continue;
    }
    onnx::TensorProto t;
    const std::string pb =
        dir + "/test_data_set_0/input_" + std::to_string(index - 1) + ".pb";
    if (!t.ParseFromString(Slurp(pb))) {
      return absl::InvalidArgumentError(pb + " does not parse");
    }
    t.set_name(vi.name());
    *g->add_initializer() = std::move(t);
  }
  g->clear_input();
  for (auto& vi : kept) *g->add_input() = std::move(vi);
  return graph::ImportOnnxBytes(model.SerializeAsString(), "");
}

// Import, run and compare one case; empty string on success, else why not.
std::string RunCase(const std::string& dir) {
  absl::StatusOr<graph::Graph> g = ImportCase(dir);
  if (!g.ok()) return std::string(g.status().message());
  graph::Optimize(*g);
  absl::StatusOr<std::unique_ptr<Executor>> executor =
      Executor::Create(*g, ExecutorOptions{});
  if (!executor.ok()) return std::string(executor.status().message());
  const std::string data = dir + "/test_data_set_0";
  std::vector<graph::Tensor> inputs;
  for (size_t i = 0; i < g->inputs.size(); ++i) {
    auto t =
        graph::ReadOnnxTensorFile(data + "/input_" + std::to_string(i) + ".pb");
    if (!t.ok()) return std::string(t.status().message());
    inputs.push_back(*std::move(t));
  }
  absl::StatusOr<std::vector<graph::Tensor>> outputs = (*executor)->Run(inputs);
  if (!outputs.ok()) return std::string(outputs.status().message());
  for (size_t i = 0; i < outputs->size(); ++i) {
    auto want = graph::ReadOnnxTensorFile(data + "/output_" +
                                          std::to_string(i) + ".pb");
    if (!want.ok()) return std::string(want.status().message());
    const graph::Tensor& got = (*outputs)[i];
    if (got.size() != want->size()) {
      return "output " + std::to_string(i) + " has " +
             std::to_string(got.size()) + " values, expected " +
             std::to_string(want->size());
    }
    for (int64_t k = 0; k < want->size(); ++k) {
      const double w = want->data[k], v = got.data[k];
      const bool both_nan = std::isnan(w) && std::isnan(v);
      if (!both_nan && !(std::fabs(v - w) <= kAtol + kRtol * std::fabs(w))) {
        return "output " + std::to_string(i) + " value " + std::to_string(k) +
               " is " + std::to_string(v) + ", expected " + std::to_string(w);
      }
    }
  }
  return "";
}

TEST(OnnxConformanceTest, EveryListedCasePasses) {
  int ran = 0, passed = 0;
  for (const char* name : kCases) {
    const std::string dir = std::string(kRoot) + "/" + name;
    ASSERT_TRUE(std::filesystem::exists(dir + "/model.onnx"))
        << dir << " is missing: is libonnx-testdata installed?";
    ++ran;
    const std::string why = RunCase(dir);
    EXPECT_EQ(why, "") << name;
    if (why.empty()) ++passed;
  }
  std::cout << "ONNX conformance: " << ran << " cases ran, " << passed
            << " passed\n";
  EXPECT_GT(ran, 0);
}

TEST(OnnxConformanceTest, EveryOtherCaseIsRefusedAtImport) {
  const std::set<std::string> listed(std::begin(kCases), std::end(kCases));
  int refused = 0;
  for (const char* folder : {"node", "pytorch-converted"}) {
    const std::filesystem::path root = std::filesystem::path(kRoot) / folder;
    ASSERT_TRUE(std::filesystem::exists(root)) << root;
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(root)) {
      names.push_back(std::string(folder) + "/" + e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      if (listed.count(name)) continue;
      absl::StatusOr<graph::Graph> g =
          ImportCase(std::string(kRoot) + "/" + name);
      EXPECT_FALSE(g.ok()) << name << " imports but is not in kCases";
      if (!g.ok()) {
        EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument)
            << name << ": " << g.status();
        ++refused;
      }
    }
  }
  std::cout << "ONNX conformance: " << refused
            << " cases with unsupported ops or types refused\n";
}

}  // namespace
}  // namespace esb::runtime
