// A streaming histogram of one activation tensor, for calibration.
//
// Bins cover [-R, R] (signed) or [0, R] (unsigned) with R a power of two.
// When a batch holds a value beyond R, R doubles until it fits and bins merge
// pairwise, which is exact: every bin boundary of the old layout is one of
// the new layout, so no count moves to a wrong bin and none is lost. Each
// bin keeps its count and the sum and sum of squares of its values, so the
// error of a scale whose decision thresholds fall between bins is exact;
// only bins cut by a threshold are approximated (by their centre).
//
// Values below 0 in an unsigned histogram land in the first bin: the
// unsigned grid maps them to 0, as it does that bin.
//
// Thread-compatible: callers serialise Add().
#ifndef ESB_CORE_ESB_HISTOGRAM_H_
#define ESB_CORE_ESB_HISTOGRAM_H_

#include <cstdint>
#include <limits>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace esb {

class Histogram {
 public:
  static constexpr int kDefaultBins = 2048;

  // `bins` is rounded up to a multiple of 8 (at least 8).
  explicit Histogram(bool is_signed, int bins = kDefaultBins);

  // Adds a batch. INVALID_ARGUMENT naming the index of a NaN or infinite
  // value; the histogram is unchanged then.
  absl::Status Add(absl::Span<const float> values);

  bool is_signed() const { return is_signed_; }
  int bins() const { return static_cast<int>(count_.size()); }
  // R; 0 until a non-zero value has been seen.
  double range() const { return range_; }
  double bin_width() const;
  double bin_lower(int i) const;

  int64_t count(int i) const { return count_[i]; }
  double sum(int i) const { return sum_[i]; }
  double sum_squares(int i) const { return sum_sq_[i]; }

  int64_t total_count() const { return total_; }
  double mean() const;
  double stddev() const;  // Population standard deviation.
  double rms() const;     // sqrt(E[x^2]), the spread about zero.
  double max_abs() const { return max_abs_; }
  // Smallest and largest value added; +-infinity while empty.
  double min() const { return min_; }
  double max() const { return max_; }

  // A signed histogram's bins over [0, R] as an unsigned histogram of half
  // the bins, the negative half folded into its first bin (where an unsigned
  // grid puts negative values). Counts and moments are kept exactly; the
  // range stays R, so when the negative side reached further the positive
  // side has fewer bins than a histogram of its own would. Requires
  // is_signed().
  Histogram PositiveHalf() const;

 private:
  void GrowTo(double needed);
  int BinOf(double x) const;

  bool is_signed_;
  double range_ = 0.0;
  std::vector<int64_t> count_;
  std::vector<double> sum_;
  std::vector<double> sum_sq_;
  int64_t total_ = 0;
  double total_sum_ = 0.0;
  double total_sum_sq_ = 0.0;
  double max_abs_ = 0.0;
  double min_ = std::numeric_limits<double>::infinity();
  double max_ = -std::numeric_limits<double>::infinity();
};

}  // namespace esb

#endif  // ESB_CORE_ESB_HISTOGRAM_H_
