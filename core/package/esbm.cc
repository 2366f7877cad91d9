#include "core/package/esbm.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/env/digest.h"
#include "core/esb/codes.h"
#include "core/esb/quantize.h"
#include "core/graph/checked.h"
#include "core/graph/shapes.h"
#include "core/package/layer_weights.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace esb::pipeline {
namespace {

using graph::Node;
using graph::Op;

constexpr char kMagic[] = "ESBM";
constexpr size_t kMagicBytes = 4;
// Largest weight count of one layer a package may declare (2^32): bounds
// the arithmetic on untrusted shapes well inside int64.
constexpr int64_t kMaxWeights = int64_t{1} << 32;

// Conv 0; Gemm 0 when trans_b, else 1; MatMul 1.

std::string Context(const std::string& name, absl::string_view op) {
  return absl::StrCat("layer '", name, "' (", op, ")");
}
std::string Context(const Node& node) {
  return Context(node.name, graph::OpName(node.op));
}

esb::v1::FormatSpec ToSpec(const Format& f) {
  esb::v1::FormatSpec spec;
  spec.set_bits(f.bits());
  spec.set_sb(f.sb());
  spec.set_signed_(f.is_signed());
  return spec;
}

esb::v1::FloatTensor ToProto(const std::vector<int64_t>& shape,
                             const std::vector<float>& data) {
  esb::v1::FloatTensor t;
  t.mutable_shape()->Add(shape.begin(), shape.end());
  t.mutable_data()->Add(data.begin(), data.end());
  return t;
}

// Per output channel: Conv B, Gemm beta * C (C a scalar or per column;
// ignored when beta is 0, as the ESB executor does), zeros when absent.
absl::StatusOr<std::vector<float>> LayerBias(const graph::Graph& graph,
                                             const Node& node, int64_t m) {
  std::vector<float> bias(m, 0.0f);
  if (node.op == Op::kMatMul || node.inputs.size() < 3) return bias;
  if (node.op == Op::kGemm && node.attrs.beta == 0.0f) return bias;
  const graph::Tensor* b = graph.FindConstant(node.inputs[2]);
  if (b == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        Context(node), ": bias '", node.inputs[2], "' is not a constant"));
  }
  if (node.op == Op::kConv) {
    if (static_cast<int64_t>(b->data.size()) != m) {
      return absl::InvalidArgumentError(
          absl::StrCat(Context(node), ": bias '", node.inputs[2], "' has ",
                       b->data.size(), " values for ", m, " output channels"));
    }
    return b->data;
  }
  bool per_column = !b->shape.empty() && b->shape.back() == m;
  for (size_t d = 0; d + 1 < b->shape.size(); ++d) {
    per_column = per_column && b->shape[d] == 1;
  }
  const bool scalar = b->data.size() == 1;
  if ((!scalar && !per_column) ||
      static_cast<int64_t>(b->data.size()) != b->size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Context(node), ": C '", node.inputs[2], "' of shape ",
                     graph::ShapeToString(b->shape),
                     " is neither a scalar nor one value per output column [",
                     m, "]; ESB layers need one bias per output channel"));
  }
  for (int64_t j = 0; j < m; ++j) {
    bias[j] = node.attrs.beta * b->data[scalar ? 0 : j];
  }
  return bias;
}

esb::v1::LayerOp ToProtoOp(Op op) {
  switch (op) {
    case Op::kConv:
      return esb::v1::LAYER_OP_CONV;
    case Op::kGemm:
      return esb::v1::LAYER_OP_GEMM;
    case Op::kMatMul:
      return esb::v1::LAYER_OP_MATMUL;
    case Op::kBatchNorm:
      return esb::v1::LAYER_OP_BATCH_NORMALIZATION;
    case Op::kRelu:
      return esb::v1::LAYER_OP_RELU;
    case Op::kClip:
      return esb::v1::LAYER_OP_CLIP;
    case Op::kLeakyRelu:
      return esb::v1::LAYER_OP_LEAKY_RELU;
    case Op::kSigmoid:
      return esb::v1::LAYER_OP_SIGMOID;
    case Op::kHardSigmoid:
      return esb::v1::LAYER_OP_HARD_SIGMOID;
    case Op::kHardSwish:
      return esb::v1::LAYER_OP_HARD_SWISH;
    case Op::kMaxPool:
      return esb::v1::LAYER_OP_MAX_POOL;
    case Op::kAveragePool:
      return esb::v1::LAYER_OP_AVERAGE_POOL;
    case Op::kGlobalAveragePool:
      return esb::v1::LAYER_OP_GLOBAL_AVERAGE_POOL;
    case Op::kAdd:
      return esb::v1::LAYER_OP_ADD;
    case Op::kMul:
      return esb::v1::LAYER_OP_MUL;
    case Op::kSub:
      return esb::v1::LAYER_OP_SUB;
    case Op::kDiv:
      return esb::v1::LAYER_OP_DIV;
    case Op::kPow:
      return esb::v1::LAYER_OP_POW;
    case Op::kSqrt:
      return esb::v1::LAYER_OP_SQRT;
    case Op::kErf:
      return esb::v1::LAYER_OP_ERF;
    case Op::kReduceMean:
      return esb::v1::LAYER_OP_REDUCE_MEAN;
    case Op::kReduceSum:
      return esb::v1::LAYER_OP_REDUCE_SUM;
    case Op::kReduceMax:
      return esb::v1::LAYER_OP_REDUCE_MAX;
    case Op::kConcat:
      return esb::v1::LAYER_OP_CONCAT;
    case Op::kFlatten:
      return esb::v1::LAYER_OP_FLATTEN;
    case Op::kReshape:
      return esb::v1::LAYER_OP_RESHAPE;
    case Op::kTranspose:
      return esb::v1::LAYER_OP_TRANSPOSE;
    case Op::kSoftmax:
      return esb::v1::LAYER_OP_SOFTMAX;
    case Op::kIdentity:
      return esb::v1::LAYER_OP_IDENTITY;
    case Op::kPad:
      return esb::v1::LAYER_OP_PAD;
    case Op::kExpand:
      return esb::v1::LAYER_OP_EXPAND;
    case Op::kResize:
      return esb::v1::LAYER_OP_RESIZE;
    case Op::kLayerNorm:
      return esb::v1::LAYER_OP_LAYER_NORMALIZATION;
    case Op::kGelu:
      return esb::v1::LAYER_OP_GELU;
  }
  return esb::v1::LAYER_OP_UNSPECIFIED;
}

void CopyAttributes(const graph::Attributes& a, esb::v1::PackageLayer* l) {
  l->mutable_kernel()->Add(a.kernel.begin(), a.kernel.end());
  l->mutable_strides()->Add(a.strides.begin(), a.strides.end());
  l->mutable_pads()->Add(a.pads.begin(), a.pads.end());
  l->mutable_dilations()->Add(a.dilations.begin(), a.dilations.end());
  l->set_group(a.group);
  l->set_ceil_mode(a.ceil_mode);
  l->set_count_include_pad(a.count_include_pad);
  l->set_alpha(a.alpha);
  l->set_beta(a.beta);
  l->set_trans_a(a.trans_a);
  l->set_trans_b(a.trans_b);
  l->set_min(a.min);
  l->set_max(a.max);
  l->set_epsilon(a.epsilon);
  l->set_axis(a.axis);
  l->mutable_perm()->Add(a.perm.begin(), a.perm.end());
  l->mutable_axes()->Add(a.axes.begin(), a.axes.end());
  l->set_keep_dims(a.keep_dims);
  l->mutable_shape()->Add(a.shape.begin(), a.shape.end());
  l->set_value(a.value);
  l->mutable_scales()->Add(a.scales.begin(), a.scales.end());
  // The proto's enums list graph::ResizeMethod's values in order.
  l->mutable_resize()->set_mode(
      static_cast<esb::v1::ResizeMethod::Mode>(a.resize.mode));
  l->mutable_resize()->set_coordinates(
      static_cast<esb::v1::ResizeMethod::Coordinates>(a.resize.coordinates));
  l->mutable_resize()->set_rounding(
      static_cast<esb::v1::ResizeMethod::Rounding>(a.resize.rounding));
  switch (a.activation.kind) {
    case graph::Activation::Kind::kNone:
      break;
    case graph::Activation::Kind::kRelu:
      l->set_activation(esb::v1::FUSED_ACTIVATION_RELU);
      break;
    case graph::Activation::Kind::kClip:
      l->set_activation(esb::v1::FUSED_ACTIVATION_CLIP);
      l->set_act_min(a.activation.min);
      l->set_act_max(a.activation.max);
      break;
  }
}

absl::Status AddQuantized(const graph::Graph& graph, const Node& node,
                          const LayerQuant& q, esb::v1::PackageLayer* l) {
  absl::StatusOr<internal::LayerWeights> lw =
      internal::QuantizeLayerWeights(graph, node, q);
  if (!lw.ok()) return lw.status();
  const graph::Tensor* w = lw->weights;
  const int axis = lw->axis;
  const std::vector<int32_t>* ints = &lw->integers;
  const int64_t m = w->shape[axis];
  auto bias = LayerBias(graph, node, m);
  if (!bias.ok()) return bias.status();

  const Format& fw = q.weight_format;
  absl::StatusOr<std::string> codes = PackIntegers(CodeBook(fw), *ints);
  if (!codes.ok()) {  // Unreachable: QuantizeWeights gives levels.
    return absl::InternalError(
        absl::StrCat(Context(node), ": weights: ", codes.status().message()));
  }

  l->set_quantized(true);
  *l->mutable_weight_format() = ToSpec(fw);
  l->mutable_weight_alpha()->Add(q.weight_alpha.begin(), q.weight_alpha.end());
  l->set_weight_channel_axis(axis);
  l->mutable_weight_shape()->Add(w->shape.begin(), w->shape.end());
  l->set_weight_codes(*std::move(codes));
  *l->mutable_input_format() = ToSpec(q.input_format);
  l->set_input_alpha(q.input_alpha);
  *l->mutable_bias() = ToProto({m}, *bias);
  if (node.op == Op::kGemm) l->set_beta(1.0f);  // Folded into bias.
  return absl::OkStatus();
}

// ---- Unpacking ----

absl::StatusOr<Format> FromSpec(const esb::v1::FormatSpec& spec,
                                const std::string& what) {
  absl::StatusOr<Format> f =
      Format::Create(spec.bits(), spec.sb(), spec.signed_());
  if (!f.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", f.status().message()));
  }
  return f;
}

absl::StatusOr<Op> FromProtoOp(esb::v1::LayerOp proto,
                               const std::string& layer) {
  for (int i = 0; i <= static_cast<int>(graph::kLastOp); ++i) {
    const auto op = static_cast<Op>(i);
    if (proto != esb::v1::LAYER_OP_UNSPECIFIED && ToProtoOp(op) == proto) {
      return op;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "layer '", layer, "': op ", static_cast<int>(proto),
      proto == esb::v1::LAYER_OP_UNSPECIFIED ? " (unspecified)" : "",
      " is not supported by this reader"));
}

// Element count of a shape with every dim and the count in [0, limit], or
// an error.
absl::StatusOr<int64_t> CheckedCount(absl::Span<const int64_t> shape,
                                     int64_t limit, const std::string& what) {
  std::optional<int64_t> n = graph::CheckedProduct(shape);
  bool fits = n.has_value() && *n <= limit;
  for (int64_t d : shape) fits = fits && d <= limit;
  if (!fits) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has shape ", graph::ShapeToString(shape),
                     ", with a negative or too large dimension"));
  }
  return *n;
}

absl::StatusOr<graph::Tensor> FromProto(const esb::v1::FloatTensor& t,
                                        const std::string& what) {
  graph::Tensor out;
  out.shape.assign(t.shape().begin(), t.shape().end());
  absl::StatusOr<int64_t> n = CheckedCount(out.shape, kMaxWeights, what);
  if (!n.ok()) return n.status();
  if (*n != t.data_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has ", t.data_size(), " values for its shape ",
                     graph::ShapeToString(out.shape)));
  }
  out.data.assign(t.data().begin(), t.data().end());
  return out;
}

graph::Attributes ReadAttributes(const esb::v1::PackageLayer& l) {
  graph::Attributes a;
  a.kernel.assign(l.kernel().begin(), l.kernel().end());
  a.strides.assign(l.strides().begin(), l.strides().end());
  a.pads.assign(l.pads().begin(), l.pads().end());
  a.dilations.assign(l.dilations().begin(), l.dilations().end());
  a.group = l.group();
  a.ceil_mode = l.ceil_mode();
  a.count_include_pad = l.count_include_pad();
  a.alpha = l.alpha();
  a.beta = l.beta();
  a.trans_a = l.trans_a();
  a.trans_b = l.trans_b();
  a.min = l.min();
  a.max = l.max();
  a.epsilon = l.epsilon();
  a.axis = l.axis();
  a.perm.assign(l.perm().begin(), l.perm().end());
  a.axes.assign(l.axes().begin(), l.axes().end());
  a.keep_dims = l.keep_dims();
  a.shape.assign(l.shape().begin(), l.shape().end());
  a.value = l.value();
  a.scales.assign(l.scales().begin(), l.scales().end());
  // Out-of-range values (open proto3 enums) are refused by the caller.
  a.resize.mode = static_cast<graph::ResizeMethod::Mode>(l.resize().mode());
  a.resize.coordinates =
      static_cast<graph::ResizeMethod::Coordinates>(l.resize().coordinates());
  a.resize.rounding =
      static_cast<graph::ResizeMethod::Rounding>(l.resize().rounding());
  return a;
}

// Rebuilds the pieces of one package into a graph. Single use.
class Unpacker {
 public:
  Unpacker(const esb::v1::Package& package, const UnpackOptions& options)
      : p_(package), options_(options) {}

  absl::StatusOr<PackagedModel> Run();

 private:
  absl::Status ReadNormalization();
  absl::Status ReadLayer(const esb::v1::PackageLayer& l);
  absl::Status ReadQuantized(const esb::v1::PackageLayer& l, Node& node);
  absl::Status InferOutputShapes();
  // `preferred` when it names no other tensor, else `fallback`; an error
  // when both are taken.
  absl::StatusOr<std::string> FreshName(const std::string& preferred,
                                        const std::string& fallback,
                                        const std::string& context);

  // Counts `bytes` against options_.max_unpacked_bytes before they are
  // allocated; RESOURCE_EXHAUSTED naming `what` past the budget.
  absl::Status Charge(int64_t bytes, const std::string& what);

  const esb::v1::Package& p_;
  const UnpackOptions options_;
  int64_t charged_ = 0;
  PackagedModel out_;
  std::set<std::string> taken_;  // Every value name in use.
};

absl::Status Unpacker::Charge(int64_t bytes, const std::string& what) {
  if (bytes > options_.max_unpacked_bytes - charged_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        what, ": unpacking needs ", charged_ + bytes,
        " bytes in all, over the limit of ", options_.max_unpacked_bytes,
        " bytes (UnpackOptions.max_unpacked_bytes)"));
  }
  charged_ += bytes;
  return absl::OkStatus();
}

absl::Status Unpacker::ReadNormalization() {
  data::Normalization& n = out_.normalization;
  n.mean.assign(p_.input_mean().begin(), p_.input_mean().end());
  n.std.assign(p_.input_std().begin(), p_.input_std().end());
  if (n.mean.size() != n.std.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("normalization has ", n.mean.size(), " mean and ",
                     n.std.size(), " std values; the counts must be equal"));
  }
  for (size_t i = 0; i < n.mean.size(); ++i) {
    if (!std::isfinite(n.mean[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("normalization mean ", i, " is ", n.mean[i]));
    }
    if (!std::isfinite(n.std[i]) || n.std[i] <= 0.0f) {
      return absl::InvalidArgumentError(absl::StrCat(
          "normalization std ", i, " is ", n.std[i], "; it must be > 0"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Unpacker::FreshName(const std::string& preferred,
                                                const std::string& fallback,
                                                const std::string& context) {
  for (const std::string& name : {preferred, fallback}) {
    if (!name.empty() && taken_.insert(name).second) return name;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      context, ": cannot name its tensor: '", fallback, "' is taken"));
}

absl::Status Unpacker::ReadQuantized(const esb::v1::PackageLayer& l,
                                     Node& node) {
  const std::string context = Context(node);
  auto fail = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(context, ": ", what));
  };
  if (!graph::IsQuantizedOp(node.op)) {
    return fail("is marked quantized; only Conv, Gemm and MatMul quantize");
  }
  auto fw = FromSpec(l.weight_format(), context + ": weight format");
  if (!fw.ok()) return fw.status();
  auto fx = FromSpec(l.input_format(), context + ": input format");
  if (!fx.ok()) return fx.status();
  if (absl::Status s = ValidateScale(l.input_alpha()); !s.ok()) {
    return fail(absl::StrCat("input scale: ", s.message()));
  }

  const std::vector<int64_t> shape(l.weight_shape().begin(),
                                   l.weight_shape().end());
  const size_t rank = node.op == Op::kConv ? 4 : 2;
  if (shape.size() != rank) {
    return fail(absl::StrCat("weight_shape ", graph::ShapeToString(shape),
                             " has rank ", shape.size(), "; ", rank,
                             " expected"));
  }
  absl::StatusOr<int64_t> count =
      CheckedCount(shape, kMaxWeights, context + ": weight_shape");
  if (!count.ok()) return count.status();
  if (*count == 0) return fail("weight_shape has a zero dimension");
  const int axis = graph::WeightChannelAxis(node);
  if (l.weight_channel_axis() != axis) {
    return fail(absl::StrCat("weight_channel_axis is ", l.weight_channel_axis(),
                             "; this op's is ", axis));
  }
  const int64_t m = shape[axis];
  const int alphas = l.weight_alpha_size();
  if (alphas != m && alphas != 1) {
    return fail(
        absl::StrCat(alphas, " weight scales for ", m, " output channels"));
  }
  for (int i = 0; i < alphas; ++i) {
    if (absl::Status s = ValidateScale(l.weight_alpha(i)); !s.ok()) {
      return fail(absl::StrCat("weight scale ", i, ": ", s.message()));
    }
  }
  if (absl::Status s = Charge(*count * int64_t{8}, context); !s.ok()) {
    return s;  // The integers and the float weights, 4 bytes each.
  }
  absl::StatusOr<std::vector<int32_t>> integers =
      UnpackIntegers(CodeBook(*fw), l.weight_codes(), *count);
  if (!integers.ok()) {
    return fail(absl::StrCat("weight_codes: ", integers.status().message()));
  }
  if (absl::Status s = Charge(int64_t{4} * l.bias().data_size(), context);
      !s.ok()) {
    return s;
  }
  auto bias = FromProto(l.bias(), context + ": bias");
  if (!bias.ok()) return bias.status();
  if (static_cast<int64_t>(bias->data.size()) != m ||
      (!bias->shape.empty() && bias->shape != std::vector<int64_t>{m})) {
    return fail(absl::StrCat("bias has shape ",
                             graph::ShapeToString(bias->shape), "; [", m,
                             "] expected"));
  }
  for (float b : bias->data) {
    if (!std::isfinite(b)) return fail(absl::StrCat("bias value ", b));
  }
  bias->shape = {m};

  // The float weights alpha[m] * level, level = integer / 2^L exactly,
  // for what reads them as floats; ESB executors take the integers.
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= shape[d];
  for (size_t d = axis + 1; d < shape.size(); ++d) inner *= shape[d];
  const int shift = -fw->mantissa_bits();
  graph::Tensor weights{shape, std::vector<float>(*count)};
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t c = 0; c < m; ++c) {
      const float a = l.weight_alpha(alphas == 1 ? 0 : static_cast<int>(c));
      const int64_t base = (o * m + c) * inner;
      for (int64_t i = 0; i < inner; ++i) {
        weights.data[base + i] =
            a * std::ldexp(static_cast<float>((*integers)[base + i]), shift);
      }
    }
  }

  if (node.inputs.size() < 2 || node.inputs.size() > 3) {
    return fail(absl::StrCat("has ", node.inputs.size(),
                             " inputs; input, weight and optional bias "
                             "expected"));
  }
  auto weight_name = FreshName(node.inputs[1], node.name + "/weight", context);
  if (!weight_name.ok()) return weight_name.status();
  node.inputs[1] = *weight_name;
  out_.graph.constants[*weight_name] = std::move(weights);
  if (node.op == Op::kMatMul) {
    if (node.inputs.size() > 2) return fail("a MatMul takes no bias input");
    for (float b : bias->data) {
      if (b != 0.0f) return fail("a MatMul cannot apply a nonzero bias");
    }
  } else {
    auto bias_name = FreshName(node.inputs.size() > 2 ? node.inputs[2] : "",
                               node.name + "/bias", context);
    if (!bias_name.ok()) return bias_name.status();
    node.inputs.resize(3);
    node.inputs[2] = *bias_name;
    out_.graph.constants[*bias_name] = *std::move(bias);
    if (node.op == Op::kGemm) node.attrs.beta = 1.0f;  // bias holds beta C.
  }

  LayerQuant q{
      *fw, std::vector<float>(l.weight_alpha().begin(), l.weight_alpha().end()),
      *fx, l.input_alpha()};
  out_.weight_integers.emplace(node.name, *std::move(integers));
  out_.layers.emplace(node.name, std::move(q));
  return absl::OkStatus();
}

absl::Status Unpacker::ReadLayer(const esb::v1::PackageLayer& l) {
  absl::StatusOr<Op> op = FromProtoOp(l.op(), l.name());
  if (!op.ok()) return op.status();
  Node node;
  node.name = l.name();
  node.op = *op;
  node.inputs.assign(l.inputs().begin(), l.inputs().end());
  node.outputs.assign(l.outputs().begin(), l.outputs().end());
  node.attrs = ReadAttributes(l);
  const std::string context = Context(node);
  if (node.inputs.empty() || node.outputs.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(context, " has no inputs or no outputs"));
  }
  if (node.op == Op::kConv && node.attrs.group < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(context, ": group is ", node.attrs.group));
  }
  if (!esb::v1::ResizeMethod::Mode_IsValid(l.resize().mode()) ||
      !esb::v1::ResizeMethod::Coordinates_IsValid(l.resize().coordinates()) ||
      !esb::v1::ResizeMethod::Rounding_IsValid(l.resize().rounding())) {
    return absl::InvalidArgumentError(
        absl::StrCat(context, ": resize method (", l.resize().mode(), ", ",
                     l.resize().coordinates(), ", ", l.resize().rounding(),
                     ") is outside the values this reader knows"));
  }
  if (l.activation() != esb::v1::FUSED_ACTIVATION_NONE) {
    if (!graph::IsQuantizedOp(node.op)) {
      return absl::InvalidArgumentError(absl::StrCat(
          context, ": only Conv, Gemm and MatMul carry a fused activation"));
    }
    graph::Activation& act = node.attrs.activation;
    switch (l.activation()) {
      case esb::v1::FUSED_ACTIVATION_RELU:
        act.kind = graph::Activation::Kind::kRelu;
        break;
      case esb::v1::FUSED_ACTIVATION_CLIP:
        act.kind = graph::Activation::Kind::kClip;
        act.min = l.act_min();
        act.max = l.act_max();
        break;
      default:
        return absl::InvalidArgumentError(absl::StrCat(
            context, ": fused activation ", static_cast<int>(l.activation()),
            " is unknown to this reader"));
    }
  }
  if (l.quantized()) {
    if (absl::Status s = ReadQuantized(l, node); !s.ok()) return s;
  }
  out_.graph.nodes.push_back(std::move(node));
  return absl::OkStatus();
}

absl::Status Unpacker::InferOutputShapes() {
  graph::Graph& g = out_.graph;
  // Shapes at batch 1 validate the graph; a second run at batch 2 tells
  // which output dims follow the batch.
  bool batched = false;
  std::map<std::string, std::vector<int64_t>> at1, at2;
  for (const graph::ValueInfo& in : g.inputs) {
    std::vector<int64_t> s1 = in.shape, s2 = in.shape;
    if (!s1.empty() && s1[0] == graph::kBatch) {
      s1[0] = 1;
      s2[0] = 2;
      batched = true;
    }
    at1[in.name] = s1;
    at2[in.name] = s2;
  }
  auto shapes1 = graph::InferShapes(g, at1);
  if (!shapes1.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the package's graph is inconsistent: ", shapes1.status().message()));
  }
  absl::StatusOr<std::map<std::string, std::vector<int64_t>>> shapes2 =
      *shapes1;
  if (batched) shapes2 = graph::InferShapes(g, at2);
  for (graph::ValueInfo& out : g.outputs) {
    auto one = shapes1->find(out.name);
    if (one == shapes1->end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "graph output '", out.name, "' is produced by no layer"));
    }
    out.shape = one->second;
    if (!shapes2.ok()) continue;  // Only batch 1 works: leave dims fixed.
    auto two = shapes2->find(out.name);
    if (two != shapes2->end() && !out.shape.empty() &&
        two->second.size() == out.shape.size() &&
        two->second[0] != out.shape[0]) {
      out.shape[0] = graph::kBatch;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<PackagedModel> Unpacker::Run() {
  if (p_.version() != kPackageVersion) {
    return absl::InvalidArgumentError(absl::StrCat(
        "package schema version ", p_.version(),
        " is not supported; this reader knows version ", kPackageVersion));
  }
  if (absl::Status s = ReadNormalization(); !s.ok()) return s;
  graph::Graph& g = out_.graph;
  g.opset = 13;

  if (p_.input_names_size() != p_.input_shapes_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the package has ", p_.input_names_size(), " input names but ",
        p_.input_shapes_size(), " input shapes"));
  }
  for (int i = 0; i < p_.input_names_size(); ++i) {
    graph::ValueInfo in{
        p_.input_names(i),
        {p_.input_shapes(i).shape().begin(), p_.input_shapes(i).shape().end()}};
    for (size_t d = 0; d < in.shape.size(); ++d) {
      const bool batch = d == 0 && in.shape[d] == graph::kBatch;
      if (!batch && in.shape[d] < 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            "input '", in.name, "' has shape ", graph::ShapeToString(in.shape),
            "; dims must be positive (dim 0 may be -1, the batch)"));
      }
    }
    if (in.name.empty() || !taken_.insert(in.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("input name '", in.name, "' is empty or repeated"));
    }
    g.inputs.push_back(std::move(in));
  }
  if (p_.input_names_size() == 0 || p_.output_names_size() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("the package declares ", p_.input_names_size(),
                     " inputs and ", p_.output_names_size(),
                     " outputs; a model needs at least one of "
                     "each"));
  }
  for (const std::string& name : p_.output_names()) {
    g.outputs.push_back(graph::ValueInfo{name, {}});
  }
  for (const auto& [name, tensor] : p_.constants()) {
    const std::string what = absl::StrCat("constant '", name, "'");
    if (absl::Status s = Charge(int64_t{4} * tensor.data_size(), what);
        !s.ok()) {
      return s;
    }
    auto t = FromProto(tensor, what);
    if (!t.ok()) return t.status();
    if (!taken_.insert(name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("constant '", name, "' is also a graph input"));
    }
    g.constants[name] = *std::move(t);
  }
  std::set<std::string> layer_names;
  for (const esb::v1::PackageLayer& l : p_.layers()) {
    if (l.name().empty() || !layer_names.insert(l.name()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer name '", l.name(), "' is empty or repeated"));
    }
    // Outputs claim their names first, so weights never take them.
    for (const std::string& o : l.outputs()) taken_.insert(o);
  }
  for (const esb::v1::PackageLayer& l : p_.layers()) {
    if (absl::Status s = ReadLayer(l); !s.ok()) return s;
  }
  if (absl::Status s = InferOutputShapes(); !s.ok()) return s;
  return std::move(out_);
}

}  // namespace

absl::StatusOr<esb::v1::Package> BuildPackage(
    const graph::Graph& graph, const std::map<std::string, LayerQuant>& layers,
    const data::Normalization& normalization, const std::string& model_name) {
  for (const auto& [name, q] : layers) {
    bool found = false;
    for (const Node& n : graph.nodes) {
      if (n.name != name) continue;
      found = true;
      if (!graph::IsQuantizedOp(n.op)) {
        return absl::InvalidArgumentError(
            absl::StrCat(Context(n),
                         " has quantization settings; only Conv, Gemm and "
                         "MatMul layers quantize"));
      }
    }
    if (!found) {
      return absl::InvalidArgumentError(absl::StrCat(
          "quantized layer '", name, "' is not a node of the graph"));
    }
  }

  esb::v1::Package p;
  p.set_version(kPackageVersion);
  p.set_model_name(model_name);
  for (const graph::ValueInfo& in : graph.inputs) {
    p.add_input_names(in.name);
    p.add_input_shapes()->mutable_shape()->Add(in.shape.begin(),
                                               in.shape.end());
  }
  for (const graph::ValueInfo& out : graph.outputs) {
    p.add_output_names(out.name);
  }
  p.mutable_input_mean()->Add(normalization.mean.begin(),
                              normalization.mean.end());
  p.mutable_input_std()->Add(normalization.std.begin(),
                             normalization.std.end());

  auto& constants = *p.mutable_constants();
  for (const Node& node : graph.nodes) {
    esb::v1::PackageLayer* l = p.add_layers();
    l->set_name(node.name);
    l->set_op(ToProtoOp(node.op));
    l->mutable_inputs()->Add(node.inputs.begin(), node.inputs.end());
    l->mutable_outputs()->Add(node.outputs.begin(), node.outputs.end());
    CopyAttributes(node.attrs, l);
    auto q = layers.find(node.name);
    if (q != layers.end()) {
      if (absl::Status s = AddQuantized(graph, node, q->second, l); !s.ok()) {
        return s;
      }
      continue;
    }
    for (const std::string& in : node.inputs) {
      const graph::Tensor* t = graph.FindConstant(in);
      if (t == nullptr || constants.count(in)) continue;
      if (static_cast<int64_t>(t->data.size()) != t->size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "constant '", in, "' has ", t->data.size(),
            " values for its shape ", graph::ShapeToString(t->shape)));
      }
      constants[in] = ToProto(t->shape, t->data);
    }
  }
  return p;
}

std::string SerializePackage(const esb::v1::Package& package) {
  std::string payload;
  {
    google::protobuf::io::StringOutputStream stream(&payload);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    package.SerializeToCodedStream(&coded);
  }
  std::string out(kMagic, kMagicBytes);
  for (int i = 0; i < 4; ++i) {
    out.push_back(static_cast<char>((kPackageVersion >> (8 * i)) & 0xffu));
  }
  out += Sha256(payload);
  out += payload;
  return out;
}

absl::StatusOr<esb::v1::Package> ParsePackage(absl::string_view bytes) {
  if (bytes.size() >= kMagicBytes &&
      bytes.substr(0, kMagicBytes) != absl::string_view(kMagic, kMagicBytes)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not an ESB package: the magic is \"",
        absl::CHexEscape(bytes.substr(0, kMagicBytes)), "\", not \"ESBM\""));
  }
  if (bytes.size() < kPackageHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the package is truncated: ", bytes.size(), " bytes, fewer than its ",
        kPackageHeaderBytes, "-byte header"));
  }
  uint32_t version = 0;
  for (int i = 0; i < 4; ++i) {
    version |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[4 + i]))
               << (8 * i);
  }
  if (version != kPackageVersion) {
    return absl::InvalidArgumentError(absl::StrCat(
        "package format version ", version,
        " is not supported; this reader knows version ", kPackageVersion));
  }
  const absl::string_view checksum = bytes.substr(8, 32);
  const absl::string_view payload = bytes.substr(kPackageHeaderBytes);
  if (Sha256(payload) != checksum) {
    return absl::InvalidArgumentError(
        "checksum mismatch: the package is corrupt");
  }
  esb::v1::Package package;
  if (payload.size() > static_cast<size_t>(std::numeric_limits<int>::max()) ||
      !package.ParseFromArray(payload.data(),
                              static_cast<int>(payload.size()))) {
    return absl::InvalidArgumentError(
        "the package payload is not a valid esb.v1.Package message");
  }
  return package;
}

absl::StatusOr<PackagedModel> UnpackPackage(const esb::v1::Package& package,
                                            const UnpackOptions& options) {
  return Unpacker(package, options).Run();
}

}  // namespace esb::pipeline
