#include "core/runtime/executor.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/graph/passes.h"
#include "core/graph/shapes.h"
#include "core/runtime/batch_slices.h"
#include "core/runtime/cpu_paths.h"
#include "core/runtime/reference.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::runtime {
namespace {

using graph::Activation;
using graph::Attributes;
using graph::Graph;
using graph::kBatch;
using graph::Node;
using graph::Op;
using graph::Tensor;
using ::testing::AllOf;
using ::testing::HasSubstr;
using Shape = std::vector<int64_t>;

Tensor Random(Shape shape, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  Tensor t;
  t.shape = std::move(shape);
  t.data.resize(t.size());
  for (float& v : t.data) v = dist(rng);
  return t;
}

Tensor Values(Shape shape, std::vector<float> data) {
  Tensor t;
  t.shape = std::move(shape);
  t.data = std::move(data);
  return t;
}

// |a - e| <= atol + rtol * |e| elementwise, shapes equal.
void ExpectClose(const Tensor& actual, const Tensor& expected,
                 const std::string& what) {
  ASSERT_EQ(actual.shape, expected.shape) << what;
  ASSERT_EQ(actual.data.size(), expected.data.size()) << what;
  int reported = 0;
  for (size_t i = 0; i < actual.data.size(); ++i) {
    const float a = actual.data[i], e = expected.data[i];
    if (!(std::abs(a - e) <= 1e-5f + 1e-4f * std::abs(e)) && reported++ < 5) {
      ADD_FAILURE() << what << ": element " << i << " is " << a << ", expected "
                    << e;
    }
  }
}

// A graph "x" -> node "n" (reading x and the constants) -> "y".
Graph OneNode(Op op, Shape x_shape,
              std::vector<std::pair<std::string, Tensor>> constants,
              Attributes attrs = {}) {
  Graph g;
  g.inputs.push_back({"x", std::move(x_shape)});
  Node node{"n", op, {"x"}, {"y"}, std::move(attrs)};
  for (auto& [name, tensor] : constants) {
    node.inputs.push_back(name);
    g.constants[name] = std::move(tensor);
  }
  g.nodes.push_back(std::move(node));
  g.outputs.push_back({"y", {}});
  return g;
}

// Runs `inputs` through a fresh executor and the reference; compares.
void CheckAgainstReference(const Graph& g, const std::vector<Tensor>& inputs,
                           const std::string& what,
                           const ExecutorOptions& options = {}) {
  auto executor = Executor::Create(g, options);
  ASSERT_TRUE(executor.ok()) << what << ": " << executor.status();
  auto actual = (*executor)->Run(inputs);
  ASSERT_TRUE(actual.ok()) << what << ": " << actual.status();
  auto expected = ReferenceRun(g, inputs);
  ASSERT_TRUE(expected.ok()) << what << ": " << expected.status();
  ASSERT_EQ(actual->size(), expected->size());
  for (size_t i = 0; i < actual->size(); ++i) {
    ExpectClose((*actual)[i], (*expected)[i], what);
  }
}

// The same graph at batch 1 and 5 (each through the reference).
// The steps of `g`'s plan at batch 1 (Executor::step_kinds), one a line;
// `per_item` holds each input's shape without the batch.
std::string StepsAtBatchOne(const Graph& g,
                            const std::vector<Shape>& per_item) {
  auto executor = Executor::Create(g);
  if (!executor.ok()) return executor.status().ToString();
  std::vector<Shape> shapes = per_item;
  for (Shape& shape : shapes) shape.insert(shape.begin(), 1);
  return absl::StrJoin((*executor)->step_kinds(shapes), "\n");
}

void CheckBatches(const Graph& g, const Shape& per_item, uint32_t seed,
                  const std::string& what) {
  for (int64_t batch : {1, 5}) {
    Shape shape = per_item;
    shape.insert(shape.begin(), batch);
    CheckAgainstReference(g, {Random(shape, seed)},
                          what + " batch " + std::to_string(batch));
  }
}

// ---------------------------------------------------------------------------
// The reference itself, on values worked out by hand.

TEST(ReferenceTest, ConvAndCeilModeAveragePoolByHand) {
  Attributes a;
  a.pads = {1, 0, 0, 0};  // One row of zeros on top.
  Graph conv = OneNode(
      Op::kConv, {1, 1, 2, 2},
      {{"w", Values({1, 1, 2, 1}, {1, 10})}, {"b", Values({1}, {0.5f})}}, a);
  auto y = ReferenceRun(conv, {Values({1, 1, 2, 2}, {1, 2, 3, 4})});
  ASSERT_TRUE(y.ok()) << y.status();
  // Rows: [0,0],[1,2],[3,4]; y[r] = row[r] + 10 * row[r + 1] + 0.5.
  EXPECT_EQ((*y)[0].data, (std::vector<float>{10.5f, 20.5f, 31.5f, 42.5f}));

  Attributes p;
  p.kernel = {1, 2};
  p.strides = {1, 2};
  p.pads = {0, 1, 0, 0};
  p.ceil_mode = true;
  p.count_include_pad = true;
  Graph pool = OneNode(Op::kAveragePool, {1, 1, 1, 4}, {}, p);
  // Padded row: [pad, 1, 2, 3, 4]; windows [pad,1], [2,3], [4, overhang]:
  // the pad counts, the overhang does not.
  y = ReferenceRun(pool, {Values({1, 1, 1, 4}, {1, 2, 3, 4})});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ((*y)[0].data, (std::vector<float>{0.5f, 2.5f, 4.0f}));
}

TEST(ReferenceTest, HardSigmoidAndHardSwishByHand) {
  const Tensor x = Values({1, 8}, {-4, -3, -1, 0, 1, 2, 3, 4});
  Attributes a;
  a.alpha = 0.2f;
  a.beta = 0.5f;
  auto y = ReferenceRun(OneNode(Op::kHardSigmoid, {1, 8}, {}, a), {x});
  ASSERT_TRUE(y.ok()) << y.status();
  ExpectClose((*y)[0], Values({1, 8}, {0, 0, 0.3f, 0.5f, 0.7f, 0.9f, 1, 1}),
              "hard sigmoid");
  // x * clip(x / 6 + 1/2, 0, 1).
  y = ReferenceRun(OneNode(Op::kHardSwish, {1, 8}, {}), {x});
  ASSERT_TRUE(y.ok()) << y.status();
  ExpectClose((*y)[0],
              Values({1, 8}, {0, 0, -1.0f / 3, 0, 2.0f / 3, 5.0f / 3, 3, 4}),
              "hard swish");
  // The executor agrees past both knees too.
  for (Op op : {Op::kHardSigmoid, Op::kHardSwish}) {
    CheckAgainstReference(OneNode(op, {1, 8}, {}, a), {x},
                          std::string(graph::OpName(op)) + " by hand");
  }
}

// ---------------------------------------------------------------------------
// Conv.

struct ConvCase {
  std::string name;
  Shape x;  // Without the batch.
  Shape w;
  int64_t group;
  Shape strides, pads, dilations;
  bool bias;
  Activation activation;
};

// One Conv node for `c`, its weights (and bias) drawn from ++seed.
Graph ConvGraph(const ConvCase& c, uint32_t& seed) {
  Attributes a;
  a.group = c.group;
  a.strides = c.strides;
  a.pads = c.pads;
  a.dilations = c.dilations;
  a.activation = c.activation;
  std::vector<std::pair<std::string, Tensor>> constants = {
      {"w", Random(c.w, ++seed)}};
  if (c.bias) constants.push_back({"b", Random({c.w[0]}, ++seed)});
  Shape declared = c.x;
  declared.insert(declared.begin(), kBatch);
  return OneNode(Op::kConv, declared, constants, a);
}

TEST(ExecutorTest, ConvVariants) {
  const Activation none;
  const Activation relu{Activation::Kind::kRelu, 0, 0};
  const Activation relu6{Activation::Kind::kClip, 0.0f, 6.0f};
  const std::vector<ConvCase> cases = {
      {"3x3 same",
       {3, 8, 8},
       {16, 3, 3, 3},
       1,
       {},
       {1, 1, 1, 1},
       {},
       true,
       none},
      {"strided asymmetric pads",
       {4, 9, 10},
       {8, 4, 3, 3},
       1,
       {2, 2},
       {0, 1, 2, 0},
       {},
       true,
       relu},
      {"dilated",
       {5, 11, 12},
       {6, 5, 3, 3},
       1,
       {1, 1},
       {2, 2, 2, 1},
       {2, 3},
       false,
       none},
      {"grouped",
       {8, 7, 7},
       {12, 4, 3, 3},
       2,
       {1, 2},
       {1, 0, 1, 2},
       {},
       true,
       relu6},
      {"depthwise",
       {16, 9, 9},
       {16, 1, 3, 3},
       16,
       {2, 2},
       {1, 1, 0, 0},
       {},
       true,
       relu6},
      {"depthwise multiplier 2",
       {6, 8, 8},
       {12, 1, 5, 5},
       6,
       {1, 1},
       {2, 2, 2, 2},
       {2, 1},
       true,
       none},
      {"1x1", {32, 5, 5}, {17, 32, 1, 1}, 1, {}, {}, {}, true, relu},
      {"rectangular kernel",
       {3, 10, 6},
       {4, 3, 1, 5},
       1,
       {3, 1},
       {0, 2, 0, 3},
       {},
       false,
       none},
  };
  uint32_t seed = 1;
  for (const ConvCase& c : cases) {
    const Graph g = ConvGraph(c, seed);
    CheckBatches(g, c.x, ++seed, c.name);
  }
}

// Kernels whose outer taps land only in the zero padding (atrous convs
// dilated past a small map) run cropped to the taps that reach the input;
// the results must be the whole kernel's, with the weights constant or a
// graph input, and where no crop applies (every tap live at some output,
// all taps dead, or a crop that would need negative padding).
TEST(ExecutorTest, ConvsWithTapsOnlyInThePaddingMatchTheReference) {
  const Activation none;
  const std::vector<ConvCase> cases = {
      {"dilated past the map",
       {6, 5, 5},
       {8, 6, 3, 3},
       1,
       {},
       {6, 6, 6, 6},
       {6, 6},
       true,
       none},
      {"one dim cropped",
       {3, 5, 6},
       {4, 3, 3, 3},
       1,
       {},
       {8, 1, 8, 1},
       {8, 1},
       true,
       none},
      {"padding after only",
       {3, 5, 5},
       {4, 3, 3, 3},
       1,
       {},
       {0, 0, 14, 14},
       {7, 7},
       false,
       none},
      {"strided",
       {2, 9, 9},
       {3, 2, 3, 3},
       1,
       {2, 2},
       {10, 10, 10, 10},
       {10, 10},
       true,
       none},
      {"depthwise",
       {8, 4, 4},
       {8, 1, 3, 3},
       8,
       {},
       {5, 5, 5, 5},
       {5, 5},
       true,
       {Activation::Kind::kRelu, 0, 0}},
      {"every tap live somewhere",
       {4, 7, 7},
       {5, 4, 3, 3},
       1,
       {},
       {5, 5, 5, 5},
       {5, 5},
       true,
       none},
      {"every tap dead",
       {3, 2, 6},
       {4, 3, 3, 3},
       1,
       {},
       {1, 1, 8, 1},
       {5, 1},
       true,
       none},
      {"crop needing negative pads",
       {3, 6, 6},
       {4, 3, 3, 3},
       1,
       {},
       {1, 1, 4, 1},
       {5, 1},
       true,
       none},
  };
  uint32_t seed = 170;
  for (const ConvCase& c : cases) {
    const Graph g = ConvGraph(c, seed);
    CheckBatches(g, c.x, ++seed, c.name);
    // The same weights as a graph input.
    Graph given = g;
    given.inputs.push_back({"w", c.w});
    const Tensor w = given.constants.at("w");
    given.constants.erase("w");
    for (int64_t batch : {1, 3}) {
      Shape x = c.x;
      x.insert(x.begin(), batch);
      CheckAgainstReference(given, {Random(x, ++seed), w},
                            c.name + ", weights given");
    }
  }
}

// Strided convs over few channels, which oneDNN would run as a gemm, run
// as stride-1 convs over the input's space-to-depth image where that adds
// few zero taps (AlexNet's 11x11 stride 4 over RGB); the rest (3x3 stride
// 2) as before. Both must give the reference's results.
TEST(ExecutorTest, StridedConvsOverFewChannelsMatchTheReference) {
  const Activation none;
  const Activation relu{Activation::Kind::kRelu, 0, 0};
  const std::vector<ConvCase> cases = {
      {"alexnet's first",
       {3, 35, 35},
       {8, 3, 11, 11},
       1,
       {4, 4},
       {2, 2, 2, 2},
       {},
       true,
       relu},
      {"patches", {3, 16, 16}, {6, 3, 4, 4}, 1, {4, 4}, {}, {}, false, none},
      {"uneven strides and pads",
       {2, 30, 27},
       {5, 2, 11, 9},
       1,
       {4, 3},
       {3, 1, 2, 0},
       {},
       true,
       none},
      {"5x5 stride 2",
       {5, 13, 12},
       {7, 5, 5, 5},
       1,
       {2, 2},
       {2, 2, 1, 1},
       {},
       true,
       relu},
      {"3x3 stride 2",
       {3, 12, 12},
       {4, 3, 3, 3},
       1,
       {2, 2},
       {1, 1, 1, 1},
       {},
       true,
       none},
  };
  uint32_t seed = 190;
  for (const ConvCase& c : cases) {
    const Graph g = ConvGraph(c, seed);
    CheckBatches(g, c.x, ++seed, c.name);
    // Where oneDNN 2.6 was seen to run the first three as gemms (AVX2
    // without AVX-512), they take the rewrite: the image's loop, then the
    // conv.
    if (Avx2WithoutAvx512() &&
        (c.name == "alexnet's first" || c.name == "uneven strides and pads")) {
      EXPECT_THAT(StepsAtBatchOne(g, {c.x}),
                  ::testing::HasSubstr("node 'n' (Conv): loop\n"
                                       "node 'n' (Conv): convolution (jit"))
          << c.name;
    }
  }
  // The rewritten conv's result added into a residual (a sum post-op), and
  // its input the blocked output of another conv.
  Graph residual;
  residual.inputs.push_back({"x", {kBatch, 3, 35, 35}});
  residual.inputs.push_back({"s", {kBatch, 8, 8, 8}});
  residual.constants["w0"] = Random({3, 3, 1, 1}, 200);
  residual.constants["w1"] = Random({8, 3, 11, 11}, 201);
  residual.constants["w2"] = Random({8, 8, 1, 1}, 202);
  Attributes alexnet;
  alexnet.strides = {4, 4};
  alexnet.pads = {2, 2, 2, 2};
  residual.nodes.push_back({"c0", Op::kConv, {"x", "w0"}, {"c0"}, {}});
  residual.nodes.push_back({"c1", Op::kConv, {"c0", "w1"}, {"c1"}, alexnet});
  residual.nodes.push_back({"c2", Op::kConv, {"s", "w2"}, {"c2"}, {}});
  residual.nodes.push_back({"add", Op::kAdd, {"c1", "c2"}, {"y"}, {}});
  residual.outputs.push_back({"y", {}});
  for (int64_t batch : {1, 3}) {
    CheckAgainstReference(
        residual,
        {Random({batch, 3, 35, 35}, 203), Random({batch, 8, 8, 8}, 204)},
        absl::StrCat("into a residual, batch ", batch));
  }
}

// ---------------------------------------------------------------------------
// Gemm and MatMul.

TEST(ExecutorTest, GemmTransposesAlphaBetaAndBiasShapes) {
  struct Case {
    bool trans_a, trans_b;
    float alpha, beta;
    Shape c;  // Empty: no C.
    Activation activation;
  };
  const std::vector<Case> cases = {
      {false, false, 1.0f, 1.0f, {7}, {}},
      {false, true, 0.5f, 2.0f, {1, 7}, {Activation::Kind::kRelu, 0, 0}},
      {true, false, 1.5f, -1.0f, {4, 1}, {}},
      {true, true, -1.0f, 0.25f, {4, 7}, {Activation::Kind::kClip, -1, 1}},
      {false, false, 2.0f, 3.0f, {}, {}},
      {false, true, 1.0f, 0.5f, {1}, {}},
  };
  uint32_t seed = 100;
  for (const Case& c : cases) {
    Attributes a;
    a.trans_a = c.trans_a;
    a.trans_b = c.trans_b;
    a.alpha = c.alpha;
    a.beta = c.beta;
    a.activation = c.activation;
    std::vector<std::pair<std::string, Tensor>> constants = {
        {"b", Random(c.trans_b ? Shape{7, 9} : Shape{9, 7}, ++seed)}};
    if (!c.c.empty()) constants.push_back({"c", Random(c.c, ++seed)});
    const Shape x = c.trans_a ? Shape{9, 4} : Shape{4, 9};
    Graph g = OneNode(Op::kGemm, x, constants, a);
    CheckAgainstReference(
        g, {Random(x, ++seed)},
        "gemm trans " + std::to_string(c.trans_a) + std::to_string(c.trans_b));
  }
  // The batch is free when C has no rows.
  Graph g = OneNode(Op::kGemm, {kBatch, 9},
                    {{"b", Random({9, 3}, 1)}, {"c", Random({3}, 2)}});
  CheckBatches(g, {9}, 3, "gemm batch");
}

TEST(ExecutorTest, MatMulWithBatchedA) {
  Attributes a;
  a.activation = {Activation::Kind::kRelu, 0, 0};
  Graph g =
      OneNode(Op::kMatMul, {kBatch, 3, 10}, {{"b", Random({10, 6}, 4)}}, a);
  CheckBatches(g, {3, 10}, 5, "matmul 3-d");
  Graph g2 = OneNode(Op::kMatMul, {kBatch, 10}, {{"b", Random({10, 6}, 6)}});
  CheckBatches(g2, {10}, 7, "matmul 2-d");
}

// Products with 4 MiB of constant weights or more at one or two rows (a
// classifier head at batch 1) run a loop of their own instead of oneDNN's
// matmul; three rows and more run the matmul. Each must compute what the
// node does: Gemm with B either way round, alpha, beta and C of [M] or
// [1, M], with an activation, and MatMul with its Add absorbed as a bias.
// M = 1003 leaves a tail of three columns after the blocks of four.
TEST(ExecutorTest, LargeWeightProductsAtFewRowsMatchTheReference) {
  constexpr int64_t kK = 1100, kM = 1003;  // 4.2 MiB of weights.
  uint32_t seed = 200;
  for (bool trans_b : {false, true}) {
    for (const Shape& c : {Shape{kM}, Shape{1, kM}}) {
      Attributes a;
      a.trans_b = trans_b;
      a.alpha = 0.5f;
      a.beta = 2.0f;
      a.activation = trans_b ? Activation{Activation::Kind::kRelu, 0, 0}
                             : Activation{Activation::Kind::kClip, -3, 3};
      Graph g = OneNode(
          Op::kGemm, {kBatch, kK},
          {{"b", Random(trans_b ? Shape{kM, kK} : Shape{kK, kM}, ++seed)},
           {"c", Random(c, ++seed)}},
          a);
      for (int64_t rows : {1, 2, 3}) {
        CheckAgainstReference(g, {Random({rows, kK}, ++seed)},
                              absl::StrCat("gemm trans_b ", trans_b, " C rank ",
                                           c.size(), " rows ", rows));
      }
    }
  }
  Graph g;
  g.inputs.push_back({"x", {kBatch, kK}});
  g.constants["w"] = Random({kK, kM}, ++seed);
  g.constants["bias"] = Random({kM}, ++seed);
  g.nodes.push_back({"mm", Op::kMatMul, {"x", "w"}, {"p"}, {}});
  g.nodes.push_back({"add", Op::kAdd, {"p", "bias"}, {"y"}, {}});
  g.outputs.push_back({"y", {}});
  for (int64_t rows : {1, 2, 3}) {
    CheckAgainstReference(g, {Random({rows, kK}, ++seed)},
                          absl::StrCat("matmul + add rows ", rows));
  }
}

// ---------------------------------------------------------------------------
// BatchNormalization and elementwise activations.

TEST(ExecutorTest, BatchNorm) {
  Attributes a;
  a.epsilon = 1e-3f;
  for (const Shape& x : {Shape{6, 5, 4}, Shape{6}}) {
    Graph g = OneNode(Op::kBatchNorm, {},
                      {{"scale", Random({6}, 10)},
                       {"bias", Random({6}, 11)},
                       {"mean", Random({6}, 12)},
                       {"var", Random({6}, 13, 0.1f, 2.0f)}},
                      a);
    CheckBatches(g, x, 14, "batchnorm rank " + std::to_string(x.size() + 1));
  }
}

TEST(ExecutorTest, ElementwiseActivations) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<std::pair<std::string, Attributes>> cases;
  Attributes a;
  cases.push_back({"relu", a});
  cases.push_back({"sigmoid", a});
  a.alpha = 0.1f;
  cases.push_back({"leaky", a});
  a.min = -0.5f;
  a.max = 0.25f;
  cases.push_back({"clip", a});
  a.min = -inf;
  a.max = 0.3f;
  cases.push_back({"clip max only", a});
  a.min = -0.2f;
  a.max = inf;
  cases.push_back({"clip min only", a});
  // Steep enough that inputs in [-1, 1] reach both clipped ends.
  a.alpha = 2.0f;
  a.beta = 0.4f;
  cases.push_back({"hard sigmoid", a});
  cases.push_back({"hard swish", a});
  for (const auto& [name, attrs] : cases) {
    const Op op = name == "relu"           ? Op::kRelu
                  : name == "sigmoid"      ? Op::kSigmoid
                  : name == "leaky"        ? Op::kLeakyRelu
                  : name == "hard sigmoid" ? Op::kHardSigmoid
                  : name == "hard swish"   ? Op::kHardSwish
                                           : Op::kClip;
    Graph g = OneNode(op, {kBatch, 5, 3, 3}, {}, attrs);
    CheckBatches(g, {5, 3, 3}, 20, name);
  }
}

// Activations, pooling, BN and Add after a Conv see oneDNN's blocked layout.
TEST(ExecutorTest, OpsOnBlockedConvOutput) {
  for (Op op : {Op::kRelu,      Op::kSigmoid,     Op::kLeakyRelu,
                Op::kClip,      Op::kHardSigmoid, Op::kHardSwish,
                Op::kMaxPool,   Op::kAveragePool, Op::kGlobalAveragePool,
                Op::kBatchNorm, Op::kAdd,         Op::kMul,
                Op::kSub,       Op::kDiv,         Op::kConcat,
                Op::kTranspose, Op::kSoftmax,     Op::kFlatten,
                Op::kPad,       Op::kExpand,      Op::kResize,
                Op::kLayerNorm}) {
    Graph g;
    g.inputs.push_back({"x", {kBatch, 3, 9, 9}});
    g.constants["w"] = Random({20, 3, 3, 3}, 30);
    g.nodes.push_back({"conv", Op::kConv, {"x", "w"}, {"c"}, {}});
    Node node{"n", op, {"c"}, {"y"}, {}};
    node.attrs.min = -0.1f;
    node.attrs.max = 0.2f;
    node.attrs.kernel = {3, 3};
    node.attrs.strides = {2, 2};
    node.attrs.ceil_mode = true;
    node.attrs.perm = {0, 2, 3, 1};
    if (op == Op::kPad) node.attrs.pads = {0, 1, 0, 0, 0, 0, 2, 1};
    if (op == Op::kExpand) node.attrs.shape = {2, 1, 1, 1, 1};
    if (op == Op::kResize) {
      node.attrs.resize.mode = graph::ResizeMethod::Mode::kLinear;
      node.attrs.shape = {11, 5};
      node.attrs.scales = {1.0f, 1.0f, 11.0f / 7.0f, 5.0f / 7.0f};
    }
    if (op == Op::kLayerNorm) {
      node.attrs.axis = 1;
      g.constants["gamma"] = Random({20, 7, 7}, 35);
      g.constants["beta"] = Random({20, 7, 7}, 36);
      node.inputs.push_back("gamma");
      node.inputs.push_back("beta");
    }
    if (op == Op::kBatchNorm) {
      for (const char* p : {"s", "t", "u"}) {
        g.constants[p] = Random({20}, 31);
        node.inputs.push_back(p);
      }
      g.constants["v"] = Random({20}, 32, 0.5f, 1.0f);
      node.inputs.push_back("v");
    }
    if (op == Op::kAdd || op == Op::kConcat) node.inputs.push_back("c");
    if (op == Op::kMul || op == Op::kSub || op == Op::kDiv) {
      g.constants["m"] = op == Op::kDiv ? Random({20, 1, 1}, 33, 0.5f, 2.0f)
                                        : Random({20, 1, 1}, 33);
      node.inputs.push_back("m");
    }
    g.nodes.push_back(node);
    g.outputs.push_back({"y", {}});
    CheckBatches(g, {3, 9, 9}, 34,
                 "after conv: " + std::string(graph::OpName(op)));
  }
}

// RegNet's squeeze-excitation: a grouped conv of 8 channels per group
// (oneDNN picks 8-channel blocks for it) times a per-channel gate computed
// from it, and the same gate on an ungrouped conv's 16-channel blocks.
TEST(ExecutorTest, ChannelGateOnBlockedConvOutputs) {
  for (const int64_t group : {6, 1}) {
    Graph g;
    g.inputs.push_back({"x", {kBatch, 48, 10, 10}});
    g.constants["w"] = Random({48, 48 / group, 3, 3}, 51);
    Node conv{"conv", Op::kConv, {"x", "w"}, {"c"}, {}};
    conv.attrs.group = group;
    conv.attrs.pads = {1, 1, 1, 1};
    g.nodes.push_back(conv);
    g.nodes.push_back({"pool", Op::kGlobalAveragePool, {"c"}, {"p"}, {}});
    g.nodes.push_back({"gate", Op::kSigmoid, {"p"}, {"s"}, {}});
    g.nodes.push_back({"excite", Op::kMul, {"c", "s"}, {"y"}, {}});
    g.outputs.push_back({"y", {}});
    CheckBatches(g, {48, 10, 10}, 52, "group " + std::to_string(group));
  }
}

// Epilogues the executor fuses into the producing primitive (SiLU, the
// opset-13 HardSwish, a Linear's bias Add then Gelu) compute what the
// separate nodes do, also when an intermediate is a graph output and so
// cannot be fused.
TEST(ExecutorTest, FusedEpiloguesMatchTheReference) {
  for (const bool expose : {false, true}) {
    Graph g;
    g.inputs.push_back({"x", {kBatch, 3, 9, 9}});
    g.constants["w1"] = Random({16, 3, 3, 3}, 61);
    g.constants["w2"] = Random({24, 16, 1, 1}, 62);
    g.constants["m"] = Random({7, 12}, 63);
    g.constants["b"] = Random({12}, 64);
    g.nodes.push_back({"conv1", Op::kConv, {"x", "w1"}, {"c1"}, {}});
    g.nodes.push_back({"sig", Op::kSigmoid, {"c1"}, {"s1"}, {}});
    g.nodes.push_back({"silu", Op::kMul, {"s1", "c1"}, {"a1"}, {}});
    g.nodes.push_back({"conv2", Op::kConv, {"a1", "w2"}, {"c2"}, {}});
    Attributes hard;
    hard.alpha = 1.0f / 6.0f;
    hard.beta = 0.5f;
    g.nodes.push_back({"hsig", Op::kHardSigmoid, {"c2"}, {"h2"}, hard});
    g.nodes.push_back({"hswish", Op::kMul, {"c2", "h2"}, {"a2"}, {}});
    g.nodes.push_back({"fc", Op::kMatMul, {"a2", "m"}, {"f"}, {}});
    g.nodes.push_back({"bias", Op::kAdd, {"b", "f"}, {"fb"}, {}});
    g.nodes.push_back({"gelu", Op::kGelu, {"fb"}, {"y"}, {}});
    g.outputs.push_back({"y", {}});
    if (expose) {
      g.outputs.push_back({"s1", {}});
      g.outputs.push_back({"f", {}});
    }
    CheckBatches(g, {3, 9, 9}, 65, expose ? "exposed" : "fused");
  }
}

// x * Sigmoid(x) and x * HardSigmoid(x) on a graph input, which has no
// producer to fuse them into: each pair runs as one swish or hardswish pass
// (on either operand order), a gate that is also a graph output as its own
// nodes, and a HardSigmoid of other parameters as two passes.
TEST(ExecutorTest, StandaloneGatedActivationsMatchTheReference) {
  for (const bool expose : {false, true}) {
    Graph g;
    g.inputs.push_back({"x", {kBatch, 5, 7}});
    g.inputs.push_back({"z", {kBatch, 5, 7}});
    Attributes hard;
    hard.alpha = 1.0f / 6.0f;
    hard.beta = 0.5f;
    g.nodes.push_back({"sig", Op::kSigmoid, {"x"}, {"s"}, {}});
    g.nodes.push_back({"silu", Op::kMul, {"x", "s"}, {"a"}, {}});
    g.nodes.push_back({"hsig", Op::kHardSigmoid, {"z"}, {"h"}, hard});
    g.nodes.push_back({"hswish", Op::kMul, {"h", "z"}, {"b"}, {}});
    Attributes other;
    other.alpha = 0.3f;
    other.beta = 0.4f;
    g.nodes.push_back({"hsig2", Op::kHardSigmoid, {"b"}, {"y"}, other});
    g.outputs.push_back({"a", {}});
    g.outputs.push_back({"y", {}});
    if (expose) g.outputs.push_back({"h", {}});
    for (int64_t batch : {1, 4}) {
      CheckAgainstReference(g,
                            {Random({batch, 5, 7}, 150, -8.0f, 8.0f),
                             Random({batch, 5, 7}, 151, -8.0f, 8.0f)},
                            absl::StrCat("gated, exposed ", expose));
    }
  }
}

// A residual Add after a conv runs as the conv's sum post-op, writing into
// the skip value's buffer. Each case must compute what the nodes do: the
// fused block (skip from an earlier conv, Relu after the Add), a skip that
// a later node or a view of it still reads, a skip that is a graph output,
// a skip that is the conv's own input, and a skip computed after the conv.
TEST(ExecutorTest, ResidualAddsMatchTheReference) {
  enum class Case {
    kFused,
    kReadLater,
    kViewReadLater,
    kOutput,
    kOwnInput,
    kSkipAfter
  };
  for (const Case c : {Case::kFused, Case::kReadLater, Case::kViewReadLater,
                       Case::kOutput, Case::kOwnInput, Case::kSkipAfter}) {
    Graph g;
    g.inputs.push_back({"x", {kBatch, 16, 8, 8}});
    g.constants["w0"] = Random({16, 16, 1, 1}, 71);
    g.constants["w1"] = Random({16, 16, 3, 3}, 72);
    Attributes same;
    same.pads = {1, 1, 1, 1};
    Node skip{"skip_conv", Op::kConv, {"x", "w0"}, {"s"}, {}};
    skip.attrs.activation.kind = graph::Activation::Kind::kRelu;
    const std::string conv_in = c == Case::kOwnInput ? "s" : "x";
    Node main{"main_conv", Op::kConv, {conv_in, "w1"}, {"m"}, same};
    if (c == Case::kSkipAfter) {
      g.nodes.push_back(main);
      g.nodes.push_back(skip);
    } else {
      g.nodes.push_back(skip);
      g.nodes.push_back(main);
    }
    g.nodes.push_back({"add", Op::kAdd, {"m", "s"}, {"a"}, {}});
    g.nodes.push_back({"relu", Op::kRelu, {"a"}, {"y"}, {}});
    g.outputs.push_back({"y", {}});
    if (c == Case::kReadLater) {
      g.nodes.push_back({"again", Op::kMul, {"s", "y"}, {"z"}, {}});
      g.outputs.push_back({"z", {}});
    }
    if (c == Case::kViewReadLater) {
      Attributes flat;
      flat.axis = 1;
      g.nodes.push_back({"view", Op::kFlatten, {"s"}, {"f"}, flat});
      g.nodes.push_back({"view_relu", Op::kSigmoid, {"f"}, {"z"}, {}});
      g.outputs.push_back({"z", {}});
    }
    if (c == Case::kOutput) g.outputs.push_back({"s", {}});
    CheckBatches(g, {16, 8, 8}, 73,
                 "residual case " + std::to_string(static_cast<int>(c)));
  }
}

// A blocked Conv output meets a plain graph input, either side of the op;
// binary ops bring both into one layout rather than take oneDNN's
// reference kernel.
TEST(ExecutorTest, MixedLayouts) {
  for (Op op : {Op::kAdd, Op::kMul, Op::kConcat}) {
    for (bool plain_first : {true, false}) {
      Graph g;
      g.inputs = {{"x", {kBatch, 3, 9, 9}}, {"z", {kBatch, 20, 7, 7}}};
      g.constants["w"] = Random({20, 3, 3, 3}, 35);
      g.nodes.push_back({"conv", Op::kConv, {"x", "w"}, {"c"}, {}});
      g.nodes.push_back({"n",
                         op,
                         plain_first ? std::vector<std::string>{"z", "c"}
                                     : std::vector<std::string>{"c", "z"},
                         {"y"},
                         {}});
      g.outputs.push_back({"y", {}});
      const std::string what =
          absl::StrCat("mixed layouts: ", graph::OpName(op),
                       plain_first ? ", plain first" : ", blocked first");
      for (int64_t batch : {1, 5}) {
        CheckAgainstReference(
            g, {Random({batch, 3, 9, 9}, 36), Random({batch, 20, 7, 7}, 37)},
            what);
      }
      if (op != Op::kConcat) {
        const std::string steps = StepsAtBatchOne(g, {{3, 9, 9}, {20, 7, 7}});
        EXPECT_THAT(steps, ::testing::HasSubstr("node 'n' (" +
                                                std::string(graph::OpName(op)) +
                                                "): binary ("))
            << what;
        EXPECT_THAT(steps,
                    ::testing::Not(::testing::HasSubstr("): binary (ref")))
            << what << "\n"
            << steps;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Pooling.

TEST(ExecutorTest, MaxPool) {
  struct Case {
    Shape kernel, strides, pads, dilations;
    bool ceil;
  };
  const std::vector<Case> cases = {
      {{2, 2}, {2, 2}, {}, {}, false},
      {{3, 3}, {2, 2}, {1, 1, 1, 1}, {}, false},
      {{3, 3}, {2, 2}, {}, {}, true},
      {{3, 2}, {2, 3}, {1, 0, 0, 1}, {}, true},
      {{3, 3}, {1, 1}, {2, 2, 2, 2}, {2, 2}, false},
      {{2, 3}, {2, 2}, {}, {2, 1}, true},
  };
  int i = 0;
  for (const Case& c : cases) {
    Attributes a;
    a.kernel = c.kernel;
    a.strides = c.strides;
    a.pads = c.pads;
    a.dilations = c.dilations;
    a.ceil_mode = c.ceil;
    Graph g = OneNode(Op::kMaxPool, {kBatch, 4, 11, 10}, {}, a);
    CheckBatches(g, {4, 11, 10}, 40 + i, "maxpool case " + std::to_string(i));
    // After a conv the pool reads a channels-last or channel-blocked
    // output: 20 channels leave the last block of 8 or 16 part-filled, 16
    // fill them.
    for (const int64_t channels : {20, 16}) {
      Graph after;
      after.inputs.push_back({"x", {kBatch, 3, 11, 10}});
      after.constants["w"] = Random({channels, 3, 1, 1}, 50 + i);
      after.nodes.push_back({"conv", Op::kConv, {"x", "w"}, {"c"}, {}});
      after.nodes.push_back({"pool", Op::kMaxPool, {"c"}, {"y"}, a});
      after.outputs.push_back({"y", {}});
      CheckBatches(after, {3, 11, 10}, 60 + i,
                   absl::StrCat("maxpool case ", i, " after a conv of ",
                                channels, " channels"));
      if (Avx2WithoutAvx512()) {
        EXPECT_THAT(StepsAtBatchOne(after, {{3, 11, 10}}),
                    ::testing::HasSubstr("node 'pool' (MaxPool): loop"))
            << "case " << i;
      }
    }
    // From the plain input: a reorder to channels-last, then the loop.
    if (Avx2WithoutAvx512()) {
      EXPECT_THAT(StepsAtBatchOne(g, {{4, 11, 10}}),
                  ::testing::HasSubstr("node 'n' (MaxPool): loop"))
          << "case " << i;
    }
    ++i;
  }
}

TEST(ExecutorTest, AveragePoolCountIncludePadAndCeilMode) {
  int i = 0;
  for (bool include : {false, true}) {
    for (bool ceil : {false, true}) {
      for (const Shape& pads :
           {Shape{}, Shape{1, 0, 0, 1}, Shape{1, 1, 1, 1}}) {
        Attributes a;
        a.kernel = {3, 3};
        a.strides = {2, 2};
        a.pads = pads;
        a.ceil_mode = ceil;
        a.count_include_pad = include;
        Graph g = OneNode(Op::kAveragePool, {kBatch, 3, 10, 9}, {}, a);
        CheckBatches(g, {3, 10, 9}, 50 + i,
                     "avgpool include " + std::to_string(include) + " ceil " +
                         std::to_string(ceil) + " case " + std::to_string(i));
        ++i;
      }
    }
  }
}

TEST(ExecutorTest, GlobalAveragePool) {
  Graph g = OneNode(Op::kGlobalAveragePool, {kBatch, 7, 5, 6}, {});
  CheckBatches(g, {7, 5, 6}, 60, "gap");
}

// ---------------------------------------------------------------------------
// Add and Mul with broadcasting.

// The ops LayerNorm and GELU decompose into, on inputs in their domains.
TEST(ExecutorTest, SqrtErfAndPow) {
  for (int64_t batch : {1, 4}) {
    const std::string b = " batch " + std::to_string(batch);
    const Tensor positive = Random({batch, 3, 5}, 90, 0.05f, 4.0f);
    CheckAgainstReference(OneNode(Op::kSqrt, {kBatch, 3, 5}, {}), {positive},
                          "sqrt" + b);
    CheckAgainstReference(OneNode(Op::kErf, {kBatch, 3, 5}, {}),
                          {Random({batch, 3, 5}, 91, -3.0f, 3.0f)}, "erf" + b);
    // A constant scalar exponent takes oneDNN's eltwise pow; any other the
    // broadcasting loop.
    for (float e : {2.0f, 0.5f, -1.5f, 3.0f}) {
      CheckAgainstReference(
          OneNode(Op::kPow, {kBatch, 3, 5}, {{"e", Values({}, {e})}}),
          {positive}, "pow " + std::to_string(e) + b);
    }
    CheckAgainstReference(
        OneNode(Op::kPow, {kBatch, 3, 5}, {{"e", Random({3, 1}, 92, -2, 2)}}),
        {positive}, "pow, exponent per row" + b);
    Graph g = OneNode(Op::kPow, {kBatch, 3, 5}, {{"e", Random({5}, 93)}});
    std::swap(g.nodes[0].inputs[0], g.nodes[0].inputs[1]);
    // Constant base, computed exponent.
    g.constants["e"] = Random({5}, 94, 0.5f, 2.0f);
    CheckAgainstReference(g, {Random({batch, 3, 5}, 95, -2, 2)},
                          "pow of a constant base" + b);
  }
  // By hand, through the executor: erf(0) = 0, erf(1) = 0.8427007.
  auto executor = Executor::Create(OneNode(Op::kErf, {1, 3}, {}));
  ASSERT_TRUE(executor.ok()) << executor.status();
  auto y = (*executor)->Run({Values({1, 3}, {0.0f, 1.0f, -1.0f})});
  ASSERT_TRUE(y.ok()) << y.status();
  ExpectClose((*y)[0], Values({1, 3}, {0.0f, 0.8427007f, -0.8427007f}),
              "erf by hand");
}

TEST(ExecutorTest, ReduceMeanSumAndMax) {
  struct Case {
    std::vector<int64_t> axes;
    bool keep_dims;
  };
  // LayerNorm's last axis, a global pool's spatial dims, the channels, and
  // everything but the batch; with and without the reduced dims.
  const std::vector<Case> cases = {
      {{3}, true}, {{2, 3}, true}, {{1}, false}, {{1, 2, 3}, false}};
  for (Op op : {Op::kReduceMean, Op::kReduceSum, Op::kReduceMax}) {
    for (const Case& c : cases) {
      Attributes a;
      a.axes = c.axes;
      a.keep_dims = c.keep_dims;
      CheckBatches(OneNode(op, {kBatch, 4, 3, 5}, {}, a), {4, 3, 5}, 96,
                   std::string(graph::OpName(op)) + " axes " +
                       graph::ShapeToString(c.axes) +
                       (c.keep_dims ? " kept" : " dropped"));
    }
  }
  // By hand: the mean of each row of [[1, 2, 3], [4, 5, 9]].
  Attributes a;
  a.axes = {1};
  a.keep_dims = false;
  auto executor = Executor::Create(OneNode(Op::kReduceMean, {2, 3}, {}, a));
  ASSERT_TRUE(executor.ok()) << executor.status();
  auto y = (*executor)->Run({Values({2, 3}, {1, 2, 3, 4, 5, 9})});
  ASSERT_TRUE(y.ok()) << y.status();
  ExpectClose((*y)[0], Values({2}, {2, 6}), "row means");
  // Bad axes are refused at Create, naming the node.
  a.axes = {1, 1};
  auto bad = Executor::Create(OneNode(Op::kReduceSum, {2, 3}, {}, a));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("axes [1,1]"));
}

// Sub and Div are not symmetric: with the constant first, the executor
// swaps the operands for oneDNN and must undo the swap.
TEST(ExecutorTest, BroadcastingBinaryOps) {
  struct Case {
    std::string name;
    Shape x;  // Without batch.
    Shape c;
    bool constant_first;
  };
  const std::vector<Case> cases = {
      {"per channel", {4, 3, 3}, {4, 1, 1}, false},
      {"per channel, constant first", {4, 3, 3}, {1, 4, 1, 1}, true},
      {"scalar", {4, 3}, {}, false},
      {"row", {4, 3}, {3}, true},
      {"both broadcast", {1}, {1, 6}, false},
      {"both broadcast, rank 4", {3, 1, 5}, {2, 1}, true},
      {"same shape", {2, 3}, {1, 2, 3}, false},
  };
  uint32_t seed = 70;
  for (Op op : {Op::kAdd, Op::kMul, Op::kSub, Op::kDiv}) {
    for (const Case& c : cases) {
      // Divisors away from 0, so the comparison is of well-scaled values.
      Graph g = OneNode(op, {},
                        {{"c", op == Op::kDiv ? Random(c.c, ++seed, 0.5f, 2.0f)
                                              : Random(c.c, ++seed)}});
      if (c.constant_first)
        std::swap(g.nodes[0].inputs[0], g.nodes[0].inputs[1]);
      CheckBatches(g, c.x, ++seed,
                   std::string(graph::OpName(op)) + " " + c.name);
    }
  }
  // Two graph inputs, the broadcast one first.
  for (Op op : {Op::kAdd, Op::kSub, Op::kDiv}) {
    Graph g;
    g.inputs = {{"a", {kBatch, 3, 4}}, {"b", {kBatch, 1, 4}}};
    g.nodes.push_back({"n", op, {"b", "a"}, {"y"}, {}});
    g.outputs.push_back({"y", {}});
    CheckAgainstReference(
        g, {Random({2, 3, 4}, 1, 0.5f, 2.0f), Random({2, 1, 4}, 2)},
        std::string(graph::OpName(op)) + " of two inputs");
  }
}

// ---------------------------------------------------------------------------
// Shape and data-movement ops.

TEST(ExecutorTest, ConcatFlattenReshapeTransposeSoftmaxIdentityPad) {
  Attributes concat;
  concat.axis = 2;
  CheckAgainstReference(OneNode(Op::kConcat, {2, 2, 3, 4},
                                {{"c", Random({2, 2, 5, 4}, 80)}}, concat),
                        {Random({2, 2, 3, 4}, 81)}, "concat with constant");
  Graph two;
  two.inputs = {{"a", {kBatch, 2, 3}}, {"b", {kBatch, 1, 3}}};
  two.nodes.push_back({"cat", Op::kConcat, {"b", "a", "b"}, {"y"}, {}});
  two.outputs.push_back({"y", {}});
  for (int64_t batch : {1, 5}) {
    CheckAgainstReference(two,
                          {Random({batch, 2, 3}, 1), Random({batch, 1, 3}, 2)},
                          "concat inputs");
  }
  Attributes flatten;
  flatten.axis = 2;
  CheckBatches(OneNode(Op::kFlatten, {}, {}, flatten), {2, 3, 4}, 82,
               "flatten");
  Attributes reshape;
  reshape.shape = {0, -1, 2};
  CheckBatches(OneNode(Op::kReshape, {}, {}, reshape), {3, 4}, 83, "reshape");
  Attributes transpose;
  transpose.perm = {2, 0, 3, 1};
  CheckBatches(OneNode(Op::kTranspose, {}, {}, transpose), {2, 3, 4}, 84,
               "transpose");
  CheckBatches(OneNode(Op::kTranspose, {}, {}), {2, 3}, 85,
               "transpose reverse");
  for (int64_t axis : {1, 3}) {
    Attributes softmax;
    softmax.axis = axis;
    CheckBatches(OneNode(Op::kSoftmax, {}, {}, softmax), {5, 2, 7}, 86,
                 "softmax axis " + std::to_string(axis));
  }
  CheckBatches(OneNode(Op::kIdentity, {}, {}), {3, 2}, 87, "identity");
  Attributes pad;
  pad.pads = {0, 1, 0, 2, 0, 0, -1, 1};
  pad.value = 0.75f;
  CheckBatches(OneNode(Op::kPad, {}, {}, pad), {2, 3, 4}, 88, "pad");
}

// Concats of conv outputs along every axis, so that the inputs arrive in
// the convs' blocked or channels-last layouts: channel counts that fill
// whole blocks of 8 and 16 (one copy per image and input) and ones that do
// not (oneDNN's concat), and a plain input beside them.
TEST(ExecutorTest, ConcatsOfConvOutputsMatchTheReference) {
  struct Case {
    int64_t axis;
    std::vector<int64_t> channels;  // Of each conv; the input x has 4.
    bool input_too;                 // x joins the concat, first.
  };
  const std::vector<Case> cases = {
      {1, {16, 32}, false}, {1, {8, 24, 16}, false}, {1, {5, 8}, false},
      {1, {16, 8}, true},   {0, {16, 16}, false},    {0, {4, 4}, true},
      {2, {8, 8}, false},   {2, {4, 4}, true},       {3, {16, 16}, false},
      {3, {5, 5}, false},   {3, {4}, true},
  };
  for (const Case& c : cases) {
    Graph g;
    g.inputs.push_back({"x", {kBatch, 4, 6, 7}});
    Node cat{"cat", Op::kConcat, {}, {"y"}, {}};
    cat.attrs.axis = c.axis;
    if (c.input_too) cat.inputs.push_back("x");
    for (size_t i = 0; i < c.channels.size(); ++i) {
      const std::string w = absl::StrCat("w", i);
      const std::string out = absl::StrCat("c", i);
      g.constants[w] =
          Random({c.channels[i], 4, 3, 3}, 150 + static_cast<uint32_t>(i));
      Attributes conv;
      conv.pads = {1, 1, 1, 1};
      g.nodes.push_back(
          {absl::StrCat("conv", i), Op::kConv, {"x", w}, {out}, conv});
      cat.inputs.push_back(out);
    }
    g.nodes.push_back(cat);
    g.outputs.push_back({"y", {}});
    CheckBatches(g, {4, 6, 7}, 152,
                 absl::StrCat("concat axis ", c.axis, " of channels ",
                              absl::StrJoin(c.channels, ","),
                              c.input_too ? " and the input" : ""));
  }
}

// Inception-v3's avg_pool2d(padding=1) exports as a zero Pad and an
// AveragePool that counts the padding; they run as one pool. The same
// pairs where the pool may not take the Pad (its own padding left out of
// the divisor, ceil mode, a nonzero pad value, a padded channel dim, the
// Pad's output read elsewhere) must give the reference's results too.
TEST(ExecutorTest, PadsBeforeAveragePoolsMatchTheReference) {
  struct Case {
    std::string what;
    std::vector<int64_t> pad;       // All dims, begin then end.
    std::vector<int64_t> own_pads;  // The pool's.
    bool include = false;
    bool ceil = false;
    float value = 0.0f;
    bool shared = false;
  };
  const std::vector<Case> cases = {
      {"inception's", {0, 0, 1, 1, 0, 0, 1, 1}, {}},
      {"uneven", {0, 0, 2, 0, 0, 0, 1, 3}, {}},
      {"own pads counted", {0, 0, 1, 0, 0, 0, 0, 1}, {1, 0, 0, 1}, true},
      {"own pads left out", {0, 0, 1, 1, 0, 0, 1, 1}, {1, 1, 1, 1}, false},
      {"ceil mode", {0, 0, 1, 1, 0, 0, 1, 1}, {}, false, true},
      {"value 0.5", {0, 0, 1, 1, 0, 0, 1, 1}, {}, false, false, 0.5f},
      {"channels padded", {0, 1, 1, 1, 0, 0, 1, 1}, {}},
      {"pad read elsewhere",
       {0, 0, 1, 1, 0, 0, 1, 1},
       {},
       false,
       false,
       0.0f,
       true},
  };
  for (const Case& c : cases) {
    for (bool after_conv : {false, true}) {
      Graph g;
      g.inputs.push_back({"x", {kBatch, 8, 7, 6}});
      std::string in = "x";
      if (after_conv) {
        g.constants["w"] = Random({8, 8, 1, 1}, 160);
        g.nodes.push_back({"conv", Op::kConv, {"x", "w"}, {"c"}, {}});
        in = "c";
      }
      Attributes pad;
      pad.pads = c.pad;
      pad.value = c.value;
      g.nodes.push_back({"pad", Op::kPad, {in}, {"p"}, pad});
      Attributes pool;
      pool.kernel = {3, 3};
      pool.strides = {2, 1};
      pool.pads = c.own_pads;
      pool.count_include_pad = c.include;
      pool.ceil_mode = c.ceil;
      g.nodes.push_back({"pool", Op::kAveragePool, {"p"}, {"y"}, pool});
      g.outputs.push_back({"y", {}});
      if (c.shared) g.outputs.push_back({"p", {}});
      CheckBatches(g, {8, 7, 6}, 161,
                   absl::StrCat("pad then pool, ", c.what,
                                after_conv ? ", after a conv" : ""));
    }
  }
}

// ShuffleNet's unit: a channel shuffle (Reshape, Transpose, Reshape) of a
// concat, then its two halves cropped (Slice imports as a negative Pad), one
// to a conv and one on. `conv_first`: the shuffle reads a conv's
// channels-last output; otherwise the plain input. `shared`: the
// Transpose's output is also a graph output, so no fused shuffle.
Graph ShuffleUnit(bool conv_first, bool shared) {
  Graph g;
  g.inputs.push_back({"x", {kBatch, 8, 5, 6}});
  std::string in = "x";
  if (conv_first) {
    g.constants["w0"] = Random({8, 8, 1, 1}, 140);
    g.nodes.push_back({"conv0", Op::kConv, {"x", "w0"}, {"c0"}, {}});
    in = "c0";
  }
  g.nodes.push_back({"cat", Op::kConcat, {in, in}, {"cat"}, {}});
  Attributes split;
  split.shape = {0, 2, 8, 5, 6};
  g.nodes.push_back({"split", Op::kReshape, {"cat"}, {"s"}, split});
  Attributes perm;
  perm.perm = {0, 2, 1, 3, 4};
  g.nodes.push_back({"transpose", Op::kTranspose, {"s"}, {"t"}, perm});
  Attributes merge;
  merge.shape = {0, 16, 5, 6};
  g.nodes.push_back({"merge", Op::kReshape, {"t"}, {"shuffled"}, merge});
  Attributes first_half, second_half;
  first_half.pads = {0, 0, 0, 0, 0, -8, 0, 0};
  second_half.pads = {0, -8, 0, 0, 0, 0, 0, 0};
  g.nodes.push_back({"a", Op::kPad, {"shuffled"}, {"a"}, first_half});
  g.nodes.push_back({"b", Op::kPad, {"shuffled"}, {"b"}, second_half});
  g.constants["w1"] = Random({8, 8, 3, 3}, 141);
  Attributes conv;
  conv.pads = {1, 1, 1, 1};
  g.nodes.push_back({"conv1", Op::kConv, {"b", "w1"}, {"c1"}, conv});
  g.nodes.push_back({"out", Op::kConcat, {"a", "c1"}, {"y"}, {}});
  g.outputs.push_back({"y", {kBatch, 16, 5, 6}});
  if (shared) g.outputs.push_back({"t", {kBatch, 8, 2, 5, 6}});
  return g;
}

TEST(ExecutorTest, ChannelShufflesAndCropsMatchTheReference) {
  for (bool conv_first : {true, false}) {
    for (bool shared : {false, true}) {
      CheckBatches(ShuffleUnit(conv_first, shared), {8, 5, 6}, 142,
                   absl::StrCat("shuffle unit, conv first ", conv_first,
                                ", transpose shared ", shared));
    }
  }
  // Crops of every dim, from plain and channels-last values.
  Attributes crop;
  crop.pads = {0, -1, -2, 0, 0, -2, 0, -1};
  CheckBatches(OneNode(Op::kPad, {}, {}, crop), {5, 4, 3}, 143, "crop");
  Graph conv_crop;
  conv_crop.inputs.push_back({"x", {kBatch, 4, 6, 6}});
  conv_crop.constants["w"] = Random({24, 4, 1, 1}, 144);
  conv_crop.nodes.push_back({"conv", Op::kConv, {"x", "w"}, {"c"}, {}});
  conv_crop.nodes.push_back({"crop", Op::kPad, {"c"}, {"y"}, crop});
  conv_crop.outputs.push_back({"y", {}});
  CheckBatches(conv_crop, {4, 6, 6}, 145, "crop of a conv");
}

// ---------------------------------------------------------------------------
// A small CNN end to end.

Graph SmallCnn() {
  Graph g;
  g.inputs.push_back({"image", {kBatch, 3, 16, 16}});
  g.constants["w1"] = Random({16, 3, 3, 3}, 90, -0.5f, 0.5f);
  g.constants["b1"] = Random({16}, 91);
  g.constants["w2"] = Random({16, 16, 3, 3}, 92, -0.2f, 0.2f);
  g.constants["b2"] = Random({16}, 93);
  g.constants["fc_w"] = Random({10, 16}, 94);
  g.constants["fc_b"] = Random({10}, 95);
  Attributes conv1;
  conv1.pads = {1, 1, 1, 1};
  conv1.activation.kind = Activation::Kind::kRelu;
  g.nodes.push_back({"conv1", Op::kConv, {"image", "w1", "b1"}, {"c1"}, conv1});
  Attributes pool;
  pool.kernel = {2, 2};
  pool.strides = {2, 2};
  g.nodes.push_back({"pool", Op::kMaxPool, {"c1"}, {"p"}, pool});
  Attributes conv2;
  conv2.pads = {1, 1, 1, 1};
  g.nodes.push_back({"conv2", Op::kConv, {"p", "w2", "b2"}, {"c2"}, conv2});
  g.nodes.push_back({"skip", Op::kAdd, {"c2", "p"}, {"s"}, {}});
  g.nodes.push_back({"relu", Op::kRelu, {"s"}, {"r"}, {}});
  g.nodes.push_back({"gap", Op::kGlobalAveragePool, {"r"}, {"g"}, {}});
  g.nodes.push_back({"flatten", Op::kFlatten, {"g"}, {"f"}, {}});
  Attributes fc;
  fc.trans_b = true;
  g.nodes.push_back({"fc", Op::kGemm, {"f", "fc_w", "fc_b"}, {"logits"}, fc});
  g.outputs.push_back({"logits", {kBatch, 10}});
  return g;
}

TEST(ExecutorTest, SmallCnnMatchesReference) {
  CheckBatches(SmallCnn(), {3, 16, 16}, 96, "small cnn");
  ExecutorOptions one_thread;
  one_thread.threads = 1;
  CheckAgainstReference(SmallCnn(), {Random({2, 3, 16, 16}, 97)},
                        "small cnn, one thread", one_thread);
}

TEST(ExecutorTest, PlansAreCachedPerInputShape) {
  auto executor = Executor::Create(SmallCnn());
  ASSERT_TRUE(executor.ok()) << executor.status();
  Executor& e = **executor;
  EXPECT_EQ(e.cached_shapes(), 1);  // Batch 1, built by Create.
  const Tensor one = Random({1, 3, 16, 16}, 98);
  const Tensor five = Random({5, 3, 16, 16}, 99);
  auto first = e.Run({one});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(e.cached_shapes(), 1);
  auto batch5 = e.Run({five});
  ASSERT_TRUE(batch5.ok()) << batch5.status();
  EXPECT_EQ(e.cached_shapes(), 2);
  ExpectClose((*batch5)[0], (*ReferenceRun(SmallCnn(), {five}))[0], "five");
  // Back to batch 1 on the cached plan: the same answer, bit for bit.
  auto again = e.Run({one});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(e.cached_shapes(), 2);
  EXPECT_EQ((*again)[0].data, (*first)[0].data);
  ExpectClose((*again)[0], (*ReferenceRun(SmallCnn(), {one}))[0], "one");
}

TEST(ExecutorTest, LeastRecentlyUsedPlanIsDropped) {
  ExecutorOptions options;
  options.max_cached_shapes = 2;
  auto executor = Executor::Create(SmallCnn(), options);
  ASSERT_TRUE(executor.ok()) << executor.status();
  for (int64_t batch : {2, 3, 4}) {
    const Tensor x = Random({batch, 3, 16, 16}, 100);
    auto y = (*executor)->Run({x});
    ASSERT_TRUE(y.ok()) << y.status();
    ExpectClose((*y)[0], (*ReferenceRun(SmallCnn(), {x}))[0], "lru");
  }
  EXPECT_EQ((*executor)->cached_shapes(), 2);
}

// A batch whose layers overflow the cache runs as slices on the plan of the
// slice's shape; the outputs are those of one run of the whole batch.
TEST(ExecutorTest, LargeBatchesRunInSlices) {
  const Shape whole = {7, 3, 16, 16};
  ExecutorOptions sliced;
  // conv1 alone reads and writes 19456 bytes per image.
  sliced.slice_cache_bytes = 40000;
  auto profile = ProfileBatch(SmallCnn(), {whole});
  ASSERT_TRUE(profile.has_value());
  const int64_t slice = ChooseSlice(*profile, 7, sliced.slice_cache_bytes);
  ASSERT_GT(slice, 1);
  ASSERT_LT(slice, 7);
  ASSERT_NE(7 % slice, 0);  // A last slice of fewer images too.

  auto executor = Executor::Create(SmallCnn(), sliced);
  ASSERT_TRUE(executor.ok()) << executor.status();
  const Tensor x = Random(whole, 130);
  auto y = (*executor)->Run({x});
  ASSERT_TRUE(y.ok()) << y.status();
  ExpectClose((*y)[0], (*ReferenceRun(SmallCnn(), {x}))[0], "sliced");
  EXPECT_EQ((*executor)->idle_runs({whole}), 0);  // No plan for batch 7.
  EXPECT_EQ((*executor)->idle_runs({{slice, 3, 16, 16}}), 1);
  EXPECT_EQ((*executor)->idle_runs({{7 % slice, 3, 16, 16}}), 1);

  ExecutorOptions unsliced;
  unsliced.slice_cache_bytes = 0;
  auto one_run = Executor::Create(SmallCnn(), unsliced);
  ASSERT_TRUE(one_run.ok()) << one_run.status();
  auto expected = (*one_run)->Run({x});
  ASSERT_TRUE(expected.ok()) << expected.status();
  EXPECT_EQ((*one_run)->idle_runs({whole}), 1);
  ExpectClose((*y)[0], (*expected)[0], "sliced against one run");
}

TEST(ExecutorTest, BatchesWhoseImagesMixAreNotSliced) {
  // Softmax over the batch: slices would normalize each slice alone.
  Attributes over_batch;
  over_batch.axis = 0;
  Graph g = OneNode(Op::kSoftmax, {kBatch, 64}, {}, over_batch);
  ExecutorOptions tiny_cache;
  tiny_cache.slice_cache_bytes = 1;
  CheckAgainstReference(g, {Random({6, 64}, 131)}, "softmax over the batch",
                        tiny_cache);
  auto executor = Executor::Create(g, tiny_cache);
  ASSERT_TRUE(executor.ok()) << executor.status();
  ASSERT_TRUE((*executor)->Run({Random({6, 64}, 132)}).ok());
  EXPECT_EQ((*executor)->idle_runs({{6, 64}}), 1);

  ExecutorOptions bad;
  bad.slice_cache_bytes = -2;
  EXPECT_THAT(Executor::Create(g, bad).status().message(),
              HasSubstr("slice_cache_bytes (-2) >= -1"));
}

// Outputs that are intermediate values, graph inputs, or read twice.
TEST(ExecutorTest, OutputsMayBeInputsOrIntermediates) {
  Graph g;
  g.inputs.push_back({"x", {kBatch, 4}});
  g.constants["w"] = Random({4, 4}, 101);
  g.nodes.push_back({"mm", Op::kMatMul, {"x", "w"}, {"h"}, {}});
  g.nodes.push_back({"id", Op::kIdentity, {"x"}, {"x2"}, {}});
  g.nodes.push_back({"sum", Op::kAdd, {"h", "x2"}, {"y"}, {}});
  g.outputs = {{"y", {}}, {"h", {}}, {"x", {}}, {"x2", {}}};
  CheckAgainstReference(g, {Random({3, 4}, 102)}, "mixed outputs");
}

// ---------------------------------------------------------------------------
// Errors.

TEST(ExecutorTest, WrongInputsAreInvalidArgumentNamingTheInput) {
  auto executor = Executor::Create(SmallCnn());
  ASSERT_TRUE(executor.ok()) << executor.status();
  Executor& e = **executor;

  auto r = e.Run({});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(),
              AllOf(HasSubstr("expected 1 inputs ('image') but got 0")));

  r = e.Run({Random({2, 3, 16, 15}, 1)});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(),
              AllOf(HasSubstr("input 'image'"), HasSubstr("[2,3,16,15]"),
                    HasSubstr("[-1,3,16,16]")));

  Tensor short_data = Random({2, 3, 16, 16}, 1);
  short_data.data.pop_back();
  r = e.Run({short_data});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(),
              AllOf(HasSubstr("input 'image'"), HasSubstr("1535 values")));
  // Still healthy afterwards.
  EXPECT_TRUE(e.Run({Random({2, 3, 16, 16}, 1)}).ok());
}

TEST(ExecutorTest, BadGraphsFailAtCreate) {
  Graph g = SmallCnn();
  g.constants["w2"] = Random({16, 8, 3, 3}, 1);
  auto executor = Executor::Create(g);
  EXPECT_EQ(executor.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(executor.status().message(),
              AllOf(HasSubstr("node 'conv2' (Conv)"),
                    HasSubstr("input has 16 channels but the weight expects "
                              "8")));

  // A weight computed in the graph (a graph input weight is allowed: see
  // WeightsGivenAsInputsMatchConstantWeightsBitForBit).
  Graph dynamic_weight;
  dynamic_weight.inputs = {{"x", {kBatch, 3, 4, 4}}, {"w0", {4, 3, 1, 1}}};
  dynamic_weight.nodes.push_back({"relu", Op::kRelu, {"w0"}, {"w"}, {}});
  dynamic_weight.nodes.push_back({"conv", Op::kConv, {"x", "w"}, {"y"}, {}});
  dynamic_weight.outputs.push_back({"y", {}});
  executor = Executor::Create(dynamic_weight);
  EXPECT_EQ(executor.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(executor.status().message(),
              HasSubstr("node 'conv' (Conv): input 'w' must be a constant"));

  ExecutorOptions bad;
  bad.threads = -1;
  EXPECT_EQ(Executor::Create(SmallCnn(), bad).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ExecutorTest, FreeSpatialDimsAreResolvedPerRun) {
  Graph g = SmallCnn();
  g.inputs[0].shape = {kBatch, 3, kBatch, kBatch};
  auto executor = Executor::Create(g);
  ASSERT_TRUE(executor.ok()) << executor.status();
  EXPECT_EQ((*executor)->cached_shapes(), 0);  // Nothing known to build.
  for (const Shape& shape : {Shape{1, 3, 8, 12}, Shape{2, 3, 16, 16}}) {
    const Tensor x = Random(shape, 103);
    auto y = (*executor)->Run({x});
    ASSERT_TRUE(y.ok()) << y.status();
    ExpectClose((*y)[0], (*ReferenceRun(g, {x}))[0], "free spatial dims");
  }
}

}  // namespace
}  // namespace esb::runtime

namespace esb::runtime {
namespace {

// `g` with constant `name` turned into a second graph input.
Graph WithWeightsAsInput(Graph g, const std::string& name) {
  g.inputs.push_back({name, g.constants.at(name).shape});
  g.constants.erase(name);
  return g;
}

TEST(ExecutorTest, WeightsGivenAsInputsMatchConstantWeightsBitForBit) {
  Attributes grouped;
  grouped.group = 2;
  grouped.pads = {1, 1, 1, 1};
  grouped.activation.kind = Activation::Kind::kRelu;
  Attributes gemm;
  gemm.trans_b = true;
  struct Case {
    std::string what;
    Graph graph;
    Shape x_shape;
    std::vector<std::string> runtime;  // Constants fed as inputs.
  };
  std::vector<Case> cases = {
      {"conv",
       OneNode(Op::kConv, {kBatch, 4, 9, 9},
               {{"w", Random({6, 2, 3, 3}, 1)}, {"b", Random({6}, 2)}},
               grouped),
       {2, 4, 9, 9},
       {"w", "b"}},
      {"gemm",
       OneNode(Op::kGemm, {kBatch, 20},
               {{"w", Random({7, 20}, 3)}, {"c", Random({7}, 4)}}, gemm),
       {3, 20},
       {"w", "c"}},
      {"matmul",
       OneNode(Op::kMatMul, {kBatch, 20}, {{"w", Random({20, 5}, 5)}}),
       {3, 20},
       {"w"}},
  };
  for (const Case& c : cases) {
    const Tensor x = Random(c.x_shape, 6);
    auto constant = Executor::Create(c.graph);
    ASSERT_TRUE(constant.ok()) << c.what << ": " << constant.status();
    auto expected = (*constant)->Run({x});
    ASSERT_TRUE(expected.ok()) << expected.status();
    Graph g = c.graph;
    std::vector<Tensor> feed = {x};
    for (const std::string& name : c.runtime) {
      feed.push_back(g.constants.at(name));
      g = WithWeightsAsInput(std::move(g), name);
    }
    auto runtime = Executor::Create(g);
    ASSERT_TRUE(runtime.ok()) << c.what << ": " << runtime.status();
    auto got = (*runtime)->Run(feed);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ((*got)[0].data, (*expected)[0].data) << c.what;
    // New weights on the same executor: the answer follows them.
    feed[1] = Random(feed[1].shape, 7);
    auto changed = (*runtime)->Run(feed);
    ASSERT_TRUE(changed.ok()) << changed.status();
    EXPECT_NE((*changed)[0].data, (*expected)[0].data) << c.what;
  }
}

TEST(ExecutorTest, RuntimeGemmWeightsNeedUnitAlphaAndBeta) {
  Attributes scaled;
  scaled.alpha = 2.0f;
  Graph g = OneNode(Op::kGemm, {kBatch, 4}, {{"w", Random({4, 3}, 8)}}, scaled);
  auto e = Executor::Create(WithWeightsAsInput(g, "w"));
  ASSERT_EQ(e.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(e.status().message(), HasSubstr("alpha 1"));
}

// GELU and layer normalization as torch exports them below opset 17
// (ConvNeXt's blocks): Optimize fuses each into one node, and the fused
// graph computes what the decomposition does.
TEST(ExecutorTest, FusedGeluAndLayerNormMatchTheirDecomposition) {
  Graph g;
  g.inputs.push_back({"x", {kBatch, 5, 6, 8}});
  g.outputs.push_back({"y", {}});
  auto scalar = [&](const std::string& name, float v) {
    g.constants[name] = Values({}, {v});
  };
  scalar("two", 2.0f);
  scalar("eps", 1e-6f);
  scalar("sqrt2", std::sqrt(2.0f));
  scalar("one", 1.0f);
  scalar("half", 0.5f);
  g.constants["gamma"] = Random({8}, 41);
  g.constants["beta"] = Random({8}, 42);
  auto add = [&](const std::string& name, Op op,
                 std::vector<std::string> inputs, Attributes attrs = {}) {
    g.nodes.push_back({name, op, std::move(inputs), {name}, std::move(attrs)});
  };
  Attributes last_dim;
  last_dim.axes = {3};
  last_dim.keep_dims = true;
  add("mean", Op::kReduceMean, {"x"}, last_dim);
  add("d", Op::kSub, {"x", "mean"});
  add("sq", Op::kPow, {"d", "two"});
  add("var", Op::kReduceMean, {"sq"}, last_dim);
  add("ve", Op::kAdd, {"var", "eps"});
  add("std", Op::kSqrt, {"ve"});
  add("n", Op::kDiv, {"d", "std"});
  add("scaled", Op::kMul, {"n", "gamma"});
  add("ln", Op::kAdd, {"beta", "scaled"});
  add("t", Op::kDiv, {"ln", "sqrt2"});
  add("e", Op::kErf, {"t"});
  add("gate", Op::kAdd, {"e", "one"});
  add("xg", Op::kMul, {"ln", "gate"});
  add("y", Op::kMul, {"xg", "half"});
  const Tensor x = Random({3, 5, 6, 8}, 43, -3.0f, 3.0f);
  auto want = ReferenceRun(g, {x});
  ASSERT_TRUE(want.ok()) << want.status();

  Graph fused = g;
  graph::Optimize(fused);
  ASSERT_EQ(fused.nodes.size(), 2u);
  EXPECT_EQ(fused.nodes[0].op, Op::kLayerNorm);
  EXPECT_EQ(fused.nodes[0].attrs.axis, 3);
  EXPECT_FLOAT_EQ(fused.nodes[0].attrs.epsilon, 1e-6f);
  EXPECT_EQ(fused.nodes[1].op, Op::kGelu);
  auto executor = Executor::Create(fused);
  ASSERT_TRUE(executor.ok()) << executor.status();
  auto got = (*executor)->Run({x});
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectClose((*got)[0], (*want)[0], "fused");

  // A mean over a dim that is not trailing is no layer normalization.
  Graph other = g;
  for (Node& node : other.nodes) {
    if (node.op == Op::kReduceMean) node.attrs.axes = {2};
  }
  other.constants["gamma"] = Random({6, 1}, 41);
  other.constants["beta"] = Random({6, 1}, 42);
  graph::Optimize(other);
  EXPECT_EQ(std::count_if(other.nodes.begin(), other.nodes.end(),
                          [](const Node& n) { return n.op == Op::kLayerNorm; }),
            0);
  EXPECT_EQ(other.nodes.back().op, Op::kGelu);
}

}  // namespace
}  // namespace esb::runtime
