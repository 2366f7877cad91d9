#include "core/esb/quantize.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb {
namespace {

using ::testing::HasSubstr;

// A mix that exercises every path of the kernels: Gaussian values at several
// spreads, exact levels and midpoints times alpha, and raw bit patterns
// (denormals, infinities, NaNs with payloads, negative zero).
std::vector<float> MixedValues(const Format& f, float alpha, size_t n,
                               uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<uint32_t> bits;
  const std::vector<float> levels = f.Levels();
  std::uniform_int_distribution<size_t> pick(0, levels.size() - 2);
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) {
    switch (i % 6) {
      case 0:
        out[i] = normal(rng) * alpha * f.max_level() * 0.3f;
        break;
      case 1:
        out[i] = normal(rng) * alpha * f.max_level() * 3.0f;
        break;
      case 2:
        out[i] = std::bit_cast<float>(bits(rng));
        break;
      case 3: {
        const size_t k = pick(rng);
        out[i] = alpha * 0.5f * (levels[k] + levels[k + 1]);
        break;
      }
      case 4:
        out[i] = alpha * levels[pick(rng)];
        break;
      default: {
        constexpr float kSpecial[] = {0.0f, -0.0f,  INFINITY, -INFINITY,
                                      NAN,  1e-45f, -1e-42f,  3.4e38f};
        out[i] = kSpecial[bits(rng) % 8];
      }
    }
  }
  return out;
}

TEST(QuantizeTest, KernelMatchesReferenceBitForBitOnEveryFormat) {
  size_t checked = 0;
  for (const Format& f : Format::All()) {
    for (float alpha : {1.0f, 0.0123f, 37.5f, 3e-30f}) {
      // An odd length exercises the scalar tail after the vector blocks.
      const std::vector<float> in = MixedValues(f, alpha, 50001, f.bits());
      std::vector<float> want(in.size()), got(in.size());
      const size_t nan_want =
          QuantizeReference(f, alpha, in.data(), want.data(), in.size());
      const size_t nan_got =
          QuantizeKernel(f, alpha, in.data(), got.data(), in.size());
      EXPECT_EQ(nan_want, nan_got);
      EXPECT_GT(nan_got, 0u);
      ASSERT_EQ(std::memcmp(want.data(), got.data(), in.size() * 4), 0)
          << f.ToString() << " alpha=" << alpha;
      EXPECT_EQ(RoundReference(f, alpha, in.data(), want.data(), in.size()),
                RoundKernel(f, alpha, in.data(), got.data(), in.size()));
      ASSERT_EQ(std::memcmp(want.data(), got.data(), in.size() * 4), 0)
          << "levels of " << f.ToString() << " alpha=" << alpha;
      checked += in.size();
    }
  }
  EXPECT_GT(checked, 9'000'000u);
}

// The comparisons above check the AVX2 kernels wherever they exist: on an
// x86-64 CPU with AVX2 the kernels are the vector ones; elsewhere (arm64)
// they are the reference loops.
TEST(QuantizeTest, VectorKernelsRunExactlyWhereTheCpuHasThem) {
#if defined(__x86_64__)
  EXPECT_EQ(HasVectorKernels(), __builtin_cpu_supports("avx2") != 0);
#else
  EXPECT_FALSE(HasVectorKernels());
#endif
}

TEST(QuantizeTest, ErrorSumsMatchReferenceExactly) {
  for (const Format& f : Format::All()) {
    std::mt19937 rng(f.sb());
    std::normal_distribution<float> normal(0.0f, 0.05f);
    std::vector<float> in(10007);
    for (float& x : in) x = normal(rng);
    const float alpha = 0.02f;
    const ErrorSums a =
        QuantizationErrorReference(f, alpha, in.data(), in.size());
    const ErrorSums b = QuantizationError(f, alpha, in.data(), in.size());
    EXPECT_EQ(a.squared_error, b.squared_error) << f.ToString();
    EXPECT_EQ(a.clipped, b.clipped) << f.ToString();

    // And the sum is the error of the quantized values.
    std::vector<float> q(in.size());
    QuantizeReference(f, alpha, in.data(), q.data(), in.size());
    double direct = 0.0;
    int64_t clipped = 0;
    for (size_t i = 0; i < in.size(); ++i) {
      const double d = static_cast<double>(in[i] - q[i]);
      direct += d * d;
      const float v = in[i] / alpha;
      if ((f.is_signed() ? std::fabs(v) : v) > f.max_level()) ++clipped;
    }
    EXPECT_NEAR(a.squared_error, direct, 1e-9 * direct);
    EXPECT_EQ(a.clipped, clipped);
  }
}

TEST(QuantizeTest, OutputsAreScaledLevels) {
  auto f = Format::Create(4, 2, true);
  ASSERT_TRUE(f.ok());
  const std::vector<float> in = {0.24f, 0.26f, 1.1f, -2.6f, 100.0f, -0.0f};
  std::vector<float> out(in.size());
  ASSERT_TRUE(Quantize(*f, 0.5f, in, absl::MakeSpan(out)).ok());
  // v = x / 0.5 = {0.48, 0.52, 2.2, -5.2, 200, -0} -> {0.5, 0.5, 2, -6, 6, -0}.
  EXPECT_EQ(out, (std::vector<float>{0.25f, 0.25f, 1.0f, -3.0f, 3.0f, 0.0f}));
  EXPECT_TRUE(std::signbit(out[5]));
}

TEST(QuantizeTest, CallerFacingApiRefusesNanAndBadScales) {
  auto f = Format::Create(4, 2, true);
  ASSERT_TRUE(f.ok());
  std::vector<float> in = {1.0f, 2.0f, NAN, 3.0f};
  std::vector<float> out(4);
  absl::Status s = Quantize(*f, 1.0f, in, absl::MakeSpan(out));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("input value 2 is NaN"));

  in[2] = 0.0f;
  for (float alpha : {0.0f, -1.0f, INFINITY, NAN}) {
    s = Quantize(*f, alpha, in, absl::MakeSpan(out));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << alpha;
    EXPECT_THAT(s.message(), HasSubstr("alpha"));
  }
  std::vector<float> short_out(3);
  s = Quantize(*f, 1.0f, in, absl::MakeSpan(short_out));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
}

TEST(QuantizeTest, InPlaceQuantizationWorks) {
  auto f = Format::Create(3, 1, true);
  ASSERT_TRUE(f.ok());
  std::vector<float> v = {0.3f, 0.7f, 1.6f, 3.1f, -9.0f};
  QuantizeKernel(*f, 1.0f, v.data(), v.data(), v.size());
  EXPECT_EQ(v, (std::vector<float>{0.0f, 1.0f, 2.0f, 4.0f, -4.0f}));
}

}  // namespace
}  // namespace esb
