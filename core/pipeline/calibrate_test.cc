#include "core/pipeline/calibrate.h"

#include <memory>

#include "core/testing/demo.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::pipeline {
namespace {

using ::testing::HasSubstr;

// `count` training images in batches of 64.
BatchSource Images(int64_t count) {
  auto all = std::make_shared<std::vector<float>>(
      demo::DemoImages("train-images-idx3-ubyte.gz", count));
  auto next = std::make_shared<int64_t>(0);
  return [all, next, count]() -> std::vector<graph::Tensor> {
    if (*next >= count) return {};
    const int64_t n = std::min<int64_t>(64, count - *next);
    graph::Tensor t = demo::DemoBatch(*all, *next, n);
    *next += n;
    return {t};
  };
}

graph::Graph Lenet() { return demo::LoadDemoModel("lenet"); }

TEST(CalibrateTest, FitsEveryLayerWithSignednessFromTheData) {
  const graph::Graph g = Lenet();
  auto layers = Calibrate(g, Images(256), CalibrationOptions{});
  ASSERT_TRUE(layers.ok()) << layers.status();
  int quantized = 0;
  for (const graph::Node& n : g.nodes) {
    if (!graph::IsQuantizedOp(n.op)) continue;
    ++quantized;
    ASSERT_TRUE(layers->count(n.name)) << n.name;
    const LayerQuant& q = layers->at(n.name);
    const graph::Tensor& w = g.constants.at(n.inputs[1]);
    EXPECT_EQ(static_cast<int64_t>(q.weight_alpha.size()),
              w.shape[graph::WeightChannelAxis(n)]);
    EXPECT_GT(q.input_alpha, 0.0f);
    // The first layer reads normalized pixels (signed); the others read
    // ReLU outputs (unsigned).
    const bool first = n.inputs[0] == g.inputs[0].name;
    EXPECT_EQ(q.input_format.is_signed(), first) << n.name;
  }
  EXPECT_EQ(quantized, 4);
  EXPECT_EQ(static_cast<int>(layers->size()), quantized);
}

TEST(CalibrateTest, ClearErrors) {
  const graph::Graph g = Lenet();
  CalibrationOptions bad;
  bad.weight_bits = 8;
  bad.weight_sb = 2;
  auto r = Calibrate(g, Images(64), bad);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("weight format"));
  auto empty = Calibrate(
      g, [] { return std::vector<graph::Tensor>{}; }, CalibrationOptions{});
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr("empty"));
}

}  // namespace
}  // namespace esb::pipeline
