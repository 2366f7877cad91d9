// Test support: demo packages (models/*.onnx with demo::DemoLayers) as
// model.esbm bytes, and demo images. For tests only.
#ifndef ESB_FPGA_AGENT_TEST_PACKAGE_H_
#define ESB_FPGA_AGENT_TEST_PACKAGE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/graph/graph.h"
#include "core/package/esbm.h"

namespace esb::agent::testing {

// models/<model>.onnx quantized with b4 sb2 weights (DemoLayers) and the
// Fashion-MNIST normalization, framed as model.esbm. Built once per model.
const std::string& DemoEsbm(const std::string& model = "lenet");

// DemoEsbm parsed and unpacked.
pipeline::PackagedModel DemoPackage(const std::string& model = "lenet");

// Fashion-MNIST test images [start, start + n) as an n x 1 x 28 x 28
// tensor normalized as the package expects.
graph::Tensor DemoImages(int64_t start, int64_t n);

// The same images as raw 8-bit pixels, n x 784 bytes.
std::vector<uint8_t> DemoPixels(int64_t start, int64_t n);

}  // namespace esb::agent::testing

#endif  // ESB_FPGA_AGENT_TEST_PACKAGE_H_
