#include "core/onnx/export_qdq.h"

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <set>

#include "core/esb/dda.h"
#include "core/graph/passes.h"
#include "core/onnx/onnx_import.h"
#include "core/runtime/executor.h"
#include "core/testing/demo.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "onnx/checker.h"
#include "onnx/onnx_pb.h"

namespace esb::pipeline {
namespace {

using demo::MakeFormat;
using ::testing::HasSubstr;

onnx::ModelProto Parse(const std::string& bytes) {
  onnx::ModelProto m;
  EXPECT_TRUE(m.ParseFromString(bytes));
  return m;
}

const onnx::TensorProto* Initializer(const onnx::ModelProto& m,
                                     const std::string& name) {
  for (const auto& t : m.graph().initializer()) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

const onnx::NodeProto* NodeNamed(const onnx::ModelProto& m,
                                 const std::string& name) {
  for (const auto& n : m.graph().node()) {
    if (n.name() == name) return &n;
  }
  return nullptr;
}

template <typename T>
std::vector<T> Raw(const onnx::TensorProto& t) {
  std::vector<T> v(t.raw_data().size() / sizeof(T));
  std::memcpy(v.data(), t.raw_data().data(), v.size() * sizeof(T));
  return v;
}

std::string Metadata(const onnx::ModelProto& m, const std::string& key) {
  for (const auto& p : m.metadata_props()) {
    if (p.key() == key) return p.value();
  }
  return "<missing>";
}

// alpha[c] * Round(w / alpha[c]) for every weight: the ESB values.
std::vector<float> EsbValues(const graph::Tensor& w, const LayerQuant& q,
                             int axis) {
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= w.shape[d];
  for (size_t d = axis + 1; d < w.shape.size(); ++d) inner *= w.shape[d];
  const int64_t m = w.shape[axis];
  std::vector<float> out(w.data.size());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t c = 0; c < m; ++c) {
      const float a = q.weight_alpha[c];
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t k = (o * m + c) * inner + i;
        out[k] = a * q.weight_format.Round(w.data[k] / a);
      }
    }
  }
  return out;
}

int64_t ChannelOf(const std::vector<int64_t>& shape, int axis, int64_t k) {
  int64_t inner = 1;
  for (size_t d = axis + 1; d < shape.size(); ++d) inner *= shape[d];
  return (k / inner) % shape[axis];
}

// Every quantized layer of `g` in `m` follows the QDQ contract.
void ExpectQdq(const graph::Graph& g,
               const std::map<std::string, LayerQuant>& layers,
               const onnx::ModelProto& m) {
  EXPECT_NO_THROW(onnx::checker::check_model(m));
  EXPECT_EQ(m.ir_version(), 7);
  ASSERT_EQ(m.opset_import_size(), 1);
  EXPECT_EQ(m.opset_import(0).version(), 13);
  for (const auto& [name, q] : layers) {
    SCOPED_TRACE(name);
    const graph::Node* node = nullptr;
    for (const auto& n : g.nodes) {
      if (n.name == name) node = &n;
    }
    ASSERT_NE(node, nullptr);
    const graph::Tensor& w = g.constants.at(node->inputs[1]);
    const int axis = graph::WeightChannelAxis(*node);
    const std::vector<float> expected = EsbValues(w, q, axis);
    const onnx::NodeProto* layer = NodeNamed(m, name);
    ASSERT_NE(layer, nullptr);
    EXPECT_EQ(layer->input(0), name + "/x_dq");

    if (q.weight_format.fits_int8()) {
      EXPECT_EQ(layer->input(1), name + "/w_dq");
      const onnx::NodeProto* dq = NodeNamed(m, name + "/w_dq");
      ASSERT_NE(dq, nullptr);
      EXPECT_EQ(dq->op_type(), "DequantizeLinear");
      ASSERT_EQ(dq->attribute_size(), 1);
      EXPECT_EQ(dq->attribute(0).name(), "axis");
      EXPECT_EQ(dq->attribute(0).i(), axis);
      const onnx::TensorProto* ints = Initializer(m, dq->input(0));
      const onnx::TensorProto* scales = Initializer(m, dq->input(1));
      const onnx::TensorProto* zeros = Initializer(m, dq->input(2));
      ASSERT_TRUE(ints && scales && zeros);
      EXPECT_EQ(ints->data_type(), onnx::TensorProto::INT8);
      EXPECT_EQ(zeros->data_type(), onnx::TensorProto::INT8);
      EXPECT_EQ(std::vector<int64_t>(ints->dims().begin(), ints->dims().end()),
                w.shape);
      const std::vector<int8_t> v = Raw<int8_t>(*ints);
      const std::vector<float> s = Raw<float>(*scales);
      ASSERT_EQ(v.size(), w.data.size());
      ASSERT_EQ(s.size(), q.weight_alpha.size());
      for (int8_t z : Raw<int8_t>(*zeros)) EXPECT_EQ(z, 0);
      std::set<int32_t> level_set;
      for (float level : q.weight_format.Levels()) {
        level_set.insert(q.weight_format.ToInteger(level));
      }
      auto reference = QuantizeWeights(q.weight_format, q.weight_alpha, w.data,
                                       w.shape, axis);
      ASSERT_TRUE(reference.ok());
      int64_t mismatches = 0;
      for (size_t k = 0; k < v.size(); ++k) {
        const int64_t c = ChannelOf(w.shape, axis, static_cast<int64_t>(k));
        const float dequantized = static_cast<float>(v[k]) * s[c];
        mismatches += dequantized != expected[k] || v[k] != (*reference)[k] ||
                      level_set.count(v[k]) == 0;
      }
      EXPECT_EQ(mismatches, 0);
    } else {
      EXPECT_EQ(layer->input(1), name + "/w_esb");
      EXPECT_EQ(NodeNamed(m, name + "/w_dq"), nullptr);
      const onnx::TensorProto* t = Initializer(m, name + "/w_esb");
      ASSERT_NE(t, nullptr);
      EXPECT_EQ(t->data_type(), onnx::TensorProto::FLOAT);
      EXPECT_EQ(Raw<float>(*t), expected);
    }

    // Input QDQ with the ESB scale when its integers fit.
    const onnx::NodeProto* xq = NodeNamed(m, name + "/x_q");
    const onnx::NodeProto* xdq = NodeNamed(m, name + "/x_dq");
    ASSERT_TRUE(xq && xdq);
    EXPECT_EQ(xq->op_type(), "QuantizeLinear");
    EXPECT_EQ(xq->input(0), node->inputs[0]);
    EXPECT_EQ(xdq->input(0), xq->output(0));
    const onnx::TensorProto* xs = Initializer(m, xq->input(1));
    const onnx::TensorProto* xz = Initializer(m, xq->input(2));
    ASSERT_TRUE(xs && xz);
    EXPECT_EQ(xz->data_type(), q.input_format.is_signed()
                                   ? onnx::TensorProto::INT8
                                   : onnx::TensorProto::UINT8);
    EXPECT_EQ(Raw<uint8_t>(*xz), std::vector<uint8_t>{0});
    const float scale = Raw<float>(*xs).at(0);
    const int32_t qmax = q.input_format.is_signed() ? 127 : 255;
    if (q.input_format.max_integer() <= qmax) {
      EXPECT_EQ(scale,
                std::ldexp(q.input_alpha, -q.input_format.mantissa_bits()));
      EXPECT_EQ(Metadata(m, kQdqInputScaleKeyPrefix + name), "<missing>");
    } else {
      EXPECT_EQ(scale, q.input_format.max_level() * q.input_alpha /
                           static_cast<float>(qmax));
      EXPECT_THAT(Metadata(m, kQdqInputScaleKeyPrefix + name),
                  HasSubstr(q.input_format.ToString()));
    }
  }
}

TEST(ExportQdqTest, DequantizesLenetWeightsExactlyOntoTheGrid) {
  const graph::Graph g = demo::LoadDemoModel("lenet");
  const auto layers =
      demo::DemoLayers(g, MakeFormat(4, 2, true), MakeFormat(4, 2, false));
  ASSERT_EQ(layers.size(), 4u);
  QdqOptions options;
  options.metadata["esb_formats"] = "weights b4 sb2, activations b4 sb2";
  auto bytes = ExportQdqOnnx(g, layers, options);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  const onnx::ModelProto m = Parse(*bytes);
  ExpectQdq(g, layers, m);

  // Metadata of the source model is kept, the options' is added.
  EXPECT_EQ(Metadata(m, "input_mean"), "0.2860");
  EXPECT_EQ(Metadata(m, "input_std"), "0.3530");
  EXPECT_EQ(Metadata(m, "esb_formats"), "weights b4 sb2, activations b4 sb2");

  // Fused ReLUs come back as separate nodes writing the original values.
  int relus = 0;
  for (const graph::Node& n : g.nodes) {
    if (n.attrs.activation.kind != graph::Activation::Kind::kRelu) continue;
    ++relus;
    const onnx::NodeProto* relu = NodeNamed(m, n.name + "/relu");
    ASSERT_NE(relu, nullptr) << n.name;
    EXPECT_EQ(relu->op_type(), "Relu");
    EXPECT_EQ(relu->input(0), NodeNamed(m, n.name)->output(0));
    EXPECT_EQ(relu->output(0), n.outputs[0]);
  }
  EXPECT_EQ(relus, 3);

  // The batch is symbolic.
  const auto& dims = m.graph().input(0).type().tensor_type().shape().dim();
  ASSERT_EQ(dims.size(), 4);
  EXPECT_EQ(dims[0].dim_param(), "N");
  EXPECT_EQ(dims[1].dim_value(), 1);
  EXPECT_EQ(m.graph().output(0).name(), "logits");
}

TEST(ExportQdqTest, DequantizesResnetWeightsExactlyOntoTheGrid) {
  const graph::Graph g = demo::LoadDemoModel("resnet");
  const auto layers =
      demo::DemoLayers(g, MakeFormat(4, 2, true), MakeFormat(4, 2, false));
  ASSERT_EQ(layers.size(), 10u);
  auto bytes = ExportQdqOnnx(g, layers, QdqOptions{});
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  ExpectQdq(g, layers, Parse(*bytes));
}

TEST(ExportQdqTest, WideFormatsGiveExactFloatWeightsAndAnnotatedInputScale) {
  const graph::Graph g = demo::LoadDemoModel("lenet");
  // b8 sb4 signed: integers up to 245760; b8 sb5 unsigned: beyond 255.
  const auto layers =
      demo::DemoLayers(g, MakeFormat(8, 4, true), MakeFormat(8, 5, false));
  ASSERT_FALSE(layers.begin()->second.weight_format.fits_int8());
  auto bytes = ExportQdqOnnx(g, layers, QdqOptions{});
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  const onnx::ModelProto m = Parse(*bytes);
  ExpectQdq(g, layers, m);
  for (const auto& t : m.graph().initializer()) {
    EXPECT_THAT(t.name(), ::testing::Not(::testing::EndsWith("/w_int8")));
  }
  EXPECT_THAT(Metadata(m, std::string(kQdqInputScaleKeyPrefix) + "/conv2/Conv"),
              HasSubstr("b8 sb5 unsigned"));
}

// The claim the exporter rests on: wi * ldexp(alpha, -L) == alpha * level
// in float for every level of every format that fits 8 bits.
TEST(ExportQdqTest, ScaledIntegerEqualsAlphaTimesLevelInFloat) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> exponent(-20.0f, 10.0f);
  int64_t checked = 0;
  for (const Format& f : Format::All()) {
    if (!f.fits_int8()) continue;
    for (int trial = 0; trial < 300; ++trial) {
      const float alpha = std::exp2(exponent(rng));
      const float scale = std::ldexp(alpha, -f.mantissa_bits());
      for (float level : f.Levels()) {
        ASSERT_EQ(static_cast<float>(f.ToInteger(level)) * scale, alpha * level)
            << f.ToString() << " alpha " << alpha << " level " << level;
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 10000);
}

TEST(ExportQdqTest, ReimportNamesQuantizeLinearAsUnsupported) {
  const graph::Graph g = demo::LoadDemoModel("lenet");
  const auto layers =
      demo::DemoLayers(g, MakeFormat(4, 2, true), MakeFormat(4, 2, false));
  auto bytes = ExportQdqOnnx(g, layers, QdqOptions{});
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  const std::string path =
      (std::filesystem::temp_directory_path() /
       ("esb_export_qdq_test_" + std::to_string(::getpid()) + ".onnx"))
          .string();
  {
    std::ofstream out(path, std::ios::binary);
    out << *bytes;
  }
  auto back = graph::ImportOnnxFile(path);
  std::filesystem::remove(path);
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(back.status().message(), HasSubstr("op QuantizeLinear"));
  EXPECT_THAT(back.status().message(), HasSubstr("not supported"));
}

// A graph with every op of the IR, exported without quantization, imports
// back to the same nodes.
graph::Graph AllOps() {
  using graph::Node;
  using graph::Op;
  graph::Graph g;
  g.inputs = {{"x", {graph::kBatch, 2, 6, 6}}};
  g.outputs = {{"y", {graph::kBatch, 4}}};
  auto constant = [&](const std::string& name, std::vector<int64_t> shape) {
    graph::Tensor t{shape, {}};
    for (int64_t i = 0; i < t.size(); ++i) {
      t.data.push_back(0.25f + 0.01f * static_cast<float>(i % 17));
    }
    g.constants[name] = t;
  };
  constant("w", {3, 2, 3, 3});
  constant("b", {3});
  for (const char* n : {"bn_s", "bn_b", "bn_m", "bn_v"}) constant(n, {3});
  constant("k", {1, 3, 1, 1});
  constant("mm", {54, 5});
  constant("gw", {4, 5});
  constant("gc", {4});
  auto add = [&](const std::string& name, Op op, std::vector<std::string> in,
                 const std::string& out) -> Node& {
    g.nodes.push_back(Node{name, op, std::move(in), {out}, {}});
    return g.nodes.back();
  };
  add("pad", Op::kPad, {"x"}, "p").attrs.pads = {0, 0, 1, 1, 0, 0, 1, 1};
  g.nodes.back().attrs.value = 0.5f;
  Node& conv = add("conv", Op::kConv, {"p", "w", "b"}, "c");
  conv.attrs.kernel = {3, 3};
  conv.attrs.strides = {1, 1};
  conv.attrs.pads = {0, 0, 0, 0};
  conv.attrs.dilations = {1, 1};
  conv.attrs.activation = {graph::Activation::Kind::kClip, 0.0f, 6.0f};
  add("bn", Op::kBatchNorm, {"c", "bn_s", "bn_b", "bn_m", "bn_v"}, "bn")
      .attrs.epsilon = 1e-3f;
  add("leaky", Op::kLeakyRelu, {"bn"}, "l").attrs.alpha = 0.1f;
  Node& mp = add("maxpool", Op::kMaxPool, {"l"}, "mp");
  mp.attrs.kernel = {2, 2};
  mp.attrs.strides = {1, 1};
  mp.attrs.pads = {0, 0, 0, 0};
  mp.attrs.dilations = {1, 1};
  Node& ap = add("avgpool", Op::kAveragePool, {"mp"}, "ap");
  ap.attrs.kernel = {2, 2};
  ap.attrs.strides = {2, 2};
  ap.attrs.pads = {0, 0, 1, 1};
  ap.attrs.ceil_mode = true;
  ap.attrs.count_include_pad = true;
  add("sigmoid", Op::kSigmoid, {"ap"}, "s");
  Node& hard = add("hard_sigmoid", Op::kHardSigmoid, {"s"}, "hs");
  hard.attrs.alpha = 0.3f;
  hard.attrs.beta = 0.4f;
  add("mul", Op::kMul, {"hs", "k"}, "mu");
  add("add", Op::kAdd, {"mu", "s"}, "ad");
  add("concat", Op::kConcat, {"ad", "ad"}, "cat").attrs.axis = 1;
  add("transpose", Op::kTranspose, {"cat"}, "t").attrs.perm = {0, 2, 3, 1};
  add("untranspose", Op::kTranspose, {"t"}, "u").attrs.perm = {0, 3, 1, 2};
  add("relu", Op::kRelu, {"u"}, "r");
  add("flatten", Op::kFlatten, {"r"}, "f").attrs.axis = 1;
  add("reshape", Op::kReshape, {"f"}, "rs").attrs.shape = {0, -1};
  add("matmul", Op::kMatMul, {"rs", "mm"}, "mmo");
  Node& gemm = add("gemm", Op::kGemm, {"mmo", "gw", "gc"}, "g");
  gemm.attrs.trans_b = true;
  gemm.attrs.alpha = 0.5f;
  gemm.attrs.beta = 2.0f;
  Node& clip = add("clip", Op::kClip, {"g"}, "cl");
  clip.attrs.min = -std::numeric_limits<float>::infinity();
  clip.attrs.max = 3.0f;
  add("softmax", Op::kSoftmax, {"cl"}, "sm").attrs.axis = 1;
  add("identity", Op::kIdentity, {"sm"}, "y");
  return g;
}

TEST(ExportQdqTest, EveryOpSurvivesAnFp32RoundTrip) {
  const graph::Graph g = AllOps();
  auto bytes = ExportQdqOnnx(g, {}, QdqOptions{});
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  auto back = graph::ImportOnnxBytes(*bytes, "");
  ASSERT_TRUE(back.ok()) << back.status();
  // The fused Clip comes back as a node of its own, after the Conv.
  ASSERT_EQ(back->nodes.size(), g.nodes.size() + 1);
  size_t j = 0;
  for (const graph::Node& n : g.nodes) {
    SCOPED_TRACE(n.name);
    const graph::Node& b = back->nodes[j++];
    // The importer drops Identity nodes and re-creates one per graph output
    // ("y/output").
    EXPECT_EQ(b.name, n.op == graph::Op::kIdentity ? "y/output" : n.name);
    EXPECT_EQ(b.op, n.op);
    EXPECT_EQ(b.inputs[0], n.inputs[0]);
    const graph::Attributes& x = n.attrs;
    const graph::Attributes& y = b.attrs;
    EXPECT_EQ(y.kernel, x.kernel);
    EXPECT_EQ(y.strides, x.strides);
    EXPECT_EQ(y.pads, x.pads);
    EXPECT_EQ(y.ceil_mode, x.ceil_mode);
    EXPECT_EQ(y.count_include_pad, x.count_include_pad);
    EXPECT_EQ(y.alpha, x.alpha);
    EXPECT_EQ(y.beta, x.beta);
    EXPECT_EQ(y.trans_b, x.trans_b);
    EXPECT_EQ(y.epsilon, x.epsilon);
    EXPECT_EQ(y.axis, x.axis);
    EXPECT_EQ(y.perm, x.perm);
    EXPECT_EQ(y.shape, x.shape);
    EXPECT_EQ(y.value, x.value);
    if (n.op == graph::Op::kClip) {
      EXPECT_EQ(y.min, x.min);
      EXPECT_EQ(y.max, x.max);
    }
    if (n.op == graph::Op::kConv) {
      const graph::Node& clip = back->nodes[j++];
      EXPECT_EQ(clip.op, graph::Op::kClip);
      EXPECT_EQ(clip.name, "conv/clip");
      EXPECT_EQ(clip.attrs.min, 0.0f);
      EXPECT_EQ(clip.attrs.max, 6.0f);
      EXPECT_EQ(clip.outputs[0], n.outputs[0]);
    }
  }
  EXPECT_EQ(back->constants.at("w").data, g.constants.at("w").data);
  ASSERT_EQ(back->outputs.size(), 1u);
  EXPECT_EQ(back->outputs[0].shape, (std::vector<int64_t>{graph::kBatch, 4}));
}

// HardSwish is opset 14, past the export's opset: it goes out as its
// definition, x * HardSigmoid(x) (alpha 1/6, beta 1/2), which computes the
// same values.
TEST(ExportQdqTest, HardSwishExportsAsItsDefinition) {
  graph::Graph g;
  g.inputs = {{"x", {graph::kBatch, 9}}};
  g.outputs = {{"y", {graph::kBatch, 9}}};
  g.nodes.push_back({"hs", graph::Op::kHardSwish, {"x"}, {"y"}, {}});
  auto bytes = ExportQdqOnnx(g, {}, QdqOptions{});
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  auto back = graph::ImportOnnxBytes(*bytes, "");
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_GE(back->nodes.size(), 2u);
  EXPECT_EQ(back->nodes[0].op, graph::Op::kHardSigmoid);
  EXPECT_FLOAT_EQ(back->nodes[0].attrs.alpha, 1.0f / 6.0f);
  EXPECT_FLOAT_EQ(back->nodes[0].attrs.beta, 0.5f);
  EXPECT_EQ(back->nodes[1].op, graph::Op::kMul);
  const graph::Tensor x{{1, 9}, {-4, -3, -2, -1, 0, 1, 2, 3, 4}};
  auto original = runtime::Executor::Create(g);
  auto exported = runtime::Executor::Create(*back);
  ASSERT_TRUE(original.ok() && exported.ok());
  auto want = (*original)->Run({x});
  auto got = (*exported)->Run({x});
  ASSERT_TRUE(want.ok() && got.ok());
  ASSERT_EQ(got->front().data.size(), want->front().data.size());
  for (size_t i = 0; i < want->front().data.size(); ++i) {
    EXPECT_NEAR(got->front().data[i], want->front().data[i], 1e-6) << i;
  }
}

TEST(ExportQdqTest, QuantizesEveryOpGraphToo) {
  const graph::Graph g = AllOps();
  std::map<std::string, LayerQuant> layers;
  layers.emplace("conv", LayerQuant{MakeFormat(4, 2, true),
                                    {0.1f, 0.2f, 0.3f},
                                    MakeFormat(4, 2, false),
                                    0.25f});
  layers.emplace(
      "matmul",
      LayerQuant{
          MakeFormat(5, 3, true), {0.05f}, MakeFormat(4, 1, true), 0.5f});
  auto bytes = ExportQdqOnnx(g, layers, QdqOptions{});
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  const onnx::ModelProto m = Parse(*bytes);
  EXPECT_NO_THROW(onnx::checker::check_model(m));
  // One alpha: a per-tensor scale, no axis.
  const onnx::NodeProto* dq = NodeNamed(m, "matmul/w_dq");
  ASSERT_NE(dq, nullptr);
  EXPECT_EQ(dq->attribute_size(), 0);
  EXPECT_EQ(Initializer(m, "matmul/w_scale")->dims_size(), 0);
}

TEST(ExportQdqTest, RefusesSettingsForMissingOrUnquantizableNodes) {
  const graph::Graph g = AllOps();
  std::map<std::string, LayerQuant> layers;
  layers.emplace(
      "conv7",
      LayerQuant{
          MakeFormat(4, 2, true), {1.0f}, MakeFormat(4, 2, false), 1.0f});
  auto r = ExportQdqOnnx(g, layers, QdqOptions{});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("'conv7'"));

  layers.clear();
  layers.emplace(
      "maxpool",
      LayerQuant{
          MakeFormat(4, 2, true), {1.0f}, MakeFormat(4, 2, false), 1.0f});
  r = ExportQdqOnnx(g, layers, QdqOptions{});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("'maxpool' (MaxPool)"));

  layers.clear();
  layers.emplace(
      "conv",
      LayerQuant{
          MakeFormat(4, 2, true), {1.0f, 2.0f}, MakeFormat(4, 2, false), 1.0f});
  r = ExportQdqOnnx(g, layers, QdqOptions{});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("'conv' (Conv)"));
  EXPECT_THAT(r.status().message(), HasSubstr("2 weight scales"));

  layers.clear();
  layers.emplace(
      "conv",
      LayerQuant{
          MakeFormat(4, 2, true), {1.0f}, MakeFormat(4, 2, false), -1.0f});
  r = ExportQdqOnnx(g, layers, QdqOptions{});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("input scale"));
}

TEST(ExportQdqTest, MalformedGraphFailsTheCheckerAsInternal) {
  graph::Graph g = AllOps();
  g.nodes[1].inputs[0] = "nowhere";  // conv reads an undefined value.
  auto r = ExportQdqOnnx(g, {}, QdqOptions{});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(r.status().message(), HasSubstr("ONNX checker"));
}

}  // namespace
}  // namespace esb::pipeline
