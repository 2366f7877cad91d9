#include "fpga_agent/test_package.h"

#include <map>

#include "absl/synchronization/mutex.h"
#include "core/data/idx.h"
#include "core/data/normalize.h"
#include "core/testing/demo.h"
#include "gtest/gtest.h"

namespace esb::agent::testing {
namespace {

constexpr int64_t kPixels = int64_t{28} * 28;
constexpr char kImages[] =
    "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";

data::Normalization DemoNormalization() {
  return data::Normalization{{0.2860f}, {0.3530f}};
}

}  // namespace

const std::string& DemoEsbm(const std::string& model) {
  static absl::Mutex mu(absl::kConstInit);
  static auto* built = new std::map<std::string, std::string>();
  absl::MutexLock lock(&mu);
  auto it = built->find(model);
  if (it != built->end()) return it->second;
  const graph::Graph g = demo::LoadDemoModel(model);
  const auto layers = demo::DemoLayers(g, demo::MakeFormat(4, 2, true),
                                       demo::MakeFormat(4, 2, false));
  absl::StatusOr<esb::v1::Package> package =
      pipeline::BuildPackage(g, layers, DemoNormalization(), model);
  EXPECT_TRUE(package.ok()) << package.status();
  std::string bytes = package.ok() ? pipeline::SerializePackage(*package) : "";
  return built->emplace(model, std::move(bytes)).first->second;
}

pipeline::PackagedModel DemoPackage(const std::string& model) {
  absl::StatusOr<esb::v1::Package> parsed =
      pipeline::ParsePackage(DemoEsbm(model));
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  if (!parsed.ok()) return {};
  absl::StatusOr<pipeline::PackagedModel> unpacked =
      pipeline::UnpackPackage(*parsed);
  EXPECT_TRUE(unpacked.ok()) << unpacked.status();
  return unpacked.ok() ? *std::move(unpacked) : pipeline::PackagedModel{};
}

std::vector<uint8_t> DemoPixels(int64_t start, int64_t n) {
  absl::StatusOr<data::IdxArray> images = data::ReadIdx(kImages, start + n);
  EXPECT_TRUE(images.ok()) << images.status();
  if (!images.ok()) return {};
  return std::vector<uint8_t>(images->data.begin() + start * kPixels,
                              images->data.begin() + (start + n) * kPixels);
}

graph::Tensor DemoImages(int64_t start, int64_t n) {
  const std::vector<uint8_t> pixels = DemoPixels(start, n);
  graph::Tensor t{{n, 1, 28, 28}, std::vector<float>(pixels.size())};
  EXPECT_TRUE(data::NormalizeImages(pixels.data(), n, 1, kPixels,
                                    DemoNormalization(), t.data.data())
                  .ok());
  return t;
}

}  // namespace esb::agent::testing
