#include "core/runtime/lower.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/graph/shapes.h"
#include "core/runtime/loop_kernels.h"

namespace esb::runtime::internal {
namespace {

using dnnl::algorithm;
using dnnl::memory;
using dnnl::prop_kind;
using graph::Node;
using graph::Op;
using Desc = dnnl::memory::desc;
using Dims = dnnl::memory::dims;

Desc AnyDesc(const std::vector<int64_t>& dims) {
  return Desc(dims, memory::data_type::f32, memory::format_tag::any);
}

dnnl::primitive_attr ActivationAttr(const graph::Activation& activation) {
  dnnl::post_ops ops;
  switch (activation.kind) {
    case graph::Activation::Kind::kNone:
      break;
    case graph::Activation::Kind::kRelu:
      ops.append_eltwise(1.0f, algorithm::eltwise_relu, 0.0f, 0.0f);
      break;
    case graph::Activation::Kind::kClip:
      ops.append_eltwise(1.0f, algorithm::eltwise_clip, activation.min,
                         activation.max);
      break;
  }
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  return attr;
}

// oneDNN counts dilation from 0 (dense), ONNX from 1.
Dims OneDnnDilations(const std::vector<int64_t>& dilations) {
  Dims out;
  for (int64_t d : dilations) out.push_back(d - 1);
  return out;
}

}  // namespace

PlanBuilder::PlanBuilder(
    const graph::Graph& graph,
    const std::map<std::string, std::vector<int64_t>>& shapes,
    const dnnl::engine& engine, dnnl::stream& stream, WeightCache& weights,
    const QuantizedLayers* layers, Plan& plan)
    : graph_(graph),
      shapes_(shapes),
      engine_(engine),
      stream_(stream),
      weights_(weights),
      plan_(plan),
      layers_(layers) {}

const std::vector<int64_t>& PlanBuilder::ShapeOf(
    const std::string& name) const {
  return shapes_.at(name);  // InferShapes defined every value.
}

int PlanBuilder::AddBuffer(Plan::Buffer buffer) {
  plan_.buffers_.push_back(buffer);
  return static_cast<int>(plan_.buffers_.size()) - 1;
}

PlanBuilder::Value PlanBuilder::NewArena(const Desc& desc) {
  Plan::Buffer b;
  b.kind = Plan::Buffer::Kind::kArena;
  b.bytes = desc.get_size();
  return Value{AddBuffer(b), desc};
}

PlanBuilder::Value PlanBuilder::AddConstant(float* data, const Desc& desc) {
  Plan::Buffer b;
  b.kind = Plan::Buffer::Kind::kConstant;
  b.data = data;
  return Value{AddBuffer(b), desc};
}

PlanBuilder::Value PlanBuilder::Get(const std::string& name) {
  auto it = values_.find(name);
  if (it != values_.end()) return it->second;
  // InferShapes guarantees that an undefined value is a constant. Constants
  // are only ever read, so viewing them as mutable memory is safe.
  const graph::Tensor* t = graph_.FindConstant(name);
  Value v =
      AddConstant(const_cast<float*>(t->data.data()), PlainDesc(t->shape));
  values_.emplace(name, v);
  return v;
}

PlanBuilder::Value PlanBuilder::As(const std::string& name, const Desc& desc) {
  Value v = Get(name);
  if (v.desc == desc) return v;
  std::vector<Value>& copies = layouts_[name];
  for (const Value& c : copies) {
    if (c.desc == desc) return c;
  }
  Value c = NewArena(desc);
  AddPrimitive(dnnl::reorder(dnnl::reorder::primitive_desc(engine_, v.desc,
                                                           engine_, desc)),
               {{DNNL_ARG_FROM, v}, {DNNL_ARG_TO, c}});
  copies.push_back(c);
  return c;
}

PlanBuilder::Value PlanBuilder::AsPlain(const std::string& name) {
  return As(name, PlainDesc(ShapeOf(name)));
}

void PlanBuilder::AddPrimitive(const dnnl::primitive& primitive,
                               const std::vector<std::pair<int, Value>>& args) {
  Plan::Step step;
  step.context = context_;
  step.primitive = primitive;
  for (const auto& [arg, value] : args) {
    step.args.push_back({arg, value.buffer, value.desc});
  }
  plan_.steps_.push_back(std::move(step));
}

void PlanBuilder::AddLoop(std::function<void(absl::Span<float* const>)> loop,
                          const std::vector<Value>& args) {
  Plan::Step step;
  step.context = context_;
  step.loop = std::move(loop);
  for (size_t i = 0; i < args.size(); ++i) {
    step.args.push_back({static_cast<int>(i), args[i].buffer, args[i].desc});
  }
  plan_.steps_.push_back(std::move(step));
}

void PlanBuilder::Define(const std::string& name, const Value& value) {
  values_.insert_or_assign(name, value);
}

absl::Status PlanBuilder::NotConstant(const std::string& what,
                                      const std::string& name) {
  return absl::UnimplementedError(absl::StrCat(
      context_, ": ", what, " '", name, "' must be a constant initializer"));
}

void PlanBuilder::AddInputs() {
  for (size_t i = 0; i < graph_.inputs.size(); ++i) {
    Plan::Buffer b;
    b.kind = Plan::Buffer::Kind::kInput;
    b.index = static_cast<int>(i);
    const std::string& name = graph_.inputs[i].name;
    Define(name, Value{AddBuffer(b), PlainDesc(ShapeOf(name))});
  }
}

void PlanBuilder::AddOutputs() {
  context_ = "graph outputs";
  for (size_t i = 0; i < graph_.outputs.size(); ++i) {
    const std::string& name = graph_.outputs[i].name;
    const Value v = Get(name);
    Plan::Buffer b;
    b.kind = Plan::Buffer::Kind::kOutput;
    b.index = static_cast<int>(i);
    const Value out{AddBuffer(b), PlainDesc(ShapeOf(name))};
    AddPrimitive(dnnl::reorder(dnnl::reorder::primitive_desc(
                     engine_, v.desc, engine_, out.desc)),
                 {{DNNL_ARG_FROM, v}, {DNNL_ARG_TO, out}});
    plan_.output_shapes_.push_back(ShapeOf(name));
  }
}

absl::Status PlanBuilder::Lower(int node_index) {
  const Node& node = graph_.nodes[node_index];
  context_ =
      absl::StrCat("node '", node.name, "' (", graph::OpName(node.op), ")");
  if (const QuantizedLayer* layer =
          layers_ == nullptr ? nullptr : layers_->Find(node_index)) {
    return LowerQuantized(node_index, node, *layer);
  }
  switch (node.op) {
    case Op::kConv:
      return LowerConv(node_index, node);
    case Op::kGemm:
      return LowerGemm(node_index, node);
    case Op::kMatMul:
      return LowerMatMul(node_index, node);
    case Op::kBatchNorm:
      LowerBatchNorm(node);
      break;
    case Op::kRelu:
    case Op::kClip:
    case Op::kLeakyRelu:
    case Op::kSigmoid:
      LowerEltwise(node);
      break;
    case Op::kMaxPool:
    case Op::kAveragePool:
    case Op::kGlobalAveragePool:
      LowerPool(node);
      break;
    case Op::kAdd:
    case Op::kMul:
      LowerBinary(node);
      break;
    case Op::kConcat:
      LowerConcat(node);
      break;
    case Op::kFlatten:
    case Op::kReshape: {
      // Row-major data is the same for any shape of the same size.
      const Value x = AsPlain(node.inputs[0]);
      Define(node.outputs[0], {x.buffer, PlainDesc(ShapeOf(node.outputs[0]))});
      break;
    }
    case Op::kIdentity:
      Define(node.outputs[0], Get(node.inputs[0]));
      break;
    case Op::kTranspose:
      LowerTranspose(node);
      break;
    case Op::kSoftmax:
      LowerSoftmax(node);
      break;
    case Op::kPad:
      LowerPad(node);
      break;
  }
  return absl::OkStatus();
}

absl::Status PlanBuilder::LowerConv(int node_index, const Node& node) {
  const std::vector<int64_t>& x_shape = ShapeOf(node.inputs[0]);
  const graph::Tensor* w = graph_.FindConstant(node.inputs[1]);
  if (w == nullptr) return NotConstant("weight", node.inputs[1]);
  const bool has_bias = node.inputs.size() > 2;
  auto window = graph::ResolveWindow(node, x_shape, w->shape);
  if (!window.ok()) return window.status();

  // Grouped weights are [G, M/G, C/G, k...]: the same row-major data.
  const int64_t group = node.attrs.group;
  Dims w_dims = w->shape;
  if (group > 1) {
    w_dims = {group, w->shape[0] / group};
    w_dims.insert(w_dims.end(), w->shape.begin() + 1, w->shape.end());
  }
  const Desc src_any = AnyDesc(x_shape);
  const Desc w_any = AnyDesc(w_dims);
  const Desc dst_any = AnyDesc(ShapeOf(node.outputs[0]));
  const Dims dilations = OneDnnDilations(window->dilations);
  auto desc =
      has_bias
          ? dnnl::convolution_forward::desc(
                prop_kind::forward_inference, algorithm::convolution_direct,
                src_any, w_any, PlainDesc(ShapeOf(node.inputs[2])), dst_any,
                window->strides, dilations, window->pads_begin,
                window->pads_end)
          : dnnl::convolution_forward::desc(
                prop_kind::forward_inference, algorithm::convolution_direct,
                src_any, w_any, dst_any, window->strides, dilations,
                window->pads_begin, window->pads_end);
  const dnnl::convolution_forward::primitive_desc pd(
      desc, ActivationAttr(node.attrs.activation), engine_);

  const Value src = As(node.inputs[0], pd.src_desc());
  auto got = weights_.Get(
      node_index, pd.weights_desc(),
      [&] {
        return memory(
            Desc(w_dims, memory::data_type::f32, PlainStrides(w_dims)), engine_,
            const_cast<float*>(w->data.data()));
      },
      engine_, stream_);
  if (!got.ok()) return got.status();
  const auto packed = *std::move(got);
  plan_.packed_.push_back(packed);
  const Value weights = AddConstant(packed->storage.data(), packed->desc);
  const Value dst = NewArena(pd.dst_desc());
  std::vector<std::pair<int, Value>> args = {
      {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}};
  if (has_bias) args.push_back({DNNL_ARG_BIAS, AsPlain(node.inputs[2])});
  AddPrimitive(dnnl::convolution_forward(pd), args);
  Define(node.outputs[0], dst);
  return absl::OkStatus();
}

absl::Status PlanBuilder::LowerGemm(int node_index, const Node& node) {
  const graph::Attributes& attrs = node.attrs;
  const std::vector<int64_t>& a_shape = ShapeOf(node.inputs[0]);
  const graph::Tensor* b = graph_.FindConstant(node.inputs[1]);
  if (b == nullptr) return NotConstant("B", node.inputs[1]);
  const int64_t n = attrs.trans_a ? a_shape[1] : a_shape[0];
  const int64_t k = attrs.trans_a ? a_shape[0] : a_shape[1];
  const int64_t m = attrs.trans_b ? b->shape[0] : b->shape[1];

  // A^T is A's row-major buffer read with swapped strides.
  const Value a = AsPlain(node.inputs[0]);
  const Desc a_desc({n, k}, memory::data_type::f32,
                    attrs.trans_a ? Dims{1, n} : Dims{k, 1});
  const Desc dst_desc = PlainDesc({n, m});

  // beta * C, broadcast to [1, M] (C without rows) or [N, M].
  const bool has_bias = node.inputs.size() > 2 && attrs.beta != 0.0f;
  Desc bias_desc;
  Value bias{-1, Desc()};
  if (has_bias) {
    const graph::Tensor* c = graph_.FindConstant(node.inputs[2]);
    if (c == nullptr) return NotConstant("C", node.inputs[2]);
    std::vector<int64_t> c2 = c->shape;
    while (c2.size() < 2) c2.insert(c2.begin(), 1);
    const int64_t rows = c2[0] == 1 ? 1 : n;
    absl::StatusOr<AlignedBuffer> bias_storage = AlignedBuffer::Allocate(
        rows * m * sizeof(float),
        absl::StrCat("the bias of node '", node.name, "'"));
    if (!bias_storage.ok()) return bias_storage.status();
    auto folded = std::make_unique<AlignedBuffer>(*std::move(bias_storage));
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t j = 0; j < m; ++j) {
        folded->data()[i * m + j] =
            attrs.beta *
            c->data[(c2[0] == 1 ? 0 : i) * c2[1] + (c2[1] == 1 ? 0 : j)];
      }
    }
    bias_desc = PlainDesc({rows, m});
    bias = AddConstant(folded->data(), bias_desc);
    plan_.owned_.push_back(std::move(folded));
  }
  const Desc w_any = AnyDesc({k, m});
  auto desc = has_bias ? dnnl::matmul::desc(a_desc, w_any, bias_desc, dst_desc)
                       : dnnl::matmul::desc(a_desc, w_any, dst_desc);
  const dnnl::matmul::primitive_desc pd(desc, ActivationAttr(attrs.activation),
                                        engine_);

  // alpha * op(B), packed once per layout.
  std::vector<float> plain_b;
  auto got = weights_.Get(
      node_index, pd.weights_desc(),
      [&] {
        plain_b.resize(k * m);
        for (int64_t i = 0; i < k; ++i) {
          for (int64_t j = 0; j < m; ++j) {
            plain_b[i * m + j] =
                attrs.alpha * b->data[attrs.trans_b ? j * k + i : i * m + j];
          }
        }
        return memory(PlainDesc({k, m}), engine_, plain_b.data());
      },
      engine_, stream_);
  if (!got.ok()) return got.status();
  const auto packed = *std::move(got);
  plan_.packed_.push_back(packed);
  const Value weights = AddConstant(packed->storage.data(), packed->desc);
  const Value dst = NewArena(dst_desc);
  std::vector<std::pair<int, Value>> args = {{DNNL_ARG_SRC, {a.buffer, a_desc}},
                                             {DNNL_ARG_WEIGHTS, weights},
                                             {DNNL_ARG_DST, dst}};
  if (has_bias) args.push_back({DNNL_ARG_BIAS, bias});
  AddPrimitive(dnnl::matmul(pd), args);
  Define(node.outputs[0], dst);
  return absl::OkStatus();
}

absl::Status PlanBuilder::LowerMatMul(int node_index, const Node& node) {
  const std::vector<int64_t>& a_shape = ShapeOf(node.inputs[0]);
  const graph::Tensor* b = graph_.FindConstant(node.inputs[1]);
  if (b == nullptr) return NotConstant("B", node.inputs[1]);
  // Leading dims of A are rows of one 2-D product.
  const int64_t k = a_shape.back();
  const int64_t rows = graph::NumElements(a_shape) / k;
  const int64_t m = b->shape[1];
  const Value a = AsPlain(node.inputs[0]);
  const Desc a_desc = PlainDesc({rows, k});
  const Desc dst_desc = PlainDesc({rows, m});
  const dnnl::matmul::primitive_desc pd(
      dnnl::matmul::desc(a_desc, AnyDesc({k, m}), dst_desc),
      ActivationAttr(node.attrs.activation), engine_);
  auto got = weights_.Get(
      node_index, pd.weights_desc(),
      [&] {
        return memory(PlainDesc({k, m}), engine_,
                      const_cast<float*>(b->data.data()));
      },
      engine_, stream_);
  if (!got.ok()) return got.status();
  const auto packed = *std::move(got);
  plan_.packed_.push_back(packed);
  const Value dst = NewArena(dst_desc);
  AddPrimitive(
      dnnl::matmul(pd),
      {{DNNL_ARG_SRC, {a.buffer, a_desc}},
       {DNNL_ARG_WEIGHTS, AddConstant(packed->storage.data(), packed->desc)},
       {DNNL_ARG_DST, dst}});
  Define(node.outputs[0], {dst.buffer, PlainDesc(ShapeOf(node.outputs[0]))});
  return absl::OkStatus();
}

void PlanBuilder::LowerBatchNorm(const Node& node) {
  const Value x = Get(node.inputs[0]);
  const auto flags = dnnl::normalization_flags::use_global_stats |
                     dnnl::normalization_flags::use_scale |
                     dnnl::normalization_flags::use_shift;
  const dnnl::batch_normalization_forward::primitive_desc pd(
      dnnl::batch_normalization_forward::desc(
          prop_kind::forward_inference, x.desc, node.attrs.epsilon, flags),
      engine_);
  const Value dst = NewArena(pd.dst_desc());
  AddPrimitive(dnnl::batch_normalization_forward(pd),
               {{DNNL_ARG_SRC, As(node.inputs[0], pd.src_desc())},
                {DNNL_ARG_SCALE, AsPlain(node.inputs[1])},
                {DNNL_ARG_SHIFT, AsPlain(node.inputs[2])},
                {DNNL_ARG_MEAN, AsPlain(node.inputs[3])},
                {DNNL_ARG_VARIANCE, AsPlain(node.inputs[4])},
                {DNNL_ARG_DST, dst}});
  Define(node.outputs[0], dst);
}

void PlanBuilder::LowerEltwise(const Node& node) {
  algorithm alg = algorithm::eltwise_relu;
  float alpha = 0.0f;
  float beta = 0.0f;
  switch (node.op) {
    case Op::kClip:
      alg = algorithm::eltwise_clip;  // min(max(x, alpha), beta)
      alpha = node.attrs.min;
      beta = node.attrs.max;
      break;
    case Op::kLeakyRelu:
      alpha = node.attrs.alpha;  // relu with a negative slope
      break;
    case Op::kSigmoid:
      alg = algorithm::eltwise_logistic;
      break;
    default:
      break;
  }
  const Value x = Get(node.inputs[0]);
  const dnnl::eltwise_forward::primitive_desc pd(
      dnnl::eltwise_forward::desc(prop_kind::forward_inference, alg, x.desc,
                                  alpha, beta),
      engine_);
  const Value dst = NewArena(pd.dst_desc());
  AddPrimitive(
      dnnl::eltwise_forward(pd),
      {{DNNL_ARG_SRC, As(node.inputs[0], pd.src_desc())}, {DNNL_ARG_DST, dst}});
  Define(node.outputs[0], dst);
}

void PlanBuilder::LowerPool(const Node& node) {
  const std::vector<int64_t>& x_shape = ShapeOf(node.inputs[0]);
  const std::vector<int64_t>& y_shape = ShapeOf(node.outputs[0]);
  graph::WindowGeometry window;
  algorithm alg = algorithm::pooling_max;
  if (node.op == Op::kGlobalAveragePool) {
    const size_t n = x_shape.size() - 2;
    window.kernel.assign(x_shape.begin() + 2, x_shape.end());
    window.strides.assign(n, 1);
    window.dilations.assign(n, 1);
    window.pads_begin.assign(n, 0);
    window.pads_end.assign(n, 0);
    window.ceil_extra.assign(n, 0);
    alg = algorithm::pooling_avg_exclude_padding;
  } else {
    window = *graph::ResolveWindow(node, x_shape);  // Checked by InferShapes.
    if (node.op == Op::kAveragePool) {
      alg = node.attrs.count_include_pad
                ? algorithm::pooling_avg_include_padding
                : algorithm::pooling_avg_exclude_padding;
    }
  }
  const bool overhang =
      std::any_of(window.ceil_extra.begin(), window.ceil_extra.end(),
                  [](int64_t e) { return e > 0; });
  if (alg == algorithm::pooling_avg_include_padding && overhang) {
    // oneDNN would count the ceil-mode overhang in the divisor.
    const Value x = AsPlain(node.inputs[0]);
    const Value dst = NewArena(PlainDesc(y_shape));
    AddLoop(
        [x_shape, window](absl::Span<float* const> p) {
          AveragePool(p[0], x_shape, window, /*count_include_pad=*/true, p[1]);
        },
        {x, dst});
    Define(node.outputs[0], dst);
    return;
  }
  Dims pads_end = window.pads_end;
  for (size_t i = 0; i < pads_end.size(); ++i) {
    pads_end[i] += window.ceil_extra[i];
  }
  const Value x = Get(node.inputs[0]);
  const dnnl::pooling_v2_forward::primitive_desc pd(
      dnnl::pooling_v2_forward::desc(
          prop_kind::forward_inference, alg, x.desc, AnyDesc(y_shape),
          window.strides, window.kernel, OneDnnDilations(window.dilations),
          window.pads_begin, pads_end),
      engine_);
  const Value dst = NewArena(pd.dst_desc());
  AddPrimitive(
      dnnl::pooling_v2_forward(pd),
      {{DNNL_ARG_SRC, As(node.inputs[0], pd.src_desc())}, {DNNL_ARG_DST, dst}});
  Define(node.outputs[0], dst);
}

void PlanBuilder::LowerBinary(const Node& node) {
  const std::vector<int64_t>& y_shape = ShapeOf(node.outputs[0]);
  const size_t rank = y_shape.size();
  auto padded = [&](const std::vector<int64_t>& s) {
    std::vector<int64_t> p(rank - s.size(), 1);
    p.insert(p.end(), s.begin(), s.end());
    return p;
  };
  // oneDNN broadcasts src1 only: the operand of full shape goes first.
  std::string src0 = node.inputs[0];
  std::string src1 = node.inputs[1];
  if (padded(ShapeOf(src0)) != y_shape) std::swap(src0, src1);
  if (padded(ShapeOf(src0)) != y_shape) {
    // Both operands broadcast.
    const Value a = AsPlain(node.inputs[0]);
    const Value b = AsPlain(node.inputs[1]);
    const Value dst = NewArena(PlainDesc(y_shape));
    const BinaryOp op = node.op == Op::kAdd ? BinaryOp::kAdd : BinaryOp::kMul;
    AddLoop(
        [op, a_shape = ShapeOf(node.inputs[0]),
         b_shape = ShapeOf(node.inputs[1]),
         y_shape](absl::Span<float* const> p) {
          BroadcastBinary(op, p[0], a_shape, p[1], b_shape, p[2], y_shape);
        },
        {a, b, dst});
    Define(node.outputs[0], dst);
    return;
  }
  // An operand of the output's shape keeps its layout; any other is viewed
  // as plain with leading 1s up to the output's rank.
  auto operand = [&](const std::string& name) {
    if (ShapeOf(name) == y_shape) return Get(name);
    const Value v = AsPlain(name);
    return Value{v.buffer, PlainDesc(padded(ShapeOf(name)))};
  };
  const Value a = operand(src0);
  const Value b = operand(src1);
  const dnnl::binary::primitive_desc pd(
      dnnl::binary::desc(
          node.op == Op::kAdd ? algorithm::binary_add : algorithm::binary_mul,
          a.desc, b.desc, a.desc),
      engine_);
  const Value dst = NewArena(pd.dst_desc());
  AddPrimitive(dnnl::binary(pd),
               {{DNNL_ARG_SRC_0, a}, {DNNL_ARG_SRC_1, b}, {DNNL_ARG_DST, dst}});
  Define(node.outputs[0], dst);
}

void PlanBuilder::LowerConcat(const Node& node) {
  std::vector<Value> inputs;
  std::vector<Desc> descs;
  for (const std::string& name : node.inputs) {
    inputs.push_back(Get(name));
    descs.push_back(inputs.back().desc);
  }
  const dnnl::concat::primitive_desc pd(static_cast<int>(node.attrs.axis),
                                        descs, engine_);
  const Value dst = NewArena(pd.dst_desc());
  std::vector<std::pair<int, Value>> args = {{DNNL_ARG_DST, dst}};
  for (size_t i = 0; i < inputs.size(); ++i) {
    args.push_back({DNNL_ARG_MULTIPLE_SRC + static_cast<int>(i), inputs[i]});
  }
  AddPrimitive(dnnl::concat(pd), args);
  Define(node.outputs[0], dst);
}

void PlanBuilder::LowerTranspose(const Node& node) {
  const std::vector<int64_t>& x_shape = ShapeOf(node.inputs[0]);
  const std::vector<int64_t>& y_shape = ShapeOf(node.outputs[0]);
  if (x_shape.size() < 2) {  // Nothing moves.
    Define(node.outputs[0], Get(node.inputs[0]));
    return;
  }
  std::vector<int64_t> perm = node.attrs.perm;
  if (perm.empty()) {
    for (size_t i = x_shape.size(); i > 0; --i) perm.push_back(i - 1);
  }
  // y[i...] = x[perm...]: x's buffer viewed with y's dims and permuted
  // strides, reordered to plain.
  const Value x = AsPlain(node.inputs[0]);
  const Dims x_strides = PlainStrides(x_shape);
  Dims strides;
  for (int64_t p : perm) strides.push_back(x_strides[p]);
  const Value view{x.buffer, Desc(y_shape, memory::data_type::f32, strides)};
  const Value dst = NewArena(PlainDesc(y_shape));
  AddPrimitive(dnnl::reorder(dnnl::reorder::primitive_desc(engine_, view.desc,
                                                           engine_, dst.desc)),
               {{DNNL_ARG_FROM, view}, {DNNL_ARG_TO, dst}});
  Define(node.outputs[0], dst);
}

void PlanBuilder::LowerSoftmax(const Node& node) {
  const Value x = AsPlain(node.inputs[0]);
  const dnnl::softmax_forward::primitive_desc pd(
      dnnl::softmax_forward::desc(prop_kind::forward_inference, x.desc,
                                  static_cast<int>(node.attrs.axis)),
      engine_);
  const Value dst = NewArena(pd.dst_desc());
  AddPrimitive(dnnl::softmax_forward(pd),
               {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, dst}});
  Define(node.outputs[0], dst);
}

void PlanBuilder::LowerPad(const Node& node) {
  const Value x = AsPlain(node.inputs[0]);
  const Value dst = NewArena(PlainDesc(ShapeOf(node.outputs[0])));
  AddLoop(
      [x_shape = ShapeOf(node.inputs[0]), pads = node.attrs.pads,
       value = node.attrs.value](absl::Span<float* const> p) {
        PadConstant(p[0], x_shape, pads, value, p[1]);
      },
      {x, dst});
  Define(node.outputs[0], dst);
}

}  // namespace esb::runtime::internal
