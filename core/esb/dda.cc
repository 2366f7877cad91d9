#include "core/esb/dda.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "core/esb/gaussian.h"
#include "core/esb/quantize.h"

namespace esb {
namespace {

struct Trial {
  float alpha;
  double squared_error;
  int64_t clipped;
};

// The search shared by values and histograms. `error(alpha)` returns the
// squared error and clip count at alpha.
template <typename ErrorFn>
ScaleFit Search(const Format& format, double sigma, double max_abs,
                const DdaOptions& options, ErrorFn error) {
  ScaleFit fit;
  if (max_abs <= 0.0) {
    const Trial t = error(1.0f);
    fit.alpha = fit.alpha0 = 1.0f;
    fit.squared_error = fit.squared_error0 = t.squared_error;
    fit.clipped = t.clipped;
    return fit;
  }
  // Constant data has no spread: start where the value is the largest level.
  const auto alpha0 =
      static_cast<float>(sigma > 0.0 ? GaussianLambda(format) * sigma
                                     : max_abs / format.max_level());
  const Trial start = error(alpha0);
  Trial best = start;
  auto consider = [&](float alpha) {
    if (!(alpha > 0.0f) || !std::isfinite(alpha)) return best;
    const Trial t = error(alpha);
    if (t.squared_error < best.squared_error) best = t;
    return t;
  };
  if (options.mode == DdaMode::kMse) {
    const double lo = alpha0 / 8.0;
    const double hi = std::max(2.0 * alpha0, max_abs / format.max_level());
    const int n = std::max(options.grid_points, 2);
    const double ratio = std::pow(hi / lo, 1.0 / (n - 1));
    std::vector<double> grid(n);
    int grid_best = 0;
    double grid_best_error = std::numeric_limits<double>::infinity();
    for (int i = 0; i < n; ++i) {
      grid[i] = lo * std::pow(ratio, i);
      const Trial t = consider(static_cast<float>(grid[i]));
      if (t.squared_error < grid_best_error) {
        grid_best_error = t.squared_error;
        grid_best = i;
      }
    }
    // Golden-section search between the best grid point's neighbours.
    double a = grid_best > 0 ? grid[grid_best - 1] : lo / ratio;
    double b = grid_best + 1 < n ? grid[grid_best + 1] : hi * ratio;
    const double r = 0.5 * (std::sqrt(5.0) - 1.0);
    double c = b - r * (b - a), d = a + r * (b - a);
    double fc = consider(static_cast<float>(c)).squared_error;
    double fd = consider(static_cast<float>(d)).squared_error;
    for (int step = 0; step < options.refine_steps; ++step) {
      if (fc < fd) {
        b = d;
        d = c;
        fd = fc;
        c = b - r * (b - a);
        fc = consider(static_cast<float>(c)).squared_error;
      } else {
        a = c;
        c = d;
        fc = fd;
        d = a + r * (b - a);
        fd = consider(static_cast<float>(d)).squared_error;
      }
    }
  }
  fit.alpha = best.alpha;
  fit.alpha0 = alpha0;
  fit.squared_error = best.squared_error;
  fit.squared_error0 = start.squared_error;
  fit.clipped = best.clipped;
  return fit;
}

absl::Status CheckFinite(absl::Span<const float> values) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "value ", i, " is ", values[i], "; DDA needs finite values"));
    }
  }
  return absl::OkStatus();
}

ScaleFit FitChecked(const Format& format, absl::Span<const float> values,
                    const DdaOptions& options) {
  double sum = 0.0, sum_sq = 0.0, max_abs = 0.0;
  for (float v : values) {
    sum += v;
    sum_sq += static_cast<double>(v) * v;
    max_abs = std::max(
        max_abs, static_cast<double>(format.is_signed() ? std::fabs(v) : v));
  }
  const auto n = static_cast<double>(values.size());
  const double mean = sum / n;
  const double sigma = format.is_signed()
                           ? std::sqrt(sum_sq / n)
                           : std::sqrt(std::max(0.0, sum_sq / n - mean * mean));
  ScaleFit fit = Search(format, sigma, max_abs, options, [&](float alpha) {
    const ErrorSums e =
        QuantizationError(format, alpha, values.data(), values.size());
    return Trial{alpha, e.squared_error, e.clipped};
  });
  fit.signal = sum_sq;
  fit.count = static_cast<int64_t>(values.size());
  return fit;
}

}  // namespace

absl::StatusOr<DdaMode> ParseDdaMode(absl::string_view name) {
  if (name == "gaussian") return DdaMode::kGaussian;
  if (name == "mse") return DdaMode::kMse;
  return absl::InvalidArgumentError(absl::StrCat(
      "DDA mode '", name, "' is unknown; valid modes: gaussian, mse"));
}

absl::string_view DdaModeName(DdaMode mode) {
  return mode == DdaMode::kGaussian ? "gaussian" : "mse";
}

double ScaleFit::sqnr_db() const {
  if (squared_error == 0.0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(signal / squared_error);
}

absl::StatusOr<ScaleFit> FitValues(const Format& format,
                                   absl::Span<const float> values,
                                   const DdaOptions& options) {
  if (values.empty()) {
    return absl::InvalidArgumentError("DDA needs at least one value");
  }
  if (absl::Status s = CheckFinite(values); !s.ok()) return s;
  return FitChecked(format, values, options);
}

absl::StatusOr<std::vector<ScaleFit>> FitPerChannel(
    const Format& format, absl::Span<const float> values,
    absl::Span<const int64_t> shape, int axis, const DdaOptions& options) {
  const int rank = static_cast<int>(shape.size());
  if (axis < -rank || axis >= rank) {
    return absl::InvalidArgumentError(absl::StrCat(
        "channel axis ", axis, " is out of range for a tensor of rank ", rank));
  }
  if (axis < 0) axis += rank;
  int64_t total = 1, outer = 1, inner = 1;
  for (int d = 0; d < rank; ++d) {
    if (shape[d] <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "dimension ", d, " of the tensor is ", shape[d], "; must be > 0"));
    }
    total *= shape[d];
    if (d < axis) outer *= shape[d];
    if (d > axis) inner *= shape[d];
  }
  if (total != static_cast<int64_t>(values.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor shape holds ", total, " values but ",
                     values.size(), " were given"));
  }
  if (absl::Status s = CheckFinite(values); !s.ok()) return s;
  const int64_t channels = shape[axis];
  std::vector<ScaleFit> fits;
  fits.reserve(channels);
  std::vector<float> slice;
  for (int64_t ch = 0; ch < channels; ++ch) {
    absl::Span<const float> view;
    if (outer == 1) {
      view = values.subspan(ch * inner, inner);  // Contiguous: no copy.
    } else {
      slice.resize(outer * inner);
      for (int64_t o = 0; o < outer; ++o) {
        std::copy_n(values.data() + (o * channels + ch) * inner, inner,
                    slice.data() + o * inner);
      }
      view = slice;
    }
    fits.push_back(FitChecked(format, view, options));
  }
  return fits;
}

ScaleFit HistogramError(const Format& format, const Histogram& histogram,
                        float alpha) {
  ScaleFit fit;
  fit.alpha = alpha;
  const double c = format.max_level();
  const double half = 0.5 * histogram.bin_width();
  for (int i = 0; i < histogram.bins(); ++i) {
    const int64_t n = histogram.count(i);
    if (n == 0) continue;
    const double centre = histogram.bin_lower(i) + half;
    const float v = static_cast<float>(centre / alpha);
    const double q = static_cast<double>(alpha) * format.Round(v);
    // sum (x - q)^2 = S2 - 2 q S1 + n q^2, exact for the bin's values.
    const double e = histogram.sum_squares(i) - 2.0 * q * histogram.sum(i) +
                     static_cast<double>(n) * q * q;
    fit.squared_error += std::max(0.0, e);
    if ((format.is_signed() ? std::fabs(v) : v) > c) fit.clipped += n;
    fit.signal += histogram.sum_squares(i);
  }
  fit.count = histogram.total_count();
  return fit;
}

absl::StatusOr<ScaleFit> FitHistogram(const Format& format,
                                      const Histogram& histogram,
                                      const DdaOptions& options) {
  if (histogram.total_count() == 0) {
    return absl::InvalidArgumentError(
        "the calibration histogram is empty: no values were observed");
  }
  const double sigma =
      format.is_signed() ? histogram.rms() : histogram.stddev();
  ScaleFit fit =
      Search(format, sigma, histogram.max_abs(), options, [&](float alpha) {
        const ScaleFit e = HistogramError(format, histogram, alpha);
        return Trial{alpha, e.squared_error, e.clipped};
      });
  const ScaleFit figures = HistogramError(format, histogram, fit.alpha);
  fit.signal = figures.signal;
  fit.count = figures.count;
  return fit;
}

ScaleFit Combine(absl::Span<const ScaleFit> fits) {
  ScaleFit total;
  for (const ScaleFit& f : fits) {
    total.squared_error += f.squared_error;
    total.squared_error0 += f.squared_error0;
    total.signal += f.signal;
    total.count += f.count;
    total.clipped += f.clipped;
  }
  return total;
}

}  // namespace esb
