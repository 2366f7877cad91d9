#include "core/package/layer_weights.h"

#include "absl/strings/str_cat.h"
#include "core/esb/quantize.h"

namespace esb::pipeline::internal {

std::string LayerContext(const graph::Node& node) {
  return absl::StrCat("layer '", node.name, "' (", graph::OpName(node.op), ")");
}

absl::StatusOr<LayerWeights> QuantizeLayerWeights(const graph::Graph& graph,
                                                  const graph::Node& node,
                                                  const LayerQuant& q) {
  LayerWeights out;
  out.weights =
      node.inputs.size() > 1 ? graph.FindConstant(node.inputs[1]) : nullptr;
  if (out.weights == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(LayerContext(node), ": weight '",
                     node.inputs.size() > 1 ? node.inputs[1] : "",
                     "' is not a constant; only constant weights quantize"));
  }
  if (absl::Status s = ValidateScale(q.input_alpha); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(LayerContext(node), ": input scale: ", s.message()));
  }
  out.axis = graph::WeightChannelAxis(node);
  absl::StatusOr<std::vector<int32_t>> ints =
      QuantizeWeights(q.weight_format, q.weight_alpha, out.weights->data,
                      out.weights->shape, out.axis);
  if (!ints.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        LayerContext(node), ": weights: ", ints.status().message()));
  }
  out.integers = *std::move(ints);
  return out;
}

}  // namespace esb::pipeline::internal
