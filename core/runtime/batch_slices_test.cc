#include "core/runtime/batch_slices.h"

#include <cstdint>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace esb::runtime {
namespace {

using graph::Attributes;
using graph::Graph;
using graph::kBatch;
using graph::Op;
using graph::Tensor;

Tensor Zeros(std::vector<int64_t> shape) {
  Tensor t;
  t.shape = std::move(shape);
  t.data.assign(t.size(), 0.0f);
  return t;
}

// x [N, 2, 4, 4] -> conv (3 filters, 3x3, pad 1) -> relu -> y.
Graph ConvRelu() {
  Graph g;
  g.inputs.push_back({"x", {kBatch, 2, 4, 4}});
  g.constants["w"] = Zeros({3, 2, 3, 3});
  g.constants["b"] = Zeros({3});
  Attributes conv;
  conv.pads = {1, 1, 1, 1};
  g.nodes.push_back({"conv", Op::kConv, {"x", "w", "b"}, {"c"}, conv});
  g.nodes.push_back({"relu", Op::kRelu, {"c"}, {"y"}, {}});
  g.outputs.push_back({"y", {kBatch, 3, 4, 4}});
  return g;
}

TEST(BatchSlicesTest, ProfileCountsWhatEachNodeReadsAndWritesPerImage) {
  auto profile = ProfileBatch(ConvRelu(), {{8, 2, 4, 4}});
  ASSERT_TRUE(profile.has_value());
  // conv: x (2*4*4) in, c (3*4*4) out; relu: c in, y out; float32.
  EXPECT_EQ(profile->node_bytes,
            (std::vector<int64_t>{4 * (32 + 48), 4 * (48 + 48)}));
  EXPECT_EQ(profile->weight_bytes, 4 * (54 + 3));
}

// x [N, 4] through one node of `op`, to y.
Graph OneOp(Op op, Attributes attrs, std::vector<int64_t> out_shape) {
  Graph g;
  g.inputs.push_back({"x", {kBatch, 4}});
  g.nodes.push_back({"n", op, {"x"}, {"y"}, std::move(attrs)});
  g.outputs.push_back({"y", std::move(out_shape)});
  return g;
}

TEST(BatchSlicesTest, GraphsThatCombineImagesAreNotSliced) {
  Attributes softmax_0;
  softmax_0.axis = 0;
  EXPECT_FALSE(ProfileBatch(OneOp(Op::kSoftmax, softmax_0, {}), {{6, 4}}));
  Attributes softmax_1;
  softmax_1.axis = 1;
  EXPECT_TRUE(ProfileBatch(OneOp(Op::kSoftmax, softmax_1, {}), {{6, 4}}));

  Attributes transpose;
  transpose.perm = {1, 0};
  EXPECT_FALSE(ProfileBatch(OneOp(Op::kTranspose, transpose, {}), {{6, 4}}));

  Attributes reduce;
  reduce.axes = {0};
  reduce.keep_dims = true;
  EXPECT_FALSE(ProfileBatch(OneOp(Op::kReduceSum, reduce, {}), {{6, 4}}));

  // [N, 4] -> [1, 4N]: dim 0 is no longer the batch.
  Attributes fold;
  fold.shape = {1, -1};
  EXPECT_FALSE(ProfileBatch(OneOp(Op::kReshape, fold, {}), {{6, 4}}));

  Graph concat;
  concat.inputs.push_back({"x", {kBatch, 4}});
  Attributes axis_0;
  axis_0.axis = 0;
  concat.nodes.push_back({"cat", Op::kConcat, {"x", "x"}, {"y"}, axis_0});
  concat.outputs.push_back({"y", {}});
  EXPECT_FALSE(ProfileBatch(concat, {{6, 4}}));

  // An output that is a constant has no batch to slice.
  Graph constant_output = OneOp(Op::kRelu, {}, {});
  constant_output.constants["k"] = Zeros({2});
  constant_output.outputs.push_back({"k", {2}});
  EXPECT_FALSE(ProfileBatch(constant_output, {{6, 4}}));

  // Shapes that do not infer.
  EXPECT_FALSE(ProfileBatch(ConvRelu(), {{6, 5, 4, 4}}));
}

TEST(BatchSlicesTest, SliceOfLeastTraffic) {
  BatchProfile profile;
  profile.node_bytes = {1000};
  // Batch 8 with 2500 bytes of cache: one run spills 5500 bytes, 2 slices
  // of 4 spill 2 * 1500, 3 of 3 spill 3 * 500, 4 of 2 none.
  EXPECT_EQ(ChooseSlice(profile, 8, 2500), 2);
  // Weights read once more per slice: 4 slices cost 3000, 3 cost 3500.
  profile.weight_bytes = 1000;
  EXPECT_EQ(ChooseSlice(profile, 8, 2500), 2);
  profile.weight_bytes = 2000;  // 2 slices 5000, 3: 5500, 4: 6000, 1: 5500.
  EXPECT_EQ(ChooseSlice(profile, 8, 2500), 4);
  profile.weight_bytes = 10000;  // Reading weights again costs the most.
  EXPECT_EQ(ChooseSlice(profile, 8, 2500), 8);
  profile.weight_bytes = 0;
  EXPECT_EQ(ChooseSlice(profile, 8, 8000), 8);  // Fits: one run.
  EXPECT_EQ(ChooseSlice(profile, 8, 0), 8);     // No cache figure.
  EXPECT_EQ(ChooseSlice(profile, 1, 10), 1);
  // 7 images, 2000 bytes: slices of 2 (2, 2, 2, 1) spill nothing.
  EXPECT_EQ(ChooseSlice(profile, 7, 2000), 2);
}

}  // namespace
}  // namespace esb::runtime
