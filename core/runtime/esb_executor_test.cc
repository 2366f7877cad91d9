#include "core/runtime/esb_executor.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/runtime/esb_paths_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::runtime {
namespace {

using graph::Activation;
using graph::Attributes;
using graph::Graph;
using graph::Node;
using graph::Op;
using graph::Tensor;
using ::testing::HasSubstr;
using Shape = std::vector<int64_t>;

Format F(int bits, int sb, bool is_signed) {
  return *Format::Create(bits, sb, is_signed);
}

Tensor Random(Shape shape, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  Tensor t{std::move(shape), {}};
  t.data.resize(t.size());
  for (float& v : t.data) v = dist(rng);
  return t;
}

// Distinct per-channel scales around `base`.
std::vector<float> Alphas(int64_t m, float base) {
  std::vector<float> a;
  for (int64_t i = 0; i < m; ++i) a.push_back(base * (1.0f + 0.13f * i));
  return a;
}

// ---------------------------------------------------------------------------
// The layer_quant.h formulas, written out independently of the runtime.

int64_t IntegerOf(const Format& f, float alpha, float v) {
  return static_cast<int64_t>(f.Round(v / alpha) *
                              std::ldexp(1.0f, f.mantissa_bits()));
}

float Scale(const LayerQuant& q, int64_t m, float gemm_alpha) {
  const float aw =
      q.weight_alpha.size() == 1 ? q.weight_alpha[0] : q.weight_alpha[m];
  float s = std::ldexp(q.input_alpha * aw, -(q.input_format.mantissa_bits() +
                                             q.weight_format.mantissa_bits()));
  if (gemm_alpha != 1.0f) s *= gemm_alpha;
  return s;
}

float Finish(int64_t acc, float s, float bias, const Activation& act) {
  const float product = static_cast<float>(acc) * s;
  float y = product + bias;
  if (act.kind == Activation::Kind::kRelu) y = y > 0.0f ? y : 0.0f;
  if (act.kind == Activation::Kind::kClip) {
    y = y < act.min ? act.min : y;
    y = y > act.max ? act.max : y;
  }
  return y;
}

// 2-D Conv; attrs.pads = {top, left, bottom, right}.
Tensor ExpectedConv(const Tensor& x, const Tensor& w, const Tensor* b,
                    const Attributes& a, const LayerQuant& q) {
  const int64_t n = x.shape[0], c = x.shape[1], h = x.shape[2], wd = x.shape[3];
  const int64_t m = w.shape[0], cg = w.shape[1], kh = w.shape[2],
                kw = w.shape[3];
  const int64_t sh = a.strides.empty() ? 1 : a.strides[0];
  const int64_t sw = a.strides.empty() ? 1 : a.strides[1];
  const int64_t dh = a.dilations.empty() ? 1 : a.dilations[0];
  const int64_t dw = a.dilations.empty() ? 1 : a.dilations[1];
  const int64_t pt = a.pads.empty() ? 0 : a.pads[0];
  const int64_t pl = a.pads.empty() ? 0 : a.pads[1];
  const int64_t pb = a.pads.empty() ? 0 : a.pads[2];
  const int64_t pr = a.pads.empty() ? 0 : a.pads[3];
  const int64_t oh = (h + pt + pb - (dh * (kh - 1) + 1)) / sh + 1;
  const int64_t ow = (wd + pl + pr - (dw * (kw - 1) + 1)) / sw + 1;
  const int64_t mg = m / a.group;
  Tensor y{{n, m, oh, ow}, std::vector<float>(n * m * oh * ow)};
  for (int64_t in = 0; in < n; ++in) {
    for (int64_t om = 0; om < m; ++om) {
      const float aw = q.weight_alpha[om];
      for (int64_t r = 0; r < oh; ++r) {
        for (int64_t s = 0; s < ow; ++s) {
          int64_t acc = 0;
          for (int64_t ic = 0; ic < cg; ++ic) {
            for (int64_t i = 0; i < kh; ++i) {
              for (int64_t j = 0; j < kw; ++j) {
                const int64_t ih = r * sh - pt + i * dh;
                const int64_t iw = s * sw - pl + j * dw;
                if (ih < 0 || ih >= h || iw < 0 || iw >= wd) continue;
                const int64_t ch = om / mg * cg + ic;
                const float xv = x.data[((in * c + ch) * h + ih) * wd + iw];
                const float wv = w.data[((om * cg + ic) * kh + i) * kw + j];
                acc += IntegerOf(q.input_format, q.input_alpha, xv) *
                       IntegerOf(q.weight_format, aw, wv);
              }
            }
          }
          y.data[((in * m + om) * oh + r) * ow + s] = Finish(
              acc, Scale(q, om, 1.0f), b ? b->data[om] : 0.0f, a.activation);
        }
      }
    }
  }
  return y;
}

// Gemm (C scalar or [M]) and MatMul (trans flags false, alpha 1, no C).
Tensor ExpectedGemm(const Tensor& x, const Tensor& bmat, const Tensor* cmat,
                    const Attributes& a, const LayerQuant& q) {
  const int64_t k = a.trans_a ? x.shape[0] : x.shape.back();
  const int64_t rows = x.size() / k;
  const int64_t m = a.trans_b ? bmat.shape[0] : bmat.shape[1];
  Shape y_shape(x.shape.begin(), x.shape.end() - 1);
  if (a.trans_a) y_shape = {x.shape[1]};
  y_shape.push_back(m);
  Tensor y{y_shape, std::vector<float>(rows * m)};
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < m; ++j) {
      const float aw = q.weight_alpha[j];
      int64_t acc = 0;
      for (int64_t i = 0; i < k; ++i) {
        const float xv = a.trans_a ? x.data[i * rows + r] : x.data[r * k + i];
        const float wv =
            a.trans_b ? bmat.data[j * k + i] : bmat.data[i * m + j];
        acc += IntegerOf(q.input_format, q.input_alpha, xv) *
               IntegerOf(q.weight_format, aw, wv);
      }
      const float bias =
          cmat ? a.beta * cmat->data[cmat->size() == 1 ? 0 : j] : 0.0f;
      y.data[r * m + j] = Finish(acc, Scale(q, j, a.alpha), bias, a.activation);
    }
  }
  return y;
}

// ---------------------------------------------------------------------------
// Running both paths.

Graph OneNode(Op op, Shape x_shape,
              std::vector<std::pair<std::string, Tensor>> constants,
              Attributes attrs) {
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

void ExpectBitIdentical(const Tensor& actual, const Tensor& expected,
                        const std::string& what) {
  ASSERT_EQ(actual.shape, expected.shape) << what;
  int reported = 0;
  for (size_t i = 0; i < actual.data.size(); ++i) {
    if (std::memcmp(&actual.data[i], &expected.data[i], sizeof(float)) != 0 &&
        reported++ < 5) {
      ADD_FAILURE() << what << ": element " << i << " is " << actual.data[i]
                    << ", expected " << expected.data[i];
    }
  }
}

struct Result {
  Tensor fast;         // kAuto.
  Tensor exact_float;  // kExactFloat.
  Tensor reference;
  std::string description;        // kAuto's.
  std::string float_description;  // kExactFloat's.
};

// The three paths on `x`; every test checks the exact f32 one against the
// reference, so it runs on every CPU, VNNI or not.
Result RunBoth(const Graph& g, const std::map<std::string, LayerQuant>& layers,
               const Tensor& x) {
  Result r;
  for (auto path :
       {EsbExecutorOptions::Path::kAuto, EsbExecutorOptions::Path::kExactFloat,
        EsbExecutorOptions::Path::kReference}) {
    EsbExecutorOptions options;
    options.path = path;
    auto executor = EsbExecutor::Create(g, layers, options);
    EXPECT_TRUE(executor.ok()) << executor.status();
    if (!executor.ok()) return r;
    auto y = (*executor)->Run({x});
    EXPECT_TRUE(y.ok()) << y.status();
    if (!y.ok()) return r;
    if (path == EsbExecutorOptions::Path::kAuto) {
      r.fast = (*y)[0];
      r.description = (*executor)->Description();
    } else if (path == EsbExecutorOptions::Path::kExactFloat) {
      r.exact_float = (*y)[0];
      r.float_description = (*executor)->Description();
    } else {
      r.reference = (*y)[0];
    }
  }
  return r;
}

constexpr char kFloatRequested[] =
    "exact f32 path on 1 of 1 layer: exact f32 path requested (layer 'n')";

// ---------------------------------------------------------------------------
// Conv.

struct ConvCase {
  std::string name;
  Shape x;
  Shape w;
  Attributes attrs;
  bool bias = true;
  bool signed_input = false;
};

std::vector<ConvCase> ConvCases() {
  std::vector<ConvCase> cases;
  auto add = [&](std::string name, Shape x, Shape w, auto edit) {
    ConvCase c{std::move(name), std::move(x), std::move(w), {}};
    edit(c);
    cases.push_back(std::move(c));
  };
  add("plain", {2, 3, 7, 6}, {5, 3, 3, 3}, [](ConvCase&) {});
  add("padded", {2, 3, 7, 6}, {5, 3, 3, 3}, [](ConvCase& c) {
    c.attrs.pads = {1, 2, 0, 1};
    c.signed_input = true;
  });
  add("strided", {1, 4, 9, 8}, {6, 4, 3, 3}, [](ConvCase& c) {
    c.attrs.strides = {2, 3};
    c.attrs.pads = {1, 1, 1, 1};
  });
  add("dilated", {2, 2, 9, 9}, {3, 2, 3, 2}, [](ConvCase& c) {
    c.attrs.dilations = {2, 3};
    c.attrs.pads = {2, 1, 2, 1};
    c.signed_input = true;
  });
  // Kernels whose outer taps land only in the padding, run cropped.
  add("atrous past the map", {2, 3, 4, 4}, {5, 3, 3, 3}, [](ConvCase& c) {
    c.attrs.dilations = {4, 4};
    c.attrs.pads = {4, 4, 4, 4};
    c.signed_input = true;
  });
  add("one dim cropped", {2, 3, 4, 6}, {5, 3, 3, 3}, [](ConvCase& c) {
    c.attrs.dilations = {5, 1};
    c.attrs.pads = {5, 1, 5, 1};
  });
  add("grouped", {2, 6, 5, 5}, {4, 3, 3, 3}, [](ConvCase& c) {
    c.attrs.group = 2;
    c.attrs.pads = {1, 1, 1, 1};
  });
  add("depthwise", {2, 8, 6, 6}, {8, 1, 3, 3}, [](ConvCase& c) {
    c.attrs.group = 8;
    c.attrs.pads = {1, 1, 1, 1};
    c.signed_input = true;
  });
  add("relu", {2, 3, 6, 6}, {16, 3, 1, 1}, [](ConvCase& c) {
    c.attrs.activation.kind = Activation::Kind::kRelu;
    c.signed_input = true;
  });
  add("clip_no_bias", {2, 3, 6, 6}, {7, 3, 2, 2}, [](ConvCase& c) {
    c.attrs.activation = {Activation::Kind::kClip, -0.5f, 1.5f};
    c.bias = false;
  });
  return cases;
}

TEST(EsbExecutorTest, ConvPathsAgreeWithTheFormulas) {
  uint32_t seed = 1;
  for (const ConvCase& c : ConvCases()) {
    for (const auto& [wf, af] :
         {std::pair{F(4, 2, true), F(4, 2, c.signed_input)},
          std::pair{F(8, 7, true),
                    F(8, c.signed_input ? 7 : 8, c.signed_input)},
          std::pair{F(5, 3, true),
                    c.signed_input ? F(6, 4, true) : F(7, 6, false)}}) {
      const std::string what =
          c.name + " w " + wf.ToString() + " x " + af.ToString();
      const Tensor x = Random(c.x, ++seed, c.signed_input ? -2.0f : 0.0f, 2.0f);
      const Tensor w = Random(c.w, ++seed, -1.0f, 1.0f);
      const Tensor b = Random({c.w[0]}, ++seed, -0.5f, 0.5f);
      std::vector<std::pair<std::string, Tensor>> constants = {{"w", w}};
      if (c.bias) constants.push_back({"b", b});
      Shape x_decl = c.x;
      x_decl[0] = graph::kBatch;
      const Graph g = OneNode(Op::kConv, x_decl, constants, c.attrs);
      const LayerQuant q{wf, Alphas(c.w[0], 0.2f), af, 0.11f};
      const Result r = RunBoth(g, {{"n", q}}, x);
      EXPECT_EQ(r.description, FastHere({"n"}, af, wf, false)) << what;
      EXPECT_EQ(r.float_description, kFloatRequested) << what;
      ExpectBitIdentical(r.fast, r.reference, what + " fast vs reference");
      ExpectBitIdentical(r.exact_float, r.reference,
                         what + " f32 vs reference");
      ExpectBitIdentical(r.reference,
                         ExpectedConv(x, w, c.bias ? &b : nullptr, c.attrs, q),
                         what + " reference vs formulas");
    }
  }
}

// ---------------------------------------------------------------------------
// Gemm and MatMul.

TEST(EsbExecutorTest, GemmAndMatMulPathsAgreeWithTheFormulas) {
  struct Case {
    std::string name;
    Op op;
    Shape x;
    Shape b;
    Shape c;  // Empty: no C.
    Attributes attrs;
    bool signed_input;
  };
  Attributes trans_b;
  trans_b.trans_b = true;
  trans_b.alpha = 0.5f;
  trans_b.beta = 2.0f;
  Attributes relu;
  relu.activation.kind = Activation::Kind::kRelu;
  Attributes clip;
  clip.activation = {Activation::Kind::kClip, 0.0f, 6.0f};
  const std::vector<Case> cases = {
      {"gemm_trans_b_bias", Op::kGemm, {5, 12}, {7, 12}, {7}, trans_b, true},
      {"gemm_scalar_c_relu", Op::kGemm, {4, 9}, {9, 6}, {}, relu, false},
      {"gemm_row_c_clip", Op::kGemm, {3, 20}, {20, 33}, {1, 33}, clip, true},
      {"matmul_batch_dims", Op::kMatMul, {2, 3, 10}, {10, 4}, {}, {}, false},
  };
  uint32_t seed = 100;
  for (const Case& c : cases) {
    for (const auto& [wf, af] :
         {std::pair{F(4, 2, true), F(4, 2, c.signed_input)},
          std::pair{F(8, 7, true),
                    F(8, c.signed_input ? 7 : 8, c.signed_input)}}) {
      const std::string what =
          c.name + " w " + wf.ToString() + " x " + af.ToString();
      const Tensor x = Random(c.x, ++seed, c.signed_input ? -3.0f : 0.0f, 3.0f);
      const Tensor b = Random(c.b, ++seed, -1.0f, 1.0f);
      Tensor cmat = Random(c.c.empty() ? Shape{} : c.c, ++seed, -1.0f, 1.0f);
      std::vector<std::pair<std::string, Tensor>> constants = {{"b", b}};
      if (c.op == Op::kGemm) constants.push_back({"c", cmat});
      Shape x_decl = c.x;
      x_decl[0] = graph::kBatch;
      const Graph g = OneNode(c.op, x_decl, constants, c.attrs);
      const int64_t m = c.attrs.trans_b ? c.b[0] : c.b[1];
      const LayerQuant q{wf, Alphas(m, 0.2f), af, 0.17f};
      const Result r = RunBoth(g, {{"n", q}}, x);
      EXPECT_EQ(r.description, FastHere({"n"}, af, wf, true)) << what;
      EXPECT_EQ(r.float_description, kFloatRequested) << what;
      ExpectBitIdentical(r.fast, r.reference, what + " fast vs reference");
      ExpectBitIdentical(r.exact_float, r.reference,
                         what + " f32 vs reference");
      ExpectBitIdentical(
          r.reference,
          ExpectedGemm(x, b, c.op == Op::kGemm ? &cmat : nullptr, c.attrs, q),
          what + " reference vs formulas");
    }
  }
}

TEST(EsbExecutorTest, GemmTransARunsTheReferenceAndSaysSo) {
  Attributes a;
  a.trans_a = true;
  const Tensor x = Random({6, 4}, 7, -1.0f, 1.0f);  // A^T is [4, 6].
  const Tensor b = Random({6, 3}, 8, -1.0f, 1.0f);
  const Graph g = OneNode(Op::kGemm, {6, 4}, {{"b", b}}, a);
  const LayerQuant q{F(4, 2, true), Alphas(3, 0.3f), F(4, 2, true), 0.2f};
  const Result r = RunBoth(g, {{"n", q}}, x);
  EXPECT_THAT(r.description,
              HasSubstr("reference path on 1 of 1 layer: Gemm with trans_a"));
  ExpectBitIdentical(r.fast, ExpectedGemm(x, b, nullptr, a, q), "trans_a");
  ExpectBitIdentical(r.reference, r.fast, "trans_a paths");
  EXPECT_THAT(r.float_description,
              HasSubstr("reference path on 1 of 1 layer: Gemm with trans_a"));
}

// 3x3 "same" padding with a fused Relu.
Attributes PaddedRelu() {
  Attributes pad;
  pad.pads = {1, 1, 1, 1};
  pad.activation.kind = Activation::Kind::kRelu;
  return pad;
}

// The chain tests' start: input x [N, 3, 6, 6] and c1's weights w1.
Graph ChainInput() {
  Graph g;
  g.inputs.push_back({"x", {graph::kBatch, 3, 6, 6}});
  g.constants["w1"] = Random({8, 3, 3, 3}, 1, -1.0f, 1.0f);
  return g;
}

// Two quantized layers in a row: the first one's epilogue writes the second
// one's integer input.
TEST(EsbExecutorTest, ChainedLayersRequantizeExactly) {
  const Attributes pad = PaddedRelu();
  Graph g = ChainInput();
  g.constants["w2"] = Random({4, 8, 3, 3}, 2, -1.0f, 1.0f);
  g.constants["b2"] = Random({4}, 3, -1.0f, 1.0f);
  g.nodes.push_back({"c1", Op::kConv, {"x", "w1"}, {"h"}, pad});
  g.nodes.push_back({"c2", Op::kConv, {"h", "w2", "b2"}, {"y"}, {}});
  g.outputs.push_back({"y", {}});
  // Unsigned inputs: both layers take one fast path on every x86-64 CPU.
  const LayerQuant q1{F(4, 2, true), Alphas(8, 0.2f), F(4, 2, false), 0.1f};
  const LayerQuant q2{F(4, 2, true), Alphas(4, 0.1f), F(4, 2, false), 0.2f};
  const Tensor x = Random({2, 3, 6, 6}, 4, 0.0f, 2.0f);
  const Result r = RunBoth(g, {{"c1", q1}, {"c2", q2}}, x);
  EXPECT_EQ(r.description,
            FastHere({"c1", "c2"}, F(4, 2, false), F(4, 2, true), false));
  // Either fast path's epilogue writes the next layer's integers.
  EsbExecutorOptions exact_float;
  exact_float.path = EsbExecutorOptions::Path::kExactFloat;
  for (const EsbExecutorOptions& options :
       {EsbExecutorOptions{}, exact_float}) {
    auto e = EsbExecutor::Create(g, {{"c1", q1}, {"c2", q2}}, options);
    ASSERT_TRUE(e.ok()) << e.status();
    EXPECT_EQ((*e)->requantized_layers(), 1);
  }
  ExpectBitIdentical(r.fast, r.reference, "chain fast vs reference");
  ExpectBitIdentical(r.exact_float, r.reference, "chain f32 vs reference");
  const Tensor h = ExpectedConv(x, g.constants["w1"], nullptr, pad, q1);
  ExpectBitIdentical(
      r.reference,
      ExpectedConv(h, g.constants["w2"], &g.constants["b2"], {}, q2),
      "chain reference vs formulas");
}

// A chain across the two fast paths: b8 sb4 weights do not fit int8, so
// c1 and c3 take the exact f32 path wherever c2 takes the int8 one, and
// each epilogue writes the integers of the next layer's path (floats into
// c3, u8 into c2 where it is int8).
TEST(EsbExecutorTest, ChainsAcrossThePathsRequantizeExactly) {
  const Attributes pad = PaddedRelu();
  Graph g = ChainInput();
  g.constants["w2"] = Random({8, 8, 3, 3}, 2, -1.0f, 1.0f);
  g.constants["w3"] = Random({4, 8, 1, 1}, 3, -1.0f, 1.0f);
  g.nodes.push_back({"c1", Op::kConv, {"x", "w1"}, {"h1"}, pad});
  g.nodes.push_back({"c2", Op::kConv, {"h1", "w2"}, {"h2"}, pad});
  g.nodes.push_back({"c3", Op::kConv, {"h2", "w3"}, {"y"}, {}});
  g.outputs.push_back({"y", {}});
  const std::map<std::string, LayerQuant> layers = {
      {"c1", {F(8, 4, true), Alphas(8, 0.02f), F(4, 2, false), 0.1f}},
      {"c2", {F(4, 2, true), Alphas(8, 0.1f), F(4, 2, false), 0.2f}},
      {"c3", {F(8, 4, true), Alphas(4, 0.02f), F(4, 2, false), 0.2f}},
  };
  const Tensor x = Random({2, 3, 6, 6}, 4, 0.0f, 2.0f);
  const Result r = RunBoth(g, layers, x);
  auto e = EsbExecutor::Create(g, layers);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ((*e)->layer_paths().at("c1"), LayerPath::kFloat);
  EXPECT_EQ((*e)->layer_paths().at("c2"),
            NotInt8Here(F(4, 2, false), F(4, 2, true), false).empty()
                ? LayerPath::kInt8
                : LayerPath::kFloat);
  EXPECT_EQ((*e)->layer_paths().at("c3"), LayerPath::kFloat);
  EXPECT_EQ((*e)->requantized_layers(), 2);
  ExpectBitIdentical(r.fast, r.reference, "mixed chain vs reference");
  ExpectBitIdentical(r.exact_float, r.reference, "mixed chain f32");
}

// ---------------------------------------------------------------------------
// Formats that do not fit, and errors.

// b8 sb4 weights reach 240: not int8, but exact in f32.
TEST(EsbExecutorTest, WeightsThatDoNotFitInt8RunExactF32) {
  const Tensor w = Random({12, 6}, 5, -1.0f, 1.0f);
  const Graph g = OneNode(Op::kGemm, {graph::kBatch, 12}, {{"w", w}}, {});
  const LayerQuant q{F(8, 4, true), Alphas(6, 0.1f), F(4, 2, true), 0.3f};
  const Tensor x = Random({3, 12}, 6, -1.0f, 1.0f);
  const Result r = RunBoth(g, {{"n", q}}, x);
  const std::string cpu = NoInt8Here();
  EXPECT_EQ(
      r.description,
      absl::StrCat("exact f32 path on 1 of 1 layer: ",
                   cpu.empty() ? "b8 sb4 signed weights do not fit int8" : cpu,
                   " (layer 'n')"));
  ExpectBitIdentical(r.fast, ExpectedGemm(x, w, nullptr, {}, q), "b8 sb4");
  ExpectBitIdentical(r.reference, r.fast, "b8 sb4 paths");
}

// 1100 * 255 * 127 > 2^24: oneDNN's s32 output would not be exact, so K
// is split (esb_split_test.cc has the split's own cases).
TEST(EsbExecutorTest, LongReductionsWithLargeIntegersSplitK) {
  Tensor w = Random({1100, 3}, 5, 0.5f, 1.0f);
  const Graph g = OneNode(Op::kGemm, {graph::kBatch, 1100}, {{"w", w}}, {});
  const LayerQuant q{
      F(8, 7, true), {0.01f, 0.01f, 0.5f}, F(8, 8, false), 0.01f};
  const Tensor x = Random({2, 1100}, 6, 0.0f, 3.0f);
  const Result r = RunBoth(g, {{"n", q}}, x);
  // The input is unsigned: both fast paths need the same 4 chunks.
  const std::string split =
      " (K split so that every chunk's accumulator stays within 2^24: 1 "
      "layer in 4 chunks)";
  EXPECT_EQ(r.description,
            FastHere({"n"}, F(8, 8, false), F(8, 7, true), false, split));
  EXPECT_EQ(r.float_description,
            absl::StrCat("exact f32 path on 1 of 1 layer", split,
                         ": exact f32 path requested (layer 'n')"));
  ExpectBitIdentical(r.fast, ExpectedGemm(x, w, nullptr, {}, q), "long");
  ExpectBitIdentical(r.reference, r.fast, "long paths");
  ExpectBitIdentical(r.exact_float, r.fast, "long f32");
}

// Conv over one and three spatial dims: the paths agree (the reference is
// checked against the formulas in 2-D above).
TEST(EsbExecutorTest, OneAndThreeSpatialDims) {
  Attributes a1;
  a1.pads = {1, 2};
  a1.strides = {2};
  Attributes a3;
  a3.pads = {1, 0, 1, 1, 0, 1};
  a3.dilations = {1, 2, 1};
  for (const auto& [x_shape, w_shape, attrs] :
       {std::tuple{Shape{2, 3, 11}, Shape{4, 3, 3}, a1},
        std::tuple{Shape{2, 2, 4, 5, 6}, Shape{3, 2, 2, 2, 3}, a3}}) {
    for (bool signed_input : {true, false}) {
      const std::string what = absl::StrCat(x_shape.size() - 2, "-D conv, ",
                                            signed_input ? "s" : "u", "8");
      const Tensor w = Random(w_shape, 1, -1.0f, 1.0f);
      Shape decl = x_shape;
      decl[0] = graph::kBatch;
      const Graph g = OneNode(Op::kConv, decl, {{"w", w}}, attrs);
      const Format in = F(4, 2, signed_input);
      const LayerQuant q{F(4, 2, true), Alphas(w_shape[0], 0.2f), in, 0.1f};
      const Result r = RunBoth(
          g, {{"n", q}}, Random(x_shape, 2, signed_input ? -1.0f : 0.0f, 1.0f));
      EXPECT_EQ(r.description, FastHere({"n"}, in, F(4, 2, true), false))
          << what;
      ExpectBitIdentical(r.fast, r.reference, what);
      ExpectBitIdentical(r.exact_float, r.reference, what + " f32");
    }
  }
}

TEST(EsbExecutorTest, MixedPathsAndUnquantizedNodesAreDescribed) {
  Graph g;  // A fixed batch: Gemm 't' reduces over it (trans_a).
  g.inputs.push_back({"x", {2, 8}});
  g.constants["w1"] = Random({8, 8}, 1, -1.0f, 1.0f);
  g.constants["w2"] = Random({8, 8}, 2, -1.0f, 1.0f);
  g.constants["w3"] = Random({8, 4}, 3, -1.0f, 1.0f);
  g.constants["w4"] = Random({2, 3}, 4, -1.0f, 1.0f);
  Attributes trans_a;
  trans_a.trans_a = true;
  g.nodes.push_back({"fc1", Op::kGemm, {"x", "w1"}, {"h1"}, {}});
  g.nodes.push_back({"fc2", Op::kGemm, {"h1", "w2"}, {"h2"}, {}});
  g.nodes.push_back({"fc3", Op::kMatMul, {"h2", "w3"}, {"h3"}, {}});
  g.nodes.push_back({"t", Op::kGemm, {"h3", "w4"}, {"y"}, trans_a});
  g.outputs.push_back({"y", {}});
  const LayerQuant fits{F(4, 2, true), Alphas(8, 0.2f), F(4, 2, true), 0.3f};
  const LayerQuant wide{F(8, 4, true), Alphas(8, 0.2f), F(4, 2, true), 0.3f};
  const LayerQuant t{F(4, 2, true), Alphas(3, 0.2f), F(4, 2, true), 0.3f};
  auto e = EsbExecutor::Create(g, {{"fc1", fits}, {"fc2", wide}, {"t", t}});
  ASSERT_TRUE(e.ok()) << e.status();
  const std::string cpu = NotInt8Here(F(4, 2, true), F(4, 2, true), true);
  const std::string rest =
      "reference path on 1 layer: Gemm with trans_a (the fast paths read A "
      "row-major) (layer 't'); 1 Conv/Gemm/MatMul without a layer entry in "
      "FP32";
  if (cpu.empty()) {
    EXPECT_EQ((*e)->Description(),
              "int8 fast path on 1 of 3 layers; exact f32 path on 1 layer: b8 "
              "sb4 signed weights do not fit int8 (layer 'fc2'); " +
                  rest);
  } else {
    EXPECT_EQ((*e)->Description(),
              absl::StrCat("exact f32 path on 2 of 3 layers: ", cpu,
                           " (layers 'fc1', 'fc2'); ", rest));
  }
  EXPECT_EQ((*e)->layer_paths().at("fc1"),
            cpu.empty() ? LayerPath::kInt8 : LayerPath::kFloat);
  EXPECT_EQ((*e)->layer_paths().at("fc2"), LayerPath::kFloat);
  EXPECT_EQ((*e)->layer_paths().at("t"), LayerPath::kReference);
  EXPECT_EQ((*e)->layer_paths().count("fc3"), 0u);
  EXPECT_TRUE((*e)->Run({Random({2, 8}, 4, -1.0f, 1.0f)}).ok());
}

// Five layers with one reason: three named, the rest counted.
TEST(EsbExecutorTest, ManyLayersWithOneReasonAreCounted) {
  Graph g;
  g.inputs.push_back({"x", {graph::kBatch, 4}});
  std::map<std::string, LayerQuant> layers;
  std::string in = "x";
  for (int i = 0; i < 5; ++i) {
    const std::string name = absl::StrCat("fc", i);
    g.constants["w" + name] = Random({4, 4}, i + 1, -1.0f, 1.0f);
    g.nodes.push_back({name, Op::kGemm, {in, "w" + name}, {"h" + name}, {}});
    in = "h" + name;
    layers.emplace(
        name, LayerQuant{F(4, 2, true), Alphas(4, 0.2f), F(4, 2, true), 0.3f});
  }
  g.outputs.push_back({in, {}});
  EsbExecutorOptions options;
  options.path = EsbExecutorOptions::Path::kExactFloat;
  auto e = EsbExecutor::Create(g, layers, options);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ((*e)->Description(),
            "exact f32 path on 5 of 5 layers: exact f32 path requested "
            "(layers 'fc0', 'fc1', 'fc2' and 2 more)");
}

// Where oneDNN sums pairs of u8 x s8 products in int16 (x86-64 without
// VNNI), the int8 path takes a layer whose pairs stay within 32767, and a
// signed input only into a matmul: 2 * 255 * 64 = 32640 passes, 2 * 255 *
// 127 does not; a signed b4 sb2 input shifted by 128 (up to 140) passes
// into a Gemm but not a Conv, and with b8 sb7 weights not at all. The rule is
// injected, so it is checked on any CPU.
TEST(EsbExecutorTest, Int16PairsBoundTheInt8Path) {
  Graph g;
  g.inputs.push_back({"x", {graph::kBatch, 4, 3, 3}});
  g.inputs.push_back({"v", {graph::kBatch, 4}});
  std::map<std::string, LayerQuant> layers;
  struct Case {
    std::string name;
    Op op;
    Shape w;
    Attributes attrs;
    LayerQuant q;
  };
  Attributes same;
  same.pads = {1, 1, 1, 1};
  const Format s4 = F(4, 2, true), u8 = F(8, 8, false);
  const std::vector<Case> cases = {
      // u8 up to 255 with b4 sb1 weights (powers of two up to 64).
      {"u8_w64",
       Op::kGemm,
       {4, 4},
       {},
       {F(4, 1, true), Alphas(4, 0.1f), u8, 0.1f}},
      {"u8_w127",
       Op::kGemm,
       {4, 4},
       {},
       {F(8, 7, true), Alphas(4, 0.1f), u8, 0.1f}},
      {"s4_gemm", Op::kGemm, {4, 4}, {}, {s4, Alphas(4, 0.1f), s4, 0.1f}},
      {"s4_gemm_w127",
       Op::kGemm,
       {4, 4},
       {},
       {F(8, 7, true), Alphas(4, 0.1f), s4, 0.1f}},
      {"s4_pointwise",
       Op::kConv,
       {4, 4, 1, 1},
       {},
       {s4, Alphas(4, 0.1f), s4, 0.1f}},
      {"s4_3x3",
       Op::kConv,
       {4, 4, 3, 3},
       same,
       {s4, Alphas(4, 0.1f), s4, 0.1f}},
      {"u4_3x3",
       Op::kConv,
       {4, 4, 3, 3},
       same,
       {s4, Alphas(4, 0.1f), F(4, 2, false), 0.1f}},
  };
  for (const Case& c : cases) {
    g.constants["w" + c.name] = Random(c.w, 9, -1.0f, 1.0f);
    g.nodes.push_back({c.name,
                       c.op,
                       {c.op == Op::kConv ? "x" : "v", "w" + c.name},
                       {c.name},
                       c.attrs});
    g.outputs.push_back({c.name, {}});
    layers.emplace(c.name, c.q);
  }
  EXPECT_EQ(F(4, 1, true).max_integer(), 64);
  EXPECT_EQ(u8.max_integer(), 255);
  EXPECT_EQ(s4.max_integer(), 12);
  internal::PathRules rules;
  rules.int16_pairs = true;
  auto prepared = internal::PrepareLayers(g, layers, rules);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  std::map<std::string, const internal::QuantizedLayer*> by_name;
  for (const auto& [index, layer] : prepared->by_node) {
    by_name[layer.name] = &layer;
  }
  for (const char* name : {"u8_w64", "s4_gemm", "u4_3x3"}) {
    EXPECT_EQ(by_name.at(name)->path, LayerPath::kInt8) << name;
  }
  const std::string overflow =
      "the CPU has no VNNI, so oneDNN sums pairs of u8 x s8 products in "
      "int16, which ";
  EXPECT_EQ(by_name.at("u8_w127")->path, LayerPath::kFloat);
  EXPECT_EQ(by_name.at("u8_w127")->reason,
            overflow +
                "inputs up to 255 times b8 sb7 signed weights up to 127 "
                "may overflow");
  EXPECT_EQ(by_name.at("s4_gemm_w127")->path, LayerPath::kFloat);
  EXPECT_EQ(by_name.at("s4_gemm_w127")->reason,
            overflow +
                "signed inputs shifted to up to 140 times b8 sb7 "
                "signed weights up to 127 may overflow");
  for (const char* name : {"s4_3x3", "s4_pointwise"}) {
    EXPECT_EQ(by_name.at(name)->path, LayerPath::kFloat) << name;
    EXPECT_EQ(by_name.at(name)->reason,
              "the CPU has no VNNI, where oneDNN's int8 convolutions are not "
              "exact for a signed input")
        << name;
  }
  // With VNNI (no int16 pairs) every one of them takes the int8 path.
  prepared = internal::PrepareLayers(g, layers, {});
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  for (const auto& [index, layer] : prepared->by_node) {
    EXPECT_EQ(layer.path, LayerPath::kInt8) << layer.name;
  }
}

// Pairs of products at the int16 limit, 255 * (+-64) + 255 * (+-64), on
// this CPU's int8 path: exact, as the rule above promises. A 3x3
// convolution of 8 channels, so oneDNN's kernels pair products of
// neighbouring channels and taps.
TEST(EsbExecutorTest, PairsAtTheInt16LimitAreExact) {
  Tensor w = Random({16, 8, 3, 3}, 11, -1.0f, 1.0f);
  for (float& v : w.data) v = v < 0.0f ? -64.0f : 64.0f;
  const Graph g = OneNode(Op::kConv, {graph::kBatch, 8, 6, 6}, {{"w", w}}, {});
  // Integer views: b4 sb1 weights in units of alpha = 1, so 64 is the
  // integer 64; b8 sb8 unsigned inputs in units of alpha / 128 = 1.
  const LayerQuant q{F(4, 1, true), std::vector<float>(16, 1.0f),
                     F(8, 8, false), 128.0f};
  Tensor x = Random({2, 8, 6, 6}, 12, 0.0f, 1.0f);
  for (float& v : x.data) v = v < 0.3f ? 0.0f : 255.0f;
  const Result r = RunBoth(g, {{"n", q}}, x);
  EXPECT_EQ(r.description,
            FastHere({"n"}, F(8, 8, false), F(4, 1, true), false));
  ExpectBitIdentical(r.fast, r.reference, "pairs at the limit");
  ExpectBitIdentical(r.reference, ExpectedConv(x, w, nullptr, {}, q),
                     "pairs at the limit vs formulas");
}

TEST(EsbExecutorTest, BadLayerMapsAreRefusedByName) {
  const Tensor w = Random({12, 6}, 5, -1.0f, 1.0f);
  const LayerQuant q{F(4, 2, true), Alphas(6, 0.1f), F(4, 2, true), 0.3f};
  Graph g = OneNode(Op::kGemm, {graph::kBatch, 12},
                    {{"w", w}, {"c", Random({4, 6}, 1, -1.0f, 1.0f)}}, {});
  auto e = EsbExecutor::Create(g, {{"n", q}});
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(e.status().message(), HasSubstr("layer 'n' (Gemm): C of shape "
                                              "[4,6] is neither a scalar"));
  e = EsbExecutor::Create(g, {{"fc9", q}});
  EXPECT_THAT(e.status().message(), HasSubstr("layer 'fc9' names no node"));
  LayerQuant bad = q;
  bad.weight_alpha.pop_back();
  g = OneNode(Op::kGemm, {graph::kBatch, 12}, {{"w", w}}, {});
  e = EsbExecutor::Create(g, {{"n", bad}});
  EXPECT_THAT(e.status().message(),
              HasSubstr("layer 'n' (Gemm): weights: 5 weight scales for 6"));
  bad = q;
  bad.input_alpha = 0.0f;
  e = EsbExecutor::Create(g, {{"n", bad}});
  EXPECT_THAT(e.status().message(), HasSubstr("layer 'n' (Gemm): input scale"));
}

}  // namespace
}  // namespace esb::runtime
