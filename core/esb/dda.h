// DDA, the distribution difference aligner (DESIGN.md section 4): fits the
// scale alpha of a tensor (or of each channel) to its distribution.
//
//   gaussian: alpha0 = lambda(b, sb) * sigma, with lambda the MSE-optimal
//             scale for a Gaussian (core/esb/gaussian.h) and sigma the spread
//             of the data: its RMS about zero for signed formats (the grid is
//             centred on zero; for zero-mean weights this is the standard
//             deviation), its standard deviation for unsigned formats (the
//             spread lambda is defined against for ReLU(N(0, 1))).
//   mse:      searches alpha around alpha0 to minimise
//             sum (x - alpha Q(x / alpha))^2 over the values (weights) or the
//             histogram (activations): a geometric grid over
//             [alpha0 / 8, max(2 alpha0, max|x| / c)], then golden-section
//             refinement between the best grid point's neighbours. alpha0 is
//             a candidate, so the result is never worse than alpha0 on the
//             data.
//
// A tensor whose values are all zero gets alpha = 1 (every scale is exact).
// Functions are thread-safe.
#ifndef ESB_CORE_ESB_DDA_H_
#define ESB_CORE_ESB_DDA_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/esb/format.h"
#include "core/esb/histogram.h"

namespace esb {

enum class DdaMode { kGaussian, kMse };

// "gaussian" or "mse"; INVALID_ARGUMENT listing both otherwise.
absl::StatusOr<DdaMode> ParseDdaMode(absl::string_view name);
absl::string_view DdaModeName(DdaMode mode);

struct DdaOptions {
  DdaMode mode = DdaMode::kMse;
  // Candidates of the log-grid scan in `mse` mode.
  int grid_points = 48;
  // Golden-section steps after the scan.
  int refine_steps = 20;
};

// The scale fitted to one set of values, with its error figures.
struct ScaleFit {
  float alpha = 1.0f;           // Chosen scale.
  float alpha0 = 1.0f;          // Gaussian closed-form scale.
  double squared_error = 0.0;   // sum (x - Q(x))^2 at alpha.
  double squared_error0 = 0.0;  // The same at alpha0.
  double signal = 0.0;          // sum x^2.
  int64_t count = 0;
  int64_t clipped = 0;  // Values beyond alpha * c.

  double mse() const { return count ? squared_error / count : 0.0; }
  double mse0() const { return count ? squared_error0 / count : 0.0; }
  // 10 log10(signal / error); +inf when the error is zero.
  double sqnr_db() const;
  double clip_fraction() const {
    return count ? static_cast<double>(clipped) / count : 0.0;
  }
};

// Fits one scale to exact values (weights). INVALID_ARGUMENT when `values`
// is empty or holds a NaN or infinity (naming its index).
absl::StatusOr<ScaleFit> FitValues(const Format& format,
                                   absl::Span<const float> values,
                                   const DdaOptions& options);

// Fits one scale per slice along `axis` of a tensor of `shape` (row-major).
// `axis` may be negative (counted from the end). INVALID_ARGUMENT when the
// shape does not match the value count or the axis is out of range.
absl::StatusOr<std::vector<ScaleFit>> FitPerChannel(
    const Format& format, absl::Span<const float> values,
    absl::Span<const int64_t> shape, int axis, const DdaOptions& options);

// Fits one scale to a calibration histogram (activations). INVALID_ARGUMENT
// when the histogram is empty.
absl::StatusOr<ScaleFit> FitHistogram(const Format& format,
                                      const Histogram& histogram,
                                      const DdaOptions& options);

// Error of `alpha` on a histogram (bins cut by a threshold are placed at
// their centre); `squared_error0` and `alpha0` are left unset.
ScaleFit HistogramError(const Format& format, const Histogram& histogram,
                        float alpha);

// The figures of several fits taken together (alpha fields unset).
ScaleFit Combine(absl::Span<const ScaleFit> fits);

}  // namespace esb

#endif  // ESB_CORE_ESB_DDA_H_
