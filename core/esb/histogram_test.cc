#include "core/esb/histogram.h"

#include <cmath>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb {
namespace {

using ::testing::HasSubstr;

int64_t TotalInBins(const Histogram& h) {
  int64_t n = 0;
  for (int i = 0; i < h.bins(); ++i) n += h.count(i);
  return n;
}

TEST(HistogramTest, DefaultHasAtLeast2048Bins) {
  Histogram h(true);
  EXPECT_GE(h.bins(), 2048);
}

// Batches of growing range must end with exactly the histogram of all the
// data added at once: growth merges bins without moving or losing counts.
TEST(HistogramTest, GrowthIsLossless) {
  for (bool is_signed : {true, false}) {
    std::mt19937 rng(3);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> all;
    Histogram streamed(is_signed);
    for (float spread : {0.001f, 0.01f, 0.5f, 3.0f, 40.0f}) {
      std::vector<float> batch(5000);
      for (float& x : batch) x = normal(rng) * spread;
      ASSERT_TRUE(streamed.Add(batch).ok());
      all.insert(all.end(), batch.begin(), batch.end());
    }
    Histogram once(is_signed);
    ASSERT_TRUE(once.Add(all).ok());
    ASSERT_EQ(streamed.range(), once.range());
    EXPECT_EQ(streamed.total_count(), 25000);
    EXPECT_EQ(TotalInBins(streamed), 25000);
    for (int i = 0; i < once.bins(); ++i) {
      ASSERT_EQ(streamed.count(i), once.count(i)) << i;
      EXPECT_NEAR(streamed.sum_squares(i), once.sum_squares(i),
                  1e-9 * (1 + once.sum_squares(i)));
    }
    // Every value lies in [lower, lower + width) of the bin it was put in.
    for (int i = 0; i < once.bins(); ++i) {
      if (once.count(i) == 0) continue;
      const double mean = once.sum(i) / once.count(i);
      if (!is_signed && i == 0) continue;  // Holds the values below 0.
      EXPECT_GE(mean, once.bin_lower(i));
      EXPECT_LE(mean, once.bin_lower(i) + once.bin_width());
    }
  }
}

TEST(HistogramTest, ZerosBeforeTheFirstNonZeroValueAreKept) {
  Histogram h(true);
  ASSERT_TRUE(h.Add(std::vector<float>(100, 0.0f)).ok());
  EXPECT_EQ(h.total_count(), 100);
  EXPECT_EQ(h.range(), 0.0);
  ASSERT_TRUE(h.Add(std::vector<float>{0.75f, -0.25f}).ok());
  EXPECT_EQ(h.range(), 1.0);
  EXPECT_EQ(TotalInBins(h), 102);
  EXPECT_NEAR(h.mean(), 0.5 / 102, 1e-12);
  EXPECT_NEAR(h.rms(), std::sqrt((0.5625 + 0.0625) / 102), 1e-12);
}

TEST(HistogramTest, RefusesNonFiniteValuesAndStaysUnchanged) {
  Histogram h(false);
  ASSERT_TRUE(h.Add(std::vector<float>{1.0f, 2.0f}).ok());
  absl::Status s = h.Add(std::vector<float>{1.0f, NAN});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("value 1"));
  s = h.Add(std::vector<float>{INFINITY});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(h.total_count(), 2);
  EXPECT_EQ(TotalInBins(h), 2);
}

TEST(HistogramTest, UnsignedPutsNegativesInTheFirstBin) {
  Histogram h(false, 8);
  ASSERT_TRUE(h.Add(std::vector<float>{-1.0f, 0.1f, 3.9f}).ok());
  EXPECT_EQ(h.range(), 4.0);
  EXPECT_EQ(h.count(0), 2);
  EXPECT_EQ(h.count(7), 1);
  const double small = 0.1f;
  EXPECT_DOUBLE_EQ(h.sum_squares(0), 1.0 + small * small);
}

// The positive half of a signed histogram is the unsigned histogram of the
// same data over the same range: identical bins, negatives in bin 0.
TEST(HistogramTest, PositiveHalfIsTheUnsignedHistogram) {
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.5f, 1.0f);
  std::vector<float> x(20000);
  for (float& v : x) v = normal(rng);
  x[0] = 7.5f;  // The largest magnitude is positive: both ranges are 8.
  Histogram s(true, 4096);
  Histogram u(false, 2048);
  ASSERT_TRUE(s.Add(x).ok());
  ASSERT_TRUE(u.Add(x).ok());
  const Histogram half = s.PositiveHalf();
  ASSERT_EQ(half.bins(), u.bins());
  ASSERT_EQ(half.range(), u.range());
  EXPECT_FALSE(half.is_signed());
  EXPECT_EQ(half.max_abs(), u.max_abs());
  for (int i = 0; i < u.bins(); ++i) {
    ASSERT_EQ(half.count(i), u.count(i)) << i;
    EXPECT_NEAR(half.sum_squares(i), u.sum_squares(i),
                1e-9 * (1 + u.sum_squares(i)));
  }
  EXPECT_EQ(half.total_count(), 20000);
  EXPECT_EQ(s.max(), 7.5);
  EXPECT_LT(s.min(), 0.0);
  EXPECT_EQ(half.min(), s.min());
}

}  // namespace
}  // namespace esb
