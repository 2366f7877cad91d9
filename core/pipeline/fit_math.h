// The numeric pieces of layer fitting (fit.h), free of the walk over the
// graph: the starting scales of weights and inputs by the job's DDA rule,
// fake quantization onto an ESB grid, and the error measures candidates
// are compared by. BiasShift (declared in fit.h) is defined beside them.
//
// Internal to core/pipeline. Functions are thread-safe.
#ifndef ESB_CORE_PIPELINE_FIT_MATH_H_
#define ESB_CORE_PIPELINE_FIT_MATH_H_

#include <cstddef>
#include <vector>

#include "absl/status/statusor.h"
#include "core/esb/format.h"
#include "core/esb/histogram.h"
#include "core/graph/graph.h"
#include "core/pipeline/config.h"

namespace esb::pipeline::internal {

// Output channel axis of a quantized node's output of rank `rank`: 1 for a
// Conv (NCHW), the last axis for Gemm and MatMul.
int OutputChannelAxis(const graph::Node& node, size_t rank);

// Per-channel (axis `axis`) sums of squared differences of two
// same-shaped tensors: err[c] = sum over the channel's values of (a - b)^2.
std::vector<double> ChannelErrors(const graph::Tensor& a,
                                  const graph::Tensor& b, int axis);

// sum of t^2.
double SumSquares(const graph::Tensor& t);

// The sum of `e`.
double Total(const std::vector<double>& e);

// `x` quantized onto the grid of format `f` with scale `alpha` and back to
// floats.
graph::Tensor FakeQuantInput(const Format& f, float alpha,
                             const graph::Tensor& x);

// Weights `w` quantized onto the grid of `f` with per-channel (axis `axis`)
// scales `alpha` (one value: per tensor) and back to floats, exactly
// alpha * level. QuantizeWeights' errors.
absl::StatusOr<graph::Tensor> FakeQuantWeights(const Format& f,
                                               const std::vector<float>& alpha,
                                               const graph::Tensor& w,
                                               int axis);

// Starting weight scales by the job's rule, one per output channel (axis
// `axis`; the same value repeated when s.per_channel is off): min-max
// (max |w| / max level) or DDA (mse or gaussian) on the values.
absl::StatusOr<std::vector<float>> StartWeightScales(const Format& f,
                                                     const graph::Tensor& w,
                                                     int axis,
                                                     const JobSettings& s);

// Starting input scale by the job's rule, from the activation histogram:
// min-max or DDA; 1 when there is nothing to fit.
float StartActScale(const Format& f, const Histogram& h, const JobSettings& s);

}  // namespace esb::pipeline::internal

#endif  // ESB_CORE_PIPELINE_FIT_MATH_H_
