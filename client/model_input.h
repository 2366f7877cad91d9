// What the client needs to feed images to a model: the model loaded and
// optimised, its image input's geometry, and the input normalization.
#ifndef ESB_CLIENT_MODEL_INPUT_H_
#define ESB_CLIENT_MODEL_INPUT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data/images.h"
#include "core/data/normalize.h"
#include "core/graph/graph.h"
#include "core/onnx/onnx_import.h"

namespace esb::client {

// Imports an ONNX model and runs the graph passes.
absl::StatusOr<graph::Graph> LoadModel(const std::string& path,
                                       const graph::ImportOptions& options);

// The single NCHW image input of a graph.
struct ImageInput {
  std::string name;
  int64_t batch = graph::kBatch;  // Fixed batch size, or kBatch when free.
  int64_t channels = 0;
  int64_t height = 0;
  int64_t width = 0;
  int64_t pixels() const { return channels * height * width; }
  data::ImageGeometry geometry() const;
};

// INVALID_ARGUMENT unless the graph has one 4-D input.
absl::StatusOr<ImageInput> FindImageInput(const graph::Graph& graph);

// Normalization from --mean/--std when given; else from the model's
// metadata_props input_mean/input_std; else none (pixels / 255).
// `source` receives where it came from, for reports.
absl::StatusOr<data::Normalization> ResolveNormalization(
    const std::string& mean_csv, const std::string& std_csv,
    const graph::Graph& graph, std::string* source);

}  // namespace esb::client

#endif  // ESB_CLIENT_MODEL_INPUT_H_
