// Layer-by-layer fitting of ESB scales and formats (DESIGN.md section 4).
//
// Two streams of activations of a small calibration sample flow through the
// graph node by node: the FP32 model's, and the quantized model's (every
// earlier quantized layer already quantized). For each Conv, Gemm and
// MatMul:
//
//   1. The input format follows the data (unsigned when the calibration
//      histogram never goes below zero) and the layer's role (first and last
//      layers at the edge precision unless --all-layers).
//   2. Starting scales come from DDA: the activation histogram and the
//      weights per output channel (mse or gaussian), or min-max.
//   3. With the default `output` rule, the activation scale, then each
//      output channel's weight scale, are chosen among multiples of the
//      starting ones by the error of the layer's output, sum (y - yq)^2,
//      where y is the FP32 layer on FP32 inputs and yq the quantized layer
//      on the quantized stream. Output channels are independent given the
//      input, so each channel picks its own multiple. With sb auto, every
//      valid sb within max_sb is fitted so and the lowest output error
//      wins. Then bias correction adds to each output channel's bias the
//      shift that best restores the output on the sample (BiasShift).
//   4. The quantized stream continues with the chosen layer.
//
// Memory: the sample's activations, freed after their last reader.
#ifndef ESB_CORE_PIPELINE_FIT_H_
#define ESB_CORE_PIPELINE_FIT_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/esb/layer_quant.h"
#include "core/graph/graph.h"
#include "core/pipeline/calibrate.h"
#include "core/pipeline/config.h"
#include "core/pipeline/progress.h"
#include "esb/v1/report.pb.h"

namespace esb::pipeline {

struct FittedModel {
  graph::Graph graph;  // The input graph with bias corrections applied.
  std::map<std::string, LayerQuant> layers;
  std::vector<esb::v1::LayerReport> reports;  // Graph order.
};

// Fits every quantized layer; `sample` is a batch of calibration inputs for
// the graph's single input. CANCELLED when `progress` asks.
absl::StatusOr<FittedModel> FitModel(
    const graph::Graph& graph,
    const std::map<std::string, ActivationStats>& stats,
    const graph::Tensor& sample, const JobSettings& settings, int threads,
    ProgressSink* progress);

// Bias correction of one layer: per output channel (axis `axis`), the shift
// to add to the quantized layer's pre-activation output `yq` to restore the
// FP32 one `y` (same shape, bias included). Without an activation, the mean
// of y - yq, which minimises the output error. With one, only values in its
// linear region reach the next layer, and the mean over all values can pull
// them the wrong way (a ReLU layer's negative outputs carry errors that the
// ReLU cuts off), so each channel takes, among no shift and the whole or
// half of the mean of y - yq over all values and over the values where y is
// in the linear region, the shift of lowest error after the activation.
std::vector<double> BiasShift(const graph::Tensor& y, const graph::Tensor& yq,
                              const graph::Activation& act, int axis);

}  // namespace esb::pipeline

#endif  // ESB_CORE_PIPELINE_FIT_H_
