// PlanBuilder's lowering of ESB layers (esb_layers.h, esb_kernels.h).
//
// Reference path: one loop step, plain float x -> ReferenceLayer -> plain
// float y.
// Fast path, per layer:
//   x (float) --QuantizeInput--> xi (u8/s8)      skipped when the producer's
//                                                  epilogue wrote xi
//   Conv:          convolution_forward, src xi channels-last, weights s8
//                  (format_tag::any, packed once), dst s32 channels-last
//   Gemm, MatMul:  matmul, src xi [rows, K] plain, weights s8 [K, M]
//                  (format_tag::any, packed once), dst s32 [rows, M]
//   acc (s32, channel innermost) --EpilogueToFloat--> y (float), or
//                               --EpilogueToInts--> the next layers' xi
// No scales, zero points or post-ops on the primitives: their s32 output
// is the exact accumulator (esb_layers.h explains the 2^24 bound).
//
// Both paths hand their float output on in the same layout (channels-last
// for Conv, plain for Gemm/MatMul), so the FP32 ops downstream run the same
// primitives on the same bits whichever path a layer took.
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/graph/shapes.h"
#include "core/runtime/esb_kernels.h"
#include "core/runtime/lower.h"

namespace esb::runtime::internal {
namespace {

using dnnl::memory;
using Desc = dnnl::memory::desc;
using Dims = dnnl::memory::dims;

// [N, C, spatial...] with C innermost (nwc, nhwc, ndhwc).
Desc ChannelsLast(const std::vector<int64_t>& shape, memory::data_type type) {
  Dims strides(shape.size());
  int64_t stride = shape[1];
  strides[1] = 1;
  for (size_t d = shape.size(); d-- > 2;) {
    strides[d] = stride;
    stride *= shape[d];
  }
  strides[0] = stride;
  return Desc(Dims(shape.begin(), shape.end()), type, strides);
}

Desc Plain(const std::vector<int64_t>& shape, memory::data_type type) {
  if (shape.empty()) return Desc({1}, type, Dims{1});
  return Desc(Dims(shape.begin(), shape.end()), type, PlainStrides(shape));
}

memory::data_type IntegerType(const Format& format) {
  return format.is_signed() ? memory::data_type::s8 : memory::data_type::u8;
}

std::string IntegerKey(const std::string& name, const Format& format,
                       float alpha, bool channels_last) {
  uint32_t bits;
  std::memcpy(&bits, &alpha, sizeof(bits));
  return absl::StrCat(name, "|", format.ToString(), "|", bits, "|",
                      channels_last ? "nhwc" : "plain");
}

}  // namespace

absl::Status PlanBuilder::LowerQuantized(int node_index,
                                         const graph::Node& node,
                                         const QuantizedLayer& layer) {
  LayerGeometry g;
  g.op = node.op;
  g.x_shape = ShapeOf(node.inputs[0]);
  g.y_shape = ShapeOf(node.outputs[0]);
  if (node.op == graph::Op::kConv) {
    auto window = graph::ResolveWindow(node, g.x_shape, layer.weight_shape);
    if (!window.ok()) return window.status();
    g.window = *std::move(window);
    g.group = node.attrs.group;
  } else if (node.op == graph::Op::kGemm) {
    g.trans_a = node.attrs.trans_a;
    g.trans_b = node.attrs.trans_b;
  }
  if (layer.fast) return LowerQuantizedFast(node_index, node, layer, g);

  const Value x = AsPlain(node.inputs[0]);
  const Value y = NewArena(PlainDesc(g.y_shape));
  AddLoop(
      [&layer, g](absl::Span<float* const> p) {
        ReferenceLayer(layer, g, p[0], p[1]);
      },
      {x, y});
  Define(node.outputs[0], y);
  if (node.op == graph::Op::kConv) {
    Define(
        node.outputs[0],
        As(node.outputs[0], ChannelsLast(g.y_shape, memory::data_type::f32)));
  }
  return absl::OkStatus();
}

absl::StatusOr<PlanBuilder::Value> PlanBuilder::IntegerInput(
    const std::string& name, const Format& format, float alpha,
    bool channels_last) {
  const std::string key = IntegerKey(name, format, alpha, channels_last);
  auto it = integer_values_.find(key);
  if (it != integer_values_.end()) return it->second;
  if (values_.count(name) == 0 && graph_.FindConstant(name) == nullptr) {
    return absl::InternalError(absl::StrCat(
        context_, ": value '", name, "' has neither a float value nor an ",
        format.ToString(), " integer view"));
  }
  const std::vector<int64_t>& shape = ShapeOf(name);
  const Value x = channels_last
                      ? As(name, ChannelsLast(shape, memory::data_type::f32))
                      : AsPlain(name);
  const Value xi =
      NewArena(channels_last ? ChannelsLast(shape, IntegerType(format))
                             : Plain(shape, IntegerType(format)));
  AddLoop(
      [format, alpha,
       n = graph::NumElements(shape)](absl::Span<float* const> p) {
        QuantizeInput(format, alpha, p[0], n, p[1]);
      },
      {x, xi});
  integer_values_.emplace(key, xi);
  return xi;
}

absl::Status PlanBuilder::LowerQuantizedFast(int node_index,
                                             const graph::Node& node,
                                             const QuantizedLayer& layer,
                                             const LayerGeometry& g) {
  const LayerQuant& q = layer.quant;
  const bool conv = node.op == graph::Op::kConv;
  auto src = IntegerInput(node.inputs[0], q.input_format, q.input_alpha, conv);
  if (!src.ok()) return src.status();
  const auto s8 = memory::data_type::s8;
  const auto s32 = memory::data_type::s32;

  dnnl::primitive primitive;
  Desc weights_desc, plain_weights, dst_desc;
  int64_t rows, channels;
  if (conv) {
    // Grouped weights are [G, M/G, C/G, k...]: the same row-major data.
    Dims w_dims = layer.weight_shape;
    if (g.group > 1) {
      w_dims = {g.group, layer.weight_shape[0] / g.group};
      w_dims.insert(w_dims.end(), layer.weight_shape.begin() + 1,
                    layer.weight_shape.end());
    }
    plain_weights = Desc(w_dims, s8, PlainStrides(w_dims));
    Dims dilations;
    for (int64_t d : g.window.dilations) dilations.push_back(d - 1);
    const dnnl::convolution_forward::primitive_desc pd(
        dnnl::convolution_forward::desc(
            dnnl::prop_kind::forward_inference,
            dnnl::algorithm::convolution_direct, src->desc,
            Desc(w_dims, s8, memory::format_tag::any),
            ChannelsLast(g.y_shape, s32), g.window.strides, dilations,
            g.window.pads_begin, g.window.pads_end),
        engine_);
    primitive = dnnl::convolution_forward(pd);
    weights_desc = pd.weights_desc();
    dst_desc = pd.dst_desc();
    channels = g.y_shape[1];
    rows = graph::NumElements(g.y_shape) / channels;
  } else {
    // A with leading batch dims is viewed as [rows, K] (trans_a is never
    // fast).
    const int64_t k = g.x_shape.back();
    rows = graph::NumElements(g.x_shape) / k;
    channels = g.y_shape.back();
    plain_weights =
        Desc({k, channels}, s8, g.trans_b ? Dims{1, k} : Dims{channels, 1});
    src->desc = Plain({rows, k}, IntegerType(q.input_format));
    const dnnl::matmul::primitive_desc pd(
        dnnl::matmul::desc(src->desc,
                           Desc({k, channels}, s8, memory::format_tag::any),
                           Plain({rows, channels}, s32)),
        engine_);
    primitive = dnnl::matmul(pd);
    weights_desc = pd.weights_desc();
    dst_desc = pd.dst_desc();
  }
  std::vector<int8_t> w8;
  auto got = weights_.Get(
      node_index, weights_desc,
      [&] {
        w8.assign(layer.weights.begin(), layer.weights.end());  // Fit s8.
        return memory(plain_weights, engine_, w8.data());
      },
      engine_, stream_);
  if (!got.ok()) return got.status();
  const auto packed = *std::move(got);
  plan_.packed_.push_back(packed);
  // Either dst layout is [rows, channels] row-major in memory.
  const Value acc = NewArena(dst_desc);
  AddPrimitive(primitive, {{DNNL_ARG_SRC, *src},
                           {DNNL_ARG_WEIGHTS,
                            AddConstant(packed->storage.data(), packed->desc)},
                           {DNNL_ARG_DST, acc}});

  const std::string& out = node.outputs[0];
  if (layer.next_format.has_value()) {
    const Format& next = *layer.next_format;
    const Value xi = NewArena(conv ? ChannelsLast(g.y_shape, IntegerType(next))
                                   : Plain(g.y_shape, IntegerType(next)));
    AddLoop(
        [&layer, rows, channels](absl::Span<float* const> p) {
          EpilogueToInts(layer, reinterpret_cast<const int32_t*>(p[0]), rows,
                         channels, p[1]);
        },
        {acc, xi});
    integer_values_.emplace(IntegerKey(out, next, layer.next_alpha, conv), xi);
    return absl::OkStatus();
  }
  const Value y =
      NewArena(conv ? ChannelsLast(g.y_shape, memory::data_type::f32)
                    : PlainDesc(g.y_shape));
  AddLoop(
      [&layer, rows, channels](absl::Span<float* const> p) {
        EpilogueToFloat(layer, reinterpret_cast<const int32_t*>(p[0]), rows,
                        channels, p[1]);
      },
      {acc, y});
  Define(out, y);
  return absl::OkStatus();
}

}  // namespace esb::runtime::internal
