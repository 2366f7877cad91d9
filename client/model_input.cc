#include "client/model_input.h"

#include "absl/strings/str_cat.h"
#include "core/graph/passes.h"
#include "core/onnx/onnx_import.h"

namespace esb::client {

absl::StatusOr<graph::Graph> LoadModel(const std::string& path,
                                       const graph::ImportOptions& options) {
  absl::StatusOr<graph::Graph> g = graph::ImportOnnxFile(path, options);
  if (!g.ok()) return g.status();
  graph::Optimize(*g);
  return g;
}

absl::StatusOr<ImageInput> FindImageInput(const graph::Graph& graph) {
  if (graph.inputs.size() != 1 || graph.inputs[0].shape.size() != 4) {
    std::string shapes;
    for (const auto& in : graph.inputs) {
      absl::StrAppend(&shapes, shapes.empty() ? "" : ", ", in.name, " (rank ",
                      in.shape.size(), ")");
    }
    return absl::InvalidArgumentError(
        absl::StrCat("the model must have one 4-D NCHW image input; it has ",
                     graph.inputs.size(), ": ", shapes));
  }
  const auto& in = graph.inputs[0];
  return ImageInput{in.name, in.shape[0], in.shape[1], in.shape[2],
                    in.shape[3]};
}

absl::StatusOr<data::Normalization> ResolveNormalization(
    const std::string& mean_csv, const std::string& std_csv,
    const graph::Graph& graph, std::string* source) {
  if (!mean_csv.empty() || !std_csv.empty()) {
    *source = "flags";
    return data::ParseNormalization(mean_csv, std_csv);
  }
  auto mean = graph.metadata.find("input_mean");
  auto std = graph.metadata.find("input_std");
  if (mean != graph.metadata.end() && std != graph.metadata.end()) {
    *source = "model metadata";
    absl::StatusOr<data::Normalization> n =
        data::ParseNormalization(mean->second, std->second);
    if (!n.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the model's metadata input_mean/input_std: ", n.status().message()));
    }
    return n;
  }
  *source = "none (pixels / 255)";
  return data::Normalization{};
}

data::ImageGeometry ImageInput::geometry() const {
  return data::ImageGeometry{name, channels, height, width};
}

}  // namespace esb::client
