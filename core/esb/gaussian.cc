#include "core/esb/gaussian.h"

#include <cmath>
#include <limits>
#include <map>
#include <tuple>
#include <vector>

namespace esb {
namespace {

constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

double Phi(double x) { return kInvSqrt2Pi * std::exp(-0.5 * x * x); }
double UpperTail(double x) { return 0.5 * std::erfc(x * kInvSqrt2); }

// Antiderivative of (x - m)^2 phi(x), up to a constant, in upper-tail form.
double CellPrimitive(double x, double m) {
  if (std::isinf(x)) return 0.0;
  return -(1.0 + m * m) * UpperTail(x) + (2.0 * m - x) * Phi(x);
}

template <typename F>
double GoldenMinimum(F f, double lo, double hi, double rel_tol) {
  const double r = 0.5 * (std::sqrt(5.0) - 1.0);
  double a = lo, b = hi;
  double c = b - r * (b - a), d = a + r * (b - a);
  double fc = f(c), fd = f(d);
  while (b - a > rel_tol * (std::fabs(a) + std::fabs(b))) {
    if (fc < fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - r * (b - a);
      fc = f(c);
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + r * (b - a);
      fd = f(d);
    }
  }
  return fc < fd ? c : d;
}

}  // namespace

double HalfGaussianMse(absl::Span<const double> points, double scale) {
  double total = 0.0;
  double lower = 0.0;
  for (size_t k = 0; k < points.size(); ++k) {
    const double upper = k + 1 < points.size()
                             ? scale * 0.5 * (points[k] + points[k + 1])
                             : std::numeric_limits<double>::infinity();
    const double m = scale * points[k];
    total += CellPrimitive(upper, m) - CellPrimitive(lower, m);
    lower = upper;
  }
  return total;
}

double OptimalGaussianScale(absl::Span<const double> points) {
  // The optimum lies well inside [1e-3, 10] / max point for any grid of at
  // least two points; scan a log grid, then refine between the neighbours of
  // the best grid point (the MSE is smooth there).
  const double top = points.back();
  const double lo = 1e-3 / top, hi = 10.0 / top;
  constexpr int kSteps = 400;
  int best = 0;
  double best_mse = std::numeric_limits<double>::infinity();
  auto scale_at = [&](int i) {
    return lo * std::pow(hi / lo, static_cast<double>(i) / kSteps);
  };
  for (int i = 0; i <= kSteps; ++i) {
    const double mse = HalfGaussianMse(points, scale_at(i));
    if (mse < best_mse) {
      best_mse = mse;
      best = i;
    }
  }
  const double a = scale_at(std::max(best - 1, 0));
  const double b = scale_at(std::min(best + 1, kSteps));
  return GoldenMinimum([&](double s) { return HalfGaussianMse(points, s); }, a,
                       b, 1e-9);
}

double RectifiedGaussianStd() {
  // E[ReLU(X)] = 1/sqrt(2 pi), E[ReLU(X)^2] = 1/2.
  return std::sqrt(0.5 - 1.0 / (2.0 * M_PI));
}

double GaussianLambda(const Format& format) {
  using Key = std::tuple<int, int, bool>;
  static const std::map<Key, double>* const table = [] {
    auto* t = new std::map<Key, double>;
    for (const Format& f : Format::All()) {
      const std::vector<float> mags = f.Magnitudes();
      const std::vector<double> points(mags.begin(), mags.end());
      const double scale = OptimalGaussianScale(points);
      (*t)[Key(f.bits(), f.sb(), f.is_signed())] =
          f.is_signed() ? scale : scale / RectifiedGaussianStd();
    }
    return t;
  }();
  return table->at(Key(format.bits(), format.sb(), format.is_signed()));
}

}  // namespace esb
