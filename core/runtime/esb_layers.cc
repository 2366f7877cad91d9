#include "core/runtime/esb_layers.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/esb/quantize.h"
#include "core/graph/shapes.h"

namespace esb::runtime::internal {
namespace {

using graph::Node;
using graph::Op;

std::string Context(const Node& node) {
  return absl::StrCat("layer '", node.name, "' (", graph::OpName(node.op), ")");
}

// beta * C per output channel, or an error for C shapes that are not a
// scalar or per-column.
absl::StatusOr<std::vector<float>> GemmBias(const graph::Graph& graph,
                                            const Node& node, int64_t m) {
  std::vector<float> bias(m, 0.0f);
  if (node.inputs.size() < 3 || node.attrs.beta == 0.0f) return bias;
  const graph::Tensor* c = graph.FindConstant(node.inputs[2]);
  if (c == nullptr) {
    return absl::UnimplementedError(
        absl::StrCat(Context(node), ": C '", node.inputs[2],
                     "' must be a constant initializer"));
  }
  bool per_column = !c->shape.empty() && c->shape.back() == m;
  for (size_t d = 0; d + 1 < c->shape.size(); ++d) {
    per_column = per_column && c->shape[d] == 1;
  }
  if (c->size() != 1 && !per_column) {
    return absl::InvalidArgumentError(absl::StrCat(
        Context(node), ": C of shape ", graph::ShapeToString(c->shape),
        " is neither a scalar nor one value per output column [", m,
        "]; ESB layers need one bias per output channel"));
  }
  for (int64_t j = 0; j < m; ++j) {
    bias[j] = node.attrs.beta * c->data[c->size() == 1 ? 0 : j];
  }
  return bias;
}

// A layer's weights as the fast path reduces them: per output channel,
// `units` units of `taps` weights each (Conv: an input channel of the
// group and its kernel taps; Gemm/MatMul: one k).
struct Reduction {
  int64_t channels = 0;
  int64_t units = 0;
  int64_t taps = 1;
  bool channel_major =
      true;  // [channels, units, taps], else [units, channels].
};

// max over channels m and chunks of sum |wi| over that chunk of m's
// weights, for `splits` equal chunks of units.
int64_t MaxChunkL1(const std::vector<int32_t>& w, const Reduction& r,
                   int64_t splits) {
  const int64_t per = r.units / splits;
  int64_t best = 0;
  if (r.channel_major) {
    const int64_t chunk = per * r.taps;
    for (int64_t m = 0; m < r.channels; ++m) {
      const int32_t* row = w.data() + m * r.units * r.taps;
      for (int64_t s = 0; s < splits; ++s) {
        int64_t l1 = 0;
        for (int64_t i = s * chunk; i < (s + 1) * chunk; ++i) {
          l1 += std::abs(row[i]);
        }
        best = std::max(best, l1);
      }
    }
    return best;
  }
  std::vector<int64_t> l1(r.channels);
  for (int64_t s = 0; s < splits; ++s) {
    std::fill(l1.begin(), l1.end(), int64_t{0});
    for (int64_t u = s * per; u < (s + 1) * per; ++u) {
      const int32_t* row = w.data() + u * r.channels;
      for (int64_t m = 0; m < r.channels; ++m) l1[m] += std::abs(row[m]);
    }
    best = std::max(best, *std::max_element(l1.begin(), l1.end()));
  }
  return best;
}

// Sets layer.splits and layer.chunk_bound to the fewest equal chunks of
// units whose bound is within kExactAccumulatorLimit (file comment of
// esb_layers.h), or returns false when none is.
bool ChooseSplit(const Reduction& r, int64_t multiplier, int64_t max_l1,
                 QuantizedLayer& layer) {
  const int64_t max_chunk_l1 = kExactAccumulatorLimit / multiplier;
  if (max_chunk_l1 == 0) return false;
  for (int64_t splits =
           std::max<int64_t>(1, (max_l1 + max_chunk_l1 - 1) / max_chunk_l1);
       splits <= std::min(r.units, kMaxSplits); ++splits) {
    if (r.units % splits != 0) continue;
    const int64_t l1 =
        splits == 1 ? max_l1 : MaxChunkL1(layer.weights, r, splits);
    if (l1 <= max_chunk_l1) {
      layer.splits = splits;
      layer.chunk_bound = l1 * multiplier;
      return true;
    }
  }
  return false;
}

absl::StatusOr<QuantizedLayer> Prepare(const graph::Graph& graph,
                                       const Node& node, const LayerQuant& q,
                                       const PathRules& rules,
                                       const std::vector<int32_t>* integers) {
  QuantizedLayer layer(q);
  layer.name = node.name;
  const graph::Tensor* w = graph.FindConstant(node.inputs[1]);
  if (w == nullptr) {
    return absl::UnimplementedError(
        absl::StrCat(Context(node), ": weight '", node.inputs[1],
                     "' must be a constant initializer"));
  }
  if (w->shape.size() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(Context(node), ": weight '", node.inputs[1],
                     "' has shape ", graph::ShapeToString(w->shape)));
  }
  if (absl::Status s = ValidateScale(q.input_alpha); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Context(node), ": input scale: ", s.message()));
  }
  const int axis = graph::WeightChannelAxis(node);
  if (integers != nullptr) {  // Exact, from a package's codes.
    if (absl::Status s = CheckWeightIntegers(q.weight_format, q.weight_alpha,
                                             *integers, w->shape, axis);
        !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(Context(node), ": weights: ", s.message()));
    }
    layer.weights = *integers;
  } else {
    auto weights = QuantizeWeights(q.weight_format, q.weight_alpha, w->data,
                                   w->shape, axis);
    if (!weights.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          Context(node), ": weights: ", weights.status().message()));
    }
    layer.weights = *std::move(weights);
  }
  layer.weight_shape = w->shape;
  const int64_t m = w->shape[axis];

  const float gemm_alpha = node.op == Op::kGemm ? node.attrs.alpha : 1.0f;
  layer.scales = OutputScales(q, gemm_alpha);
  if (layer.scales.size() == 1 && m > 1) {
    layer.scales.assign(m, layer.scales[0]);
  }
  layer.bias.assign(m, 0.0f);
  if (node.op == Op::kConv && node.inputs.size() > 2) {
    const graph::Tensor* b = graph.FindConstant(node.inputs[2]);
    if (b == nullptr) {
      return absl::UnimplementedError(
          absl::StrCat(Context(node), ": bias '", node.inputs[2],
                       "' must be a constant initializer"));
    }
    if (b->size() != m) {
      return absl::InvalidArgumentError(
          absl::StrCat(Context(node), ": bias has ", b->size(), " values for ",
                       m, " output channels"));
    }
    layer.bias = b->data;
  } else if (node.op == Op::kGemm) {
    auto bias = GemmBias(graph, node, m);
    if (!bias.ok()) return bias.status();
    layer.bias = *std::move(bias);
  }
  switch (node.attrs.activation.kind) {
    case graph::Activation::Kind::kNone:
      break;
    case graph::Activation::Kind::kRelu:
      layer.activation = 1;
      break;
    case graph::Activation::Kind::kClip:
      layer.activation = 2;
      layer.lo = node.attrs.activation.min;
      layer.hi = node.attrs.activation.max;
      break;
  }

  // acc_bound: max|xi| times the largest per-channel L1 norm of wi.
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= w->shape[d];
  for (size_t d = axis + 1; d < w->shape.size(); ++d) inner *= w->shape[d];
  int64_t max_l1 = 0;
  for (int64_t c = 0; c < m; ++c) {
    int64_t l1 = 0;
    for (int64_t o = 0; o < outer; ++o) {
      const int32_t* row = layer.weights.data() + (o * m + c) * inner;
      for (int64_t i = 0; i < inner; ++i) l1 += std::abs(row[i]);
    }
    max_l1 = std::max(max_l1, l1);
  }
  layer.acc_bound = max_l1 * q.input_format.max_integer();

  const Format& in = q.input_format;
  const Format& wf = q.weight_format;
  const bool conv = node.op == Op::kConv;
  Reduction reduction;
  reduction.channels = m;
  if (conv || axis == 0) {  // [M, units, taps...].
    reduction.units = w->shape[1];
    reduction.taps = inner / reduction.units;
  } else {  // [K, M].
    reduction.units = w->shape[0];
    reduction.channel_major = false;
  }
  // Conditions both fast paths share; "" when they hold for `multiplier`.
  auto common = [&](int64_t multiplier) -> std::string {
    if (node.op == Op::kGemm && node.attrs.trans_a) {
      return "Gemm with trans_a (the fast paths read A row-major)";
    }
    if (conv && (w->shape.size() < 3 || w->shape.size() > 5)) {
      return "Conv with other than 1 to 3 spatial dims";
    }
    if (!conv && w->shape.size() != 2) {
      return absl::StrCat("weights of shape ", graph::ShapeToString(w->shape),
                          " are not 2-D");
    }
    if (layer.acc_bound > kInt32AccumulatorLimit) {
      return absl::StrCat("worst-case |accumulator| ", layer.acc_bound,
                          " exceeds int32");
    }
    if (!ChooseSplit(reduction, multiplier, max_l1, layer)) {
      return absl::StrCat(
          "no equal split of its ", reduction.units,
          conv ? " input channels per group" : " K", " into at most ",
          kMaxSplits,
          " chunks keeps the worst-case |accumulator| of every chunk within "
          "2^24, the exact range of oneDNN's output");
    }
    return "";
  };
  if (!rules.no_fast.empty()) {
    layer.reason = rules.no_fast;
    return layer;
  }
  std::string not_int8 = rules.no_int8;
  if (not_int8.empty() && !in.fits_int8()) {
    not_int8 = absl::StrCat("input ", in.ToString(), " does not fit ",
                            in.is_signed() ? "int8" : "uint8");
  } else if (not_int8.empty() && (!wf.is_signed() || !wf.fits_int8())) {
    not_int8 = absl::StrCat(wf.ToString(), " weights do not fit int8");
  }
  if (not_int8.empty()) {
    // VNNI multiplies u8 by s8: oneDNN shifts an s8 source by +128.
    not_int8 = common(in.max_integer() + (in.is_signed() ? 128 : 0));
    if (not_int8.empty() && rules.int16_pairs) {
      // A split runs as a grouped convolution, not a matmul.
      not_int8 = Int16PairReason(in, wf, !conv && layer.splits == 1);
    }
    if (not_int8.empty()) {
      layer.path = LayerPath::kInt8;
      return layer;
    }
  }
  const std::string not_float = common(in.max_integer());
  if (not_float.empty()) {
    layer.path = LayerPath::kFloat;
    layer.reason = std::move(not_int8);
  } else {
    layer.reason = not_float;
  }
  return layer;
}

bool ConvFamily(Op op) { return op == Op::kConv; }

// Sets next_format on fast layers whose output only feeds fast layers of
// the same family, all on one path, with one input format and scale.
void LinkRequantization(const graph::Graph& graph, QuantizedLayers& layers) {
  for (auto& [index, layer] : layers.by_node) {
    if (!layer.fast()) continue;
    const Node& node = graph.nodes[index];
    const std::string& out = node.outputs[0];
    bool ok = true;
    for (const graph::ValueInfo& o : graph.outputs) ok = ok && o.name != out;
    const QuantizedLayer* first = nullptr;
    for (size_t j = 0; ok && j < graph.nodes.size(); ++j) {
      const Node& consumer = graph.nodes[j];
      bool reads = false;
      for (const std::string& name : consumer.inputs) reads |= name == out;
      if (!reads) continue;
      const QuantizedLayer* c = layers.Find(static_cast<int>(j));
      ok = c != nullptr && c->fast() && consumer.inputs[0] == out &&
           ConvFamily(consumer.op) == ConvFamily(node.op);
      for (size_t i = 1; ok && i < consumer.inputs.size(); ++i) {
        ok = consumer.inputs[i] != out;
      }
      if (ok && first != nullptr) {
        ok = c->path == first->path &&
             c->quant.input_format == first->quant.input_format &&
             std::bit_cast<uint32_t>(c->quant.input_alpha) ==
                 std::bit_cast<uint32_t>(first->quant.input_alpha);
      }
      if (ok && first == nullptr) first = c;
    }
    if (ok && first != nullptr) {
      layer.next_format = first->quant.input_format;
      layer.next_alpha = first->quant.input_alpha;
      layer.next_int8 = first->int8();
    }
  }
}

}  // namespace

std::string Int16PairReason(const Format& in, const Format& weights,
                            bool matmul) {
  if (in.is_signed() && !matmul) {
    return "the CPU has no VNNI, where oneDNN's int8 convolutions are not "
           "exact for a signed input";
  }
  // oneDNN's matmul adds 128 to an s8 source.
  const int64_t source = in.max_integer() + (in.is_signed() ? 128 : 0);
  constexpr int64_t kInt16Max = 32767;
  if (int64_t{2} * source * weights.max_integer() <= kInt16Max) return "";
  return absl::StrCat(
      "the CPU has no VNNI, so oneDNN sums pairs of u8 x s8 products in "
      "int16, which ",
      in.is_signed() ? "signed inputs shifted to " : "inputs ", "up to ",
      source, " times ", weights.ToString(), " weights up to ",
      weights.max_integer(), " may overflow");
}

absl::StatusOr<QuantizedLayers> PrepareLayers(
    const graph::Graph& graph, const std::map<std::string, LayerQuant>& layers,
    const PathRules& rules, const WeightIntegers* integers) {
  std::map<std::string, int> index_of;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    index_of[graph.nodes[i].name] = static_cast<int>(i);
  }
  QuantizedLayers out;
  for (const auto& [name, quant] : layers) {
    auto it = index_of.find(name);
    if (it == index_of.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer '", name, "' names no node of the graph"));
    }
    const Node& node = graph.nodes[it->second];
    if (!graph::IsQuantizedOp(node.op)) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer '", name, "' is a ", graph::OpName(node.op),
                       " node; only Conv, Gemm and MatMul are quantized"));
    }
    const std::vector<int32_t>* exact = nullptr;
    if (integers != nullptr) {
      auto found = integers->find(name);
      if (found != integers->end()) exact = &found->second;
    }
    auto layer = Prepare(graph, node, quant, rules, exact);
    if (!layer.ok()) return layer.status();
    out.by_node.emplace(it->second, *std::move(layer));
  }
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (graph::IsQuantizedOp(graph.nodes[i].op) &&
        !out.Find(static_cast<int>(i))) {
      ++out.unquantized;
    }
  }
  LinkRequantization(graph, out);
  return out;
}

}  // namespace esb::runtime::internal
