// The ESB executor on the demo models: the int8 fast path (where the CPU
// has it), the exact f32 path and the reference path give bit-identical
// logits on 1000 Fashion-MNIST test images, for W4A4 (sb 2), W4A8 and
// W8A8, with scales from pipeline::Calibrate.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/pipeline/calibrate.h"
#include "core/runtime/esb_executor.h"
#include "core/runtime/esb_paths_testing.h"
#include "core/runtime/executor.h"
#include "core/testing/demo.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::runtime {
namespace {

using graph::Tensor;
using ::testing::HasSubstr;
using ::testing::StartsWith;

using demo::DemoBatch;
using demo::DemoImages;

struct Config {
  std::string name;
  int weight_bits, weight_sb;
  int act_bits, act_sb;  // Calibrated with these; see Layers().
};

// Calibrated layers for `config`. Calibrate picks one act sb for both
// signednesses, but 8-bit activations fit int8 only as b8 sb7 signed or
// b8 sb8 unsigned (b8 sb7 unsigned reaches 508 * 2^-6 and b8 sb8 is no
// signed format). So W?A8 calibrates with sb 7 and then moves every
// unsigned input to b8 sb8 with the same clip level
// (alpha' = alpha * c(b8 sb7 unsigned) / c(b8 sb8 unsigned)).
std::map<std::string, LayerQuant> Layers(const graph::Graph& g,
                                         const Config& config) {
  const std::vector<float> calib =
      DemoImages("train-images-idx3-ubyte.gz", 256);
  auto next = std::make_shared<int64_t>(0);
  pipeline::BatchSource source = [&calib, next]() -> std::vector<Tensor> {
    if (*next >= 256) return {};
    *next += 128;
    return {DemoBatch(calib, *next - 128, 128)};
  };
  pipeline::CalibrationOptions options;
  options.weight_bits = config.weight_bits;
  options.weight_sb = config.weight_sb;
  options.act_bits = config.act_bits;
  options.act_sb = config.act_sb;
  auto layers = pipeline::Calibrate(g, source, options);
  EXPECT_TRUE(layers.ok()) << layers.status();
  if (!layers.ok()) return {};
  if (config.act_bits == 8) {
    const Format uniform = *Format::Create(8, 8, /*is_signed=*/false);
    for (auto& [name, q] : *layers) {
      if (q.input_format.is_signed()) continue;
      q.input_alpha *= q.input_format.max_level() / uniform.max_level();
      q.input_format = uniform;
    }
  }
  return *layers;
}

class EsbModelTest : public ::testing::TestWithParam<std::string> {};

TEST_P(EsbModelTest, FastAndReferencePathsAreBitIdentical) {
  const graph::Graph g = demo::LoadDemoModel(GetParam());
  const std::vector<float> test = DemoImages("t10k-images-idx3-ubyte.gz", 1000);
  constexpr int64_t kBatch = 250;

  auto fp32 = Executor::Create(g);
  ASSERT_TRUE(fp32.ok()) << fp32.status();
  std::vector<int> fp32_top1;
  for (int64_t start = 0; start < 1000; start += kBatch) {
    auto y = (*fp32)->Run({DemoBatch(test, start, kBatch)});
    ASSERT_TRUE(y.ok()) << y.status();
    for (int64_t i = 0; i < kBatch; ++i) {
      const float* row = (*y)[0].data.data() + i * 10;
      fp32_top1.push_back(std::max_element(row, row + 10) - row);
    }
  }

  for (const Config& config :
       {Config{"W4A4 sb2", 4, 2, 4, 2}, Config{"W4A8", 4, 2, 8, 7},
        Config{"W8A8", 8, 7, 8, 7}}) {
    SCOPED_TRACE(GetParam() + " " + config.name);
    const auto layers = Layers(g, config);
    ASSERT_FALSE(layers.empty());
    EsbExecutorOptions reference_options, float_options;
    reference_options.path = EsbExecutorOptions::Path::kReference;
    float_options.path = EsbExecutorOptions::Path::kExactFloat;
    auto fast = EsbExecutor::Create(g, layers);
    auto exact_float = EsbExecutor::Create(g, layers, float_options);
    auto reference = EsbExecutor::Create(g, layers, reference_options);
    ASSERT_TRUE(fast.ok()) << fast.status();
    ASSERT_TRUE(exact_float.ok()) << exact_float.status();
    ASSERT_TRUE(reference.ok()) << reference.status();
    const std::string all = std::to_string(layers.size());
    // Each layer on the int8 path where this CPU takes it for its formats,
    // else on the exact f32 path, and the description says why. The demo
    // models' one signed input is their first Conv's.
    int int8 = 0;
    for (const auto& [name, q] : layers) {
      const std::string why =
          NotInt8Here(q.input_format, q.weight_format, /*matmul=*/false);
      EXPECT_EQ((*fast)->layer_paths().at(name),
                why.empty() ? LayerPath::kInt8 : LayerPath::kFloat)
          << name;
      if (why.empty()) {
        ++int8;
      } else {
        EXPECT_THAT((*fast)->Description(), HasSubstr(why)) << name;
      }
    }
    if (int8 == static_cast<int>(layers.size())) {
      EXPECT_EQ((*fast)->Description(),
                "int8 fast path on " + all + " of " + all + " layers");
    } else if (int8 > 0) {
      EXPECT_THAT((*fast)->Description(),
                  StartsWith(absl::StrCat("int8 fast path on ", int8, " of ",
                                          all, " layers; exact f32 path on ")));
    } else {
      EXPECT_THAT((*fast)->Description(),
                  StartsWith("exact f32 path on " + all + " of " + all));
    }
    EXPECT_THAT((*exact_float)->Description(),
                StartsWith("exact f32 path on " + all + " of " + all +
                           " layers: exact f32 path requested"));
    EXPECT_THAT((*reference)->Description(),
                StartsWith("reference path on " + all + " of " + all));
    EXPECT_GT((*fast)->requantized_layers(), 0);
    EXPECT_GT((*exact_float)->requantized_layers(), 0);

    int64_t differing = 0, float_differing = 0, agree = 0;
    for (int64_t start = 0; start < 1000; start += kBatch) {
      const std::vector<Tensor> x = {DemoBatch(test, start, kBatch)};
      auto a = (*fast)->Run(x);
      auto f = (*exact_float)->Run(x);
      auto b = (*reference)->Run(x);
      ASSERT_TRUE(a.ok()) << a.status();
      ASSERT_TRUE(f.ok()) << f.status();
      ASSERT_TRUE(b.ok()) << b.status();
      const std::vector<float>& ya = (*a)[0].data;
      const std::vector<float>& yf = (*f)[0].data;
      const std::vector<float>& yb = (*b)[0].data;
      ASSERT_EQ(ya.size(), yb.size());
      ASSERT_EQ(yf.size(), yb.size());
      for (size_t i = 0; i < ya.size(); i += 10) {
        differing += std::memcmp(&ya[i], &yb[i], 10 * sizeof(float)) != 0;
        float_differing += std::memcmp(&yf[i], &yb[i], 10 * sizeof(float)) != 0;
        const int top1 = std::max_element(&ya[i], &ya[i] + 10) - &ya[i];
        agree += top1 == fp32_top1[start + i / 10];
      }
    }
    EXPECT_EQ(differing, 0) << "images whose logits differ";
    EXPECT_EQ(float_differing, 0) << "images whose exact f32 logits differ";
    // The quantized models are still the same classifier.
    EXPECT_GT(agree, config.weight_bits == 4 ? 850 : 980);
    std::printf("%s %s: %s; top-1 agreement with FP32 %lld/1000\n",
                GetParam().c_str(), config.name.c_str(),
                (*fast)->Description().c_str(), static_cast<long long>(agree));
  }
}

INSTANTIATE_TEST_SUITE_P(Demo, EsbModelTest,
                         ::testing::Values("lenet", "resnet"));

}  // namespace
}  // namespace esb::runtime
