// QDQ ONNX export of an ESB-quantized graph: the job's model.esb.onnx
// (DESIGN.md section 5), loadable by ONNX Runtime.
//
// The model is opset 13, IR version 7. Every node of the graph is written
// back as the ONNX node of the same op with its attributes (Clip bounds, Pad
// pads and value, and Reshape's shape become initializers, as opset 13
// wants); a fused activation becomes a separate Relu ("<layer>/relu") or
// Clip ("<layer>/clip") node after its layer. Graph inputs and outputs keep
// their shapes, the free batch (kBatch) as dim_param "N". Float constants
// are float initializers.
//
// For a layer L (Conv, Gemm or MatMul) with a LayerQuant q: weights W of
// shape S with M output channels along axis a (Conv 0; Gemm 0 when trans_b,
// else 1; MatMul 1), Lw = q.weight_format.mantissa_bits(), and input x with
// Lx = q.input_format.mantissa_bits():
//
//   Weights, when the weight format fits 8 bits (Format::fits_int8()):
//     "L/w_int8"        int8 S (uint8 for an unsigned weight format), the
//                       integer view wi = QuantizeWeights(Fw, aw, W)
//     "L/w_scale"       float [M] ldexp(aw[m], -Lw) (a scalar for one alpha)
//     "L/w_zero_point"  int8 [M] zeros (uint8 for unsigned)
//     DequantizeLinear "L/w_dq" (axis a) -> wi * ldexp(aw[m], -Lw). That is
//     exactly the float aw[m] * level: scaling by a power of two is exact,
//     so both round the same real product once.
//   Weights otherwise: "L/w_esb", float S holding aw[m] * level.
//   Input: QuantizeLinear "L/x_q" then DequantizeLinear "L/x_dq" (the
//   layer reads "L/x_dq"), zero point 0 in uint8 for an unsigned input
//   format, int8 for a signed one, scale
//     sx = ldexp(ax, -Lx)      when Fx.max_integer() <= 255 (127 signed):
//                              ONNX Runtime then rounds x / sx half to even
//                              onto the uniform integer grid that holds
//                              every ESB level, a close and never coarser
//                              approximation of the ESB rounding;
//     sx = c * ax / 255 (127)  otherwise: the smallest uniform scale whose
//                              range reaches the largest level c * ax. This
//                              is coarser than ESB near zero, so each such
//                              layer gets a metadata_props entry
//                              "esb_qdq_input_scale/L" saying so.
//   Bias (Conv B, Gemm C) stays a float initializer under its own name.
//
// metadata_props: graph.metadata, then options.metadata (which wins on a
// shared key), then the entries above. The result is checked with
// onnx::checker and strict ONNX shape inference before it is returned.
//
// Functions are thread-safe.
#ifndef ESB_CORE_ONNX_EXPORT_QDQ_H_
#define ESB_CORE_ONNX_EXPORT_QDQ_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "core/esb/layer_quant.h"
#include "core/graph/graph.h"

namespace esb::pipeline {

struct QdqOptions {
  // Extra metadata_props entries, e.g. "esb_formats" describing the formats.
  // They override graph.metadata entries of the same key.
  std::map<std::string, std::string> metadata;
  // GraphProto.name.
  std::string graph_name = "esb";
  // ModelProto.producer_name and producer_version.
  std::string producer_name = "esb";
  std::string producer_version;
};

// The metadata_props key prefix of layers whose input QDQ scale is not the
// ESB scale (see the file comment); the layer name follows it.
inline constexpr char kQdqInputScaleKeyPrefix[] = "esb_qdq_input_scale/";

// A serialized ONNX ModelProto in QDQ form (file comment). `layers` holds
// the quantized layers by node name; other nodes stay FP32.
//
// INVALID_ARGUMENT naming the layer when an entry of `layers` names no node,
// or a node that is not a Conv, Gemm or MatMul, when a layer's weights are
// not a constant, when its scales are not finite and positive, or when the
// weight scales do not match its output channels; INTERNAL with the
// checker's message when the written model fails onnx::checker or ONNX shape
// inference (a bug here, or a graph that was malformed to begin with).
absl::StatusOr<std::string> ExportQdqOnnx(
    const graph::Graph& graph, const std::map<std::string, LayerQuant>& layers,
    const QdqOptions& options);

}  // namespace esb::pipeline

#endif  // ESB_CORE_ONNX_EXPORT_QDQ_H_
