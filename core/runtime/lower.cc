#include "core/runtime/lower.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/graph/shapes.h"
#include "core/runtime/cpu_paths.h"
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

// The most rows for which NarrowGemm beats oneDNN 2.6's matmul on this
// CPU (bench/narrow_gemm_bench, cold caches): with AVX-512 two (at three
// and four rows the matmul was 0.73x to 1.03x of the loop's time); with
// AVX2 alone eight (the loop was 1.14x to 2.6x faster at every count from
// one to eight on the zoo's heads, the matmul reading 5 to 10 GB/s).
int64_t NarrowRowsHere() { return Avx2WithoutAvx512() ? 8 : 2; }

// Whether a product of `rows` rows with constant [k, m] weights runs the
// NarrowGemm loop (loop_kernels.h) instead of oneDNN's matmul: up to
// NarrowRowsHere() rows, and weights of at least 4 MiB, which a run streams
// from memory (from cache the matmul is as fast or faster).
bool IsNarrowProduct(int64_t rows, int64_t k, int64_t m) {
  static const int64_t max_rows = NarrowRowsHere();
  constexpr int64_t kMinWeightBytes = int64_t{4} << 20;
  return rows <= max_rows &&
         k * m * static_cast<int64_t>(sizeof(float)) >= kMinWeightBytes;
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
  dnnl::primitive_attr attr = ScratchpadAttr();
  attr.set_post_ops(ops);
  return attr;
}

// One oneDNN eltwise pass: algorithm, alpha, beta.
// The eltwise passes that compute elementwise `node`, in order; empty for
// ops that are not oneDNN eltwise. The first runs as the primitive (or
// post-op), the rest as post-ops after it.
std::vector<EltwiseStep> EltwiseSteps(const Node& node) {
  switch (node.op) {
    case Op::kRelu:
      return {{algorithm::eltwise_relu, 0.0f, 0.0f}};
    case Op::kLeakyRelu:  // Relu with a negative slope.
      return {{algorithm::eltwise_relu, node.attrs.alpha, 0.0f}};
    case Op::kClip:  // min(max(x, alpha), beta).
      return {{algorithm::eltwise_clip, node.attrs.min, node.attrs.max}};
    case Op::kSigmoid:
      return {{algorithm::eltwise_logistic, 0.0f, 0.0f}};
    case Op::kHardSigmoid:  // alpha * x + beta, clipped to [0, 1].
      return {{algorithm::eltwise_linear, node.attrs.alpha, node.attrs.beta},
              {algorithm::eltwise_clip, 0.0f, 1.0f}};
    case Op::kSqrt:
      return {{algorithm::eltwise_sqrt, 0.0f, 0.0f}};
    case Op::kHardSwish:
      // oneDNN 2.x fixes the slope and offset at 1/6 and 1/2 and ignores
      // these; later versions read them.
      return {{algorithm::eltwise_hardswish, 1.0f / 6.0f, 0.5f}};
    case Op::kGelu:
      return {{algorithm::eltwise_gelu_erf, 0.0f, 0.0f}};
    default:
      return {};
  }
}

// oneDNN counts dilation from 0 (dense), ONNX from 1.
Dims OneDnnDilations(const std::vector<int64_t>& dilations) {
  Dims out;
  for (int64_t d : dilations) out.push_back(d - 1);
  return out;
}

}  // namespace

Desc CropDeadTaps(const std::vector<int64_t>& x_shape,
                  const std::vector<int64_t>& y_shape, memory::data_type type,
                  graph::WindowGeometry& window, Dims& w_dims) {
  Desc whole(w_dims, type, PlainStrides(w_dims));
  const size_t spatial = x_shape.size() - 2;
  Dims offsets(w_dims.size(), 0);
  bool cropped = false;
  for (size_t i = 0; i < spatial; ++i) {
    const int64_t in = x_shape[2 + i];
    const int64_t out = y_shape[2 + i];
    const int64_t k = window.kernel[i];
    const int64_t s = window.strides[i];
    const int64_t d = window.dilations[i];
    const int64_t pb = window.pads_begin[i];
    // Tap t reads rows t*d - pb .. (out-1)*s + t*d - pb.
    int64_t first = k;
    int64_t last = -1;
    for (int64_t t = 0; t < k; ++t) {
      if (t * d - pb < in && (out - 1) * s + t * d - pb >= 0) {
        first = std::min(first, t);
        last = t;
      }
    }
    if (last < first || (first == 0 && last == k - 1)) continue;
    const int64_t begin = pb - first * d;
    const int64_t end = window.pads_end[i] - (k - 1 - last) * d;
    if (begin < 0 || end < 0) continue;
    window.kernel[i] = last - first + 1;
    window.pads_begin[i] = begin;
    window.pads_end[i] = end;
    w_dims[w_dims.size() - spatial + i] = window.kernel[i];
    offsets[w_dims.size() - spatial + i] = first;
    cropped = true;
  }
  return cropped ? whole.submemory_desc(w_dims, offsets) : whole;
}

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
      layers_(layers) {
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    for (const std::string& in : graph.nodes[i].inputs) {
      readers_[in].push_back(static_cast<int>(i));
    }
  }
  for (const graph::ValueInfo& out : graph.outputs) {
    graph_outputs_.insert(out.name);
  }
}

bool PlanBuilder::FreeToFuse(int node) const {
  return absorbed_.count(node) == 0 &&
         (layers_ == nullptr || layers_->Find(node) == nullptr);
}

int PlanBuilder::FusibleReader(const std::string& value) const {
  auto it = readers_.find(value);
  if (graph_outputs_.count(value) || it == readers_.end() ||
      it->second.size() != 1 || !FreeToFuse(it->second[0])) {
    return -1;
  }
  return it->second[0];
}

bool PlanBuilder::IsChannelsLast(const std::string& name) {
  const std::vector<int64_t>& shape = ShapeOf(name);
  return shape.size() == 4 &&
         Get(name).desc ==
             Desc(shape, memory::data_type::f32, memory::format_tag::acdb);
}

std::optional<PlanBuilder::GatedPair> PlanBuilder::FindGatedPair(
    const std::string& value) const {
  auto it = readers_.find(value);
  if (graph_outputs_.count(value) || it == readers_.end() ||
      it->second.size() != 2 || it->second[0] == it->second[1]) {
    return std::nullopt;
  }
  const std::vector<int>& r = it->second;
  for (const int k : {0, 1}) {
    const Node& gate = graph_.nodes[r[k]];
    const Node& mul = graph_.nodes[r[1 - k]];
    const bool swish = gate.op == Op::kSigmoid;
    const bool hard_swish = gate.op == Op::kHardSigmoid &&
                            std::fabs(gate.attrs.alpha - 1.0f / 6.0f) < 1e-6f &&
                            gate.attrs.beta == 0.5f;
    if (!(swish || hard_swish) || mul.op != Op::kMul) continue;
    const std::string& g = gate.outputs[0];
    auto gate_readers = readers_.find(g);
    if (gate_readers == readers_.end() ||
        gate_readers->second != std::vector<int>{r[1 - k]} ||
        graph_outputs_.count(g) ||
        !((mul.inputs[0] == value && mul.inputs[1] == g) ||
          (mul.inputs[1] == value && mul.inputs[0] == g))) {
      continue;
    }
    if (swish) {
      return GatedPair{algorithm::eltwise_swish, 1.0f, 0.0f, r[k], r[1 - k]};
    }
    return GatedPair{algorithm::eltwise_hardswish, 1.0f / 6.0f, 0.5f, r[k],
                     r[1 - k]};
  }
  return std::nullopt;
}

void PlanBuilder::FuseEpilogue(std::string& value, dnnl::post_ops& ops) {
  for (;;) {
    if (const int next = FusibleReader(value); next >= 0) {
      const Node& n = graph_.nodes[next];
      const std::vector<EltwiseStep> steps = EltwiseSteps(n);
      if (steps.empty()) return;
      for (const EltwiseStep& e : steps) {
        ops.append_eltwise(1.0f, e.alg, e.alpha, e.beta);
      }
      absorbed_.insert(next);
      value = n.outputs[0];
      continue;
    }
    // x * gate(x) as one step.
    std::optional<GatedPair> pair = FindGatedPair(value);
    if (!pair || !FreeToFuse(pair->gate) || !FreeToFuse(pair->mul)) return;
    ops.append_eltwise(1.0f, pair->alg, pair->alpha, pair->beta);
    absorbed_.insert(pair->gate);
    absorbed_.insert(pair->mul);
    value = graph_.nodes[pair->mul].outputs[0];
  }
}

dnnl::primitive_attr PlanBuilder::EpilogueAttr(
    const graph::Activation& activation, std::string& value) {
  dnnl::primitive_attr attr = ActivationAttr(activation);
  dnnl::post_ops ops = attr.get_post_ops();
  FuseEpilogue(value, ops);
  attr.set_post_ops(ops);
  return attr;
}

std::optional<PlanBuilder::Value> PlanBuilder::FuseResidual(
    int producer, const std::string& src, std::string& value,
    dnnl::post_ops& ops) {
  if (graph_outputs_.count(value)) return std::nullopt;
  auto it = readers_.find(value);
  if (it == readers_.end() || it->second.size() != 1) return std::nullopt;
  const int add_index = it->second[0];
  const Node& add = graph_.nodes[add_index];
  if (add.op != Op::kAdd || absorbed_.count(add_index) ||
      (layers_ != nullptr && layers_->Find(add_index) != nullptr) ||
      add.inputs[0] == add.inputs[1]) {
    return std::nullopt;
  }
  const std::string& skip =
      add.inputs[0] == value ? add.inputs[1] : add.inputs[0];
  auto defined = values_.find(skip);
  if (defined == values_.end() || ShapeOf(skip) != ShapeOf(value) ||
      graph_outputs_.count(skip)) {
    return std::nullopt;
  }
  const Value skip_value = defined->second;
  const Plan::Buffer& buffer = plan_.buffers_[skip_value.buffer];
  const std::vector<int64_t>& shape = ShapeOf(skip);
  using tag = memory::format_tag;
  static constexpr tag kLayouts[] = {tag::acdb, tag::aBcd16b, tag::aBcd8b};
  const bool layout_ok =
      shape.size() == 4 &&
      std::any_of(std::begin(kLayouts), std::end(kLayouts), [&](tag t) {
        return skip_value.desc == Desc(shape, memory::data_type::f32, t);
      });
  if (buffer.kind != Plan::Buffer::Kind::kArena ||
      buffer.bytes != skip_value.desc.get_size() || !layout_ok ||
      Get(src).buffer == skip_value.buffer) {
    return std::nullopt;
  }
  // The conv overwrites the buffer: no value living in it may be read by a
  // node after the conv but the Add.
  for (const auto& [name, v] : values_) {
    if (v.buffer != skip_value.buffer) continue;
    if (graph_outputs_.count(name)) return std::nullopt;
    auto r = readers_.find(name);
    if (r == readers_.end()) continue;
    for (int reader : r->second) {
      if (reader > producer && reader != add_index &&
          absorbed_.count(reader) == 0) {
        return std::nullopt;
      }
    }
  }
  ops.append_sum(1.0f);
  absorbed_.insert(add_index);
  value = add.outputs[0];
  FuseEpilogue(value, ops);
  return skip_value;
}

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
  AddPrimitive(dnnl::reorder(dnnl::reorder::primitive_desc(
                   engine_, v.desc, engine_, desc, ScratchpadAttr())),
               {{DNNL_ARG_FROM, v}, {DNNL_ARG_TO, c}});
  copies.push_back(c);
  return c;
}

PlanBuilder::Value PlanBuilder::AsPlain(const std::string& name) {
  return As(name, PlainDesc(ShapeOf(name)));
}

void PlanBuilder::AddPrimitive(const dnnl::primitive& primitive,
                               const std::vector<std::pair<int, Value>>& args) {
  // Each execution gives the primitive its scratchpad from the arena, so
  // runs on several threads share none (dnnl_adapter.h, ScratchpadAttr).
  const_dnnl_primitive_desc_t pd = primitive.get_primitive_desc();
  const_dnnl_primitive_attr_t attr = nullptr;
  dnnl_scratchpad_mode_t mode = dnnl_scratchpad_mode_library;
  if (dnnl_primitive_desc_get_attr(pd, &attr) != dnnl_success ||
      dnnl_primitive_attr_get_scratchpad_mode(attr, &mode) != dnnl_success ||
      mode != dnnl_scratchpad_mode_user) {
    if (status_.ok()) {
      status_ = absl::InternalError(absl::StrCat(
          context_, ": primitive created without a user scratchpad"));
    }
  }
  Plan::Step step;
  step.context = context_;
  step.primitive = primitive;
  for (const auto& [arg, value] : args) {
    step.args.push_back({arg, value.buffer, value.desc});
  }
  const dnnl_memory_desc_t* scratch =
      dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
  if (scratch != nullptr) {
    const Desc scratch_desc(*scratch);
    if (scratch_desc.get_size() > 0) {
      const Value v = NewArena(scratch_desc);
      step.args.push_back({DNNL_ARG_SCRATCHPAD, v.buffer, v.desc});
    }
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

absl::StatusOr<PlanBuilder::Value> PlanBuilder::RuntimeWeights(
    const std::string& name, const Desc& view, const Desc& packed) {
  if (graph_.FindConstant(name) == nullptr) {
    bool is_input = false;
    for (const graph::ValueInfo& input : graph_.inputs) {
      is_input = is_input || input.name == name;
    }
    if (!is_input) return NotConstant("weight", name);
  }
  // The graph input is plain row-major; `view` reads it with the product's
  // dims (and strides). The same reorder as WeightCache's, per run.
  const Value source{AsPlain(name).buffer, view};
  if (view == packed) return source;
  const Value out = NewArena(packed);
  AddPrimitive(dnnl::reorder(dnnl::reorder::primitive_desc(
                   engine_, view, engine_, packed, ScratchpadAttr())),
               {{DNNL_ARG_FROM, source}, {DNNL_ARG_TO, out}});
  return out;
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
    plan_.output_shapes_.push_back(ShapeOf(name));
    // A plain value alone in its arena buffer is computed in the caller's
    // output instead of copied there (a segmentation map is megabytes).
    Plan::Buffer& held = plan_.buffers_[v.buffer];
    if (held.kind == Plan::Buffer::Kind::kArena &&
        v.desc == PlainDesc(ShapeOf(name)) && held.bytes == v.desc.get_size()) {
      held.kind = Plan::Buffer::Kind::kOutput;
      held.index = static_cast<int>(i);
      continue;
    }
    Plan::Buffer b;
    b.kind = Plan::Buffer::Kind::kOutput;
    b.index = static_cast<int>(i);
    const Value out{AddBuffer(b), PlainDesc(ShapeOf(name))};
    AddPrimitive(dnnl::reorder(dnnl::reorder::primitive_desc(
                     engine_, v.desc, engine_, out.desc, ScratchpadAttr())),
                 {{DNNL_ARG_FROM, v}, {DNNL_ARG_TO, out}});
  }
}

absl::Status PlanBuilder::Lower(int node_index) {
  const Node& node = graph_.nodes[node_index];
  context_ =
      absl::StrCat("node '", node.name, "' (", graph::OpName(node.op), ")");
  if (absorbed_.count(node_index)) return absl::OkStatus();  // Fused.
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
    case Op::kHardSigmoid:
    case Op::kHardSwish:
    case Op::kSqrt:
      LowerEltwise(node_index, node);
      break;
    case Op::kErf:
      LowerErf(node);
      break;
    case Op::kReduceMean:
    case Op::kReduceSum:
    case Op::kReduceMax:
      LowerReduce(node);
      break;
    case Op::kMaxPool:
    case Op::kAveragePool:
    case Op::kGlobalAveragePool:
      LowerPool(node);
      break;
    case Op::kAdd:
    case Op::kMul:
    case Op::kSub:
    case Op::kDiv:
    case Op::kPow:
      LowerBinary(node);
      break;
    case Op::kConcat:
      LowerConcat(node);
      break;
    case Op::kFlatten:
    case Op::kReshape: {
      if (node.op == Op::kReshape && LowerChannelShuffle(node)) break;
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
    case Op::kExpand:
      LowerExpand(node);
      break;
    case Op::kResize:
      LowerResize(node);
      break;
    case Op::kLayerNorm:
      LowerLayerNorm(node);
      break;
    case Op::kGelu:
      LowerEltwise(node_index, node);
      break;
    case Op::kPad:
      LowerPad(node);
      break;
  }
  return absl::OkStatus();
}

absl::Status PlanBuilder::LowerConv(int node_index, const Node& node) {
  std::string out = node.outputs[0];  // Past any fused epilogue.
  const std::vector<int64_t>& x_shape = ShapeOf(node.inputs[0]);
  // A constant weight is packed once; a graph input is reordered into the
  // primitive's layout at each run (RuntimeWeights).
  const graph::Tensor* w = graph_.FindConstant(node.inputs[1]);
  const std::vector<int64_t>& w_shape = ShapeOf(node.inputs[1]);
  const bool has_bias = node.inputs.size() > 2;
  auto window = graph::ResolveWindow(node, x_shape, w_shape);
  if (!window.ok()) return window.status();

  // Grouped weights are [G, M/G, C/G, k...]: the same row-major data.
  const int64_t group = node.attrs.group;
  Dims w_dims = w_shape;
  if (group > 1) {
    w_dims = {group, w_shape[0] / group};
    w_dims.insert(w_dims.end(), w_shape.begin() + 1, w_shape.end());
  }
  const Desc plain_w = CropDeadTaps(x_shape, ShapeOf(node.outputs[0]),
                                    memory::data_type::f32, *window, w_dims);
  const Desc src_any = AnyDesc(x_shape);
  const Desc w_any = AnyDesc(w_dims);
  const Desc dst_any = AnyDesc(ShapeOf(node.outputs[0]));
  const Dims dilations = OneDnnDilations(window->dilations);
  auto desc = [&](const Desc& src, const Desc& dst) {
    return has_bias
               ? dnnl::convolution_forward::desc(
                     prop_kind::forward_inference,
                     algorithm::convolution_direct, src, w_any,
                     PlainDesc(ShapeOf(node.inputs[2])), dst, window->strides,
                     dilations, window->pads_begin, window->pads_end)
               : dnnl::convolution_forward::desc(
                     prop_kind::forward_inference,
                     algorithm::convolution_direct, src, w_any, dst,
                     window->strides, dilations, window->pads_begin,
                     window->pads_end);
  };
  dnnl::primitive_attr attr = EpilogueAttr(node.attrs.activation, out);
  // A residual Add after the conv (ResNet's, MobileNetV2's) becomes a sum
  // post-op: the conv adds its result into the skip value's buffer, in the
  // skip's layout, instead of writing a new tensor that a binary op and
  // an eltwise op then read again.
  std::optional<Value> residual;
  if (attr.get_post_ops().len() == 0) {
    const std::set<int> absorbed = absorbed_;
    const std::string before = out;
    dnnl::post_ops ops;
    residual = FuseResidual(node_index, node.inputs[0], out, ops);
    if (residual) {
      dnnl::primitive_attr with_sum = ScratchpadAttr();
      with_sum.set_post_ops(ops);
      dnnl::convolution_forward::primitive_desc summed(
          desc(src_any, residual->desc), with_sum, engine_,
          /*allow_empty=*/true);
      if (summed && !absl::StartsWith(summed.impl_info_str(), "ref")) {
        attr = with_sum;
      } else {  // No fast kernel for it: the Add runs on its own.
        residual.reset();
        absorbed_ = absorbed;
        out = before;
      }
    }
  }
  const dnnl::convolution_forward::primitive_desc pd(
      desc(src_any, residual ? residual->desc : dst_any), attr, engine_);

  if (w != nullptr && absl::StrContains(pd.impl_info_str(), "gemm")) {
    absl::StatusOr<bool> done = LowerSpaceToDepthConv(
        node_index, node, *w, *window, attr, residual, out);
    if (!done.ok()) return done.status();
    if (*done) return absl::OkStatus();
  }
  const Value src = As(node.inputs[0], pd.src_desc());
  Value weights{-1, Desc()};
  if (w == nullptr) {
    absl::StatusOr<Value> runtime =
        RuntimeWeights(node.inputs[1], plain_w, pd.weights_desc());
    if (!runtime.ok()) return runtime.status();
    weights = *runtime;
  } else {
    auto packed = weights_.Get(
        node_index, pd.weights_desc(),
        [&] {
          return memory(plain_w, engine_, const_cast<float*>(w->data.data()));
        },
        engine_, stream_);
    if (!packed.ok()) return packed.status();
    plan_.packed_.push_back(*packed);
    weights = AddConstant((*packed)->storage->data(), (*packed)->desc);
  }
  const Value dst = residual ? *residual : NewArena(pd.dst_desc());
  std::vector<std::pair<int, Value>> args = {
      {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}};
  if (has_bias) args.push_back({DNNL_ARG_BIAS, AsPlain(node.inputs[2])});
  AddPrimitive(dnnl::convolution_forward(pd), args);
  Define(out, dst);
  return absl::OkStatus();
}

absl::StatusOr<bool> PlanBuilder::LowerSpaceToDepthConv(
    int node_index, const Node& node, const graph::Tensor& w,
    const graph::WindowGeometry& window, const dnnl::primitive_attr& attr,
    const std::optional<Value>& residual, const std::string& out) {
  using tag = memory::format_tag;
  const std::vector<int64_t>& x_shape = ShapeOf(node.inputs[0]);
  const std::vector<int64_t>& w_shape = ShapeOf(node.inputs[1]);
  const std::vector<int64_t>& y_shape = ShapeOf(node.outputs[0]);
  if (x_shape.size() != 4 || node.attrs.group != 1) return false;
  const int64_t sh = window.strides[0];
  const int64_t sw = window.strides[1];
  const int64_t kh = w_shape[2];
  const int64_t kw = w_shape[3];
  const int64_t channels = x_shape[1] * sh * sw;
  // The kernel rounded up to whole strides: taps past the original's are
  // zero weights, computed for nothing.
  const int64_t kh2 = (kh + sh - 1) / sh;
  const int64_t kw2 = (kw + sw - 1) / sw;
  // Few channels: the image's at most 64 (RGB at AlexNet's stride 4 makes
  // 48); wider inputs stay with oneDNN. And at most half again as many
  // taps, zeros included: a 3x3 stride-2 kernel would become 2x2 over four
  // times the channels, 16 taps for 9.
  constexpr int64_t kMaxChannels = 64;
  constexpr double kMaxWastedTaps = 0.5;
  // CropDeadTaps shrinks window.kernel below the weights' when it crops;
  // the rearrangement reads the whole kernel, so a cropped conv stays.
  if (sh * sw < 2 || window.dilations[0] != 1 || window.dilations[1] != 1 ||
      window.kernel[0] != kh || window.kernel[1] != kw ||
      channels > kMaxChannels ||
      static_cast<double>(kh2 * sh * kw2 * sw) >
          (1.0 + kMaxWastedTaps) * static_cast<double>(kh * kw)) {
    return false;
  }
  const int64_t out_h = y_shape[2] + kh2 - 1;
  const int64_t out_w = y_shape[3] + kw2 - 1;
  const Dims image_shape = {x_shape[0], channels, out_h, out_w};
  const Dims w_dims = {w_shape[0], channels, kh2, kw2};
  const bool has_bias = node.inputs.size() > 2;
  const Desc image_any = AnyDesc(image_shape);
  const Desc w_any = AnyDesc(w_dims);
  const Desc dst_any = residual ? residual->desc : AnyDesc(y_shape);
  const Dims ones = {1, 1};
  const Dims zeros = {0, 0};
  const dnnl::convolution_forward::primitive_desc pd(
      has_bias
          ? dnnl::convolution_forward::desc(
                prop_kind::forward_inference, algorithm::convolution_direct,
                image_any, w_any, PlainDesc(ShapeOf(node.inputs[2])), dst_any,
                ones, zeros, zeros, zeros)
          : dnnl::convolution_forward::desc(
                prop_kind::forward_inference, algorithm::convolution_direct,
                image_any, w_any, dst_any, ones, zeros, zeros, zeros),
      attr, engine_, /*allow_empty=*/true);
  if (!pd || !absl::StartsWith(pd.impl_info_str(), "jit")) return false;
  // SpaceToDepth writes the image in the layout the conv reads.
  int64_t block = 0;
  for (const auto& [t, b] : {std::pair{tag::abcd, int64_t{1}},
                             {tag::acdb, channels},
                             {tag::aBcd8b, int64_t{8}},
                             {tag::aBcd16b, int64_t{16}}}) {
    if (pd.src_desc() == Desc(image_shape, memory::data_type::f32, t)) {
      block = b;
    }
  }
  if (block == 0) return false;

  // w2[m, (c * sh + rh) * sw + rw, i, j] = w[m, c, i * sh + rh, j * sw + rw].
  std::vector<float> rearranged;
  auto packed = weights_.Get(
      node_index, pd.weights_desc(),
      [&] {
        rearranged.assign(graph::NumElements(w_dims), 0.0f);
        for (int64_t m = 0; m < w_shape[0]; ++m) {
          for (int64_t c = 0; c < x_shape[1]; ++c) {
            for (int64_t a = 0; a < kh; ++a) {
              for (int64_t b = 0; b < kw; ++b) {
                const int64_t c2 = (c * sh + a % sh) * sw + b % sw;
                rearranged[((m * channels + c2) * kh2 + a / sh) * kw2 +
                           b / sw] =
                    w.data[((m * x_shape[1] + c) * kh + a) * kw + b];
              }
            }
          }
        }
        return memory(PlainDesc(w_dims), engine_, rearranged.data());
      },
      engine_, stream_);
  if (!packed.ok()) return packed.status();
  plan_.packed_.push_back(*packed);
  const Value weights =
      AddConstant((*packed)->storage->data(), (*packed)->desc);

  const Value x = AsPlain(node.inputs[0]);
  const Value image = NewArena(pd.src_desc());
  const int64_t blocks = (channels + block - 1) / block;
  const int64_t pad_top = window.pads_begin[0];
  const int64_t pad_left = window.pads_begin[1];
  AddLoop(
      [x_shape, sh, sw, pad_top, pad_left, out_h, out_w, block,
       blocks](absl::Span<float* const> p) {
        SpaceToDepth(p[0], x_shape, sh, sw, pad_top, pad_left, out_h, out_w,
                     block, blocks, p[1]);
      },
      {x, image});
  const Value dst = residual ? *residual : NewArena(pd.dst_desc());
  std::vector<std::pair<int, Value>> args = {
      {DNNL_ARG_SRC, image}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}};
  if (has_bias) args.push_back({DNNL_ARG_BIAS, AsPlain(node.inputs[2])});
  AddPrimitive(dnnl::convolution_forward(pd), args);
  Define(out, dst);
  return true;
}

absl::Status PlanBuilder::LowerGemm(int node_index, const Node& node) {
  std::string out = node.outputs[0];  // Past any fused epilogue.
  const graph::Attributes& attrs = node.attrs;
  const std::vector<int64_t>& a_shape = ShapeOf(node.inputs[0]);
  // A constant B (and C) is folded and packed once; a graph input B (C) is
  // read at each run, which needs alpha (beta) 1.
  const graph::Tensor* b = graph_.FindConstant(node.inputs[1]);
  const std::vector<int64_t>& b_shape = ShapeOf(node.inputs[1]);
  if (b == nullptr && attrs.alpha != 1.0f) {
    return absl::UnimplementedError(absl::StrCat(
        context_, ": B '", node.inputs[1],
        "' is not a constant, which needs alpha 1 (not ", attrs.alpha, ")"));
  }
  const int64_t n = attrs.trans_a ? a_shape[1] : a_shape[0];
  const int64_t k = attrs.trans_a ? a_shape[0] : a_shape[1];
  const int64_t m = attrs.trans_b ? b_shape[0] : b_shape[1];

  // A^T is A's row-major buffer read with swapped strides.
  const Value a = AsPlain(node.inputs[0]);
  const Desc a_desc({n, k}, memory::data_type::f32,
                    attrs.trans_a ? Dims{1, n} : Dims{k, 1});
  const Desc dst_desc = PlainDesc({n, m});

  // beta * C, broadcast to [1, M] (C without rows) or [N, M].
  const bool has_bias = node.inputs.size() > 2 && attrs.beta != 0.0f;
  Desc bias_desc;
  Value bias{-1, Desc()};
  const graph::Tensor* c =
      has_bias ? graph_.FindConstant(node.inputs[2]) : nullptr;
  if (has_bias && c == nullptr) {
    std::vector<int64_t> c2 = ShapeOf(node.inputs[2]);
    while (c2.size() < 2) c2.insert(c2.begin(), 1);
    if (attrs.beta != 1.0f || c2.size() != 2 || c2[1] != m ||
        (c2[0] != 1 && c2[0] != n)) {
      return absl::UnimplementedError(absl::StrCat(
          context_, ": C '", node.inputs[2], "' of shape ",
          graph::ShapeToString(ShapeOf(node.inputs[2])),
          " is not a constant, which needs beta 1 and shape [M], [1, M] or "
          "[N, M]"));
    }
    bias_desc = PlainDesc(c2);
    bias = Value{AsPlain(node.inputs[2]).buffer, bias_desc};
  } else if (has_bias) {
    std::vector<int64_t> c2 = c->shape;
    while (c2.size() < 2) c2.insert(c2.begin(), 1);
    const int64_t rows = c2[0] == 1 ? 1 : n;
    auto created = AlignedBuffer::Create(
        static_cast<size_t>(rows) * static_cast<size_t>(m) * sizeof(float),
        absl::StrCat(context_, ": folded bias"));
    if (!created.ok()) return created.status();
    std::unique_ptr<AlignedBuffer> folded = *std::move(created);
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
  // alpha * op(B), plain [k, m], for packing.
  std::vector<float> plain_b;
  const auto source = [&] {
    plain_b.resize(k * m);
    for (int64_t i = 0; i < k; ++i) {
      for (int64_t j = 0; j < m; ++j) {
        plain_b[i * m + j] =
            attrs.alpha * b->data[attrs.trans_b ? j * k + i : i * m + j];
      }
    }
    return memory(PlainDesc({k, m}), engine_, plain_b.data());
  };
  if (b != nullptr && !attrs.trans_a && IsNarrowProduct(n, k, m) &&
      (!has_bias || bias_desc.dims()[0] == 1)) {
    return AddNarrowGemm(node_index, a, n, k, m, source,
                         has_bias ? &bias : nullptr, attrs.activation, out);
  }
  const Desc w_any = AnyDesc({k, m});
  auto desc = has_bias ? dnnl::matmul::desc(a_desc, w_any, bias_desc, dst_desc)
                       : dnnl::matmul::desc(a_desc, w_any, dst_desc);
  const dnnl::matmul::primitive_desc pd(
      desc, EpilogueAttr(attrs.activation, out), engine_);

  // Packed once per layout.
  Value weights{-1, Desc()};
  if (b == nullptr) {
    const Desc op_b({k, m}, memory::data_type::f32,
                    attrs.trans_b ? Dims{1, k} : Dims{m, 1});
    absl::StatusOr<Value> runtime =
        RuntimeWeights(node.inputs[1], op_b, pd.weights_desc());
    if (!runtime.ok()) return runtime.status();
    weights = *runtime;
  } else {
    auto packed =
        weights_.Get(node_index, pd.weights_desc(), source, engine_, stream_);
    if (!packed.ok()) return packed.status();
    plan_.packed_.push_back(*packed);
    weights = AddConstant((*packed)->storage->data(), (*packed)->desc);
  }
  const Value dst = NewArena(dst_desc);
  std::vector<std::pair<int, Value>> args = {{DNNL_ARG_SRC, {a.buffer, a_desc}},
                                             {DNNL_ARG_WEIGHTS, weights},
                                             {DNNL_ARG_DST, dst}};
  if (has_bias) args.push_back({DNNL_ARG_BIAS, bias});
  AddPrimitive(dnnl::matmul(pd), args);
  Define(out, dst);
  return absl::OkStatus();
}

absl::Status PlanBuilder::AddNarrowGemm(
    int node_index, const Value& a, int64_t rows, int64_t k, int64_t m,
    const std::function<dnnl::memory()>& source, const Value* bias,
    const graph::Activation& activation, const std::string& out) {
  // [k, m] with k innermost: one weight row per output column.
  const Desc by_column({k, m}, memory::data_type::f32, Dims{1, k});
  auto packed = weights_.Get(node_index, by_column, source, engine_, stream_);
  if (!packed.ok()) return packed.status();
  plan_.packed_.push_back(*packed);
  const Value weights =
      AddConstant((*packed)->storage->data(), (*packed)->desc);
  const Value dst = NewArena(PlainDesc({rows, m}));
  std::vector<Value> args = {a, weights, dst};
  if (bias != nullptr) args.push_back(*bias);
  AddLoop(
      [rows, k, m, activation](absl::Span<float* const> p) {
        NarrowGemm(p[0], rows, k, p[1], m, p.size() > 3 ? p[3] : nullptr,
                   activation, p[2]);
      },
      args);
  Define(out, {dst.buffer, PlainDesc(ShapeOf(out))});
  return absl::OkStatus();
}

absl::Status PlanBuilder::LowerMatMul(int node_index, const Node& node) {
  std::string out = node.outputs[0];  // Past any fused epilogue.
  const std::vector<int64_t>& a_shape = ShapeOf(node.inputs[0]);
  const graph::Tensor* b = graph_.FindConstant(node.inputs[1]);
  // Leading dims of A are rows of one 2-D product.
  const int64_t k = a_shape.back();
  const int64_t rows = graph::NumElements(a_shape) / k;
  const int64_t m = ShapeOf(node.inputs[1])[1];
  const Value a = AsPlain(node.inputs[0]);
  const Desc a_desc = PlainDesc({rows, k});
  const Desc dst_desc = PlainDesc({rows, m});
  // A following Add of a constant [m] (a Linear's bias, as exporters write
  // it) becomes the product's bias, when the MatMul has no activation.
  const graph::Tensor* bias = nullptr;
  const int reader = FusibleReader(out);
  if (node.attrs.activation.kind == graph::Activation::Kind::kNone &&
      reader >= 0) {
    const Node& add = graph_.nodes[reader];
    if (add.op == Op::kAdd) {
      const std::string& other =
          add.inputs[0] == out ? add.inputs[1] : add.inputs[0];
      const graph::Tensor* c = graph_.FindConstant(other);
      const bool per_column = c != nullptr && c->size() == m &&
                              !c->shape.empty() && c->shape.back() == m &&
                              ShapeOf(add.outputs[0]) == ShapeOf(out);
      if (per_column) {
        bias = c;
        absorbed_.insert(reader);
        out = add.outputs[0];
      }
    }
  }
  const Desc bias_desc = PlainDesc({1, m});
  const auto source = [&] {
    return memory(PlainDesc({k, m}), engine_,
                  const_cast<float*>(b->data.data()));
  };
  if (b != nullptr && IsNarrowProduct(rows, k, m)) {
    const Value bias_value =
        bias != nullptr
            ? AddConstant(const_cast<float*>(bias->data.data()), bias_desc)
            : Value{-1, Desc()};
    return AddNarrowGemm(node_index, a, rows, k, m, source,
                         bias != nullptr ? &bias_value : nullptr,
                         node.attrs.activation, out);
  }
  const dnnl::matmul::primitive_desc pd(
      bias != nullptr
          ? dnnl::matmul::desc(a_desc, AnyDesc({k, m}), bias_desc, dst_desc)
          : dnnl::matmul::desc(a_desc, AnyDesc({k, m}), dst_desc),
      EpilogueAttr(node.attrs.activation, out), engine_);
  Value weights{-1, Desc()};
  if (b == nullptr) {
    absl::StatusOr<Value> runtime =
        RuntimeWeights(node.inputs[1], PlainDesc({k, m}), pd.weights_desc());
    if (!runtime.ok()) return runtime.status();
    weights = *runtime;
  } else {
    auto packed =
        weights_.Get(node_index, pd.weights_desc(), source, engine_, stream_);
    if (!packed.ok()) return packed.status();
    plan_.packed_.push_back(*packed);
    weights = AddConstant((*packed)->storage->data(), (*packed)->desc);
  }
  const Value dst = NewArena(dst_desc);
  std::vector<std::pair<int, Value>> args = {{DNNL_ARG_SRC, {a.buffer, a_desc}},
                                             {DNNL_ARG_WEIGHTS, weights},
                                             {DNNL_ARG_DST, dst}};
  if (bias != nullptr) {
    args.push_back(
        {DNNL_ARG_BIAS,
         AddConstant(const_cast<float*>(bias->data.data()), bias_desc)});
  }
  AddPrimitive(dnnl::matmul(pd), args);
  Define(out, {dst.buffer, PlainDesc(ShapeOf(out))});
  return absl::OkStatus();
}

void PlanBuilder::LowerBatchNorm(const Node& node) {
  const Value x = Get(node.inputs[0]);
  auto flags = dnnl::normalization_flags::use_global_stats |
               dnnl::normalization_flags::use_scale |
               dnnl::normalization_flags::use_shift;
  // A BatchNorm no conv could take (DenseNet's, after a Concat) and the
  // Relu that alone follows it run as one primitive.
  std::string out = node.outputs[0];
  if (const int relu = FusibleReader(out);
      relu >= 0 && graph_.nodes[relu].op == Op::kRelu) {
    flags = flags | dnnl::normalization_flags::fuse_norm_relu;
    absorbed_.insert(relu);
    out = graph_.nodes[relu].outputs[0];
  }
  const dnnl::batch_normalization_forward::primitive_desc pd(
      dnnl::batch_normalization_forward::desc(
          prop_kind::forward_inference, x.desc, node.attrs.epsilon, flags),
      ScratchpadAttr(), engine_);
  const Value dst = NewArena(pd.dst_desc());
  AddPrimitive(dnnl::batch_normalization_forward(pd),
               {{DNNL_ARG_SRC, As(node.inputs[0], pd.src_desc())},
                {DNNL_ARG_SCALE, AsPlain(node.inputs[1])},
                {DNNL_ARG_SHIFT, AsPlain(node.inputs[2])},
                {DNNL_ARG_MEAN, AsPlain(node.inputs[3])},
                {DNNL_ARG_VARIANCE, AsPlain(node.inputs[4])},
                {DNNL_ARG_DST, dst}});
  Define(out, dst);
}

void PlanBuilder::LowerEltwise(int node_index, const Node& node) {
  // x * gate(x), where x's producer took no epilogue (an ESB layer's
  // output, a graph input): one swish or hardswish pass for both nodes.
  std::optional<GatedPair> pair = FindGatedPair(node.inputs[0]);
  if (pair && pair->gate == node_index && FreeToFuse(pair->mul)) {
    absorbed_.insert(pair->mul);
    AddEltwise(node.inputs[0], graph_.nodes[pair->mul].outputs[0],
               {{pair->alg, pair->alpha, pair->beta}});
    return;
  }
  AddEltwise(node.inputs[0], node.outputs[0], EltwiseSteps(node));
}

void PlanBuilder::AddEltwise(const std::string& input,
                             const std::string& output,
                             const std::vector<EltwiseStep>& steps) {
  // One primitive per step, the later ones in place: oneDNN 2.6 has no
  // optimized eltwise with eltwise post-ops (HardSigmoid's clip).
  const Value x = Get(input);
  Value dst{-1, Desc()};
  for (const EltwiseStep& step : steps) {
    const Desc src_desc = dst.buffer < 0 ? x.desc : dst.desc;
    const dnnl::eltwise_forward::primitive_desc pd(
        dnnl::eltwise_forward::desc(prop_kind::forward_inference, step.alg,
                                    src_desc, step.alpha, step.beta),
        ScratchpadAttr(), engine_);
    const Value src = dst.buffer < 0 ? As(input, pd.src_desc()) : dst;
    if (dst.buffer < 0) dst = NewArena(pd.dst_desc());
    AddPrimitive(dnnl::eltwise_forward(pd),
                 {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
  }
  Define(output, dst);
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
  Value x = Get(node.inputs[0]);
  if (node.op != Op::kGlobalAveragePool && x_shape.size() == 4 &&
      x.desc == PlainDesc(x_shape)) {
    // oneDNN 2.6 pools a plain tensor on its simple_nchw kernel, about 15x
    // slower than its jit kernel on channels-last (AlexNet's first pool,
    // after a conv that ran as a plain gemm): one reorder first.
    x = As(node.inputs[0],
           Desc(x_shape, memory::data_type::f32, memory::format_tag::acdb));
  }
  // The MaxPool2d loop took 0.6x to 0.9x of oneDNN's jit pooling's time
  // on the zoo's max pools with AVX2 alone; with AVX-512 it is unmeasured.
  if (node.op == Op::kMaxPool && x_shape.size() == 4 && Avx2WithoutAvx512() &&
      LowerMaxPoolLoop(node, x, window)) {
    return;
  }
  const dnnl::pooling_v2_forward::primitive_desc pd(
      dnnl::pooling_v2_forward::desc(
          prop_kind::forward_inference, alg, x.desc, AnyDesc(y_shape),
          window.strides, window.kernel, OneDnnDilations(window.dilations),
          window.pads_begin, pads_end),
      ScratchpadAttr(), engine_);
  const Value dst = NewArena(pd.dst_desc());
  AddPrimitive(
      dnnl::pooling_v2_forward(pd),
      {{DNNL_ARG_SRC, As(node.inputs[0], pd.src_desc())}, {DNNL_ARG_DST, dst}});
  Define(node.outputs[0], dst);
}

bool PlanBuilder::LowerMaxPoolLoop(const Node& node, const Value& x,
                                   const graph::WindowGeometry& window) {
  using tag = memory::format_tag;
  const std::vector<int64_t>& x_shape = ShapeOf(node.inputs[0]);
  const int64_t channels = x_shape[1];
  int64_t block = 0;
  std::optional<tag> layout;
  for (const auto& [t, b] : {std::pair{tag::acdb, channels},
                             {tag::aBcd8b, int64_t{8}},
                             {tag::aBcd16b, int64_t{16}}}) {
    if (x.desc == Desc(x_shape, memory::data_type::f32, t)) {
      layout = t;
      block = b;
    }
  }
  if (!layout || channels == 0) return false;
  const Value dst =
      NewArena(Desc(ShapeOf(node.outputs[0]), memory::data_type::f32, *layout));
  const int64_t n = x_shape[0];
  const int64_t h = x_shape[2];
  const int64_t w = x_shape[3];
  AddLoop(
      [n, channels, h, w, block, window](absl::Span<float* const> p) {
        MaxPool2d(p[0], n, channels, h, w, block, window, p[1]);
      },
      {x, dst});
  Define(node.outputs[0], dst);
  return true;
}

void PlanBuilder::LowerBinary(const Node& node) {
  const std::vector<int64_t>& y_shape = ShapeOf(node.outputs[0]);
  const size_t rank = y_shape.size();
  auto padded = [&](const std::vector<int64_t>& s) {
    std::vector<int64_t> p(rank - s.size(), 1);
    p.insert(p.end(), s.begin(), s.end());
    return p;
  };
  if (node.op == Op::kPow) {
    const graph::Tensor* exponent = graph_.FindConstant(node.inputs[1]);
    if (exponent != nullptr && exponent->data.size() == 1 &&
        ShapeOf(node.inputs[0]) == y_shape) {
      // x ^ constant: oneDNN's eltwise pow (alpha * x ^ beta).
      AddEltwise(node.inputs[0], node.outputs[0],
                 {{algorithm::eltwise_pow, 1.0f, exponent->data[0]}});
      return;
    }
  }
  // oneDNN broadcasts src1 only: the operand of full shape goes first.
  std::string src0 = node.inputs[0];
  std::string src1 = node.inputs[1];
  const bool swapped = padded(ShapeOf(src0)) != y_shape;
  if (swapped) std::swap(src0, src1);
  if (padded(ShapeOf(src0)) != y_shape || node.op == Op::kPow) {
    // Both operands broadcast, or an op oneDNN's binary lacks.
    const Value a = AsPlain(node.inputs[0]);
    const Value b = AsPlain(node.inputs[1]);
    const Value dst = NewArena(PlainDesc(y_shape));
    const BinaryOp op = node.op == Op::kAdd   ? BinaryOp::kAdd
                        : node.op == Op::kMul ? BinaryOp::kMul
                        : node.op == Op::kSub ? BinaryOp::kSub
                        : node.op == Op::kDiv ? BinaryOp::kDiv
                                              : BinaryOp::kPow;
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
  // as plain with leading 1s up to the output's rank, or, when the full
  // operand is in a channel-blocked or channels-last layout, reordered into
  // that layout too: oneDNN's optimized binary kernels broadcast only
  // between operands of one layout (a plain [N, C, 1, 1] gate on a blocked
  // tensor, as squeeze-excitation multiplies, runs on the reference kernel).
  auto operand = [&](const std::string& name) {
    if (ShapeOf(name) == y_shape) return Get(name);
    const Value v = AsPlain(name);
    return Value{v.buffer, PlainDesc(padded(ShapeOf(name)))};
  };
  Value a = operand(src0);
  Value b = operand(src1);
  if (rank == 4 && b.desc != a.desc) {
    // The full operand's layout, but oneDNN 2.6 has no optimized binary
    // on 8-channel blocks (a grouped conv's output with 8 channels per
    // group): channels-last there.
    using tag = memory::format_tag;
    auto layout = [&](tag t) {
      return Desc(y_shape, memory::data_type::f32, t);
    };
    std::optional<tag> target;
    if (a.desc == layout(tag::aBcd16b)) target = tag::aBcd16b;
    if (a.desc == layout(tag::acdb)) target = tag::acdb;
    if (a.desc == layout(tag::aBcd8b)) {
      target = tag::acdb;
      a = As(src0, layout(tag::acdb));
    }
    // A plain operand and one of the same shape in a conv's blocked layout
    // (ConvNeXt's first residual of a stage, the block's output against
    // the downsampling conv's) ran on the reference kernel, 10.8 ms for
    // 192x28x28: the blocked one is reordered to plain.
    if (a.desc == layout(tag::abcd)) target = tag::abcd;
    if (target.has_value()) {
      const Desc like(padded(ShapeOf(src1)), memory::data_type::f32, *target);
      if (b.desc != like) {
        const Value converted = NewArena(like);
        AddPrimitive(dnnl::reorder(dnnl::reorder::primitive_desc(
                         engine_, b.desc, engine_, like, ScratchpadAttr())),
                     {{DNNL_ARG_FROM, b}, {DNNL_ARG_TO, converted}});
        b = converted;
      }
    }
  }
  algorithm alg = algorithm::binary_add;
  dnnl::primitive_attr attr = ScratchpadAttr();
  dnnl::post_ops undo_swap;
  switch (node.op) {
    case Op::kMul:
      alg = algorithm::binary_mul;
      break;
    case Op::kSub:
      // Swapped, the primitive computes b - a: negate it.
      alg = algorithm::binary_sub;
      if (swapped) {
        undo_swap.append_eltwise(1.0f, algorithm::eltwise_linear, -1.0f, 0.0f);
      }
      break;
    case Op::kDiv:
      // Swapped, it computes b / a: take the reciprocal.
      alg = algorithm::binary_div;
      if (swapped) {
        undo_swap.append_eltwise(1.0f, algorithm::eltwise_pow, 1.0f, -1.0f);
      }
      break;
    default:
      break;
  }
  if (swapped) attr.set_post_ops(undo_swap);
  const dnnl::binary::primitive_desc pd(
      dnnl::binary::desc(alg, a.desc, b.desc, a.desc), attr, engine_);
  const Value dst = NewArena(pd.dst_desc());
  AddPrimitive(dnnl::binary(pd),
               {{DNNL_ARG_SRC_0, a}, {DNNL_ARG_SRC_1, b}, {DNNL_ARG_DST, dst}});
  Define(node.outputs[0], dst);
}

void PlanBuilder::LowerConcat(const Node& node) {
  // One layout for every input and the output, the one holding most of the
  // inputs' bytes already, so oneDNN copies blocks (a mix falls to its
  // reference concat) and the layout carries on down a chain of concats
  // (DenseNet) instead of returning to plain at each.
  std::optional<memory::format_tag> common;
  if (ShapeOf(node.outputs[0]).size() == 4) {
    using tag = memory::format_tag;
    size_t best = 0;
    for (const tag t : {tag::abcd, tag::acdb, tag::aBcd16b, tag::aBcd8b}) {
      size_t bytes = 0;
      for (const std::string& name : node.inputs) {
        const Desc in = Get(name).desc;
        if (in == Desc(ShapeOf(name), memory::data_type::f32, t)) {
          bytes += in.get_size();
        }
      }
      if (bytes > best) {
        best = bytes;
        common = t;
      }
    }
  }
  std::vector<Value> inputs;
  std::vector<Desc> descs;
  for (const std::string& name : node.inputs) {
    inputs.push_back(
        common ? As(name, Desc(ShapeOf(name), memory::data_type::f32, *common))
               : Get(name));
    descs.push_back(inputs.back().desc);
  }
  if (LowerConcatSlabs(node, common, inputs)) return;
  const dnnl::concat::primitive_desc pd =
      common
          ? dnnl::concat::primitive_desc(
                Desc(ShapeOf(node.outputs[0]), memory::data_type::f32, *common),
                static_cast<int>(node.attrs.axis), descs, engine_,
                ScratchpadAttr())
          : dnnl::concat::primitive_desc(static_cast<int>(node.attrs.axis),
                                         descs, engine_, ScratchpadAttr());
  const Value dst = NewArena(pd.dst_desc());
  std::vector<std::pair<int, Value>> args = {{DNNL_ARG_DST, dst}};
  for (size_t i = 0; i < inputs.size(); ++i) {
    args.push_back({DNNL_ARG_MULTIPLE_SRC + static_cast<int>(i), inputs[i]});
  }
  AddPrimitive(dnnl::concat(pd), args);
  Define(node.outputs[0], dst);
}

bool PlanBuilder::LowerConcatSlabs(
    const Node& node, const std::optional<memory::format_tag>& common,
    const std::vector<Value>& inputs) {
  using tag = memory::format_tag;
  const std::vector<int64_t>& y_shape = ShapeOf(node.outputs[0]);
  const size_t rank = y_shape.size();
  const size_t axis = static_cast<size_t>(node.attrs.axis);
  // The dims from outermost to innermost in memory.
  std::vector<size_t> order(rank);
  for (size_t d = 0; d < rank; ++d) order[d] = d;
  if (!common) {
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (inputs[i].desc != PlainDesc(ShapeOf(node.inputs[i]))) return false;
    }
  } else if (*common == tag::acdb) {
    order = {0, 2, 3, 1};
  } else if (*common == tag::aBcd8b || *common == tag::aBcd16b) {
    // Whole channel blocks keep each input's rows contiguous; blocks
    // are innermost, so only the channel axis qualifies.
    const int64_t block = *common == tag::aBcd8b ? 8 : 16;
    if (axis != 1) return false;
    for (const std::string& name : node.inputs) {
      if (ShapeOf(name)[1] % block != 0) return false;
    }
  }
  const size_t at = static_cast<size_t>(
      std::find(order.begin(), order.end(), axis) - order.begin());
  int64_t outer = 1;
  for (size_t k = 0; k < at; ++k) outer *= y_shape[order[k]];
  std::vector<int64_t> slabs;
  for (const std::string& name : node.inputs) {
    const std::vector<int64_t>& shape = ShapeOf(name);
    int64_t slab = 1;
    for (size_t k = at; k < rank; ++k) slab *= shape[order[k]];
    slabs.push_back(slab);
  }
  const Value dst =
      NewArena(common ? Desc(y_shape, memory::data_type::f32, *common)
                      : PlainDesc(y_shape));
  std::vector<Value> args = inputs;
  args.push_back(dst);
  AddLoop(
      [slabs, outer](absl::Span<float* const> p) {
        ConcatSlabs(absl::Span<const float* const>(p.data(), p.size() - 1),
                    slabs, outer, p.back());
      },
      args);
  Define(node.outputs[0], dst);
  return true;
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
  // y[i...] = x[perm...]: one reorder from x, in whatever layout it is,
  // into a buffer whose strides over x's dims make it plain y (dim perm[i]
  // of x steps by y's stride i).
  const Value x = Get(node.inputs[0]);
  const Dims y_strides = PlainStrides(y_shape);
  Dims strides(x_shape.size());
  for (size_t i = 0; i < perm.size(); ++i) strides[perm[i]] = y_strides[i];
  const Value dst = NewArena(PlainDesc(y_shape));
  const Value into{dst.buffer, Desc(x_shape, memory::data_type::f32, strides)};
  AddPrimitive(dnnl::reorder(dnnl::reorder::primitive_desc(
                   engine_, x.desc, engine_, into.desc, ScratchpadAttr())),
               {{DNNL_ARG_FROM, x}, {DNNL_ARG_TO, into}});
  Define(node.outputs[0], dst);
}

void PlanBuilder::LowerSoftmax(const Node& node) {
  const Value x = AsPlain(node.inputs[0]);
  const dnnl::softmax_forward::primitive_desc pd(
      dnnl::softmax_forward::desc(prop_kind::forward_inference, x.desc,
                                  static_cast<int>(node.attrs.axis)),
      ScratchpadAttr(), engine_);
  const Value dst = NewArena(pd.dst_desc());
  AddPrimitive(dnnl::softmax_forward(pd),
               {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, dst}});
  Define(node.outputs[0], dst);
}

void PlanBuilder::LowerReduce(const Node& node) {
  // oneDNN reduces to a destination of the input's rank with 1s on the
  // reduced dims; without keep_dims the output is the same data viewed
  // without them.
  Dims kept = ShapeOf(node.inputs[0]);
  for (int64_t a : node.attrs.axes) kept[a] = 1;
  const algorithm alg = node.op == Op::kReduceMean  ? algorithm::reduction_mean
                        : node.op == Op::kReduceSum ? algorithm::reduction_sum
                                                    : algorithm::reduction_max;
  const Value x = AsPlain(node.inputs[0]);
  const dnnl::reduction::primitive_desc pd(
      dnnl::reduction::desc(alg, x.desc, PlainDesc(kept), 0.0f, 0.0f),
      ScratchpadAttr(), engine_);
  const Value dst = NewArena(pd.dst_desc());
  AddPrimitive(dnnl::reduction(pd), {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, dst}});
  Define(node.outputs[0],
         Value{dst.buffer, PlainDesc(ShapeOf(node.outputs[0]))});
}

void PlanBuilder::LowerErf(const Node& node) {
  // oneDNN has no erf on its own (only inside gelu_erf): a loop.
  const Value x = AsPlain(node.inputs[0]);
  const Value dst = NewArena(PlainDesc(ShapeOf(node.outputs[0])));
  AddLoop(
      [n = graph::NumElements(ShapeOf(node.inputs[0]))](
          absl::Span<float* const> p) {
        for (int64_t i = 0; i < n; ++i) p[1][i] = std::erf(p[0][i]);
      },
      {x, dst});
  Define(node.outputs[0], dst);
}

bool PlanBuilder::LowerChannelShuffle(const Node& reshape) {
  // x [N, C, H, W] -> Reshape [N, G, C/G, H, W] -> Transpose (0, 2, 1, 3, 4)
  // -> Reshape [N, C, H, W]: channel g * C/G + c moves to c * G + g.
  const std::vector<int64_t>& x_shape = ShapeOf(reshape.inputs[0]);
  const std::vector<int64_t>& split = ShapeOf(reshape.outputs[0]);
  if (x_shape.size() != 4 || split.size() != 5 || split[0] != x_shape[0] ||
      split[1] * split[2] != x_shape[1] || split[3] != x_shape[2] ||
      split[4] != x_shape[3]) {
    return false;
  }
  const int transpose = FusibleReader(reshape.outputs[0]);
  if (transpose < 0 || graph_.nodes[transpose].op != Op::kTranspose ||
      graph_.nodes[transpose].attrs.perm !=
          std::vector<int64_t>{0, 2, 1, 3, 4}) {
    return false;
  }
  const int merge = FusibleReader(graph_.nodes[transpose].outputs[0]);
  if (merge < 0 || graph_.nodes[merge].op != Op::kReshape ||
      ShapeOf(graph_.nodes[merge].outputs[0]) != x_shape) {
    return false;
  }
  // One reorder between two strided views of the same dims [N, G, C/G, H,
  // W], in x's layout when it is channels-last, else in plain.
  using tag = memory::format_tag;
  const tag layout = IsChannelsLast(reshape.inputs[0]) ? tag::acdb : tag::abcd;
  const Value x =
      As(reshape.inputs[0], Desc(x_shape, memory::data_type::f32, layout));
  const int64_t c = x_shape[1], h = x_shape[2], w = x_shape[3];
  // Strides of n, channel, h, w in that layout.
  const Dims s = layout == tag::acdb ? Dims{c * h * w, 1, w * c, c}
                                     : Dims{c * h * w, h * w, w, 1};
  const int64_t groups = split[1], per_group = split[2];
  const Desc from(split, memory::data_type::f32,
                  Dims{s[0], per_group * s[1], s[1], s[2], s[3]});
  const Desc to(split, memory::data_type::f32,
                Dims{s[0], s[1], groups * s[1], s[2], s[3]});
  const Value dst = NewArena(Desc(x_shape, memory::data_type::f32, layout));
  AddPrimitive(dnnl::reorder(dnnl::reorder::primitive_desc(
                   engine_, from, engine_, to, ScratchpadAttr())),
               {{DNNL_ARG_FROM, Value{x.buffer, from}},
                {DNNL_ARG_TO, Value{dst.buffer, to}}});
  absorbed_.insert(transpose);
  absorbed_.insert(merge);
  Define(graph_.nodes[merge].outputs[0], dst);
  return true;
}

bool PlanBuilder::LowerPaddedAveragePool(const Node& pad) {
  const int pool_index = FusibleReader(pad.outputs[0]);
  if (pool_index < 0) return false;
  const Node& pool = graph_.nodes[pool_index];
  const size_t rank = ShapeOf(pad.inputs[0]).size();
  const std::vector<int64_t>& pads = pad.attrs.pads;
  if (pool.op != Op::kAveragePool || pool.attrs.ceil_mode ||
      pad.attrs.value != 0.0f || rank < 3 || pads.size() != 2 * rank ||
      pads[0] != 0 || pads[1] != 0 || pads[rank] != 0 || pads[rank + 1] != 0 ||
      std::any_of(pads.begin(), pads.end(), [](int64_t p) { return p < 0; })) {
    return false;
  }
  const size_t n = rank - 2;
  std::vector<int64_t> own = pool.attrs.pads;
  if (own.empty()) own.assign(2 * n, 0);
  // Padding the pool leaves out of its divisor cannot join the zeros the
  // Pad wrote, which it counts.
  if (!pool.attrs.count_include_pad &&
      std::any_of(own.begin(), own.end(), [](int64_t p) { return p != 0; })) {
    return false;
  }
  Node merged = pool;
  merged.inputs[0] = pad.inputs[0];
  for (size_t i = 0; i < n; ++i) {
    own[i] += pads[2 + i];
    own[n + i] += pads[rank + 2 + i];
  }
  merged.attrs.pads = own;
  merged.attrs.count_include_pad = true;
  absorbed_.insert(pool_index);
  LowerPool(merged);
  return true;
}

void PlanBuilder::LowerPad(const Node& node) {
  if (LowerPaddedAveragePool(node)) return;
  const std::vector<int64_t>& x_shape = ShapeOf(node.inputs[0]);
  const std::vector<int64_t>& y_shape = ShapeOf(node.outputs[0]);
  const std::vector<int64_t>& pads = node.attrs.pads;
  if (std::all_of(pads.begin(), pads.end(), [](int64_t p) { return p <= 0; })) {
    // Only cropping (a Slice or Split): one reorder from a view of x, in
    // x's layout when it is channels-last, else in plain.
    using tag = memory::format_tag;
    const bool channels_last = IsChannelsLast(node.inputs[0]);
    const Value x =
        channels_last ? Get(node.inputs[0]) : AsPlain(node.inputs[0]);
    Dims offsets(x_shape.size());
    for (size_t i = 0; i < offsets.size(); ++i) offsets[i] = -pads[i];
    const Desc view = x.desc.submemory_desc(y_shape, offsets);
    const Value dst = NewArena(
        channels_last ? Desc(y_shape, memory::data_type::f32, tag::acdb)
                      : PlainDesc(y_shape));
    AddPrimitive(dnnl::reorder(dnnl::reorder::primitive_desc(
                     engine_, view, engine_, dst.desc, ScratchpadAttr())),
                 {{DNNL_ARG_FROM, Value{x.buffer, view}}, {DNNL_ARG_TO, dst}});
    Define(node.outputs[0], dst);
    return;
  }
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

void PlanBuilder::LowerExpand(const Node& node) {
  const Value x = AsPlain(node.inputs[0]);
  const Value dst = NewArena(PlainDesc(ShapeOf(node.outputs[0])));
  AddLoop(
      [x_shape = ShapeOf(node.inputs[0]), y_shape = ShapeOf(node.outputs[0])](
          absl::Span<float* const> p) { Expand(p[0], x_shape, p[1], y_shape); },
      {x, dst});
  Define(node.outputs[0], dst);
}

void PlanBuilder::LowerResize(const Node& node) {
  const Value x = AsPlain(node.inputs[0]);
  const std::vector<int64_t>& y_shape = ShapeOf(node.outputs[0]);
  const Value dst = NewArena(PlainDesc(y_shape));
  AddLoop(
      [x_shape = ShapeOf(node.inputs[0]), method = node.attrs.resize,
       scales = node.attrs.scales, out_h = y_shape[2],
       out_w = y_shape[3]](absl::Span<float* const> p) {
        Resize(p[0], x_shape, method, scales, out_h, out_w, p[1]);
      },
      {x, dst});
  Define(node.outputs[0], dst);
}

void PlanBuilder::LowerLayerNorm(const Node& node) {
  // oneDNN normalizes the last dim: the input viewed as [outer, inner].
  const std::vector<int64_t>& x_shape = ShapeOf(node.inputs[0]);
  const auto axis = static_cast<size_t>(node.attrs.axis);
  const int64_t inner = graph::NumElements(
      absl::MakeConstSpan(x_shape).subspan(axis, x_shape.size() - axis));
  const int64_t outer =
      graph::NumElements(absl::MakeConstSpan(x_shape).subspan(0, axis));
  const Desc rows = PlainDesc({outer, inner});
  const Value x{AsPlain(node.inputs[0]).buffer, rows};
  const bool shift = node.inputs.size() > 2;
  auto flags = dnnl::normalization_flags::use_scale;
  if (shift) flags = flags | dnnl::normalization_flags::use_shift;
  const dnnl::layer_normalization_forward::primitive_desc pd(
      dnnl::layer_normalization_forward::desc(prop_kind::forward_inference,
                                              rows, node.attrs.epsilon, flags),
      ScratchpadAttr(), engine_);
  const Value dst = NewArena(rows);
  std::vector<std::pair<int, Value>> args = {
      {DNNL_ARG_SRC, x},
      {DNNL_ARG_SCALE,
       Value{AsPlain(node.inputs[1]).buffer, PlainDesc({inner})}},
      {DNNL_ARG_DST, dst}};
  if (shift) {
    args.push_back({DNNL_ARG_SHIFT,
                    Value{AsPlain(node.inputs[2]).buffer, PlainDesc({inner})}});
  }
  AddPrimitive(dnnl::layer_normalization_forward(pd), args);
  Define(node.outputs[0], Value{dst.buffer, PlainDesc(x_shape)});
}

}  // namespace esb::runtime::internal
