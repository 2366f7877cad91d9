// ONNX import: an ONNX model file to the graph IR (graph.h).
//
// The model is first loaded (initializers stored as external data are read
// from files beside it), then checked by onnx::checker and run through
// ONNX shape inference; only then converted. Default-domain opsets 11 to 17
// are accepted. Shape arithmetic that exporters emit around Reshape and Clip
// (Shape, Gather, Unsqueeze, Squeeze, Cast, ConstantOfShape, Concat of
// constants) is evaluated here and disappears; Constant, Identity and
// Dropout disappear too.
//
// A model that uses anything else fails with INVALID_ARGUMENT naming every
// unsupported node and its op type, not only the first.
//
// Functions are thread-safe.
#ifndef ESB_CORE_ONNX_ONNX_IMPORT_H_
#define ESB_CORE_ONNX_ONNX_IMPORT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "core/graph/graph.h"

namespace esb::graph {

// Budgets that keep a hostile model from exhausting memory. A model over any
// of them is refused with RESOURCE_EXHAUSTED naming the node or tensor, the
// size asked and the field. The defaults admit every real CNN (VGG-19's
// largest weight has 103M elements, its largest activation 3.2M at batch 1,
// its weights 575 MB in all).
struct ImportOptions {
  // Largest model file accepted. Protobuf cannot parse messages of 2 GiB or
  // more; larger models must keep their weights as external data.
  int64_t max_model_bytes = (int64_t{1} << 31) - 1;
  // Largest total size of external data files read for one model.
  int64_t max_external_bytes = int64_t{8} << 30;
  // Most elements of any one tensor: initializers, Constant values, values
  // folded at import (ConstantOfShape, Gather, Concat...), declared input
  // shapes and every intermediate shape inferred at batch 1. 2^28 float32
  // elements are 1 GiB.
  int64_t max_tensor_elements = int64_t{1} << 28;
  // Most bytes of all constants of the model together, as converted (float32
  // weights, int64 shape values), folded values included.
  int64_t max_constant_bytes = int64_t{4} << 30;
};

// Imports the model at `path`. NOT_FOUND when it cannot be read;
// INVALID_ARGUMENT (naming the node, op, input or limit) for models that are
// corrupt, fail the checker, or use unsupported ops, types or attributes, that
// declare no outputs, outputs no node produces, duplicate names, inputs of
// rank 0 or non-positive dims, or shapes whose arithmetic overflows;
// RESOURCE_EXHAUSTED when a limit of `options` is exceeded. The imported
// graph has passed InferShapes at batch 1 within max_tensor_elements.
absl::StatusOr<Graph> ImportOnnxFile(const std::string& path,
                                     const ImportOptions& options = {});

// Imports a serialized ModelProto. External data files are resolved against
// `base_dir` (empty: external data is refused).
absl::StatusOr<Graph> ImportOnnxBytes(const std::string& bytes,
                                      const std::string& base_dir,
                                      const ImportOptions& options = {});

// Reads a serialized ONNX TensorProto (as in ONNX's test data sets) holding
// float data (float, double or float16, converted to float32).
// RESOURCE_EXHAUSTED when it has more than `max_elements` elements.
absl::StatusOr<Tensor> ReadOnnxTensorFile(const std::string& path,
                                          int64_t max_elements = int64_t{1}
                                                                 << 28);

}  // namespace esb::graph

#endif  // ESB_CORE_ONNX_ONNX_IMPORT_H_
