// Starting scales, fake quantization and error measures of layer fitting
// (fit_math.h), and the bias correction's per-channel shift (BiasShift,
// fit.h).
#include "core/pipeline/fit_math.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "core/esb/dda.h"
#include "core/esb/layer_quant.h"
#include "core/esb/quantize.h"
#include "core/pipeline/fit.h"

namespace esb::pipeline {
namespace internal {

// Output channel axis of a quantized node's output of rank `rank`.
int OutputChannelAxis(const graph::Node& node, size_t rank) {
  return node.op == graph::Op::kConv ? 1 : static_cast<int>(rank) - 1;
}

// Per-channel sums of squared differences of two same-shaped tensors.
std::vector<double> ChannelErrors(const graph::Tensor& a,
                                  const graph::Tensor& b, int axis) {
  int64_t inner = 1;
  for (size_t d = axis + 1; d < a.shape.size(); ++d) inner *= a.shape[d];
  const int64_t channels = a.shape[axis];
  std::vector<double> err(channels, 0.0);
  for (size_t i = 0; i < a.data.size(); ++i) {
    const double d = static_cast<double>(a.data[i]) - b.data[i];
    err[(i / inner) % channels] += d * d;
  }
  return err;
}

double SumSquares(const graph::Tensor& t) {
  double s = 0.0;
  for (float v : t.data) s += static_cast<double>(v) * v;
  return s;
}

graph::Tensor FakeQuantInput(const Format& f, float alpha,
                             const graph::Tensor& x) {
  graph::Tensor out{x.shape, std::vector<float>(x.data.size())};
  QuantizeKernel(f, alpha, x.data.data(), out.data.data(), x.data.size());
  return out;
}

// Weights on the grid: integer view times ldexp(alpha, -L), which equals
// alpha * level exactly.
absl::StatusOr<graph::Tensor> FakeQuantWeights(const Format& f,
                                               const std::vector<float>& alpha,
                                               const graph::Tensor& w,
                                               int axis) {
  absl::StatusOr<std::vector<int32_t>> ints =
      QuantizeWeights(f, alpha, w.data, w.shape, axis);
  if (!ints.ok()) return ints.status();
  int64_t inner = 1;
  for (size_t d = axis + 1; d < w.shape.size(); ++d) inner *= w.shape[d];
  const int64_t channels = w.shape[axis];
  graph::Tensor out{w.shape, std::vector<float>(w.data.size())};
  for (size_t i = 0; i < out.data.size(); ++i) {
    const float a =
        alpha.size() == 1 ? alpha[0] : alpha[(i / inner) % channels];
    out.data[i] =
        static_cast<float>((*ints)[i]) * std::ldexp(a, -f.mantissa_bits());
  }
  return out;
}

// Starting per-channel weight scales by the job's rule.
absl::StatusOr<std::vector<float>> StartWeightScales(const Format& f,
                                                     const graph::Tensor& w,
                                                     int axis,
                                                     const JobSettings& s) {
  DdaOptions dda;
  dda.mode = s.dda == DdaRule::kGaussian ? DdaMode::kGaussian : DdaMode::kMse;
  std::vector<float> alphas;
  if (s.dda == DdaRule::kMinMax) {
    int64_t inner = 1;
    for (size_t d = axis + 1; d < w.shape.size(); ++d) inner *= w.shape[d];
    const int64_t channels = w.shape[axis];
    std::vector<float> max_abs(s.per_channel ? channels : 1, 0.0f);
    for (size_t i = 0; i < w.data.size(); ++i) {
      float& m = max_abs[s.per_channel ? (i / inner) % channels : 0];
      m = std::max(m, std::fabs(w.data[i]));
    }
    for (float m : max_abs) {
      alphas.push_back(m > 0.0f ? m / f.max_level() : 1.0f);
    }
  } else if (s.per_channel) {
    absl::StatusOr<std::vector<ScaleFit>> fits =
        FitPerChannel(f, w.data, w.shape, axis, dda);
    if (!fits.ok()) return fits.status();
    for (const ScaleFit& fit : *fits) alphas.push_back(fit.alpha);
  } else {
    absl::StatusOr<ScaleFit> fit = FitValues(f, w.data, dda);
    if (!fit.ok()) return fit.status();
    alphas.push_back(fit->alpha);
  }
  if (alphas.size() == 1) alphas.assign(w.shape[axis], alphas[0]);
  return alphas;
}

float StartActScale(const Format& f, const Histogram& h, const JobSettings& s) {
  if (s.dda == DdaRule::kMinMax) {
    return h.max_abs() > 0 ? static_cast<float>(h.max_abs()) / f.max_level()
                           : 1.0f;
  }
  DdaOptions dda;
  dda.mode = s.dda == DdaRule::kGaussian ? DdaMode::kGaussian : DdaMode::kMse;
  absl::StatusOr<ScaleFit> fit = FitHistogram(f, h, dda);
  return fit.ok() ? fit->alpha : 1.0f;
}

double Total(const std::vector<double>& e) {
  double t = 0.0;
  for (double v : e) t += v;
  return t;
}

}  // namespace internal

std::vector<double> BiasShift(const graph::Tensor& y, const graph::Tensor& yq,
                              const graph::Activation& act, int axis) {
  int64_t inner = 1;
  for (size_t d = axis + 1; d < y.shape.size(); ++d) inner *= y.shape[d];
  const int64_t channels = y.shape[axis];
  const int64_t blocks = static_cast<int64_t>(y.data.size()) / inner;
  std::vector<double> all(channels, 0.0), linear(channels, 0.0);
  std::vector<int64_t> linear_count(channels, 0);
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t c = b % channels;
    for (int64_t i = b * inner; i < (b + 1) * inner; ++i) {
      const double d = static_cast<double>(y.data[i]) - yq.data[i];
      all[c] += d;
      if (graph::Apply(act, y.data[i]) == y.data[i]) {
        linear[c] += d;
        ++linear_count[c];
      }
    }
  }
  const double per_channel = static_cast<double>(y.data.size()) / channels;
  for (int64_t c = 0; c < channels; ++c) {
    all[c] /= per_channel;
    linear[c] = linear_count[c] > 0 ? linear[c] / linear_count[c] : 0.0;
  }
  if (act.kind == graph::Activation::Kind::kNone) return all;

  // Candidates per channel: none, half and whole of each mean.
  constexpr int kCandidates = 5;
  std::vector<double> cand(channels * kCandidates);
  for (int64_t c = 0; c < channels; ++c) {
    double* k = &cand[c * kCandidates];
    k[0] = 0.0;
    k[1] = 0.5 * all[c];
    k[2] = all[c];
    k[3] = 0.5 * linear[c];
    k[4] = linear[c];
  }
  std::vector<double> err(channels * kCandidates, 0.0);
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t c = b % channels;
    float shift[kCandidates];
    for (int k = 0; k < kCandidates; ++k) {
      shift[k] = static_cast<float>(cand[c * kCandidates + k]);
    }
    double* e = &err[c * kCandidates];
    for (int64_t i = b * inner; i < (b + 1) * inner; ++i) {
      const float ref = graph::Apply(act, y.data[i]);
      for (int k = 0; k < kCandidates; ++k) {
        const double d = ref - graph::Apply(act, yq.data[i] + shift[k]);
        e[k] += d * d;
      }
    }
  }
  std::vector<double> out(channels);
  for (int64_t c = 0; c < channels; ++c) {
    const double* e = &err[c * kCandidates];
    out[c] = cand[c * kCandidates + (std::min_element(e, e + kCandidates) - e)];
  }
  return out;
}

}  // namespace esb::pipeline
