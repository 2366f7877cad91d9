#include "core/graph/passes.h"

#include <cmath>

#include "gtest/gtest.h"

namespace esb::graph {
namespace {

// x -> Conv(w, b) -> BN -> Relu -> y, with 2 output channels of 1x1 kernels
// on one input channel, so the folded values are easy to write down.
Graph ConvBnRelu() {
  Graph g;
  g.inputs = {{"x", {kBatch, 1, 2, 2}}};
  g.outputs = {{"y", {kBatch, 2, 2, 2}}};
  g.constants["w"] = Tensor{{2, 1, 1, 1}, {2.0f, -1.0f}};
  g.constants["b"] = Tensor{{2}, {0.5f, 1.0f}};
  g.constants["scale"] = Tensor{{2}, {3.0f, 1.0f}};
  g.constants["bias"] = Tensor{{2}, {0.25f, -2.0f}};
  g.constants["mean"] = Tensor{{2}, {1.0f, 0.0f}};
  g.constants["var"] = Tensor{{2}, {4.0f, 1.0f}};
  Node conv{"conv", Op::kConv, {"x", "w", "b"}, {"c"}, {}};
  conv.attrs.kernel = {1, 1};
  conv.attrs.strides = {1, 1};
  conv.attrs.dilations = {1, 1};
  conv.attrs.pads = {0, 0, 0, 0};
  Node bn{
      "bn", Op::kBatchNorm, {"c", "scale", "bias", "mean", "var"}, {"n"}, {}};
  bn.attrs.epsilon = 0.0f;
  Node relu{"relu", Op::kRelu, {"n"}, {"y"}, {}};
  g.nodes = {conv, bn, relu};
  return g;
}

TEST(PassesTest, FoldsBatchNormIntoConv) {
  Graph g = ConvBnRelu();
  EXPECT_EQ(FoldBatchNorm(g), 1);
  ASSERT_EQ(g.nodes.size(), 2u);
  const Node& conv = g.nodes[0];
  EXPECT_EQ(conv.outputs[0], "n");
  // k = scale / sqrt(var) = {1.5, 1}.
  const Tensor& w = g.constants.at(conv.inputs[1]);
  EXPECT_EQ(w.data, (std::vector<float>{3.0f, -1.0f}));
  const Tensor& b = g.constants.at(conv.inputs[2]);
  // (b - mean) * k + bias = {(0.5 - 1) * 1.5 + 0.25, (1 - 0) * 1 - 2}.
  EXPECT_EQ(b.data, (std::vector<float>{-0.5f, -1.0f}));
  // The original weights are untouched.
  EXPECT_EQ(g.constants.at("w").data, (std::vector<float>{2.0f, -1.0f}));
}

TEST(PassesTest, FusesReluAndRemovesDeadConstants) {
  Graph g = ConvBnRelu();
  Optimize(g);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].attrs.activation.kind, Activation::Kind::kRelu);
  EXPECT_EQ(g.nodes[0].outputs[0], "y");
  EXPECT_EQ(g.constants.count("scale"), 0u);
  EXPECT_EQ(g.constants.count("w"), 0u);
  EXPECT_EQ(g.constants.size(), 2u);
}

TEST(PassesTest, LeavesSharedOutputsAlone) {
  Graph g = ConvBnRelu();
  // A second reader of the conv output blocks folding and fusion.
  g.nodes.push_back(Node{"side", Op::kSigmoid, {"c"}, {"s"}, {}});
  g.outputs.push_back({"s", {kBatch, 2, 2, 2}});
  EXPECT_EQ(FoldBatchNorm(g), 0);
  EXPECT_EQ(FuseActivations(g), 0);
  EXPECT_EQ(g.nodes.size(), 4u);
}

TEST(PassesTest, FoldsIntoGemmWithTransposedWeights) {
  Graph g;
  g.inputs = {{"x", {kBatch, 2}}};
  g.outputs = {{"y", {kBatch, 2}}};
  g.constants["w"] = Tensor{{2, 2}, {1.0f, 2.0f, 3.0f, 4.0f}};  // [M, K].
  g.constants["c"] = Tensor{{2}, {1.0f, 1.0f}};
  g.constants["scale"] = Tensor{{2}, {2.0f, 1.0f}};
  g.constants["bias"] = Tensor{{2}, {0.0f, 0.0f}};
  g.constants["mean"] = Tensor{{2}, {0.0f, 1.0f}};
  g.constants["var"] = Tensor{{2}, {1.0f, 1.0f}};
  Node gemm{"fc", Op::kGemm, {"x", "w", "c"}, {"h"}, {}};
  gemm.attrs.trans_b = true;
  gemm.attrs.alpha = 0.5f;
  gemm.attrs.beta = 2.0f;
  Node bn{
      "bn", Op::kBatchNorm, {"h", "scale", "bias", "mean", "var"}, {"y"}, {}};
  bn.attrs.epsilon = 0.0f;
  g.nodes = {gemm, bn};
  ASSERT_EQ(FoldBatchNorm(g), 1);
  const Node& fc = g.nodes[0];
  EXPECT_EQ(fc.attrs.alpha, 1.0f);
  EXPECT_EQ(fc.attrs.beta, 1.0f);
  // Row m of W scaled by alpha * k[m], k = {2, 1}.
  EXPECT_EQ(g.constants.at(fc.inputs[1]).data,
            (std::vector<float>{1.0f, 2.0f, 1.5f, 2.0f}));
  // (beta * c - mean) * k + bias = {4, 1}.
  EXPECT_EQ(g.constants.at(fc.inputs[2]).data,
            (std::vector<float>{4.0f, 1.0f}));
}

TEST(PassesTest, IdentityIsBypassedUnlessItIsAnOutput) {
  Graph g;
  g.inputs = {{"x", {kBatch, 3}}};
  g.outputs = {{"y", {kBatch, 3}}};
  g.nodes = {Node{"id", Op::kIdentity, {"x"}, {"a"}, {}},
             Node{"relu", Op::kRelu, {"a"}, {"b"}, {}},
             Node{"unused", Op::kSigmoid, {"a"}, {"z"}, {}},
             Node{"out", Op::kIdentity, {"b"}, {"y"}, {}}};
  EXPECT_EQ(RemoveDeadNodes(g), 2);
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[0].inputs[0], "x");
  EXPECT_EQ(g.nodes[1].op, Op::kIdentity);
}

}  // namespace
}  // namespace esb::graph
