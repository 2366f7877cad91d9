// Calibration: fits ESB scales for every Conv, Gemm and MatMul of a graph.
//
// Weights: DDA per output channel on the exact values. Activations (each
// quantized layer's input): the FP32 model runs over the calibration
// batches, a streaming histogram per input collects what it sees (memory is
// bounded whatever the number of batches), and DDA fits one scale per
// tensor on the histogram. An input whose calibration values are all >= 0
// (after ReLU, ReLU6, or raw pixels) gets the unsigned format, others the
// signed one.
//
// Thread-compatible.
#ifndef ESB_CORE_PIPELINE_CALIBRATE_H_
#define ESB_CORE_PIPELINE_CALIBRATE_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/esb/dda.h"
#include "core/esb/histogram.h"
#include "core/esb/layer_quant.h"
#include "core/graph/graph.h"
#include "core/runtime/executor.h"

namespace esb::pipeline {

struct CalibrationOptions {
  int weight_bits = 4;
  int weight_sb = 2;
  int act_bits = 4;
  int act_sb = 2;
  DdaOptions dda;  // Mode for weights and activations.
  // The FP32 runs that tap the layers' inputs (threads 0: every CPU).
  runtime::ExecutorOptions executor;
};

// Yields calibration batches (graph inputs in graph order) until it returns
// an empty vector.
using BatchSource = std::function<std::vector<graph::Tensor>()>;

// What calibration saw of one quantized layer's input.
// The histogram has twice the default bins, so that its non-negative half
// (what an unsigned input format sees) still has Histogram::kDefaultBins.
struct ActivationStats {
  Histogram hist{true, 2 * Histogram::kDefaultBins};

  bool non_negative() const { return hist.min() >= 0.0; }
  // The histogram an input format of this signedness is fitted on.
  Histogram ForFormat(bool is_signed) const {
    return is_signed ? hist : hist.PositiveHalf();
  }
};

class ProgressSink;

// Runs the FP32 model over every batch and collects the input statistics of
// every quantized layer, keyed by value name. `progress` may be null; it is
// asked between batches whether to stop (CANCELLED). Progress events are the
// batch source's to send: it knows the total. The model runs on an
// executor with `options` (threads and memory budget).
absl::StatusOr<std::map<std::string, ActivationStats>> CollectActivationStats(
    const graph::Graph& graph, const BatchSource& batches,
    const runtime::ExecutorOptions& options, ProgressSink* progress);

// Per quantized node (by name): formats and scales. INVALID_ARGUMENT when
// a format is invalid (naming the layer and the signedness it needs), when
// the source yields nothing, or when the model cannot run.
absl::StatusOr<std::map<std::string, LayerQuant>> Calibrate(
    const graph::Graph& graph, const BatchSource& batches,
    const CalibrationOptions& options);

}  // namespace esb::pipeline

#endif  // ESB_CORE_PIPELINE_CALIBRATE_H_
