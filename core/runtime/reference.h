// Test-only: a slow, obviously written interpreter of the graph IR, the
// oracle the executor is checked against. Straight loops over row-major
// tensors with double accumulation, written from the ONNX definitions
// without sharing code with the executor (shapes come from
// graph::InferShapes, tested on its own).
//
// Conv and pooling support two spatial dims only. AveragePool follows ONNX
// Runtime / PyTorch: a window's divisor is its taps inside the input
// (count_include_pad = 0) or inside [-pad_begin, in + pad_end)
// (count_include_pad = 1).
//
// Thread-safe.
#ifndef ESB_CORE_RUNTIME_REFERENCE_H_
#define ESB_CORE_RUNTIME_REFERENCE_H_

#include <vector>

#include "absl/status/statusor.h"
#include "core/graph/graph.h"

namespace esb::runtime {

absl::StatusOr<std::vector<graph::Tensor>> ReferenceRun(
    const graph::Graph& graph, const std::vector<graph::Tensor>& inputs);

}  // namespace esb::runtime

#endif  // ESB_CORE_RUNTIME_REFERENCE_H_
