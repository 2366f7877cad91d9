// Test support: the bundled demo models and Fashion-MNIST data, and a quick
// set of ESB layer settings for them. For tests only (reports failures
// through gtest).
#ifndef ESB_CORE_TESTING_DEMO_H_
#define ESB_CORE_TESTING_DEMO_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/esb/format.h"
#include "core/esb/layer_quant.h"
#include "core/graph/graph.h"

namespace esb::demo {

// models/<name>.onnx imported and optimized.
graph::Graph LoadDemoModel(const std::string& name);

// A format that must be valid.
Format MakeFormat(int bits, int sb, bool is_signed);

// The first `count` images of a Fashion-MNIST file (e.g.
// "t10k-images-idx3-ubyte.gz"), normalized as the demo models expect,
// count x 784 floats.
std::vector<float> DemoImages(const std::string& file, int64_t count);

// Images [start, start + n) as an N x 1 x 28 x 28 tensor.
graph::Tensor DemoBatch(const std::vector<float>& images, int64_t start,
                        int64_t n);

// Every Conv/Gemm/MatMul with `weights` (per-channel DDA scales) and inputs
// in `input` at alpha 0.75, except layers reading a graph input (normalized
// pixels): signed b4 sb2 at alpha 0.5.
std::map<std::string, LayerQuant> DemoLayers(const graph::Graph& g,
                                             const Format& weights,
                                             const Format& input);

}  // namespace esb::demo

#endif  // ESB_CORE_TESTING_DEMO_H_
