#include "core/package/esbm.h"

#include <openssl/sha.h>

#include <cmath>
#include <functional>
#include <set>

#include "core/esb/codes.h"
#include "core/esb/dda.h"
#include "core/graph/passes.h"
#include "core/graph/shapes.h"
#include "core/onnx/onnx_import.h"
#include "core/testing/demo.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::pipeline {
namespace {

using demo::MakeFormat;
using ::testing::HasSubstr;

// Weights b4 sb2 with DDA scales, inputs unsigned b4 sb2 (signed on the
// layer reading the pixels).
std::map<std::string, LayerQuant> W4Layers(const graph::Graph& g) {
  return demo::DemoLayers(g, MakeFormat(4, 2, true), MakeFormat(4, 2, false));
}

data::Normalization DemoNormalization() {
  return data::Normalization{{0.2860f}, {0.3530f}};
}

void ExpectSameAttributes(const graph::Attributes& x,
                          const graph::Attributes& y) {
  EXPECT_EQ(y.kernel, x.kernel);
  EXPECT_EQ(y.strides, x.strides);
  EXPECT_EQ(y.pads, x.pads);
  EXPECT_EQ(y.dilations, x.dilations);
  EXPECT_EQ(y.group, x.group);
  EXPECT_EQ(y.ceil_mode, x.ceil_mode);
  EXPECT_EQ(y.count_include_pad, x.count_include_pad);
  EXPECT_EQ(y.alpha, x.alpha);
  EXPECT_EQ(y.beta, x.beta);
  EXPECT_EQ(y.trans_a, x.trans_a);
  EXPECT_EQ(y.trans_b, x.trans_b);
  EXPECT_EQ(y.min, x.min);
  EXPECT_EQ(y.max, x.max);
  EXPECT_EQ(y.epsilon, x.epsilon);
  EXPECT_EQ(y.axis, x.axis);
  EXPECT_EQ(y.perm, x.perm);
  EXPECT_EQ(y.shape, x.shape);
  EXPECT_EQ(y.value, x.value);
  EXPECT_EQ(y.activation.kind, x.activation.kind);
  EXPECT_EQ(y.activation.min, x.activation.min);
  EXPECT_EQ(y.activation.max, x.activation.max);
}

void ExpectRoundTrip(const std::string& model) {
  SCOPED_TRACE(model);
  const graph::Graph g = demo::LoadDemoModel(model);
  const auto layers = W4Layers(g);
  auto package = BuildPackage(g, layers, DemoNormalization(), model);
  ASSERT_TRUE(package.ok()) << package.status();
  const std::string bytes = SerializePackage(*package);
  EXPECT_EQ(SerializePackage(*package), bytes);
  auto parsed = ParsePackage(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->model_name(), model);
  auto unpacked = UnpackPackage(*parsed);
  ASSERT_TRUE(unpacked.ok()) << unpacked.status();
  const graph::Graph& u = unpacked->graph;

  EXPECT_EQ(unpacked->normalization.mean, DemoNormalization().mean);
  EXPECT_EQ(unpacked->normalization.std, DemoNormalization().std);
  ASSERT_EQ(u.inputs.size(), g.inputs.size());
  EXPECT_EQ(u.inputs[0].name, g.inputs[0].name);
  EXPECT_EQ(u.inputs[0].shape, g.inputs[0].shape);
  ASSERT_EQ(u.outputs.size(), g.outputs.size());
  EXPECT_EQ(u.outputs[0].name, g.outputs[0].name);
  EXPECT_EQ(u.outputs[0].shape, (std::vector<int64_t>{graph::kBatch, 10}));

  ASSERT_EQ(u.nodes.size(), g.nodes.size());
  EXPECT_EQ(unpacked->layers.size(), layers.size());
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const graph::Node& a = g.nodes[i];
    const graph::Node& b = u.nodes[i];
    SCOPED_TRACE(a.name);
    EXPECT_EQ(b.name, a.name);
    EXPECT_EQ(b.op, a.op);
    EXPECT_EQ(b.inputs, a.inputs);
    EXPECT_EQ(b.outputs, a.outputs);
    ExpectSameAttributes(a.attrs, b.attrs);
    if (!layers.count(a.name)) {
      for (const std::string& in : a.inputs) {
        if (!g.constants.count(in)) continue;
        EXPECT_EQ(u.constants.at(in).data, g.constants.at(in).data) << in;
        EXPECT_EQ(u.constants.at(in).shape, g.constants.at(in).shape) << in;
      }
      continue;
    }
    const LayerQuant& q = layers.at(a.name);
    const LayerQuant& r = unpacked->layers.at(a.name);
    EXPECT_EQ(r.weight_format, q.weight_format);
    EXPECT_EQ(r.weight_alpha, q.weight_alpha);
    EXPECT_EQ(r.input_format, q.input_format);
    EXPECT_EQ(r.input_alpha, q.input_alpha);

    // The codes in the package decode to QuantizeWeights' integers, and the
    // unpacked weights are alpha * level exactly.
    const graph::Tensor& w = g.constants.at(a.inputs[1]);
    const int axis = graph::WeightChannelAxis(a);
    auto ints =
        QuantizeWeights(q.weight_format, q.weight_alpha, w.data, w.shape, axis);
    ASSERT_TRUE(ints.ok());
    const esb::v1::PackageLayer& l = parsed->layers(static_cast<int>(i));
    EXPECT_EQ(l.weight_format().bits(), 4);
    EXPECT_EQ(l.weight_channel_axis(), axis);
    const graph::Tensor& uw = u.constants.at(b.inputs[1]);
    ASSERT_EQ(uw.shape, w.shape);
    int64_t inner = 1;
    for (size_t d = axis + 1; d < w.shape.size(); ++d) inner *= w.shape[d];
    // The unpacked integer view is the pipeline's, and the float weights
    // are alpha * integer / 2^L.
    EXPECT_EQ(unpacked->weight_integers.at(a.name), *ints);
    auto unpacked_codes =
        UnpackIntegers(CodeBook(q.weight_format), l.weight_codes(),
                       static_cast<int64_t>(ints->size()));
    ASSERT_TRUE(unpacked_codes.ok());
    EXPECT_EQ(*unpacked_codes, *ints);
    int64_t mismatches = 0;
    for (size_t k = 0; k < ints->size(); ++k) {
      const float alpha =
          q.weight_alpha[(k / inner) % static_cast<size_t>(w.shape[axis])];
      mismatches +=
          uw.data[k] != alpha * std::ldexp(static_cast<float>((*ints)[k]),
                                           -q.weight_format.mantissa_bits());
    }
    EXPECT_EQ(mismatches, 0);

    // Bias: Conv B or Gemm beta * C, one per output channel.
    const graph::Tensor& ub = u.constants.at(b.inputs[2]);
    const graph::Tensor& ob = g.constants.at(a.inputs[2]);
    EXPECT_EQ(ub.shape, (std::vector<int64_t>{w.shape[axis]}));
    std::vector<float> expected = ob.data;
    for (float& v : expected) v *= a.op == graph::Op::kGemm ? a.attrs.beta : 1;
    EXPECT_EQ(ub.data, expected);
  }
}

TEST(EsbmTest, LenetRoundTrips) { ExpectRoundTrip("lenet"); }

TEST(EsbmTest, ResnetRoundTrips) { ExpectRoundTrip("resnet"); }

TEST(EsbmTest, UnquantizedConvReadsItsWeightsFromConstants) {
  const graph::Graph g = demo::LoadDemoModel("lenet");
  auto layers = W4Layers(g);
  layers.erase("/conv2/Conv");
  auto package = BuildPackage(g, layers, {}, "partial");
  ASSERT_TRUE(package.ok()) << package.status();
  const graph::Node* conv2 = nullptr;
  for (const auto& n : g.nodes) {
    if (n.name == "/conv2/Conv") conv2 = &n;
  }
  ASSERT_NE(conv2, nullptr);
  EXPECT_EQ(package->constants().count(conv2->inputs[1]), 1u);
  EXPECT_EQ(package->constants().count(conv2->inputs[2]), 1u);
  // Quantized layers' float weights are not shipped.
  EXPECT_EQ(package->constants_size(), 2);
  auto unpacked = UnpackPackage(*package);
  ASSERT_TRUE(unpacked.ok()) << unpacked.status();
  EXPECT_EQ(unpacked->layers.count("/conv2/Conv"), 0u);
  EXPECT_EQ(unpacked->graph.constants.at(conv2->inputs[1]).data,
            g.constants.at(conv2->inputs[1]).data);
  EXPECT_TRUE(unpacked->normalization.empty());
}

// A one-layer graph: Conv 1x1, 2 output channels, weights [1.0, -0.5].
graph::Graph TinyConv() {
  graph::Graph g;
  g.inputs = {{"x", {graph::kBatch, 1, 2, 2}}};
  g.outputs = {{"y", {graph::kBatch, 2, 2, 2}}};
  g.constants["w"] = graph::Tensor{{2, 1, 1, 1}, {1.0f, -0.5f}};
  graph::Node conv{"conv", graph::Op::kConv, {"x", "w"}, {"y"}, {}};
  conv.attrs.kernel = {1, 1};
  conv.attrs.activation.kind = graph::Activation::Kind::kRelu;
  g.nodes.push_back(conv);
  return g;
}

std::map<std::string, LayerQuant> TinyLayers() {
  std::map<std::string, LayerQuant> layers;
  layers.emplace(
      "conv",
      LayerQuant{
          MakeFormat(4, 2, true), {1.0f, 1.0f}, MakeFormat(4, 2, false), 0.5f});
  return layers;
}

TEST(EsbmTest, PacksCodesLsbFirst) {
  auto package = BuildPackage(TinyConv(), TinyLayers(), {}, "tiny");
  ASSERT_TRUE(package.ok()) << package.status();
  const esb::v1::PackageLayer& l = package->layers(0);
  const Format f = MakeFormat(4, 2, true);
  // FP4 E2M1: 1.0 is exponent field 1, mantissa 0: 0b0010; -0.5 is the
  // subnormal 0.5 with the sign: 0b1001. First code in the low nibble.
  EXPECT_EQ(*f.Encode(1.0f), 0b0010u);
  EXPECT_EQ(*f.Encode(-0.5f), 0b1001u);
  EXPECT_EQ(l.weight_codes(), std::string(1, static_cast<char>(0x92)));
  EXPECT_EQ(l.activation(), esb::v1::FUSED_ACTIVATION_RELU);
  EXPECT_EQ(l.input_format().bits(), 4);
  EXPECT_FALSE(l.input_format().signed_());
  // No bias input: zeros, and the unpacked conv gets one.
  EXPECT_EQ(l.bias().data_size(), 2);
  auto u = UnpackPackage(*package);
  ASSERT_TRUE(u.ok()) << u.status();
  ASSERT_EQ(u->graph.nodes[0].inputs.size(), 3u);
  EXPECT_EQ(u->graph.nodes[0].inputs[2], "conv/bias");
  EXPECT_EQ(u->graph.constants.at("conv/bias").data,
            (std::vector<float>{0.0f, 0.0f}));
  EXPECT_EQ(u->graph.constants.at("w").data, (std::vector<float>{1.0f, -0.5f}));
}

TEST(EsbmTest, GemmBiasIsBetaTimesCPerColumn) {
  graph::Graph g;
  g.inputs = {{"x", {graph::kBatch, 3}}};
  g.outputs = {{"y", {graph::kBatch, 2}}};
  g.constants["b"] = graph::Tensor{{3, 2}, {1, 2, 3, 4, 5, 6}};
  g.constants["c"] = graph::Tensor{{1, 2}, {0.5f, -1.0f}};
  graph::Node gemm{"fc", graph::Op::kGemm, {"x", "b", "c"}, {"y"}, {}};
  gemm.attrs.beta = 2.0f;
  g.nodes.push_back(gemm);
  std::map<std::string, LayerQuant> layers;
  layers.emplace(
      "fc",
      LayerQuant{
          MakeFormat(4, 2, true), {1.0f, 1.0f}, MakeFormat(4, 2, true), 1.0f});
  auto package = BuildPackage(g, layers, {}, "gemm");
  ASSERT_TRUE(package.ok()) << package.status();
  const esb::v1::PackageLayer& l = package->layers(0);
  EXPECT_EQ(l.weight_channel_axis(), 1);
  EXPECT_EQ(std::vector<float>(l.bias().data().begin(), l.bias().data().end()),
            (std::vector<float>{1.0f, -2.0f}));
  EXPECT_EQ(l.beta(), 1.0f);
  auto u = UnpackPackage(*package);
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->graph.nodes[0].attrs.beta, 1.0f);
  EXPECT_EQ(u->graph.constants.at("c").data, (std::vector<float>{1.0f, -2.0f}));

  // A C per row and column is refused.
  g.constants["c"] = graph::Tensor{{2, 2}, {1, 2, 3, 4}};
  auto refused = BuildPackage(g, layers, {}, "gemm");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("'fc' (Gemm)"));
  EXPECT_THAT(refused.status().message(), HasSubstr("[2,2]"));
}

TEST(EsbmTest, SerializationIsDeterministic) {
  // Map entries inserted in a different order serialize the same.
  esb::v1::Package a, b;
  a.set_version(kPackageVersion);
  b.set_version(kPackageVersion);
  for (int i = 0; i < 20; ++i) {
    (*a.mutable_constants())[std::to_string(i)].add_data(static_cast<float>(i));
  }
  for (int i = 19; i >= 0; --i) {
    (*b.mutable_constants())[std::to_string(i)].add_data(static_cast<float>(i));
  }
  EXPECT_EQ(SerializePackage(a), SerializePackage(b));
  auto lenet1 = BuildPackage(demo::LoadDemoModel("lenet"),
                             W4Layers(demo::LoadDemoModel("lenet")),
                             DemoNormalization(), "lenet");
  auto lenet2 = BuildPackage(demo::LoadDemoModel("lenet"),
                             W4Layers(demo::LoadDemoModel("lenet")),
                             DemoNormalization(), "lenet");
  ASSERT_TRUE(lenet1.ok() && lenet2.ok());
  EXPECT_EQ(SerializePackage(*lenet1), SerializePackage(*lenet2));
}

TEST(EsbmTest, FramingIsMagicVersionChecksumPayload) {
  auto package = BuildPackage(TinyConv(), TinyLayers(), {}, "tiny");
  ASSERT_TRUE(package.ok());
  const std::string bytes = SerializePackage(*package);
  EXPECT_EQ(bytes.substr(0, 4), "ESBM");
  EXPECT_EQ(bytes.substr(4, 4), std::string("\x02\x00\x00\x00", 4));
  esb::v1::Package payload;
  ASSERT_TRUE(payload.ParseFromString(bytes.substr(kPackageHeaderBytes)));
  EXPECT_EQ(payload.model_name(), "tiny");
}

TEST(EsbmTest, EveryFlippedByteOfChecksumOrPayloadIsCaught) {
  auto package = BuildPackage(TinyConv(), TinyLayers(), {}, "tiny");
  ASSERT_TRUE(package.ok());
  const std::string bytes = SerializePackage(*package);
  for (size_t i = 8; i < bytes.size(); ++i) {
    std::string bad = bytes;
    bad[i] = static_cast<char>(bad[i] ^ 0xff);
    auto r = ParsePackage(bad);
    ASSERT_FALSE(r.ok()) << "byte " << i;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().message(),
              "checksum mismatch: the package is corrupt");
  }
  // A real model, sampled.
  auto lenet = BuildPackage(demo::LoadDemoModel("lenet"),
                            W4Layers(demo::LoadDemoModel("lenet")),
                            DemoNormalization(), "lenet");
  ASSERT_TRUE(lenet.ok());
  const std::string big = SerializePackage(*lenet);
  for (size_t i = 8; i < big.size(); i += 997) {
    std::string bad = big;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    EXPECT_THAT(ParsePackage(bad).status().message(),
                HasSubstr("checksum mismatch"))
        << "byte " << i;
  }
  std::string last = big;
  last.back() = static_cast<char>(last.back() ^ 0x80);
  EXPECT_THAT(ParsePackage(last).status().message(),
              HasSubstr("checksum mismatch"));
}

TEST(EsbmTest, RejectsBadFramesWithNamedReasons) {
  auto package = BuildPackage(TinyConv(), TinyLayers(), {}, "tiny");
  ASSERT_TRUE(package.ok());
  const std::string bytes = SerializePackage(*package);
  auto message = [](absl::string_view b) {
    auto r = ParsePackage(b);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(r.status().message());
  };
  std::string wrong_magic = bytes;
  wrong_magic[3] = 'X';
  EXPECT_THAT(message(wrong_magic), HasSubstr("magic"));
  EXPECT_THAT(message("PK\x03\x04 a zip file"),
              HasSubstr("not an ESB package"));

  std::string version3 = bytes;
  version3[4] = 3;
  EXPECT_THAT(message(version3), HasSubstr("version 3 is not supported"));

  EXPECT_THAT(message(""), HasSubstr("truncated"));
  EXPECT_THAT(message("ESB"), HasSubstr("truncated"));
  EXPECT_THAT(message(bytes.substr(0, 39)), HasSubstr("truncated"));
  // A cut payload no longer matches its checksum.
  EXPECT_THAT(message(bytes.substr(0, bytes.size() - 1)),
              HasSubstr("checksum mismatch"));

  // A checksum that matches a payload that is not a Package.
  const std::string garbage(64, '\xff');
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(garbage.data()), garbage.size(),
         digest);
  const std::string framed =
      bytes.substr(0, 8) +
      std::string(reinterpret_cast<const char*>(digest), sizeof(digest)) +
      garbage;
  EXPECT_THAT(message(framed), HasSubstr("not a valid esb.v1.Package"));
}

// Applies `mutate` to a valid tiny package and expects UnpackPackage to
// refuse it with `substring` in the message.
void ExpectUnpackError(const std::function<void(esb::v1::Package&)>& mutate,
                       const std::string& substring) {
  auto package = BuildPackage(TinyConv(), TinyLayers(), {}, "tiny");
  ASSERT_TRUE(package.ok());
  mutate(*package);
  // Through the frame, as the agent receives it.
  auto parsed = ParsePackage(SerializePackage(*package));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  auto r = UnpackPackage(*parsed);
  ASSERT_FALSE(r.ok()) << substring;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr(substring));
}

TEST(EsbmTest, UnpackValidatesEverything) {
  using P = esb::v1::Package;
  auto layer = [](P& p) { return p.mutable_layers(0); };
  ExpectUnpackError([](P& p) { p.set_version(1); }, "schema version 1");
  ExpectUnpackError(
      [&](P& p) { layer(p)->mutable_weight_format()->set_bits(9); },
      "layer 'conv' (Conv): weight format: bits = 9");
  ExpectUnpackError([&](P& p) { layer(p)->mutable_input_format()->set_sb(7); },
                    "layer 'conv' (Conv): input format: sb = 7");
  ExpectUnpackError([&](P& p) { layer(p)->add_weight_alpha(1.0f); },
                    "3 weight scales for 2 output channels");
  ExpectUnpackError([&](P& p) { layer(p)->set_weight_alpha(0, -1.0f); },
                    "weight scale 0");
  ExpectUnpackError([&](P& p) { layer(p)->set_input_alpha(0.0f); },
                    "input scale");
  ExpectUnpackError(
      [&](P& p) { layer(p)->mutable_weight_codes()->push_back(0); },
      "weight_codes: codes hold 2 bytes; 2 codes of 4 bits need 1");
  ExpectUnpackError([&](P& p) { layer(p)->set_weight_channel_axis(1); },
                    "weight_channel_axis is 1");
  ExpectUnpackError([&](P& p) { layer(p)->set_weight_shape(2, 3); },
                    "codes hold 1 bytes; 6 codes of 4 bits need 3");
  ExpectUnpackError([&](P& p) { layer(p)->set_weight_shape(1, -4); },
                    "negative or too large");
  ExpectUnpackError([&](P& p) { layer(p)->clear_weight_shape(); },
                    "has rank 0; 4 expected");
  ExpectUnpackError([&](P& p) { layer(p)->mutable_bias()->add_data(1.0f); },
                    "bias has 3 values");
  ExpectUnpackError(
      [&](P& p) { layer(p)->set_op(static_cast<esb::v1::LayerOp>(99)); },
      "op 99 is not supported");
  ExpectUnpackError(
      [&](P& p) { layer(p)->set_op(esb::v1::LAYER_OP_UNSPECIFIED); },
      "op 0 (unspecified) is not supported");
  ExpectUnpackError(
      [&](P& p) {
        layer(p)->set_activation(static_cast<esb::v1::FusedActivation>(7));
      },
      "fused activation 7 is unknown");
  ExpectUnpackError([&](P& p) { *p.add_layers() = p.layers(0); },
                    "layer name 'conv' is empty or repeated");
  ExpectUnpackError([&](P& p) { layer(p)->set_inputs(0, "nowhere"); },
                    "nowhere");
  ExpectUnpackError([](P& p) { p.add_input_mean(0.5f); },
                    "1 mean and 0 std values");
  ExpectUnpackError(
      [](P& p) {
        p.add_input_mean(0.5f);
        p.add_input_std(0.0f);
      },
      "normalization std 0 is 0");
  ExpectUnpackError(
      [](P& p) {
        esb::v1::FloatTensor t;
        t.add_shape(3);
        t.add_data(1.0f);
        (*p.mutable_constants())["k"] = t;
      },
      "constant 'k' has 1 values for its shape [3]");
  ExpectUnpackError([](P& p) { p.mutable_input_shapes(0)->set_shape(1, 0); },
                    "input 'x' has shape [-1,0,2,2]");
  ExpectUnpackError([](P& p) { p.set_output_names(0, "z"); }, "'z'");
  ExpectUnpackError([](P& p) { p.clear_output_names(); }, "0 outputs");
  ExpectUnpackError(
      [](P& p) {
        p.clear_input_names();
        p.clear_input_shapes();
      },
      "0 inputs");
}

TEST(EsbmTest, UnpackingStaysWithinItsAllocationBudget) {
  auto package = BuildPackage(TinyConv(), TinyLayers(), {}, "tiny");
  ASSERT_TRUE(package.ok());
  // Two weights (8 bytes each unpacked) and two biases (4 bytes each).
  UnpackOptions options;
  options.max_unpacked_bytes = 24;
  EXPECT_TRUE(UnpackPackage(*package, options).ok());
  options.max_unpacked_bytes = 23;
  auto r = UnpackPackage(*package, options);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(r.status().message(), HasSubstr("over the limit of 23 bytes"));
  // A layer that declares a huge weight tensor is refused by its codes'
  // length before anything that size is allocated.
  esb::v1::Package huge = *package;
  huge.mutable_layers(0)->set_weight_shape(1, int64_t{1} << 29);
  r = UnpackPackage(huge);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(EsbmTest, UnpackRefusesNonzeroMatMulBias) {
  graph::Graph g;
  g.inputs = {{"x", {graph::kBatch, 2}}};
  g.outputs = {{"y", {graph::kBatch, 2}}};
  g.constants["b"] = graph::Tensor{{2, 2}, {1, 0, 0, 1}};
  g.nodes.push_back(
      graph::Node{"mm", graph::Op::kMatMul, {"x", "b"}, {"y"}, {}});
  std::map<std::string, LayerQuant> layers;
  layers.emplace(
      "mm",
      LayerQuant{MakeFormat(4, 2, true), {1.0f}, MakeFormat(4, 2, true), 1.0f});
  auto package = BuildPackage(g, layers, {}, "mm");
  ASSERT_TRUE(package.ok()) << package.status();
  auto ok = UnpackPackage(*package);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->graph.nodes[0].inputs.size(), 2u);
  package->mutable_layers(0)->mutable_bias()->set_data(1, 0.5f);
  auto r = UnpackPackage(*package);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(),
              HasSubstr("layer 'mm' (MatMul): a MatMul cannot apply a nonzero "
                        "bias"));
}

TEST(EsbmTest, BuildRefusesSettingsForMissingOrUnquantizableNodes) {
  std::map<std::string, LayerQuant> layers;
  layers.emplace(
      "conv9",
      LayerQuant{
          MakeFormat(4, 2, true), {1.0f}, MakeFormat(4, 2, false), 1.0f});
  auto r = BuildPackage(TinyConv(), layers, {}, "tiny");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("'conv9'"));
}

}  // namespace
}  // namespace esb::pipeline
