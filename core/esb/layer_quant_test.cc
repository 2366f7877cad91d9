#include "core/esb/layer_quant.h"

#include <cmath>
#include <random>

#include "core/esb/quantize.h"
#include "gtest/gtest.h"

namespace esb {
namespace {

TEST(LayerQuantTest, IntegerViewsMatchTheLevelsOnEveryFormat) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const Format& f : Format::All()) {
    std::vector<float> x(3001);
    for (float& v : x) v = normal(rng) * f.max_level() * 0.4f;
    x[17] = NAN;
    const float alpha = 0.75f;
    std::vector<int32_t> ints(x.size());
    EXPECT_EQ(QuantizeToIntegers(f, alpha, x.data(), ints.data(), x.size()),
              1u);
    std::vector<float> q(x.size());
    QuantizeReference(f, alpha, x.data(), q.data(), x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      if (i == 17) {
        EXPECT_EQ(ints[i], 0);
        continue;
      }
      const float level = f.Round(x[i] / alpha);
      ASSERT_EQ(ints[i], f.ToInteger(level)) << f.ToString() << " " << i;
      EXPECT_EQ(alpha * level, q[i]);
    }
    if (f.fits_int8()) {
      if (f.is_signed()) {
        std::vector<int8_t> s8(x.size());
        QuantizeToInt8(f, alpha, x.data(), s8.data(), x.size());
        for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(s8[i], ints[i]);
      } else {
        std::vector<uint8_t> u8(x.size());
        QuantizeToUint8(f, alpha, x.data(), u8.data(), x.size());
        for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(u8[i], ints[i]);
      }
    }
  }
}

TEST(LayerQuantTest, OutputScaleAndDequantize) {
  LayerQuant q{*Format::Create(4, 2, true),
               {0.5f, 0.25f},
               *Format::Create(4, 2, false),
               3.0f};
  const std::vector<float> s = OutputScales(q, 1.0f);
  // ldexp(3 * 0.5, -(L_x + L_w)) with L_x = 2 (unsigned b4 sb2: E = 3,
  // L = 1)... L is sb - 1 = 1 for both: shift 2.
  EXPECT_EQ(s[0], 1.5f / 4);
  EXPECT_EQ(s[1], 0.75f / 4);
  EXPECT_EQ(OutputScales(q, 2.0f)[0], 0.75f);
  const int32_t acc[] = {-8, 0, 8, 100};
  float out[4];
  Dequantize(acc, 4, 0.5f, 1.0f, 1, 0, 0, out);
  EXPECT_EQ(out[0], 0.0f);  // Relu.
  EXPECT_EQ(out[1], 1.0f);
  EXPECT_EQ(out[2], 5.0f);
  Dequantize(acc, 4, 0.5f, 1.0f, 2, 0.0f, 6.0f, out);
  EXPECT_EQ(out[3], 6.0f);  // Clip.
}

TEST(LayerQuantTest, WeightsPerChannelOnEitherAxis) {
  const Format f = *Format::Create(4, 2, true);
  // [2, 3] weights, channels on axis 0 with alphas {1, 2}.
  const std::vector<float> w = {1.0f, -1.6f, 6.5f, 2.0f, 3.0f, -100.0f};
  auto a0 = QuantizeWeights(f, std::vector<float>{1.0f, 2.0f}, w,
                            std::vector<int64_t>{2, 3}, 0);
  ASSERT_TRUE(a0.ok());
  // Levels: 1, -1.5, 6 (clip) | 1, 1.5, -6; integers times 2.
  EXPECT_EQ(*a0, (std::vector<int32_t>{2, -3, 12, 2, 3, -12}));
  auto a1 = QuantizeWeights(f, std::vector<float>{1.0f, 2.0f, 4.0f}, w,
                            std::vector<int64_t>{2, 3}, 1);
  ASSERT_TRUE(a1.ok());
  // Column alphas 1, 2, 4: 1, -0.8->-1, 1.625->1.5 | 2, 1.5, -25->-6.
  EXPECT_EQ(*a1, (std::vector<int32_t>{2, -2, 3, 4, 3, -12}));
  EXPECT_FALSE(QuantizeWeights(f, std::vector<float>{1.0f}, w,
                               std::vector<int64_t>{2, 2}, 0)
                   .ok());
  EXPECT_FALSE(QuantizeWeights(f, std::vector<float>{1.0f, 2.0f, 3.0f}, w,
                               std::vector<int64_t>{2, 3}, 0)
                   .ok());
}

}  // namespace
}  // namespace esb
