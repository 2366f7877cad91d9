#include "client/model_input.h"

#include "absl/strings/str_cat.h"
#include "core/data/idx.h"
#include "core/graph/onnx_import.h"
#include "core/graph/passes.h"

namespace esb::client {

absl::StatusOr<graph::Graph> LoadModel(const std::string& path) {
  absl::StatusOr<graph::Graph> g = graph::ImportOnnxFile(path);
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

absl::StatusOr<std::vector<float>> LoadImages(const std::string& path,
                                              int64_t limit,
                                              const ImageInput& input,
                                              const data::Normalization& norm,
                                              int64_t* count) {
  absl::StatusOr<data::IdxArray> images = data::ReadIdx(path, limit);
  if (!images.ok()) return images.status();
  const auto& shape = images->shape;
  const int64_t per_image = shape.size() == 3   ? shape[1] * shape[2]
                            : shape.size() == 4 ? shape[1] * shape[2] * shape[3]
                                                : -1;
  const bool fits = (shape.size() == 3 && input.channels == 1 &&
                     shape[1] == input.height && shape[2] == input.width) ||
                    (shape.size() == 4 && shape[1] == input.channels &&
                     shape[2] == input.height && shape[3] == input.width);
  if (!fits) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": images of ", per_image, " pixels (shape rank ", shape.size(),
        ") do not fit the model input '", input.name, "' of ", input.channels,
        "x", input.height, "x", input.width));
  }
  *count = shape[0];
  std::vector<float> out(static_cast<size_t>(*count * input.pixels()));
  absl::Status s = data::NormalizeImages(
      images->data.data(), *count, static_cast<int>(input.channels),
      input.height * input.width, norm, out.data());
  if (!s.ok()) return s;
  return out;
}

}  // namespace esb::client
