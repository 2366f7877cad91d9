// Layers whose worst-case accumulator exceeds 2^24 run on the fast paths
// (int8 where the CPU has VNNI, exact f32 on every CPU) with K split into
// chunks (esb_layers.h); their outputs equal the reference path's bit for
// bit, for Conv (grouped, strided, 1-D), Gemm
// (with and without trans_b) and MatMul, unsigned and signed inputs, float
// and requantized epilogues. The data drives the accumulators well past
// 2^24, which each case checks from the integers, so an unsplit s32 result
// passed through f32, or an unsplit f32 sum, would be off.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/esb/quantize.h"
#include "core/runtime/esb_executor.h"
#include "core/runtime/esb_paths_testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::runtime {
namespace {

using graph::Attributes;
using graph::Graph;
using graph::Node;
using graph::Op;
using graph::Tensor;
using ::testing::HasSubstr;
using Shape = std::vector<int64_t>;

constexpr int64_t k2To24 = int64_t{1} << 24;

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

// Per-channel scales that put each channel's largest |w| on the format's
// largest level, so the integer weights reach max_integer().
std::vector<float> FullScaleAlphas(const Tensor& w, int axis, const Format& f) {
  const int64_t m = w.shape[axis];
  int64_t inner = 1;
  for (size_t d = axis + 1; d < w.shape.size(); ++d) inner *= w.shape[d];
  std::vector<float> peak(m, 0.0f);
  for (size_t i = 0; i < w.data.size(); ++i) {
    const int64_t c = (static_cast<int64_t>(i) / inner) % m;
    peak[c] = std::max(peak[c], std::fabs(w.data[i]));
  }
  std::vector<float> alphas;
  for (float p : peak) alphas.push_back(p / f.max_level());
  return alphas;
}

// The integer view of x, as the layer rounds it.
std::vector<int32_t> Integers(const Tensor& x, const LayerQuant& q) {
  std::vector<int32_t> xi(x.size());
  QuantizeToIntegers(q.input_format, q.input_alpha, x.data.data(), xi.data(),
                     x.size());
  return xi;
}

// The largest |acc| of a Gemm/MatMul with B' = trans_b ? B^T : B, from
// the integers (to show that the data needs the split).
int64_t MaxGemmAccumulator(const Tensor& x, const Tensor& b, bool trans_b,
                           const LayerQuant& q) {
  const std::vector<int32_t> xi = Integers(x, q);
  const int axis = trans_b ? 0 : 1;
  const std::vector<int32_t> wi =
      *QuantizeWeights(q.weight_format, q.weight_alpha, b.data, b.shape, axis);
  const int64_t k = x.shape.back(), rows = x.size() / k;
  const int64_t m = b.shape[axis];
  int64_t best = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < m; ++j) {
      int64_t acc = 0;
      for (int64_t i = 0; i < k; ++i) {
        acc +=
            int64_t{xi[r * k + i]} * (trans_b ? wi[j * k + i] : wi[i * m + j]);
      }
      best = std::max(best, std::abs(acc));
    }
  }
  return best;
}

// The largest |acc| over the output channels of a 2-D Conv's window at
// input (0, 0) of image 0 (an output of every undilated Conv with pads of
// at most its stride).
int64_t FirstWindowAccumulator(const Tensor& x, const Tensor& w, int64_t group,
                               const LayerQuant& q) {
  const std::vector<int32_t> xi = Integers(x, q);
  const std::vector<int32_t> wi =
      *QuantizeWeights(q.weight_format, q.weight_alpha, w.data, w.shape, 0);
  const int64_t m = w.shape[0], cg = w.shape[1], kh = w.shape[2],
                kw = w.shape[3];
  const int64_t h = x.shape[2], wd = x.shape[3];
  int64_t best = 0;
  for (int64_t o = 0; o < m; ++o) {
    const int64_t grp = o / (m / group);
    int64_t acc = 0;
    for (int64_t c = 0; c < cg; ++c) {
      for (int64_t i = 0; i < kh; ++i) {
        for (int64_t j = 0; j < kw; ++j) {
          acc += int64_t{xi[((grp * cg + c) * h + i) * wd + j]} *
                 wi[((o * cg + c) * kh + i) * kw + j];
        }
      }
    }
    best = std::max(best, std::abs(acc));
  }
  return best;
}

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
  std::string description;  // kAuto's.
  std::string float_description;
  std::map<std::string, int64_t> k_chunks;  // Empty when a run failed.
  std::map<std::string, int64_t> float_k_chunks;
};

// The fast path's K chunks of `layer`, 0 when it is not fast.
int64_t Chunks(const std::map<std::string, int64_t>& k_chunks,
               const std::string& layer) {
  auto it = k_chunks.find(layer);
  return it == k_chunks.end() ? 0 : it->second;
}

// The start of kAuto's description of one split layer with formats `in`
// and `w` on this CPU.
std::string SplitHere(const Format& in, const Format& w) {
  return NotInt8Here(in, w, /*matmul=*/false).empty()
             ? "int8 fast path on 1 of 1 layers (K split"
             : "exact f32 path on 1 of 1 layer (K split";
}
constexpr char kFloatSplit[] = "exact f32 path on 1 of 1 layer (K split";

// The auto and the exact f32 path each split `layer` and equal the
// reference bit for bit.
void ExpectSplitAndExact(const Result& r, const std::string& layer,
                         const std::string& what) {
  EXPECT_GT(Chunks(r.k_chunks, layer), 1) << what;
  EXPECT_GT(Chunks(r.float_k_chunks, layer), 1) << what;
  ExpectBitIdentical(r.fast, r.reference, what);
  ExpectBitIdentical(r.exact_float, r.reference, what + " f32");
}

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
      r.k_chunks = (*executor)->k_chunks();
    } else if (path == EsbExecutorOptions::Path::kExactFloat) {
      r.exact_float = (*y)[0];
      r.float_description = (*executor)->Description();
      r.float_k_chunks = (*executor)->k_chunks();
    } else {
      r.reference = (*y)[0];
    }
  }
  return r;
}

// Unsigned b8 sb8 (0..255) and signed b8 sb7 (-127..127) inputs, b8 sb7
// weights at full scale: the 8-bit edge layers' formats.
const Format kU8 = F(8, 8, false);
const Format kS8 = F(8, 7, true);
const Format kW8 = F(8, 7, true);

TEST(EsbSplitTest, ConvPathsAgreeBitForBit) {
  struct Case {
    std::string name;
    Shape x;
    Shape w;
    Attributes attrs;
    bool signed_input = false;
  };
  Attributes pad;
  pad.pads = {1, 1, 1, 1};
  Attributes grouped = pad;
  grouped.group = 2;
  Attributes strided;
  strided.strides = {2, 2};
  strided.activation.kind = graph::Activation::Kind::kRelu;
  Attributes dilated = pad;
  dilated.dilations = {2, 1};
  dilated.pads = {2, 1, 2, 1};
  // Dilated past the 3x3 map: only the centre tap reaches the input.
  Attributes atrous;
  atrous.dilations = {4, 4};
  atrous.pads = {4, 4, 4, 4};
  const std::vector<Case> cases = {
      // K = 3 * 3 * 512 = 4608, ResNet-50's last 3x3 convolutions.
      {"3x3x512", {2, 512, 4, 4}, {24, 512, 3, 3}, pad},
      {"3x3x2048_signed", {1, 2048, 3, 3}, {16, 2048, 3, 3}, pad, true},
      {"grouped_3x3", {1, 1024, 3, 3}, {32, 512, 3, 3}, grouped},
      {"1x1x2048_strided_relu", {2, 2048, 5, 5}, {40, 2048, 1, 1}, strided},
      {"dilated", {1, 768, 6, 5}, {8, 768, 3, 3}, dilated, true},
      {"atrous_past_the_map", {2, 2048, 3, 3}, {8, 2048, 3, 3}, atrous},
  };
  uint32_t seed = 10;
  for (const Case& c : cases) {
    // Inputs high in their range and weights mostly positive: accumulators
    // near their bound.
    const Tensor x = Random(c.x, ++seed, c.signed_input ? -0.05f : 0.4f, 1.0f);
    const Tensor w = Random(c.w, ++seed, -0.2f, 1.0f);
    const Tensor b = Random({c.w[0]}, ++seed, -0.5f, 0.5f);
    Shape decl = c.x;
    decl[0] = graph::kBatch;
    const Graph g = OneNode(Op::kConv, decl, {{"w", w}, {"b", b}}, c.attrs);
    const LayerQuant q{kW8, FullScaleAlphas(w, 0, kW8),
                       c.signed_input ? kS8 : kU8, 0.5f};
    const Result r = RunBoth(g, {{"n", q}}, x);
    EXPECT_THAT(r.description,
                HasSubstr(SplitHere(q.input_format, q.weight_format)))
        << c.name;
    EXPECT_THAT(r.float_description, HasSubstr(kFloatSplit)) << c.name;
    if (c.attrs.dilations.empty()) {
      EXPECT_GT(FirstWindowAccumulator(x, w, c.attrs.group, q), k2To24)
          << c.name;
    }
    ExpectSplitAndExact(r, "n", c.name);
  }
}

TEST(EsbSplitTest, OneDimensionalConvSplits) {
  Attributes a;
  a.pads = {2, 2};
  const Tensor x = Random({2, 1024, 9}, 1, 0.5f, 1.0f);
  const Tensor w = Random({12, 1024, 5}, 2, -0.1f, 1.0f);
  const Graph g = OneNode(Op::kConv, {graph::kBatch, 1024, 9}, {{"w", w}}, a);
  const LayerQuant q{kW8, FullScaleAlphas(w, 0, kW8), kU8, 0.5f};
  const Result r = RunBoth(g, {{"n", q}}, x);
  ExpectSplitAndExact(r, "n", "1-D");
}

TEST(EsbSplitTest, GemmAndMatMulPathsAgreeBitForBit) {
  struct Case {
    std::string name;
    Op op;
    Shape x;
    Shape b;
    Attributes attrs;
    bool signed_input = false;
  };
  Attributes trans_b;  // torch.nn.Linear: VGG-11's 25088 -> 4096 head.
  trans_b.trans_b = true;
  Attributes plain;
  plain.alpha = 0.5f;
  plain.beta = 2.0f;
  plain.activation.kind = graph::Activation::Kind::kRelu;
  const std::vector<Case> cases = {
      {"linear_25088", Op::kGemm, {2, 25088}, {48, 25088}, trans_b},
      {"linear_16384_signed",
       Op::kGemm,
       {3, 16384},
       {40, 16384},
       trans_b,
       true},
      {"gemm_2048", Op::kGemm, {4, 2048}, {2048, 36}, plain},
      {"matmul_batch_dims", Op::kMatMul, {2, 3, 3072}, {3072, 20}, {}},
  };
  uint32_t seed = 50;
  for (const Case& c : cases) {
    const bool tb = c.attrs.trans_b;
    const Tensor x = Random(c.x, ++seed, c.signed_input ? -0.05f : 0.4f, 1.0f);
    const Tensor b = Random(c.b, ++seed, -0.2f, 1.0f);
    const int64_t m = tb ? c.b[0] : c.b[1];
    std::vector<std::pair<std::string, Tensor>> constants = {{"b", b}};
    if (c.op == Op::kGemm) {
      constants.push_back({"c", Random({m}, ++seed, -1.0f, 1.0f)});
    }
    Shape decl = c.x;
    decl[0] = graph::kBatch;
    const Graph g = OneNode(c.op, decl, constants, c.attrs);
    const LayerQuant q{kW8, FullScaleAlphas(b, tb ? 0 : 1, kW8),
                       c.signed_input ? kS8 : kU8, 0.5f};
    const Result r = RunBoth(g, {{"n", q}}, x);
    EXPECT_THAT(r.description,
                HasSubstr(SplitHere(q.input_format, q.weight_format)))
        << c.name;
    EXPECT_THAT(r.float_description, HasSubstr(kFloatSplit)) << c.name;
    EXPECT_GT(MaxGemmAccumulator(x, b, tb, q), k2To24) << c.name;
    ExpectSplitAndExact(r, "n", c.name);
  }
}

// A split layer whose output feeds another: the first epilogue adds the
// partials and writes the second layer's u8 input.
TEST(EsbSplitTest, ChainedSplitLayersRequantizeExactly) {
  Attributes pad;
  pad.pads = {1, 1, 1, 1};
  pad.activation.kind = graph::Activation::Kind::kRelu;
  Graph g;
  g.inputs.push_back({"x", {graph::kBatch, 512, 4, 4}});
  g.constants["w1"] = Random({640, 512, 3, 3}, 1, -0.2f, 1.0f);
  g.constants["w2"] = Random({8, 640, 3, 3}, 2, -0.2f, 1.0f);
  g.nodes.push_back({"c1", Op::kConv, {"x", "w1"}, {"h"}, pad});
  g.nodes.push_back({"c2", Op::kConv, {"h", "w2"}, {"y"}, pad});
  g.outputs.push_back({"y", {}});
  const LayerQuant q1{kW8, FullScaleAlphas(g.constants["w1"], 0, kW8), kU8,
                      0.5f};
  // c1's outputs reach ~ 1300, within c * 700 = 1395.
  const LayerQuant q2{kW8, FullScaleAlphas(g.constants["w2"], 0, kW8), kU8,
                      700.0f};
  const Tensor x = Random({1, 512, 4, 4}, 3, 0.4f, 1.0f);
  const Result r = RunBoth(g, {{"c1", q1}, {"c2", q2}}, x);
  EXPECT_THAT(r.description, HasSubstr(NotInt8Here(kU8, kW8, false).empty()
                                           ? "int8 fast path on 2 of 2 layers"
                                           : "exact f32 path on 2 of 2"));
  ExpectSplitAndExact(r, "c1", "chain c1");
  EXPECT_GT(Chunks(r.k_chunks, "c2"), 1);
  EXPECT_GT(Chunks(r.float_k_chunks, "c2"), 1);
  auto e = EsbExecutor::Create(g, {{"c1", q1}, {"c2", q2}});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ((*e)->requantized_layers(), 1);
}

// The split is the fewest equal chunks for these weights: all K = 4096
// weights at 127 need 255 * 127 * 4096 / 2^24 > 7, so 8 chunks; the same K
// with most weights small needs none; and with the first half at 127 and
// the rest at 1, the L1 norm alone (255 * 262144 / 2^24 < 4) would allow 4
// chunks, but the heavy chunks need 8.
TEST(EsbSplitTest, ChunkCountFollowsTheWeights) {
  Tensor full{{4096, 2}, std::vector<float>(4096 * 2, 1.0f)};
  Tensor sparse = full;
  for (size_t i = 0; i < sparse.data.size(); ++i) {
    if (i / 2 % 32 != 0) sparse.data[i] = 0.01f;  // Integer 1.
  }
  Tensor lopsided = full;
  std::fill(lopsided.data.begin() + 4096, lopsided.data.end(), 0.01f);
  const Tensor x = Random({2, 4096}, 9, 0.9f, 1.0f);
  for (const auto& [w, chunks] :
       {std::pair{full, 8}, std::pair{sparse, 1}, std::pair{lopsided, 8}}) {
    const Graph g = OneNode(Op::kGemm, {graph::kBatch, 4096}, {{"w", w}}, {});
    const LayerQuant q{kW8, FullScaleAlphas(w, 1, kW8), kU8, 1.0f / 255.0f};
    const Result r = RunBoth(g, {{"n", q}}, x);
    // An unsigned input: the same chunks on both fast paths.
    EXPECT_EQ(Chunks(r.k_chunks, "n"), chunks);
    EXPECT_EQ(Chunks(r.float_k_chunks, "n"), chunks);
    ExpectBitIdentical(r.fast, r.reference, std::to_string(chunks));
    ExpectBitIdentical(r.exact_float, r.reference, std::to_string(chunks));
  }
}

// Weights up to 64 (b4 sb1) with u8 inputs take the int8 path even where
// oneDNN sums pairs in int16 (2 * 255 * 64 <= 32767), so the split is
// exercised there too: 255 * 64 * 2048 > 2^24 needs 2 chunks.
TEST(EsbSplitTest, SmallWeightsSplitOnTheInt8PathWithoutVnni) {
  const Format w4 = F(4, 1, true);
  Tensor w = Random({2048, 5}, 13, -1.0f, 1.0f);
  for (float& v : w.data) v = v < -0.2f ? -1.0f : 1.0f;
  const Graph g = OneNode(Op::kGemm, {graph::kBatch, 2048}, {{"w", w}}, {});
  const LayerQuant q{w4, FullScaleAlphas(w, 1, w4), kU8, 1.0f / 255.0f};
  const Result r = RunBoth(g, {{"n", q}}, Random({3, 2048}, 14, 0.8f, 1.0f));
  EXPECT_THAT(r.description, HasSubstr(SplitHere(kU8, w4)));
  EXPECT_EQ(Chunks(r.k_chunks, "n"), 2);
  ExpectBitIdentical(r.fast, r.reference, "b4 sb1 split");
  ExpectBitIdentical(r.exact_float, r.reference, "b4 sb1 split f32");
}

TEST(EsbSplitTest, SplitLayersAreDescribed) {
  Graph g;
  g.inputs.push_back({"x", {graph::kBatch, 4096}});
  g.constants["w1"] = Tensor{{4096, 4096}, std::vector<float>(4096 * 4096)};
  g.constants["w2"] = Tensor{{4096, 4096}, std::vector<float>(4096 * 4096)};
  g.constants["w3"] = Tensor{{4096, 8}, std::vector<float>(4096 * 8, 0.01f)};
  std::fill(g.constants["w1"].data.begin(), g.constants["w1"].data.end(), 1.0f);
  g.constants["w2"].data = g.constants["w1"].data;
  // Integers 127 (clipped to the largest level) in fc1: 8 chunks; 64
  // (level 1.0) in fc2: 4 chunks; 1 in fc3: none.
  const LayerQuant full{kW8, std::vector<float>(4096, 1.0f / 127.0f), kU8,
                        1.0f / 255.0f};
  const LayerQuant half{kW8, std::vector<float>(4096, 1.0f), kU8,
                        1.0f / 255.0f};
  const LayerQuant small{kW8, std::vector<float>(8, 1.0f), kU8, 1.0f};
  g.nodes.push_back({"fc1", Op::kGemm, {"x", "w1"}, {"h1"}, {}});
  g.nodes.push_back({"fc2", Op::kGemm, {"h1", "w2"}, {"h2"}, {}});
  g.nodes.push_back({"fc3", Op::kGemm, {"h2", "w3"}, {"y"}, {}});
  g.outputs.push_back({"y", {}});
  auto e =
      EsbExecutor::Create(g, {{"fc1", full}, {"fc2", half}, {"fc3", small}});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ((*e)->Description(),
            FastHere({"fc1", "fc2", "fc3"}, kU8, kW8, false,
                     " (K split so that every chunk's accumulator stays within "
                     "2^24: 1 layer in 4 chunks, 1 in 8)"));
  EXPECT_EQ((*e)->k_chunks(), (std::map<std::string, int64_t>{
                                  {"fc1", 8}, {"fc2", 4}, {"fc3", 1}}));
}

// Layers no split can help run the reference, and say why.
TEST(EsbSplitTest, LayersBeyondTheSplitRunTheReference) {
  // One input channel with 23 x 23 taps at 255 * 127: 17.1 million.
  const Tensor wide{{2, 1, 23, 23}, std::vector<float>(2 * 23 * 23, 1.0f)};
  const Graph conv =
      OneNode(Op::kConv, {graph::kBatch, 1, 24, 24}, {{"w", wide}}, {});
  const LayerQuant q1{kW8, FullScaleAlphas(wide, 0, kW8), kU8, 1.0f / 255.0f};
  const Result r1 =
      RunBoth(conv, {{"n", q1}}, Random({1, 1, 24, 24}, 2, 0.9f, 1.0f));
  EXPECT_THAT(
      r1.description,
      HasSubstr("reference path on 1 of 1 layer: no equal split of "
                "its 1 input channels per group into at most 64 chunks keeps"));
  EXPECT_EQ(r1.float_description, r1.description);
  ExpectBitIdentical(r1.fast, r1.reference, "wide kernel");

  // K = 1031 is prime: no equal split into at most 64 chunks.
  const Tensor prime = Random({1031, 3}, 3, 0.9f, 1.0f);
  const Graph gemm =
      OneNode(Op::kGemm, {graph::kBatch, 1031}, {{"w", prime}}, {});
  const LayerQuant q2{kW8, FullScaleAlphas(prime, 1, kW8), kU8, 1.0f / 255.0f};
  const Result r2 =
      RunBoth(gemm, {{"n", q2}}, Random({2, 1031}, 4, 0.9f, 1.0f));
  EXPECT_THAT(
      r2.description,
      HasSubstr("no equal split of its 1031 K into at most 64 chunks keeps"));
  EXPECT_EQ(r2.float_description, r2.description);
  ExpectBitIdentical(r2.fast, r2.reference, "prime K");

  // 255 * 127 * 70000 > 2^31: the partial sums would not fit int32.
  const Tensor deep{{70000, 2}, std::vector<float>(70000 * 2, 1.0f)};
  const Graph big =
      OneNode(Op::kGemm, {graph::kBatch, 70000}, {{"w", deep}}, {});
  const LayerQuant q3{kW8, {1.0f / 127.0f, 1.0f / 127.0f}, kU8, 1.0f / 255.0f};
  auto e = EsbExecutor::Create(big, {{"n", q3}});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_THAT((*e)->Description(),
              HasSubstr("worst-case |accumulator| 2266950000 exceeds int32"));
}

}  // namespace
}  // namespace esb::runtime
