// The quantized weights of one layer, as both exporters write them
// (internal to the exporters: core/package and core/onnx).
#ifndef ESB_CORE_PACKAGE_LAYER_WEIGHTS_H_
#define ESB_CORE_PACKAGE_LAYER_WEIGHTS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/esb/layer_quant.h"
#include "core/graph/graph.h"

namespace esb::pipeline::internal {

// "layer 'conv1' (Conv)", the prefix of every exporter error.
std::string LayerContext(const graph::Node& node);

struct LayerWeights {
  const graph::Tensor* weights = nullptr;  // The FP32 constant.
  int axis = 0;                            // Output-channel axis.
  std::vector<int32_t> integers;           // The ESB integer view.
};

// Checks the layer's weight constant and input scale and quantizes the
// weights. INVALID_ARGUMENT naming the layer otherwise.
absl::StatusOr<LayerWeights> QuantizeLayerWeights(const graph::Graph& graph,
                                                  const graph::Node& node,
                                                  const LayerQuant& q);

}  // namespace esb::pipeline::internal

#endif  // ESB_CORE_PACKAGE_LAYER_WEIGHTS_H_
