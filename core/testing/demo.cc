#include "core/testing/demo.h"

#include <set>

#include "core/data/idx.h"
#include "core/data/normalize.h"
#include "core/esb/dda.h"
#include "core/graph/passes.h"
#include "core/onnx/onnx_import.h"
#include "gtest/gtest.h"

namespace esb::demo {

constexpr int64_t kPixels = int64_t{28} * 28;

graph::Graph LoadDemoModel(const std::string& name) {
  auto g = graph::ImportOnnxFile(std::string(ESB_SOURCE_DIR) + "/models/" +
                                 name + ".onnx");
  EXPECT_TRUE(g.ok()) << g.status();
  if (!g.ok()) return graph::Graph{};
  graph::Optimize(*g);
  return *std::move(g);
}

Format MakeFormat(int bits, int sb, bool is_signed) {
  auto f = Format::Create(bits, sb, is_signed);
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() ? *f : *Format::Create(4, 2, true);
}

std::vector<float> DemoImages(const std::string& file, int64_t count) {
  auto images =
      data::ReadIdx("/usr/share/datasets/fashion-mnist/" + file, count);
  auto norm = data::ParseNormalization("0.2860", "0.3530");
  EXPECT_TRUE(images.ok()) << images.status();
  EXPECT_TRUE(norm.ok()) << norm.status();
  std::vector<float> out(count * kPixels);
  if (images.ok() && norm.ok()) {
    EXPECT_TRUE(data::NormalizeImages(images->data.data(), count, 1, kPixels,
                                      *norm, out.data())
                    .ok());
  }
  return out;
}

graph::Tensor DemoBatch(const std::vector<float>& images, int64_t start,
                        int64_t n) {
  return graph::Tensor{
      {n, 1, 28, 28},
      std::vector<float>(images.begin() + start * kPixels,
                         images.begin() + (start + n) * kPixels)};
}

std::map<std::string, LayerQuant> DemoLayers(const graph::Graph& g,
                                             const Format& weights,
                                             const Format& input) {
  std::set<std::string> graph_inputs;
  for (const auto& in : g.inputs) graph_inputs.insert(in.name);
  std::map<std::string, LayerQuant> layers;
  for (const graph::Node& n : g.nodes) {
    if (!graph::IsQuantizedOp(n.op)) continue;
    const graph::Tensor& w = g.constants.at(n.inputs[1]);
    auto fits = FitPerChannel(weights, w.data, w.shape,
                              graph::WeightChannelAxis(n), DdaOptions{});
    EXPECT_TRUE(fits.ok()) << fits.status();
    if (!fits.ok()) continue;
    std::vector<float> alpha;
    for (const ScaleFit& f : *fits) alpha.push_back(f.alpha);
    const bool first = graph_inputs.count(n.inputs[0]) > 0;
    layers.emplace(n.name, LayerQuant{weights, alpha,
                                      first ? MakeFormat(4, 2, true) : input,
                                      first ? 0.5f : 0.75f});
  }
  return layers;
}

}  // namespace esb::demo
