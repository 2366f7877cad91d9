// The artifact is the truth: model.esbm, serialized, read back and
// unpacked, runs bit-identically to the pipeline's own fitted model.
#include <cstring>

#include "core/package/esbm.h"
#include "core/pipeline/calibrate.h"
#include "core/pipeline/config.h"
#include "core/pipeline/fit.h"
#include "core/runtime/esb_executor.h"
#include "core/testing/demo.h"
#include "gtest/gtest.h"

namespace esb::pipeline {
namespace {

class PackageExecTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PackageExecTest, EsbmRunsBitIdenticallyToTheFittedModel) {
  const graph::Graph g = demo::LoadDemoModel(GetParam());
  const std::vector<float> train =
      demo::DemoImages("train-images-idx3-ubyte.gz", 128);
  int64_t next = 0;
  auto batches = [&]() -> std::vector<graph::Tensor> {
    if (next >= 128) return {};
    next += 64;
    return {demo::DemoBatch(train, next - 64, 64)};
  };
  auto stats = CollectActivationStats(g, batches, {}, nullptr);
  ASSERT_TRUE(stats.ok()) << stats.status();
  esb::v1::JobConfig config;
  config.set_sb_auto(true);  // Several formats across the layers.
  auto settings = ResolveConfig(config);
  ASSERT_TRUE(settings.ok()) << settings.status();
  auto fitted =
      FitModel(g, *stats, demo::DemoBatch(train, 0, 16), *settings, 0, nullptr);
  ASSERT_TRUE(fitted.ok()) << fitted.status();

  auto package =
      BuildPackage(fitted->graph, fitted->layers,
                   data::Normalization{{0.286f}, {0.353f}}, GetParam());
  ASSERT_TRUE(package.ok()) << package.status();
  auto parsed = ParsePackage(SerializePackage(*package));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  auto unpacked = UnpackPackage(*parsed);
  ASSERT_TRUE(unpacked.ok()) << unpacked.status();
  ASSERT_EQ(unpacked->weight_integers.size(), fitted->layers.size());

  for (auto path : {runtime::EsbExecutorOptions::Path::kAuto,
                    runtime::EsbExecutorOptions::Path::kReference}) {
    runtime::EsbExecutorOptions options;
    options.path = path;
    auto own =
        runtime::EsbExecutor::Create(fitted->graph, fitted->layers, options);
    ASSERT_TRUE(own.ok()) << own.status();
    auto from_package = runtime::EsbExecutor::Create(
        unpacked->graph, unpacked->layers, options, &unpacked->weight_integers);
    ASSERT_TRUE(from_package.ok()) << from_package.status();
    EXPECT_EQ((*own)->Description(), (*from_package)->Description());

    const int64_t count = path == runtime::EsbExecutorOptions::Path::kAuto
                              ? 1000
                              : 64;  // The reference loops are slow.
    const std::vector<float> test =
        demo::DemoImages("t10k-images-idx3-ubyte.gz", count);
    int64_t differing = 0;
    for (int64_t start = 0; start < count; start += 100) {
      const int64_t n = std::min<int64_t>(100, count - start);
      const graph::Tensor x = demo::DemoBatch(test, start, n);
      auto a = (*own)->Run({x});
      auto b = (*from_package)->Run({x});
      ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
      ASSERT_EQ(a->front().data.size(), b->front().data.size());
      differing += std::memcmp(a->front().data.data(), b->front().data.data(),
                               a->front().data.size() * sizeof(float)) != 0;
    }
    EXPECT_EQ(differing, 0) << GetParam();
  }

  // The executor runs the package's integers, not its float weights: with
  // the float copies of every quantized weight zeroed, the outputs stay.
  graph::Graph zeroed = unpacked->graph;
  for (const graph::Node& node : zeroed.nodes) {
    if (!unpacked->layers.count(node.name)) continue;
    for (float& w : zeroed.constants.at(node.inputs[1]).data) w = 0.0f;
  }
  auto own = runtime::EsbExecutor::Create(fitted->graph, fitted->layers);
  auto exact = runtime::EsbExecutor::Create(zeroed, unpacked->layers, {},
                                            &unpacked->weight_integers);
  ASSERT_TRUE(own.ok() && exact.ok()) << own.status() << exact.status();
  const graph::Tensor x =
      demo::DemoBatch(demo::DemoImages("t10k-images-idx3-ubyte.gz", 32), 0, 32);
  auto a = (*own)->Run({x});
  auto b = (*exact)->Run({x});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->front().data, b->front().data);
}

INSTANTIATE_TEST_SUITE_P(DemoModels, PackageExecTest,
                         ::testing::Values("lenet", "resnet"));

}  // namespace
}  // namespace esb::pipeline
