// PlanBuilder's lowering of ESB layers (esb_layers.h, esb_kernels.h).
//
// Reference path: one loop step, plain float x -> ReferenceLayer -> plain
// float y.
// Fast paths, per layer (T is u8/s8 on the int8 path, f32 on the exact
// f32 one, where xi holds the integers as floats and weights are f32 too;
// acc is then f32):
//   x (float) --QuantizeInput--> xi (T)          skipped when the producer's
//                                                  epilogue wrote xi
//   Conv:          convolution_forward, src xi channels-last, weights s8
//                  (format_tag::any, packed once), dst s32 channels-last
//   Gemm, MatMul:  matmul, src xi [rows, K] plain, weights s8 [K, M]
//                  (format_tag::any, packed once), dst s32 [rows, M]
//   Split into S chunks of K (esb_layers.h), any op:
//                  one grouped convolution_forward with groups * S groups,
//                  weights s8 [groups * S, M / groups, C / (groups * S),
//                  k...] (Gemm/MatMul: [S, M, K / S, 1, 1] over src
//                  [1, K, rows, 1] channels-last, the bytes of A row-major),
//                  dst s32 channels-last [rows, S * M]
//   acc (s32, channel innermost) --EpilogueToFloat--> y (float), or
//                               --EpilogueToInts--> the next layers' xi
//   (both add a split layer's partials first)
// No scales, zero points or post-ops on the primitives: their s32 output
// is exact (esb_layers.h explains the 2^24 bound and the split).
//
// Both paths hand their float output on in the same layout (channels-last
// for Conv, plain for Gemm/MatMul), so the FP32 ops downstream run the same
// primitives on the same bits whichever path a layer took.
#include <algorithm>
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

// The integer view's element type: u8/s8 on the int8 path, else f32.
memory::data_type IntegerType(const Format& format, bool int8) {
  return int8 ? IntegerType(format) : memory::data_type::f32;
}

std::string IntegerKey(const std::string& name, const Format& format,
                       float alpha, bool channels_last, bool int8) {
  uint32_t bits;
  std::memcpy(&bits, &alpha, sizeof(bits));
  return absl::StrCat(name, "|", format.ToString(), "|", bits, "|",
                      channels_last ? "nhwc" : "plain", int8 ? "" : "|f32");
}

// The weights (T: int8_t or float) of a layer split into layer.splits
// chunks of K, in the plain layout of the grouped convolution (file
// comment): row (g, s, j) holds chunk s of output channel g * M / groups +
// j.
template <typename T>
std::vector<T> SplitWeights(const QuantizedLayer& layer,
                            const LayerGeometry& g) {
  const int64_t splits = layer.splits;
  std::vector<T> w8(layer.weights.size());
  if (g.op == graph::Op::kConv) {  // [M, Cg, taps] = [G, Mg, S, Cc, taps].
    const int64_t m_count = layer.weight_shape[0];
    const int64_t mg = m_count / g.group;
    const int64_t chunk =
        static_cast<int64_t>(layer.weights.size()) / (m_count * splits);
    for (int64_t grp = 0; grp < g.group; ++grp) {
      for (int64_t s = 0; s < splits; ++s) {
        for (int64_t j = 0; j < mg; ++j) {
          const int32_t* from =
              layer.weights.data() + ((grp * mg + j) * splits + s) * chunk;
          std::transform(from, from + chunk,
                         w8.data() + ((grp * splits + s) * mg + j) * chunk,
                         [](int32_t v) { return static_cast<T>(v); });
        }
      }
    }
    return w8;
  }
  // B'(k, m) = trans_b ? wi[m, k] : wi[k, m], to [S, M, K / S].
  const int64_t k = g.trans_b ? layer.weight_shape[1] : layer.weight_shape[0];
  const int64_t m_count = static_cast<int64_t>(layer.weights.size()) / k;
  const int64_t kc = k / splits;
  for (int64_t s = 0; s < splits; ++s) {
    for (int64_t m = 0; m < m_count; ++m) {
      T* to = w8.data() + (s * m_count + m) * kc;
      for (int64_t c = 0; c < kc; ++c) {
        const int64_t kk = s * kc + c;
        to[c] = static_cast<T>(
            layer.weights[g.trans_b ? m * k + kk : kk * m_count + m]);
      }
    }
  }
  return w8;
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
  if (layer.fast()) return LowerQuantizedFast(node_index, node, layer, g);

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
    bool channels_last, bool int8) {
  const std::string key = IntegerKey(name, format, alpha, channels_last, int8);
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
  const memory::data_type type = IntegerType(format, int8);
  const Value xi =
      NewArena(channels_last ? ChannelsLast(shape, type) : Plain(shape, type));
  AddLoop(
      [format, alpha, int8,
       n = graph::NumElements(shape)](absl::Span<float* const> p) {
        if (int8) {
          QuantizeInput(format, alpha, p[0], n, p[1]);
        } else {
          QuantizeInputToFloats(format, alpha, p[0], n, p[1]);
        }
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
  const bool int8 = layer.int8();
  auto src =
      IntegerInput(node.inputs[0], q.input_format, q.input_alpha, conv, int8);
  if (!src.ok()) return src.status();
  // Weights and accumulators: s8 and s32, or f32 and f32.
  const auto weight_type =
      int8 ? memory::data_type::s8 : memory::data_type::f32;
  const auto acc_type = int8 ? memory::data_type::s32 : memory::data_type::f32;
  // Strict f32 whatever ONEDNN_DEFAULT_FPMATH_MODE says: bf16 or tf32
  // arithmetic would round the integers.
  dnnl::primitive_attr attr = ScratchpadAttr();
  attr.set_fpmath_mode(dnnl::fpmath_mode::strict);

  dnnl::primitive primitive;
  Desc weights_desc, plain_weights, dst_desc;
  AccLayout layout;
  layout.splits = layer.splits;
  if (conv) {
    layout.channels = g.y_shape[1];
    layout.rows = graph::NumElements(g.y_shape) / layout.channels;
  } else {
    layout.channels = g.y_shape.back();
    layout.rows = graph::NumElements(g.x_shape) / g.x_shape.back();
  }
  // The conv's window, cropped to the taps that reach the input.
  graph::WindowGeometry window = g.window;
  if (layer.splits > 1) {
    Dims w_dims, dilations;
    Dims strides{1, 1}, pads_begin{0, 0}, pads_end{0, 0};
    Desc part;
    if (conv) {
      layout.groups = g.group;
      w_dims = {g.group * layer.splits, layout.channels / g.group,
                layer.weight_shape[1] / layer.splits};
      w_dims.insert(w_dims.end(), layer.weight_shape.begin() + 2,
                    layer.weight_shape.end());
      std::vector<int64_t> part_shape = g.y_shape;
      part_shape[1] *= layer.splits;
      part = ChannelsLast(part_shape, acc_type);
      plain_weights =
          CropDeadTaps(g.x_shape, g.y_shape, weight_type, window, w_dims);
      for (int64_t d : window.dilations) dilations.push_back(d - 1);
      strides = window.strides;
      pads_begin = window.pads_begin;
      pads_end = window.pads_end;
    } else {
      const int64_t k = g.x_shape.back();
      w_dims = {layer.splits, layout.channels, k / layer.splits, 1, 1};
      src->desc = ChannelsLast({1, k, layout.rows, 1},
                               IntegerType(q.input_format, int8));
      part = ChannelsLast({1, layer.splits * layout.channels, layout.rows, 1},
                          acc_type);
      dilations = {0, 0};
      plain_weights = Desc(w_dims, weight_type, PlainStrides(w_dims));
    }
    const dnnl::convolution_forward::primitive_desc pd(
        dnnl::convolution_forward::desc(
            dnnl::prop_kind::forward_inference,
            dnnl::algorithm::convolution_direct, src->desc,
            Desc(w_dims, weight_type, memory::format_tag::any), part, strides,
            dilations, pads_begin, pads_end),
        attr, engine_);
    primitive = dnnl::convolution_forward(pd);
    weights_desc = pd.weights_desc();
    dst_desc = pd.dst_desc();
  } else if (conv) {
    // Grouped weights are [G, M/G, C/G, k...]: the same row-major data.
    Dims w_dims = layer.weight_shape;
    if (g.group > 1) {
      w_dims = {g.group, layer.weight_shape[0] / g.group};
      w_dims.insert(w_dims.end(), layer.weight_shape.begin() + 1,
                    layer.weight_shape.end());
    }
    plain_weights =
        CropDeadTaps(g.x_shape, g.y_shape, weight_type, window, w_dims);
    Dims dilations;
    for (int64_t d : window.dilations) dilations.push_back(d - 1);
    const dnnl::convolution_forward::primitive_desc pd(
        dnnl::convolution_forward::desc(
            dnnl::prop_kind::forward_inference,
            dnnl::algorithm::convolution_direct, src->desc,
            Desc(w_dims, weight_type, memory::format_tag::any),
            ChannelsLast(g.y_shape, acc_type), window.strides, dilations,
            window.pads_begin, window.pads_end),
        attr, engine_);
    primitive = dnnl::convolution_forward(pd);
    weights_desc = pd.weights_desc();
    dst_desc = pd.dst_desc();
  } else {
    // A with leading batch dims is viewed as [rows, K] (trans_a is never
    // fast).
    const int64_t k = g.x_shape.back();
    const int64_t rows = layout.rows, channels = layout.channels;
    plain_weights = Desc({k, channels}, weight_type,
                         g.trans_b ? Dims{1, k} : Dims{channels, 1});
    src->desc = Plain({rows, k}, IntegerType(q.input_format, int8));
    const dnnl::matmul::primitive_desc pd(
        dnnl::matmul::desc(
            src->desc,
            Desc({k, channels}, weight_type, memory::format_tag::any),
            Plain({rows, channels}, acc_type)),
        attr, engine_);
    primitive = dnnl::matmul(pd);
    weights_desc = pd.weights_desc();
    dst_desc = pd.dst_desc();
  }
  std::vector<int8_t> w8;  // Int8 path; the weights fit s8.
  std::vector<float> w32;  // Exact f32 path.
  auto packed = weights_.Get(
      node_index, weights_desc,
      [&] {
        if (!int8) {
          w32 = layer.splits > 1 ? SplitWeights<float>(layer, g)
                                 : std::vector<float>(layer.weights.begin(),
                                                      layer.weights.end());
          return memory(plain_weights, engine_, w32.data());
        }
        w8 = layer.splits > 1 ? SplitWeights<int8_t>(layer, g)
                              : std::vector<int8_t>(layer.weights.begin(),
                                                    layer.weights.end());
        return memory(plain_weights, engine_, w8.data());
      },
      engine_, stream_);
  if (!packed.ok()) return packed.status();
  plan_.packed_.push_back(*packed);
  // Every dst layout is [rows, splits * channels] row-major in memory.
  const Value acc = NewArena(dst_desc);
  AddPrimitive(primitive,
               {{DNNL_ARG_SRC, *src},
                {DNNL_ARG_WEIGHTS,
                 AddConstant((*packed)->storage->data(), (*packed)->desc)},
                {DNNL_ARG_DST, acc}});

  const std::string& out = node.outputs[0];
  if (layer.next_format.has_value()) {
    const Format& next = *layer.next_format;
    const memory::data_type type = IntegerType(next, layer.next_int8);
    const Value xi =
        NewArena(conv ? ChannelsLast(g.y_shape, type) : Plain(g.y_shape, type));
    AddLoop(
        [&layer, layout, int8](absl::Span<float* const> p) {
          if (int8) {
            EpilogueToInts(layer, reinterpret_cast<const int32_t*>(p[0]),
                           layout, p[1]);
          } else {
            EpilogueToInts(layer, p[0], layout, p[1]);
          }
        },
        {acc, xi});
    integer_values_.emplace(
        IntegerKey(out, next, layer.next_alpha, conv, layer.next_int8), xi);
    return absl::OkStatus();
  }
  const Value y =
      NewArena(conv ? ChannelsLast(g.y_shape, memory::data_type::f32)
                    : PlainDesc(g.y_shape));
  AddLoop(
      [&layer, layout, int8](absl::Span<float* const> p) {
        if (int8) {
          EpilogueToFloat(layer, reinterpret_cast<const int32_t*>(p[0]), layout,
                          p[1]);
        } else {
          EpilogueToFloat(layer, p[0], layout, p[1]);
        }
      },
      {acc, y});
  Define(out, y);
  return absl::OkStatus();
}

}  // namespace esb::runtime::internal
