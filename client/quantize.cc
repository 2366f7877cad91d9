#include "client/quantize.h"

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/progress.h"
#include "core/pipeline/config.h"

namespace esb::client {
namespace {

std::string FormatText(const esb::v1::FormatSpec& f) {
  return absl::StrFormat("b%d sb%d %s", f.bits(), f.sb(),
                         f.signed_() ? "s" : "u");
}

// What a stage's progress steps count.
const char* Unit(esb::v1::Stage stage) {
  switch (stage) {
    case esb::v1::STAGE_FIT:
      return "layers";
    case esb::v1::STAGE_CALIBRATE:
      return "batches";
    case esb::v1::STAGE_EVAL:
      return "images";
    default:
      return "steps";
  }
}

}  // namespace

StageBars::~StageBars() {
  if (bar_ != nullptr) bar_->Finish();
}

void StageBars::OnProgress(const pipeline::ProgressEvent& e) {
  if (quiet_) return;
  const std::string stage(pipeline::StageName(e.stage));
  const std::string label = e.stage == esb::v1::STAGE_EVAL && !e.message.empty()
                                ? absl::StrCat(stage, " ", e.message)
                                : stage;
  if (label != label_) {
    if (bar_ != nullptr) bar_->Finish();
    label_ = label;
    bar_ = std::make_unique<Progress>(label, std::max<int64_t>(e.total, 1),
                                      Unit(e.stage));
  }
  bar_->Update(e.step);
}

void StageBars::Done() {
  if (bar_ != nullptr) bar_->Finish();
  bar_.reset();
}

absl::StatusOr<pipeline::JobResult> Quantize(const pipeline::JobInputs& inputs,
                                             const esb::v1::JobConfig& config,
                                             bool quiet) {
  StageBars bars(quiet);
  return pipeline::RunJob(inputs, config, &bars);
}

std::string QuantizeSummary(const pipeline::JobResult& result) {
  const esb::v1::QuantReport& r = result.report;
  std::string out = absl::StrCat(r.model(), ": ", r.config_summary(), "\n\n");
  absl::StrAppendFormat(&out, "  %-22s %-6s %-12s %-12s %9s %9s %7s\n", "layer",
                        "op", "weights", "input", "w SQNR", "out SQNR", "MACs");
  double worst = -1.0;
  std::string worst_name;
  for (const auto& l : r.layers()) {
    absl::StrAppendFormat(
        &out, "  %-22s %-6s %-12s %-12s %7.1fdB %7.1fdB %6.1fM%s\n",
        l.name().substr(0, 22), l.op(), FormatText(l.weight_format()),
        FormatText(l.input_format()), l.weight_sqnr_db(), l.output_sqnr_db(),
        l.macs() / 1e6, l.edge() ? "  (edge)" : "");
    if (l.output_error() > worst) {
      worst = l.output_error();
      worst_name = l.name();
    }
  }
  absl::StrAppendFormat(&out,
                        "\n  %d layers, %.1f M MACs per image, %.2f shift-adds "
                        "per MAC (weights' sb, MAC-weighted)\n",
                        r.layers_size(), r.total_macs() / 1e6, r.mean_sb());
  if (!worst_name.empty()) {
    absl::StrAppendFormat(
        &out,
        "  largest output error: %s (%.2f%% of its output energy; errors "
        "accumulate, so later layers include earlier ones)\n",
        worst_name, 100.0 * worst);
  }
  if (r.has_top1_esb()) {
    absl::StrAppendFormat(
        &out,
        "  top-1 on %d images: FP32 %.2f%%, ESB %.2f%% (%+.2f points), "
        "agreement %.2f%%\n  ESB executor: %s\n",
        r.eval_images(), 100 * r.top1_fp32(), 100 * r.top1_esb(),
        100 * (r.top1_esb() - r.top1_fp32()), 100 * r.agreement(),
        r.esb_path());
  }
  absl::StrAppendFormat(&out, "  artifacts: %s, %s, %s\n", result.onnx_path,
                        result.esbm_path, result.report_path);
  std::string timings;
  for (const char* stage : {"load", "calibrate", "fit", "export", "eval"}) {
    auto it = r.timings().find(stage);
    if (it == r.timings().end()) continue;
    absl::StrAppendFormat(&timings, "%s%s %.1f s", timings.empty() ? "" : ", ",
                          stage, it->second);
  }
  absl::StrAppend(&out, "  timings: ", timings, "\n");
  return out;
}

}  // namespace esb::client
