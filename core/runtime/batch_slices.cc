#include "core/runtime/batch_slices.h"

#include <algorithm>
#include <limits>
#include <map>
#include <string>

#include "core/graph/shapes.h"

namespace esb::runtime {
namespace {

using Shapes = std::map<std::string, std::vector<int64_t>>;

// Whether `node` combines the images of a batch along dim 0 while keeping
// its shape (the shape checks catch the ops that change dim 0).
bool MixesImages(const graph::Node& node) {
  using graph::Op;
  switch (node.op) {
    case Op::kConcat:
    case Op::kSoftmax:
    case Op::kLayerNorm:
      return node.attrs.axis == 0;
    case Op::kReduceMean:
    case Op::kReduceSum:
    case Op::kReduceMax:
      return std::find(node.attrs.axes.begin(), node.attrs.axes.end(), 0) !=
             node.attrs.axes.end();
    case Op::kTranspose:
      return !node.attrs.perm.empty() && node.attrs.perm[0] != 0;
    case Op::kGemm:
      return node.attrs.trans_a;
    default:
      return false;
  }
}

std::optional<Shapes> ShapesAt(const graph::Graph& graph,
                               const std::vector<std::vector<int64_t>>& shapes,
                               int64_t batch) {
  Shapes inputs;
  for (size_t i = 0; i < graph.inputs.size(); ++i) {
    std::vector<int64_t> shape = shapes[i];
    shape[0] = batch;
    inputs[graph.inputs[i].name] = std::move(shape);
  }
  auto inferred = graph::InferShapes(graph, inputs);
  if (!inferred.ok()) return std::nullopt;
  return *std::move(inferred);
}

// Elements of one image of `name`, or -1 when its dim 0 is not the batch
// at both batch sizes with the same other dims.
int64_t ImageElements(const std::string& name, const Shapes& one,
                      const Shapes& two) {
  auto a = one.find(name);
  auto b = two.find(name);
  if (a == one.end() || b == two.end()) return -1;
  const std::vector<int64_t>& s1 = a->second;
  const std::vector<int64_t>& s2 = b->second;
  if (s1.empty() || s1.size() != s2.size() || s1[0] != 1 || s2[0] != 2 ||
      !std::equal(s1.begin() + 1, s1.end(), s2.begin() + 1)) {
    return -1;
  }
  int64_t elements = 1;
  for (int64_t d : s1) elements *= d;
  return elements;
}

}  // namespace

std::optional<BatchProfile> ProfileBatch(
    const graph::Graph& graph,
    const std::vector<std::vector<int64_t>>& input_shapes) {
  if (input_shapes.size() != graph.inputs.size() || input_shapes.empty()) {
    return std::nullopt;
  }
  for (const std::vector<int64_t>& shape : input_shapes) {
    if (shape.empty()) return std::nullopt;
  }
  std::optional<Shapes> one = ShapesAt(graph, input_shapes, 1);
  std::optional<Shapes> two = ShapesAt(graph, input_shapes, 2);
  if (!one || !two) return std::nullopt;

  BatchProfile profile;
  for (const auto& [name, tensor] : graph.constants) {
    profile.weight_bytes += static_cast<int64_t>(tensor.data.size() * 4);
  }
  for (const graph::Node& node : graph.nodes) {
    if (MixesImages(node)) return std::nullopt;
    int64_t bytes = 0;
    for (const std::vector<std::string>* names :
         {&node.inputs, &node.outputs}) {
      for (const std::string& name : *names) {
        if (name.empty() || graph.FindConstant(name) != nullptr) continue;
        const int64_t elements = ImageElements(name, *one, *two);
        if (elements < 0) return std::nullopt;
        bytes += 4 * elements;
      }
    }
    profile.node_bytes.push_back(bytes);
  }
  for (const graph::ValueInfo& output : graph.outputs) {
    if (graph.FindConstant(output.name) != nullptr ||
        ImageElements(output.name, *one, *two) < 0) {
      return std::nullopt;
    }
  }
  return profile;
}

int64_t ChooseSlice(const BatchProfile& profile, int64_t batch,
                    int64_t cache_bytes) {
  if (batch <= 1 || cache_bytes <= 0) return batch;
  auto traffic = [&](int64_t slices, int64_t slice) {
    // Doubles: a large batch of large images overflows int64 products.
    double spilled = 0;
    for (int64_t bytes : profile.node_bytes) {
      spilled += std::max(0.0, static_cast<double>(slice) * bytes -
                                   static_cast<double>(cache_bytes));
    }
    return slices * spilled +
           static_cast<double>(slices - 1) * profile.weight_bytes;
  };
  int64_t best = batch;
  double least = std::numeric_limits<double>::infinity();
  for (int64_t slices = 1; slices <= batch; ++slices) {
    const int64_t slice = (batch + slices - 1) / slices;
    // ceil(N / k) repeats for several k; the fewest slices of a size is the
    // only one that counts.
    if ((batch + slice - 1) / slice != slices) continue;
    const double t = traffic(slices, slice);
    if (t < least) {
      least = t;
      best = slice;
    }
  }
  return best;
}

}  // namespace esb::runtime
