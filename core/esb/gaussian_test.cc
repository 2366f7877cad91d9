#include "core/esb/gaussian.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace esb {
namespace {

std::vector<double> MidrisePoints(int levels) {
  std::vector<double> points;
  for (int k = 0; k < levels / 2; ++k) points.push_back(k + 0.5);
  return points;
}

// Max (1960) and Lloyd: MSE-optimal step of a uniform midrise quantizer for
// a unit Gaussian.
TEST(GaussianTest, UniformMidriseStepsMatchPublishedValues) {
  EXPECT_NEAR(OptimalGaussianScale(MidrisePoints(16)), 0.3352, 5e-5);
  EXPECT_NEAR(OptimalGaussianScale(MidrisePoints(8)), 0.5860, 5e-5);
  EXPECT_NEAR(OptimalGaussianScale(MidrisePoints(4)), 0.9957, 5e-5);
}

TEST(GaussianTest, EsbLambdas) {
  EXPECT_NEAR(GaussianLambda(*Format::Create(4, 2, true)), 0.487, 0.002);
  EXPECT_NEAR(GaussianLambda(*Format::Create(5, 3, true)), 0.483, 0.002);
  for (const Format& f : Format::All()) {
    const double lambda = GaussianLambda(f);
    EXPECT_GT(lambda, 0.0) << f.ToString();
    // The largest level lies beyond one sigma and within the far tail.
    EXPECT_GT(lambda * f.max_level(), 1.0) << f.ToString();
    EXPECT_LT(lambda * f.max_level(), 20.0) << f.ToString();
  }
}

double MonteCarloMse(const std::vector<double>& points, double scale,
                     bool rectified, int n) {
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal;
  double total = 0.0;
  for (int i = 0; i < n; ++i) {
    double x = normal(rng);
    if (rectified) x = std::max(0.0, x);
    const double a = std::fabs(x);
    double best = INFINITY;
    for (double p : points) best = std::min(best, std::fabs(a - scale * p));
    total += best * best;
  }
  return total / n;
}

TEST(GaussianTest, ClosedFormMseAgreesWithMonteCarlo) {
  const std::vector<float> mags = Format::Create(4, 2, true)->Magnitudes();
  const std::vector<double> points(mags.begin(), mags.end());
  for (double scale : {0.2, 0.487, 1.0}) {
    const double exact = 2.0 * HalfGaussianMse(points, scale);
    const double sampled = MonteCarloMse(points, scale, false, 400000);
    EXPECT_NEAR(exact, sampled, 0.02 * exact) << scale;
  }
}

// lambda for an unsigned format, times the standard deviation of ReLU(X),
// must minimise the MSE on ReLU(X).
TEST(GaussianTest, UnsignedLambdaMinimisesRectifiedMse) {
  const Format f = *Format::Create(4, 2, false);
  const std::vector<float> mags = f.Magnitudes();
  const std::vector<double> points(mags.begin(), mags.end());
  const double best = GaussianLambda(f) * RectifiedGaussianStd();
  const double at_best = HalfGaussianMse(points, best);
  EXPECT_LT(at_best, HalfGaussianMse(points, best * 1.05));
  EXPECT_LT(at_best, HalfGaussianMse(points, best * 0.95));
  EXPECT_NEAR(at_best, MonteCarloMse(points, best, true, 400000),
              0.03 * at_best);
  EXPECT_NEAR(RectifiedGaussianStd(), 0.5838, 1e-4);
}

}  // namespace
}  // namespace esb
