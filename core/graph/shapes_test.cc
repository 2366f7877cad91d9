#include "core/graph/shapes.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::graph {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using Shape = std::vector<int64_t>;

Tensor Zeros(Shape shape) {
  Tensor t;
  t.shape = std::move(shape);
  t.data.assign(t.size(), 0.0f);
  return t;
}

// A graph with input "x" (declared `declared`) and one node "n" reading x
// and the given constants, writing "y".
Graph OneNode(Op op, Shape declared, std::map<std::string, Shape> constants,
              Attributes attrs = {}) {
  Graph g;
  g.inputs.push_back({"x", declared});
  Node node{"n", op, {"x"}, {"y"}, attrs};
  for (const auto& [name, shape] : constants) {
    g.constants[name] = Zeros(shape);
    node.inputs.push_back(name);
  }
  g.nodes.push_back(node);
  g.outputs.push_back({"y", {}});
  return g;
}

absl::StatusOr<Shape> OutputShape(const Graph& g, Shape x) {
  auto shapes = InferShapes(g, {{"x", x}});
  if (!shapes.ok()) return shapes.status();
  return shapes->at("y");
}

TEST(ShapesTest, ConvWithStridesPadsDilationsAndGroups) {
  Attributes a;
  a.strides = {2, 1};
  a.pads = {1, 0, 2, 3};  // top, left, bottom, right
  a.dilations = {1, 2};
  a.group = 2;
  Graph g = OneNode(Op::kConv, {kBatch, 4, 10, 11},
                    {{"w", {6, 2, 3, 3}}, {"w_b", {6}}}, a);
  // H: (10 + 1 + 2 - 3) / 2 + 1 = 6. W: (11 + 0 + 3 - 5) / 1 + 1 = 10.
  EXPECT_EQ(*OutputShape(g, {5, 4, 10, 11}), (Shape{5, 6, 6, 10}));
  // Every value is reported, constants included.
  auto shapes = InferShapes(g, {{"x", {5, 4, 10, 11}}});
  ASSERT_TRUE(shapes.ok());
  EXPECT_EQ(shapes->at("w"), (Shape{6, 2, 3, 3}));
  EXPECT_EQ(shapes->at("x"), (Shape{5, 4, 10, 11}));
}

TEST(ShapesTest, ConvChannelMismatchNamesNodeAndShapes) {
  Graph g = OneNode(Op::kConv, {kBatch, 3, 8, 8}, {{"w", {8, 16, 3, 3}}});
  g.nodes[0].name = "conv2";
  auto s = OutputShape(g, {1, 3, 8, 8});
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.status().message(),
              AllOf(HasSubstr("node 'conv2' (Conv)"),
                    HasSubstr("input has 3 channels but the weight expects 16"),
                    HasSubstr("[1,3,8,8]"), HasSubstr("[8,16,3,3]")));
}

TEST(ShapesTest, ConvRejectsBadBiasKernelAndTooLargeWindow) {
  EXPECT_THAT(OutputShape(OneNode(Op::kConv, {kBatch, 3, 8, 8},
                                  {{"w", {8, 3, 3, 3}}, {"w_b", {4}}}),
                          {1, 3, 8, 8})
                  .status()
                  .message(),
              HasSubstr("bias shape [4] should be [8]"));
  Attributes a;
  a.kernel = {5, 5};
  EXPECT_THAT(OutputShape(OneNode(Op::kConv, {kBatch, 3, 8, 8},
                                  {{"w", {8, 3, 3, 3}}}, a),
                          {1, 3, 8, 8})
                  .status()
                  .message(),
              HasSubstr("kernel [5,5] does not match"));
  EXPECT_THAT(
      OutputShape(OneNode(Op::kConv, {kBatch, 3, 2, 8}, {{"w", {8, 3, 3, 3}}}),
                  {1, 3, 2, 8})
          .status()
          .message(),
      HasSubstr("larger than the padded input"));
}

TEST(ShapesTest, PoolCeilModeDropsWindowsStartingInThePadding) {
  Attributes a;
  a.kernel = {3, 2};
  a.strides = {2, 2};
  a.ceil_mode = true;
  Graph g = OneNode(Op::kMaxPool, {kBatch, 2, kBatch, kBatch}, {}, a);
  // H: ceil((6 - 3) / 2) + 1 = 3; W: ceil((5 - 2) / 2) + 1 = 3.
  EXPECT_EQ(*OutputShape(g, {1, 2, 6, 5}), (Shape{1, 2, 3, 3}));
  g.nodes[0].attrs.ceil_mode = false;
  EXPECT_EQ(*OutputShape(g, {1, 2, 6, 5}), (Shape{1, 2, 2, 2}));

  // in 5, pads 1/1, kernel 2, stride 2: ceil gives 4 windows, but the last
  // would start at 6 >= in + pb = 6, in the end padding: 3 remain.
  Attributes b;
  b.kernel = {2};
  b.strides = {2};
  b.pads = {1, 1};
  b.ceil_mode = true;
  Graph g1 = OneNode(Op::kAveragePool, {kBatch, 1, 5}, {}, b);
  EXPECT_EQ(*OutputShape(g1, {1, 1, 5}), (Shape{1, 1, 3}));
}

TEST(ShapesTest, ResolveWindowReportsCeilOverhang) {
  Node node{"p", Op::kAveragePool, {"x"}, {"y"}, {}};
  node.attrs.kernel = {3};
  node.attrs.strides = {2};
  node.attrs.pads = {1, 0};
  node.attrs.ceil_mode = true;
  auto g = ResolveWindow(node, Shape{1, 1, 6});
  ASSERT_TRUE(g.ok()) << g.status();
  // padded 7: out ceil(4 / 2) + 1 = 3; the last window covers padded
  // positions [4, 7), inside the padded input: no overhang.
  EXPECT_EQ(g->output, (Shape{3}));
  EXPECT_EQ(g->ceil_extra, (Shape{0}));
  node.attrs.pads = {0, 0};
  g = ResolveWindow(node, Shape{1, 1, 6});
  ASSERT_TRUE(g.ok());
  // padded 6: out ceil(3 / 2) + 1 = 3; the last window [4, 7) overhangs 1.
  EXPECT_EQ(g->output, (Shape{3}));
  EXPECT_EQ(g->ceil_extra, (Shape{1}));
}

TEST(ShapesTest, MaxPoolDilationsAndAveragePoolRejectsThem) {
  Attributes a;
  a.kernel = {3, 3};
  a.dilations = {2, 2};
  EXPECT_EQ(*OutputShape(OneNode(Op::kMaxPool, {kBatch, 1, 9, 9}, {}, a),
                         {1, 1, 9, 9}),
            (Shape{1, 1, 5, 5}));
  EXPECT_THAT(OutputShape(OneNode(Op::kAveragePool, {kBatch, 1, 9, 9}, {}, a),
                          {1, 1, 9, 9})
                  .status()
                  .message(),
              AllOf(HasSubstr("(AveragePool)"), HasSubstr("dilations [2,2]")));
  Attributes no_kernel;
  EXPECT_THAT(
      OutputShape(OneNode(Op::kMaxPool, {kBatch, 1, 9, 9}, {}, no_kernel),
                  {1, 1, 9, 9})
          .status()
          .message(),
      HasSubstr("kernel [] does not match the 2 spatial dims"));
}

TEST(ShapesTest, GemmWithTransposesAndBias) {
  Attributes a;
  a.trans_a = true;
  a.trans_b = true;
  Graph g = OneNode(Op::kGemm, {7, kBatch}, {{"b", {4, 7}}, {"c", {4}}}, a);
  EXPECT_EQ(*OutputShape(g, {7, 3}), (Shape{3, 4}));
  g.constants["c"] = Zeros({3, 1});
  EXPECT_EQ(*OutputShape(g, {7, 3}), (Shape{3, 4}));
  g.constants["c"] = Zeros({5});
  EXPECT_THAT(OutputShape(g, {7, 3}).status().message(),
              HasSubstr("C [5] does not broadcast to the output [3,4]"));
  g.nodes[0].attrs.trans_a = false;
  EXPECT_THAT(OutputShape(g, {7, 3}).status().message(),
              HasSubstr("has K = 3 but B [4,7] (transposed) has K = 7"));
}

TEST(ShapesTest, MatMulWithBatchedA) {
  Graph g = OneNode(Op::kMatMul, {kBatch, 2, 5}, {{"b", {5, 3}}});
  EXPECT_EQ(*OutputShape(g, {4, 2, 5}), (Shape{4, 2, 3}));
  g.inputs[0].shape = {};
  EXPECT_EQ(*OutputShape(g, {5}), (Shape{3}));
  EXPECT_THAT(OutputShape(g, {4, 4}).status().message(),
              HasSubstr("disagree on K"));
}

TEST(ShapesTest, BroadcastingAddAndMul) {
  EXPECT_EQ(
      *OutputShape(OneNode(Op::kAdd, {}, {{"c", {3, 1, 1}}}), {2, 3, 4, 5}),
      (Shape{2, 3, 4, 5}));
  EXPECT_EQ(*OutputShape(OneNode(Op::kMul, {}, {{"c", {1, 6}}}), {4, 1}),
            (Shape{4, 6}));
  EXPECT_EQ(*OutputShape(OneNode(Op::kMul, {}, {{"c", {}}}), {4, 1}),
            (Shape{4, 1}));
  EXPECT_THAT(OutputShape(OneNode(Op::kAdd, {}, {{"c", {3}}}), {2, 4})
                  .status()
                  .message(),
              AllOf(HasSubstr("node 'n' (Add)"),
                    HasSubstr("[2,4] and [3] do not broadcast")));
}

TEST(ShapesTest, ConcatFlattenReshapeTranspose) {
  Attributes a;
  a.axis = 1;
  EXPECT_EQ(
      *OutputShape(OneNode(Op::kConcat, {}, {{"c", {2, 5, 3}}}, a), {2, 4, 3}),
      (Shape{2, 9, 3}));
  EXPECT_THAT(
      OutputShape(OneNode(Op::kConcat, {}, {{"c", {2, 5, 4}}}, a), {2, 4, 3})
          .status()
          .message(),
      HasSubstr("input 1 'c' has shape [2,5,4]"));

  Attributes f;
  f.axis = 2;
  EXPECT_EQ(*OutputShape(OneNode(Op::kFlatten, {}, {}, f), {2, 3, 4, 5}),
            (Shape{6, 20}));
  f.axis = 0;
  EXPECT_EQ(*OutputShape(OneNode(Op::kFlatten, {}, {}, f), {2, 3}),
            (Shape{1, 6}));

  Attributes r;
  r.shape = {0, -1, 2};
  EXPECT_EQ(*OutputShape(OneNode(Op::kReshape, {}, {}, r), {3, 4, 5}),
            (Shape{3, 10, 2}));
  r.shape = {-1, 7};
  EXPECT_THAT(OutputShape(OneNode(Op::kReshape, {}, {}, r), {3, 4, 5})
                  .status()
                  .message(),
              HasSubstr("cannot reshape input [3,4,5] (60 elements)"));

  Attributes t;
  t.perm = {0, 2, 3, 1};
  EXPECT_EQ(*OutputShape(OneNode(Op::kTranspose, {}, {}, t), {1, 2, 3, 4}),
            (Shape{1, 3, 4, 2}));
  EXPECT_EQ(*OutputShape(OneNode(Op::kTranspose, {}, {}, {}), {1, 2, 3}),
            (Shape{3, 2, 1}));
  t.perm = {0, 0, 1, 2};
  EXPECT_THAT(OutputShape(OneNode(Op::kTranspose, {}, {}, t), {1, 2, 3, 4})
                  .status()
                  .message(),
              HasSubstr("not a permutation"));
}

TEST(ShapesTest, PadSoftmaxGlobalPoolBatchNormElementwise) {
  Attributes p;
  p.pads = {0, 1, 2, -1, 0, 0, 3, 0};
  EXPECT_EQ(*OutputShape(OneNode(Op::kPad, {}, {}, p), {1, 2, 3, 4}),
            (Shape{1, 3, 8, 3}));
  p.pads = {1, 1};
  EXPECT_THAT(
      OutputShape(OneNode(Op::kPad, {}, {}, p), {1, 2}).status().message(),
      HasSubstr("needs 4"));

  Attributes s;
  s.axis = 3;
  EXPECT_THAT(OutputShape(OneNode(Op::kSoftmax, {}, {}, s), {2, 3, 4})
                  .status()
                  .message(),
              HasSubstr("axis 3 is out of range"));
  s.axis = 2;
  EXPECT_EQ(*OutputShape(OneNode(Op::kSoftmax, {}, {}, s), {2, 3, 4}),
            (Shape{2, 3, 4}));

  EXPECT_EQ(*OutputShape(OneNode(Op::kGlobalAveragePool, {}, {}), {2, 3, 7, 5}),
            (Shape{2, 3, 1, 1}));
  Graph bn = OneNode(Op::kBatchNorm, {},
                     {{"s", {3}}, {"t", {3}}, {"u", {3}}, {"v", {4}}});
  EXPECT_THAT(OutputShape(bn, {2, 3, 4, 4}).status().message(),
              HasSubstr("var has shape [4] but the input [2,3,4,4] has 3"));
  for (Op op :
       {Op::kRelu, Op::kClip, Op::kLeakyRelu, Op::kSigmoid, Op::kIdentity}) {
    EXPECT_EQ(*OutputShape(OneNode(op, {}, {}), {2, 3}), (Shape{2, 3}));
  }
}

TEST(ShapesTest, InputShapesAreCheckedAgainstTheGraph) {
  Graph g = OneNode(Op::kRelu, {kBatch, 3, 8, 8}, {});
  EXPECT_TRUE(InferShapes(g, {{"x", {7, 3, 8, 8}}}).ok());
  auto s = InferShapes(g, {{"x", {7, 3, 8, 9}}});
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.status().message(),
              HasSubstr("input 'x' has shape [7,3,8,9] but the graph expects "
                        "[-1,3,8,8]"));
  EXPECT_THAT(InferShapes(g, {{"x", {3, 8, 8}}}).status().message(),
              HasSubstr("input 'x'"));
  EXPECT_THAT(InferShapes(g, {}).status().message(),
              HasSubstr("no shape given for input 'x'"));
  EXPECT_THAT(
      InferShapes(g, {{"x", {1, 3, 8, 8}}, {"z", {1}}}).status().message(),
      HasSubstr("'z', which is not an input"));
}

TEST(ShapesTest, StructuralErrors) {
  Graph g = OneNode(Op::kRelu, {}, {});
  g.nodes[0].inputs = {"nope"};
  EXPECT_THAT(InferShapes(g, {{"x", {1}}}).status().message(),
              HasSubstr("node 'n' (Relu): input 'nope' is not"));
  g = OneNode(Op::kAdd, {}, {});
  EXPECT_THAT(InferShapes(g, {{"x", {1}}}).status().message(),
              HasSubstr("expects 2 inputs but has 1"));
  g = OneNode(Op::kRelu, {}, {});
  g.outputs[0].name = "missing";
  EXPECT_THAT(InferShapes(g, {{"x", {1}}}).status().message(),
              HasSubstr("graph output 'missing'"));
  g = OneNode(Op::kRelu, {}, {});
  g.outputs[0].shape = {kBatch, 4};
  EXPECT_THAT(InferShapes(g, {{"x", {2, 3}}}).status().message(),
              HasSubstr("graph output 'y' has shape [2,3]"));
  g = OneNode(Op::kRelu, {}, {});
  g.nodes.push_back(g.nodes[0]);
  g.nodes[1].name = "again";
  EXPECT_THAT(InferShapes(g, {{"x", {1}}}).status().message(),
              HasSubstr("node 'again' (Relu): output 'y' is already defined"));
}

TEST(ShapesTest, BroadcastShapesAndHelpers) {
  EXPECT_EQ(*BroadcastShapes(Shape{5, 1, 3}, Shape{4, 1}), (Shape{5, 4, 3}));
  EXPECT_FALSE(BroadcastShapes(Shape{2}, Shape{3}).ok());
  EXPECT_EQ(ShapeToString(Shape{1, -1, 3}), "[1,-1,3]");
  EXPECT_EQ(NumElements(Shape{}), 1);
  EXPECT_EQ(NumElements(Shape{2, 3, 4}), 24);
}

}  // namespace
}  // namespace esb::graph
