// Mean squared error of a scaled quantizer on Gaussian data, and the scales
// that minimise it: the closed-form start of DDA (DESIGN.md section 4).
//
// For a symmetric grid of reconstruction points {+-p_k} (p_k >= 0 sorted) and
// scale s, nearest-point quantization of X ~ N(0, 1) has
//
//   MSE(s) = 2 * sum_k  integral over [s t_k, s t_{k+1}] of (x - s p_k)^2
//   phi(x)
//
// with t_k the midpoints between neighbouring points (t_0 = 0, last = inf).
// Each cell integral has the closed form
//
//   integral_a^b (x - m)^2 phi(x) dx = [-(1 + m^2) Qn(x) + (2m - x) phi(x)]_a^b
//
// (Qn the upper tail of the normal law), evaluated in the upper-tail form so
// that far cells keep their precision. For ReLU(X) (unsigned activations) the
// mass at 0 is exact and MSE is half the sum.
//
// lambda(format) = argmin_s MSE(s) / std(data), with std(data) = 1 for the
// signed case and sqrt(1/2 - 1/(2 pi)) for ReLU(X); so alpha0 = lambda * std
// of the tensor. The table is computed numerically at first use.
#ifndef ESB_CORE_ESB_GAUSSIAN_H_
#define ESB_CORE_ESB_GAUSSIAN_H_

#include "absl/types/span.h"
#include "core/esb/format.h"

namespace esb {

// MSE over x >= 0 of nearest-point quantization of a unit normal, points
// `positive_points` (sorted ascending, >= 0) scaled by `scale`.
double HalfGaussianMse(absl::Span<const double> positive_points, double scale);

// argmin over scale of HalfGaussianMse (log-grid scan, then golden-section
// refinement to a relative 1e-9).
double OptimalGaussianScale(absl::Span<const double> positive_points);

// Standard deviation of ReLU(X), X ~ N(0, 1).
double RectifiedGaussianStd();

// lambda(b, sb) for `format` as defined above. Thread-safe; the table for
// every valid format is built once.
double GaussianLambda(const Format& format);

}  // namespace esb

#endif  // ESB_CORE_ESB_GAUSSIAN_H_
