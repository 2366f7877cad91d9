#include "core/onnx/export_qdq.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/esb/quantize.h"
#include "core/graph/shapes.h"
#include "core/package/layer_weights.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "onnx/checker.h"
#include "onnx/defs/schema.h"
#include "onnx/onnx_pb.h"
#include "onnx/shape_inference/implementation.h"

namespace esb::pipeline {
namespace {

using graph::Node;
using graph::Op;

// Initializers are written as raw_data, which ONNX defines little-endian.
static_assert(std::endian::native == std::endian::little,
              "raw_data tensors are written in host byte order");

constexpr int64_t kOpset = 13;
constexpr int64_t kIrVersion = 7;

std::string Context(const Node& node) {
  return absl::StrCat("layer '", node.name, "' (", graph::OpName(node.op), ")");
}

// Drops trailing omitted ("") optional inputs.
std::vector<std::string> TrimOptional(std::vector<std::string> inputs) {
  while (!inputs.empty() && inputs.back().empty()) inputs.pop_back();
  return inputs;
}

template <typename T>
void SetRaw(onnx::TensorProto& t, const std::vector<T>& values) {
  t.set_raw_data(std::string(reinterpret_cast<const char*>(values.data()),
                             values.size() * sizeof(T)));
}

// Writes one graph as an ONNX ModelProto. Single use.
class QdqWriter {
 public:
  QdqWriter(const graph::Graph& graph,
            const std::map<std::string, LayerQuant>& layers,
            const QdqOptions& options)
      : graph_(graph), layers_(layers), options_(options) {}

  absl::StatusOr<onnx::ModelProto> Run();

 private:
  onnx::GraphProto& g() { return *model_.mutable_graph(); }

  onnx::NodeProto* AddNode(absl::string_view op, const std::string& name,
                           const std::vector<std::string>& inputs,
                           const std::vector<std::string>& outputs);
  onnx::TensorProto* AddInitializer(const std::string& name,
                                    onnx::TensorProto::DataType type,
                                    const std::vector<int64_t>& shape);
  void AddFloats(const std::string& name, const std::vector<int64_t>& shape,
                 const std::vector<float>& data) {
    SetRaw(*AddInitializer(name, onnx::TensorProto::FLOAT, shape), data);
  }
  void AddInt64s(const std::string& name, const std::vector<int64_t>& data) {
    SetRaw(*AddInitializer(name, onnx::TensorProto::INT64,
                           {static_cast<int64_t>(data.size())}),
           data);
  }
  // A scalar float initializer, or "" (an omitted optional input) for an
  // infinite Clip bound.
  std::string Bound(const std::string& name, float value) {
    if (std::isinf(value)) return "";
    AddFloats(name, {}, {value});
    return name;
  }
  // The name of a node input, noting graph constants to write.
  std::string In(const std::string& value) {
    if (graph_.constants.count(value)) used_constants_.insert(value);
    return value;
  }

  absl::Status WriteNode(const Node& node);
  // The shapes of every value with the batch at 1, computed once.
  absl::StatusOr<const std::map<std::string, std::vector<int64_t>>*>
  InputShapesAtBatch1() {
    if (!shapes_.has_value()) {
      std::map<std::string, std::vector<int64_t>> given;
      for (const graph::ValueInfo& v : graph_.inputs) {
        std::vector<int64_t> dims = v.shape;
        std::replace(dims.begin(), dims.end(), graph::kBatch, int64_t{1});
        given[v.name] = dims;
      }
      auto shapes = graph::InferShapes(graph_, given);
      if (!shapes.ok()) return shapes.status();
      shapes_ = *std::move(shapes);
    }
    return &*shapes_;
  }
  absl::Status WriteResize(const Node& node, const std::string& x,
                           const std::vector<std::string>& outputs);
  absl::Status WriteLayerNorm(const Node& node,
                              const std::vector<std::string>& inputs,
                              const std::vector<std::string>& outputs);
  absl::Status WriteQuantizedInputs(const Node& node, const LayerQuant& q,
                                    std::vector<std::string>& inputs);
  void WriteValueInfo(const graph::ValueInfo& info, onnx::ValueInfoProto* out);

  const graph::Graph& graph_;
  const std::map<std::string, LayerQuant>& layers_;
  const QdqOptions& options_;
  onnx::ModelProto model_;
  std::set<std::string> used_constants_;
  std::map<std::string, std::string> metadata_;
  std::optional<std::map<std::string, std::vector<int64_t>>> shapes_;
};

onnx::NodeProto* QdqWriter::AddNode(absl::string_view op,
                                    const std::string& name,
                                    const std::vector<std::string>& inputs,
                                    const std::vector<std::string>& outputs) {
  onnx::NodeProto* n = g().add_node();
  n->set_op_type(std::string{op});
  n->set_name(name);
  for (const std::string& in : inputs) n->add_input(in);
  for (const std::string& out : outputs) n->add_output(out);
  return n;
}

onnx::TensorProto* QdqWriter::AddInitializer(
    const std::string& name, onnx::TensorProto::DataType type,
    const std::vector<int64_t>& shape) {
  onnx::TensorProto* t = g().add_initializer();
  t->set_name(name);
  t->set_data_type(type);
  for (int64_t d : shape) t->add_dims(d);
  return t;
}

void AddInt(onnx::NodeProto* n, const std::string& name, int64_t value) {
  onnx::AttributeProto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}

void AddFloat(onnx::NodeProto* n, const std::string& name, float value) {
  onnx::AttributeProto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(value);
}

// Skipped when empty: ONNX's default (or, for kernel_shape, the weights)
// then applies, as in the IR.
void AddInts(onnx::NodeProto* n, const std::string& name,
             const std::vector<int64_t>& values) {
  if (values.empty()) return;
  onnx::AttributeProto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
}

void AddString(onnx::NodeProto* n, const std::string& name,
               const std::string& value) {
  onnx::AttributeProto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(value);
}

// Resize's attributes, as ONNX spells them.
void AddResizeMethod(onnx::NodeProto* n, const graph::ResizeMethod& m) {
  using Method = graph::ResizeMethod;
  AddString(n, "mode", m.mode == Method::Mode::kLinear ? "linear" : "nearest");
  const char* coordinates = "asymmetric";
  switch (m.coordinates) {
    case Method::Coordinates::kHalfPixel:
      coordinates = "half_pixel";
      break;
    case Method::Coordinates::kPytorchHalfPixel:
      coordinates = "pytorch_half_pixel";
      break;
    case Method::Coordinates::kAlignCorners:
      coordinates = "align_corners";
      break;
    case Method::Coordinates::kAsymmetric:
      break;
  }
  AddString(n, "coordinate_transformation_mode", coordinates);
  const char* rounding = "ceil";
  switch (m.rounding) {
    case Method::Rounding::kRoundPreferFloor:
      rounding = "round_prefer_floor";
      break;
    case Method::Rounding::kRoundPreferCeil:
      rounding = "round_prefer_ceil";
      break;
    case Method::Rounding::kFloor:
      rounding = "floor";
      break;
    case Method::Rounding::kCeil:
      break;
  }
  AddString(n, "nearest_mode", rounding);
}

// The sliding-window attributes Conv and MaxPool share.
void AddWindow(onnx::NodeProto* n, const graph::Attributes& a) {
  AddInts(n, "kernel_shape", a.kernel);
  AddInts(n, "strides", a.strides);
  AddInts(n, "pads", a.pads);
  AddInts(n, "dilations", a.dilations);
}

void QdqWriter::WriteValueInfo(const graph::ValueInfo& info,
                               onnx::ValueInfoProto* out) {
  out->set_name(info.name);
  auto* tensor = out->mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(onnx::TensorProto::FLOAT);
  // An empty shape is unknown in the IR (outputs shape inference could not
  // resolve); leave the rank open rather than claim a scalar.
  if (info.shape.empty()) return;
  auto* shape = tensor->mutable_shape();
  for (size_t d = 0; d < info.shape.size(); ++d) {
    auto* dim = shape->add_dim();
    if (info.shape[d] >= 0) {
      dim->set_dim_value(info.shape[d]);
    } else if (d == 0) {
      dim->set_dim_param("N");
    }
  }
}

absl::Status QdqWriter::WriteQuantizedInputs(const Node& node,
                                             const LayerQuant& q,
                                             std::vector<std::string>& inputs) {
  const std::string& layer = node.name;
  if (node.inputs.size() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(Context(node), " has no weight input"));
  }
  absl::StatusOr<internal::LayerWeights> weights =
      internal::QuantizeLayerWeights(graph_, node, q);
  if (!weights.ok()) return weights.status();
  const graph::Tensor* w = weights->weights;
  const int axis = weights->axis;
  const std::vector<int32_t>* ints = &weights->integers;

  // Weights.
  const Format& fw = q.weight_format;
  const int lw = fw.mantissa_bits();
  const bool per_channel = q.weight_alpha.size() > 1;
  std::string weight;
  if (fw.fits_int8()) {
    const auto type =
        fw.is_signed() ? onnx::TensorProto::INT8 : onnx::TensorProto::UINT8;
    const std::string wq = layer + "/w_int8";
    const std::string scale = layer + "/w_scale";
    const std::string zero = layer + "/w_zero_point";
    if (fw.is_signed()) {
      SetRaw(*AddInitializer(wq, type, w->shape),
             std::vector<int8_t>(ints->begin(), ints->end()));
    } else {
      SetRaw(*AddInitializer(wq, type, w->shape),
             std::vector<uint8_t>(ints->begin(), ints->end()));
    }
    std::vector<float> scales;
    for (float a : q.weight_alpha) scales.push_back(std::ldexp(a, -lw));
    const std::vector<int64_t> scale_shape =
        per_channel ? std::vector<int64_t>{static_cast<int64_t>(scales.size())}
                    : std::vector<int64_t>{};
    AddFloats(scale, scale_shape, scales);
    // Zero points are 0 whatever their type: one zero byte per channel.
    SetRaw(*AddInitializer(zero, type, scale_shape),
           std::vector<int8_t>(scales.size(), 0));
    weight = layer + "/w_dq";
    onnx::NodeProto* dq =
        AddNode("DequantizeLinear", weight, {wq, scale, zero}, {weight});
    if (per_channel) AddInt(dq, "axis", axis);
  } else {
    // alpha * level, level = wi * 2^-Lw exactly.
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; ++d) outer *= w->shape[d];
    for (size_t d = axis + 1; d < w->shape.size(); ++d) inner *= w->shape[d];
    const int64_t channels = w->shape[axis];
    std::vector<float> values(ints->size());
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t c = 0; c < channels; ++c) {
        const float a = per_channel ? q.weight_alpha[c] : q.weight_alpha[0];
        const int64_t base = (o * channels + c) * inner;
        for (int64_t i = 0; i < inner; ++i) {
          values[base + i] =
              a * std::ldexp(static_cast<float>((*ints)[base + i]), -lw);
        }
      }
    }
    weight = layer + "/w_esb";
    AddFloats(weight, w->shape, values);
  }

  // Input QDQ.
  const Format& fx = q.input_format;
  const int32_t qmax = fx.is_signed() ? 127 : 255;
  float sx;
  if (fx.max_integer() <= qmax) {
    sx = std::ldexp(q.input_alpha, -fx.mantissa_bits());
  } else {
    sx = fx.max_level() * q.input_alpha / static_cast<float>(qmax);
    metadata_[absl::StrCat(kQdqInputScaleKeyPrefix, layer)] = absl::StrCat(
        "input format ", fx.ToString(), " has integers up to ",
        fx.max_integer(), ", beyond ", fx.is_signed() ? "int8" : "uint8",
        "; QDQ scale is c * alpha / ", qmax, " = ", sx,
        " instead of alpha / 2^", fx.mantissa_bits(),
        " (coarser than ESB near zero)");
  }
  const auto xtype =
      fx.is_signed() ? onnx::TensorProto::INT8 : onnx::TensorProto::UINT8;
  const std::string xscale = layer + "/x_scale";
  const std::string xzero = layer + "/x_zero_point";
  const std::string xq = layer + "/x_q";
  const std::string xdq = layer + "/x_dq";
  AddFloats(xscale, {}, {sx});
  SetRaw(*AddInitializer(xzero, xtype, {}), std::vector<int8_t>{0});
  AddNode("QuantizeLinear", xq, {node.inputs[0], xscale, xzero}, {xq});
  AddNode("DequantizeLinear", xdq, {xq, xscale, xzero}, {xdq});

  inputs = {xdq, weight};
  for (size_t i = 2; i < node.inputs.size(); ++i) {
    inputs.push_back(In(node.inputs[i]));
  }
  return absl::OkStatus();
}

absl::Status QdqWriter::WriteNode(const Node& node) {
  const std::string& layer = node.name;
  if (node.inputs.empty() || node.outputs.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Context(node), " has no inputs or no outputs"));
  }
  // Reshape, Clip and Pad carry their operands as attributes in the IR and
  // read only input 0 (shapes.h); their ONNX operands are written below.
  const bool data_only =
      node.op == Op::kReshape || node.op == Op::kClip || node.op == Op::kPad;
  std::vector<std::string> inputs;
  auto quant = layers_.find(node.name);
  if (quant != layers_.end()) {
    if (absl::Status s = WriteQuantizedInputs(node, quant->second, inputs);
        !s.ok()) {
      return s;
    }
  } else if (data_only) {
    inputs.push_back(In(node.inputs[0]));
  } else {
    for (const std::string& in : node.inputs) inputs.push_back(In(in));
  }
  std::vector<std::string> outputs = node.outputs;
  const graph::Activation& act = node.attrs.activation;
  const bool fused = act.kind != graph::Activation::Kind::kNone;
  if (fused) outputs[0] = layer + "/pre_activation";

  const graph::Attributes& a = node.attrs;
  const absl::string_view op = graph::OpName(node.op);
  onnx::NodeProto* n = nullptr;
  switch (node.op) {
    case Op::kConv:
      n = AddNode(op, layer, inputs, outputs);
      AddWindow(n, a);
      AddInt(n, "group", a.group);
      break;
    case Op::kGemm:
      n = AddNode(op, layer, inputs, outputs);
      AddFloat(n, "alpha", a.alpha);
      AddFloat(n, "beta", a.beta);
      AddInt(n, "transA", a.trans_a ? 1 : 0);
      AddInt(n, "transB", a.trans_b ? 1 : 0);
      break;
    case Op::kBatchNorm:
      n = AddNode(op, layer, inputs, outputs);
      AddFloat(n, "epsilon", a.epsilon);
      break;
    case Op::kClip:
      inputs.push_back(Bound(layer + "/min", a.min));
      inputs.push_back(Bound(layer + "/max", a.max));
      AddNode(op, layer, TrimOptional(inputs), outputs);
      break;
    case Op::kLeakyRelu:
      AddFloat(AddNode(op, layer, inputs, outputs), "alpha", a.alpha);
      break;
    case Op::kReduceMean:
    case Op::kReduceMax:
      n = AddNode(op, layer, inputs, outputs);
      AddInts(n, "axes", a.axes);
      AddInt(n, "keepdims", a.keep_dims ? 1 : 0);
      break;
    case Op::kReduceSum:
      // Opset 13 takes its axes as an input.
      inputs.push_back(layer + "/axes");
      AddInt64s(inputs.back(), a.axes);
      AddInt(AddNode(op, layer, inputs, outputs), "keepdims",
             a.keep_dims ? 1 : 0);
      break;
    case Op::kHardSigmoid:
      n = AddNode(op, layer, inputs, outputs);
      AddFloat(n, "alpha", a.alpha);
      AddFloat(n, "beta", a.beta);
      break;
    case Op::kHardSwish: {
      // HardSwish is opset 14; at this file's opset it is its definition,
      // x * HardSigmoid(x) with alpha 1/6 and beta 1/2.
      const std::string gate = layer + "/hard_sigmoid";
      n = AddNode("HardSigmoid", gate, {inputs[0]}, {gate});
      AddFloat(n, "alpha", 1.0f / 6.0f);
      AddFloat(n, "beta", 0.5f);
      AddNode("Mul", layer, {inputs[0], gate}, outputs);
      break;
    }
    case Op::kMaxPool:
      n = AddNode(op, layer, inputs, outputs);
      AddWindow(n, a);
      AddInt(n, "ceil_mode", a.ceil_mode ? 1 : 0);
      break;
    case Op::kAveragePool:
      n = AddNode(op, layer, inputs, outputs);
      AddInts(n, "kernel_shape", a.kernel);
      AddInts(n, "strides", a.strides);
      AddInts(n, "pads", a.pads);
      AddInt(n, "ceil_mode", a.ceil_mode ? 1 : 0);
      AddInt(n, "count_include_pad", a.count_include_pad ? 1 : 0);
      break;
    case Op::kConcat:
    case Op::kFlatten:
    case Op::kSoftmax:
      AddInt(AddNode(op, layer, inputs, outputs), "axis", a.axis);
      break;
    case Op::kReshape:
      inputs.push_back(layer + "/shape");
      AddInt64s(inputs.back(), a.shape);
      AddNode(op, layer, inputs, outputs);
      break;
    case Op::kTranspose:
      AddInts(AddNode(op, layer, inputs, outputs), "perm", a.perm);
      break;
    case Op::kPad:
      inputs.push_back(layer + "/pads");
      AddInt64s(inputs.back(), a.pads);
      inputs.push_back(layer + "/value");
      AddFloats(inputs.back(), {}, {a.value});
      AddNode(op, layer, inputs, outputs);
      break;
    case Op::kExpand:
      inputs.push_back(layer + "/shape");
      AddInt64s(inputs.back(), a.shape);
      AddNode(op, layer, inputs, outputs);
      break;
    case Op::kResize:
      if (absl::Status s = WriteResize(node, inputs[0], outputs); !s.ok()) {
        return s;
      }
      break;
    case Op::kLayerNorm:
      if (absl::Status s = WriteLayerNorm(node, inputs, outputs); !s.ok()) {
        return s;
      }
      break;
    case Op::kGelu: {
      // No Gelu at this file's opset: its definition.
      const std::string x = inputs[0];
      const std::string root = layer + "/sqrt2";
      AddFloats(root, {}, {std::sqrt(2.0f)});
      AddNode("Div", layer + "/scaled", {x, root}, {layer + "/scaled"});
      AddNode("Erf", layer + "/erf", {layer + "/scaled"}, {layer + "/erf"});
      AddFloats(layer + "/one", {}, {1.0f});
      AddNode("Add", layer + "/gate", {layer + "/erf", layer + "/one"},
              {layer + "/gate"});
      AddNode("Mul", layer + "/gated", {x, layer + "/gate"},
              {layer + "/gated"});
      AddFloats(layer + "/half", {}, {0.5f});
      AddNode("Mul", layer, {layer + "/gated", layer + "/half"}, outputs);
      break;
    }
    case Op::kMatMul:
    case Op::kRelu:
    case Op::kSigmoid:
    case Op::kGlobalAveragePool:
    case Op::kAdd:
    case Op::kMul:
    case Op::kSub:
    case Op::kDiv:
    case Op::kPow:
    case Op::kSqrt:
    case Op::kErf:
    case Op::kIdentity:
      AddNode(op, layer, inputs, outputs);
      break;
  }

  if (act.kind == graph::Activation::Kind::kRelu) {
    AddNode("Relu", layer + "/relu", {outputs[0]}, {node.outputs[0]});
  } else if (act.kind == graph::Activation::Kind::kClip) {
    AddNode("Clip", layer + "/clip",
            TrimOptional({outputs[0], Bound(layer + "/clip_min", act.min),
                          Bound(layer + "/clip_max", act.max)}),
            {node.outputs[0]});
  }
  return absl::OkStatus();
}

absl::Status QdqWriter::WriteResize(const Node& node, const std::string& x,
                                    const std::vector<std::string>& outputs) {
  const graph::Attributes& a = node.attrs;
  if (a.scales.size() != 4 || a.shape.size() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(Context(node), " has ", a.scales.size(), " scales and ",
                     a.shape.size(), " output sizes; 4 and 2 expected"));
  }
  const std::string& layer = node.name;
  // Opset 13 Resize takes sizes or scales. Sizes give the output shape
  // exactly, but ONNX then derives the scales as out / in: they are written
  // when the layer's scales are those, else the scales themselves (whose
  // output, floor(in * scale), is the layer's).
  auto shapes = InputShapesAtBatch1();
  if (!shapes.ok()) return shapes.status();
  const auto* all = *shapes;
  auto in = all->find(x);
  if (in == all->end() || in->second.size() != 4) {
    return absl::InvalidArgumentError(
        absl::StrCat(Context(node), ": input '", x, "' is not 4-D"));
  }
  bool from_sizes = true;
  for (size_t d = 2; d < 4; ++d) {
    from_sizes =
        from_sizes && a.scales[d] == static_cast<float>(a.shape[d - 2]) /
                                         static_cast<float>(in->second[d]);
  }
  std::vector<std::string> inputs = {x, layer + "/roi", layer + "/scales"};
  AddFloats(inputs[1], {0}, {});
  if (!from_sizes) {
    AddFloats(inputs[2], {4}, a.scales);
    AddResizeMethod(AddNode("Resize", layer, inputs, outputs), a.resize);
    return absl::OkStatus();
  }
  AddFloats(inputs[2], {0}, {});
  // Opset 13 Resize takes either; sizes need the batch at run time:
  // Concat(Shape(x)[0:2], [H, W]).
  const std::string shape = layer + "/input_shape";
  AddNode("Shape", shape, {x}, {shape});
  const std::string nc = layer + "/nc";
  AddInt64s(nc + "/starts", {0});
  AddInt64s(nc + "/ends", {2});
  AddNode("Slice", nc, {shape, nc + "/starts", nc + "/ends"}, {nc});
  const std::string hw = layer + "/hw";
  AddInt64s(hw, a.shape);
  const std::string sizes = layer + "/sizes";
  AddInt(AddNode("Concat", sizes, {nc, hw}, {sizes}), "axis", 0);
  inputs.push_back(sizes);
  AddResizeMethod(AddNode("Resize", layer, inputs, outputs), a.resize);
  return absl::OkStatus();
}

absl::Status QdqWriter::WriteLayerNorm(
    const Node& node, const std::vector<std::string>& inputs,
    const std::vector<std::string>& outputs) {
  // LayerNormalization is opset 17; at this file's opset it is its
  // definition over the scale's dims (the last ones).
  const graph::Tensor* scale = graph_.FindConstant(node.inputs[1]);
  if (scale == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        Context(node), ": scale '", node.inputs[1], "' is not a constant"));
  }
  const auto k = static_cast<int64_t>(scale->shape.size());
  std::vector<int64_t> axes;
  for (int64_t d = -k; d < 0; ++d) axes.push_back(d);
  const std::string& layer = node.name;
  const std::string& x = inputs[0];
  auto reduce_mean = [&](const std::string& in, const std::string& out) {
    onnx::NodeProto* n = AddNode("ReduceMean", out, {in}, {out});
    AddInts(n, "axes", axes);
    AddInt(n, "keepdims", 1);
  };
  const std::string mean = layer + "/mean";
  reduce_mean(x, mean);
  const std::string centered = layer + "/centered";
  AddNode("Sub", centered, {x, mean}, {centered});
  const std::string square = layer + "/square";
  AddNode("Mul", square, {centered, centered}, {square});
  const std::string var = layer + "/variance";
  reduce_mean(square, var);
  const std::string eps = layer + "/epsilon";
  AddFloats(eps, {}, {node.attrs.epsilon});
  const std::string shifted = layer + "/variance_epsilon";
  AddNode("Add", shifted, {var, eps}, {shifted});
  const std::string std_dev = layer + "/std";
  AddNode("Sqrt", std_dev, {shifted}, {std_dev});
  const std::string normalized = layer + "/normalized";
  AddNode("Div", normalized, {centered, std_dev}, {normalized});
  if (inputs.size() > 2) {
    const std::string scaled = layer + "/scaled";
    AddNode("Mul", scaled, {normalized, inputs[1]}, {scaled});
    AddNode("Add", layer, {scaled, inputs[2]}, outputs);
  } else {
    AddNode("Mul", layer, {normalized, inputs[1]}, outputs);
  }
  return absl::OkStatus();
}

absl::StatusOr<onnx::ModelProto> QdqWriter::Run() {
  for (const auto& [name, q] : layers_) {
    const Node* node = nullptr;
    for (const Node& n : graph_.nodes) {
      if (n.name == name) node = &n;
    }
    if (node == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "quantized layer '", name, "' is not a node of the graph"));
    }
    if (!graph::IsQuantizedOp(node->op)) {
      return absl::InvalidArgumentError(
          absl::StrCat(Context(*node),
                       " has quantization settings; only Conv, Gemm and "
                       "MatMul layers quantize"));
    }
  }

  model_.set_ir_version(kIrVersion);
  model_.set_producer_name(options_.producer_name);
  model_.set_producer_version(options_.producer_version);
  onnx::OperatorSetIdProto* opset = model_.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOpset);
  g().set_name(options_.graph_name);

  for (const graph::ValueInfo& in : graph_.inputs) {
    WriteValueInfo(in, g().add_input());
  }
  for (const graph::ValueInfo& out : graph_.outputs) {
    WriteValueInfo(out, g().add_output());
  }
  metadata_ = graph_.metadata;
  for (const auto& [key, value] : options_.metadata) metadata_[key] = value;
  for (const Node& node : graph_.nodes) {
    if (absl::Status s = WriteNode(node); !s.ok()) return s;
  }
  for (const std::string& name : used_constants_) {
    auto found = graph_.constants.find(name);
    if (found == graph_.constants.end()) {
      return absl::InternalError(
          absl::StrCat("constant '", name, "' is used but not defined"));
    }
    const graph::Tensor& t = found->second;
    if (static_cast<int64_t>(t.data.size()) != t.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("constant '", name, "' has ", t.data.size(),
                       " values for its shape of ", t.size()));
    }
    AddFloats(name, t.shape, t.data);
  }
  for (const auto& [key, value] : metadata_) {
    onnx::StringStringEntryProto* p = model_.add_metadata_props();
    p->set_key(key);
    p->set_value(value);
  }

  try {
    onnx::checker::check_model(model_);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(
        "the exported QDQ model fails the ONNX checker: ", e.what()));
  }
  try {
    onnx::ModelProto copy = model_;
    onnx::ShapeInferenceOptions shape_options(/*check_type_val=*/true,
                                              /*strict_mode_val=*/1,
                                              /*data_prop_val=*/false);
    onnx::shape_inference::InferShapes(copy, onnx::OpSchemaRegistry::Instance(),
                                       shape_options);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(
        "the exported QDQ model fails ONNX shape inference: ", e.what()));
  }
  return std::move(model_);
}

}  // namespace

absl::StatusOr<std::string> ExportQdqOnnx(
    const graph::Graph& graph, const std::map<std::string, LayerQuant>& layers,
    const QdqOptions& options) {
  absl::StatusOr<onnx::ModelProto> model =
      QdqWriter(graph, layers, options).Run();
  if (!model.ok()) return model.status();
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    if (!model->SerializeToCodedStream(&coded)) {
      return absl::InternalError("serializing the QDQ model failed");
    }
  }
  return bytes;
}

}  // namespace esb::pipeline
