#include "core/pipeline/calibrate.h"

#include <algorithm>
#include <limits>
#include <set>

#include "absl/strings/str_cat.h"
#include "core/esb/histogram.h"
#include "core/pipeline/progress.h"
#include "core/runtime/executor.h"

namespace esb::pipeline {
namespace {}  // namespace

absl::StatusOr<std::map<std::string, ActivationStats>> CollectActivationStats(
    const graph::Graph& graph, const BatchSource& batches,
    const runtime::ExecutorOptions& options, ProgressSink* progress) {
  // The inputs of quantized layers become extra outputs of a tapped copy.
  std::set<std::string> graph_inputs;
  for (const auto& in : graph.inputs) graph_inputs.insert(in.name);
  graph::Graph tapped = graph;
  std::vector<std::string> taps;
  for (const graph::Node& n : graph.nodes) {
    if (!graph::IsQuantizedOp(n.op)) continue;
    const std::string& value = n.inputs[0];
    if (std::find(taps.begin(), taps.end(), value) != taps.end()) continue;
    taps.push_back(value);
    const bool is_output =
        std::any_of(graph.outputs.begin(), graph.outputs.end(),
                    [&](const graph::ValueInfo& o) { return o.name == value; });
    if (!graph_inputs.count(value) && !is_output) {
      tapped.outputs.push_back(graph::ValueInfo{value, {}});
    }
  }
  if (taps.empty()) {
    return absl::InvalidArgumentError(
        "the model has no Conv, Gemm or MatMul to quantize");
  }
  absl::StatusOr<std::unique_ptr<runtime::Executor>> executor =
      runtime::Executor::Create(tapped, options);
  if (!executor.ok()) return executor.status();

  std::map<std::string, ActivationStats> seen;
  int64_t batches_seen = 0;
  for (std::vector<graph::Tensor> batch = batches(); !batch.empty();
       batch = batches()) {
    if (progress != nullptr && progress->Cancelled()) {
      return absl::CancelledError("calibration cancelled");
    }
    absl::StatusOr<std::vector<graph::Tensor>> outputs =
        (*executor)->Run(batch);
    if (!outputs.ok()) return outputs.status();
    ++batches_seen;
    for (const std::string& value : taps) {
      const graph::Tensor* t = nullptr;
      for (size_t i = 0; i < graph.inputs.size(); ++i) {
        if (graph.inputs[i].name == value) t = &batch[i];
      }
      for (size_t i = 0; t == nullptr && i < tapped.outputs.size(); ++i) {
        if (tapped.outputs[i].name == value) t = &(*outputs)[i];
      }
      if (t == nullptr) {
        return absl::InternalError(absl::StrCat("no values for ", value));
      }
      if (absl::Status s = seen[value].hist.Add(t->data); !s.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("tensor '", value, "': ", s.message()));
      }
    }
  }
  if (batches_seen == 0) {
    return absl::InvalidArgumentError("the calibration set is empty");
  }

  return seen;
}

absl::StatusOr<std::map<std::string, LayerQuant>> Calibrate(
    const graph::Graph& graph, const BatchSource& batches,
    const CalibrationOptions& options) {
  absl::StatusOr<Format> wf =
      Format::Create(options.weight_bits, options.weight_sb, true);
  if (!wf.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("weight format: ", wf.status().message()));
  }

  absl::StatusOr<std::map<std::string, ActivationStats>> stats =
      CollectActivationStats(graph, batches, options.executor, nullptr);
  if (!stats.ok()) return stats.status();
  const std::map<std::string, ActivationStats>& seen = *stats;

  std::map<std::string, LayerQuant> layers;
  for (const graph::Node& n : graph.nodes) {
    if (!graph::IsQuantizedOp(n.op)) continue;
    auto found = seen.find(n.inputs[0]);
    if (found == seen.end()) {
      return absl::InternalError(absl::StrCat(
          "layer '", n.name, "': calibration saw no values of its input '",
          n.inputs[0], "'"));
    }
    const ActivationStats& tap = found->second;
    const bool is_unsigned = tap.non_negative();
    absl::StatusOr<Format> af =
        Format::Create(options.act_bits, options.act_sb, !is_unsigned);
    if (!af.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "layer '", n.name, "' reads ",
          is_unsigned ? "non-negative" : "signed",
          " activations, which need an ", is_unsigned ? "unsigned" : "signed",
          " format: ", af.status().message()));
    }
    absl::StatusOr<ScaleFit> act =
        FitHistogram(*af, tap.ForFormat(!is_unsigned), options.dda);
    if (!act.ok()) return act.status();

    const graph::Tensor* w = graph.FindConstant(n.inputs[1]);
    if (w == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer '", n.name, "': weights '", n.inputs[1],
                       "' are not a constant"));
    }
    absl::StatusOr<std::vector<ScaleFit>> fits = FitPerChannel(
        *wf, w->data, w->shape, graph::WeightChannelAxis(n), options.dda);
    if (!fits.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "layer '", n.name, "' weights: ", fits.status().message()));
    }
    LayerQuant q{*wf, {}, *af, act->alpha};
    for (const ScaleFit& f : *fits) q.weight_alpha.push_back(f.alpha);
    layers.emplace(n.name, std::move(q));
  }
  return layers;
}

}  // namespace esb::pipeline
