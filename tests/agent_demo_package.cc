// Writes what tests/agent_python_client_test.py needs into a directory:
//   model.esbm     the lenet demo package (fpga_agent/test_package.h)
//   images.f32     Fashion-MNIST test images 0..3, normalized, 4x1x28x28
//   pixels.u8      the same images as 8-bit pixels
//   expected.f32   their logits from runtime::EsbExecutor, 4x10
//   names.txt      the package's input name, then its output name
// Usage: agent_demo_package DIR
#include <fstream>
#include <iostream>
#include <string>

#include "core/runtime/esb_executor.h"
#include "fpga_agent/test_package.h"

namespace {

constexpr int kImages = 4;

bool Write(const std::string& path, const void* data, size_t size) {
  std::ofstream out(path, std::ios::binary);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  return out.good();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: agent_demo_package DIR\n";
    return 2;
  }
  const std::string dir = argv[1];
  namespace t = esb::agent::testing;
  const std::string& esbm = t::DemoEsbm();
  const esb::pipeline::PackagedModel package = t::DemoPackage();
  const esb::graph::Tensor images = t::DemoImages(0, kImages);
  const std::vector<uint8_t> pixels = t::DemoPixels(0, kImages);
  auto executor = esb::runtime::EsbExecutor::Create(
      package.graph, package.layers, {}, &package.weight_integers);
  if (esbm.empty() || !executor.ok()) {
    std::cerr << "agent_demo_package: cannot build the demo package\n";
    return 1;
  }
  auto logits = (*executor)->Run({images});
  if (!logits.ok()) {
    std::cerr << "agent_demo_package: " << logits.status() << "\n";
    return 1;
  }
  const std::string names = package.graph.inputs[0].name + "\n" +
                            package.graph.outputs[0].name + "\n";
  const bool ok = Write(dir + "/model.esbm", esbm.data(), esbm.size()) &&
                  Write(dir + "/images.f32", images.data.data(),
                        images.data.size() * sizeof(float)) &&
                  Write(dir + "/pixels.u8", pixels.data(), pixels.size()) &&
                  Write(dir + "/expected.f32", logits->front().data.data(),
                        logits->front().data.size() * sizeof(float)) &&
                  Write(dir + "/names.txt", names.data(), names.size());
  if (!ok) {
    std::cerr << "agent_demo_package: cannot write into " << dir << "\n";
    return 1;
  }
  return 0;
}
