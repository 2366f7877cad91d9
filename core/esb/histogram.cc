#include "core/esb/histogram.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace esb {

namespace {

// Doubling the range merges bins pairwise and recentres signed histograms by
// a quarter of the bins, so the count must be a multiple of 4; a multiple of
// 8 keeps that true of PositiveHalf() too.
int RoundBins(int bins) { return std::max(8, (bins + 7) / 8 * 8); }

}  // namespace

Histogram::Histogram(bool is_signed, int bins)
    : is_signed_(is_signed),
      count_(RoundBins(bins), 0),
      sum_(RoundBins(bins), 0.0),
      sum_sq_(RoundBins(bins), 0.0) {}

double Histogram::bin_width() const {
  return (is_signed_ ? 2.0 * range_ : range_) / bins();
}

double Histogram::bin_lower(int i) const {
  return (is_signed_ ? -range_ : 0.0) + i * bin_width();
}

int Histogram::BinOf(double x) const {
  const double offset = is_signed_ ? x + range_ : x;
  const auto i = static_cast<int64_t>(std::floor(offset / bin_width()));
  return static_cast<int>(std::clamp<int64_t>(i, 0, bins() - 1));
}

void Histogram::GrowTo(double needed) {
  if (range_ == 0.0) {
    // First non-zero value: R becomes the smallest power of two that holds
    // it, and what was counted before (zeros, or values below 0 in an
    // unsigned histogram) goes to the bin holding 0.
    range_ = std::ldexp(1.0, std::ilogb(needed));
    if (range_ < needed) range_ *= 2.0;
    if (total_ > 0) {
      const int z = BinOf(0.0);
      count_[z] = total_;
      sum_[z] = total_sum_;
      sum_sq_[z] = total_sum_sq_;
    }
    return;
  }
  const int n = bins();
  while (range_ < needed) {
    // Old bin i moves to new bin (signed) n/4 + i/2, (unsigned) i/2.
    const int shift = is_signed_ ? n / 4 : 0;
    std::vector<int64_t> count(n, 0);
    std::vector<double> sum(n, 0.0), sum_sq(n, 0.0);
    for (int i = 0; i < n; ++i) {
      const int j = shift + i / 2;
      count[j] += count_[i];
      sum[j] += sum_[i];
      sum_sq[j] += sum_sq_[i];
    }
    count_.swap(count);
    sum_.swap(sum);
    sum_sq_.swap(sum_sq);
    range_ *= 2.0;
  }
}

absl::Status Histogram::Add(absl::Span<const float> values) {
  double batch_max = 0.0;
  double batch_min = std::numeric_limits<double>::infinity();
  double batch_top = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < values.size(); ++i) {
    const float v = values[i];
    if (!std::isfinite(v)) {
      return absl::InvalidArgumentError(absl::StrCat("value ", i,
                                                     " of the batch is ", v,
                                                     "; histograms take finite "
                                                     "values only"));
    }
    const double m = is_signed_ ? std::fabs(v) : std::max(0.0f, v);
    batch_max = std::max(batch_max, m);
    batch_min = std::min(batch_min, static_cast<double>(v));
    batch_top = std::max(batch_top, static_cast<double>(v));
  }
  min_ = std::min(min_, batch_min);
  max_ = std::max(max_, batch_top);
  // Values exactly at R belong in the top bin; growth is needed only beyond.
  if (batch_max > range_) GrowTo(batch_max);
  if (range_ == 0.0) {
    // All zeros so far: keep the count; the bin is placed once R exists.
    for (float v : values) {
      total_sum_ += v;
      total_sum_sq_ += static_cast<double>(v) * v;
    }
    total_ += static_cast<int64_t>(values.size());
    return absl::OkStatus();
  }
  for (float v : values) {
    const int b = BinOf(v);
    const double x = v;
    ++count_[b];
    sum_[b] += x;
    sum_sq_[b] += x * x;
    total_sum_ += x;
    total_sum_sq_ += x * x;
  }
  total_ += static_cast<int64_t>(values.size());
  max_abs_ = std::max(max_abs_, batch_max);
  return absl::OkStatus();
}

Histogram Histogram::PositiveHalf() const {
  const int half = bins() / 2;
  Histogram out(false, half);
  out.range_ = range_;
  out.total_ = total_;
  out.total_sum_ = total_sum_;
  out.total_sum_sq_ = total_sum_sq_;
  out.max_abs_ = std::max(0.0, max_);
  out.min_ = min_;
  for (int i = 0; i < bins(); ++i) {
    const int j = std::max(0, i - half);
    out.count_[j] += count_[i];
    out.sum_[j] += sum_[i];
    out.sum_sq_[j] += sum_sq_[i];
  }
  return out;
}

double Histogram::mean() const {
  return total_ == 0 ? 0.0 : total_sum_ / static_cast<double>(total_);
}

double Histogram::rms() const {
  return total_ == 0 ? 0.0
                     : std::sqrt(total_sum_sq_ / static_cast<double>(total_));
}

double Histogram::stddev() const {
  if (total_ == 0) return 0.0;
  const double m = mean();
  return std::sqrt(std::max(0.0, total_sum_sq_ / total_ - m * m));
}

}  // namespace esb
