// FitModel: the walk over the graph with the FP32 and the quantized
// streams, and per layer the choice of input format and sb, the search of
// scales and weight formats by output error, bias correction and the
// layer's report (fit.h says how). The numeric pieces are in fit_math.cc.
#include "core/pipeline/fit.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/esb/dda.h"
#include "core/pipeline/fit_math.h"
#include "core/pipeline/node_runner.h"

namespace esb::pipeline {
namespace {

using internal::ChannelErrors;
using internal::FakeQuantInput;
using internal::FakeQuantWeights;
using internal::OutputChannelAxis;
using internal::StartActScale;
using internal::StartWeightScales;
using internal::SumSquares;
using internal::Total;

// Multiples of the starting scales tried by the `output` rule.
constexpr float kActMultiples[] = {0.5f, 0.6f,  0.7f, 0.8f, 0.9f,
                                   1.0f, 1.15f, 1.3f, 1.5f};
constexpr float kWeightMultiples[] = {0.7f,  0.8f, 0.9f, 0.95f, 1.0f,
                                      1.05f, 1.1f, 1.2f, 1.35f};

// One candidate weight format of a layer, fitted.
struct Candidate {
  Format wf;
  float act_alpha = 1.0f;
  std::vector<float> weight_alpha;
  graph::Tensor wq;
  double error = std::numeric_limits<double>::infinity();
};

// The input side of a layer: its format, the histogram it is fitted on,
// and the starting scale.
struct InputChoice {
  Format format;
  Histogram hist;
  float start = 1.0f;
  std::string reason;  // With sb auto: which sb and what each sb gave.
};

class Fitter {
 public:
  Fitter(const graph::Graph& graph,
         const std::map<std::string, ActivationStats>& stats,
         const JobSettings& settings, int threads, ProgressSink* progress)
      : stats_(stats),
        settings_(settings),
        progress_(progress),
        fitted_{graph, {}, {}},
        runner_(fitted_.graph, threads) {}

  absl::StatusOr<FittedModel> Run(const graph::Tensor& sample);

 private:
  // The stages of one layer, in order.
  absl::Status FitLayer(const graph::Node& node, bool edge);
  absl::StatusOr<InputChoice> InputFormat(const graph::Node& node,
                                          const LayerPlan& plan);
  absl::Status ChooseInputSb(const graph::Node& node, const LayerPlan& plan,
                             InputChoice& input);
  absl::StatusOr<Candidate> FitFormat(const graph::Node& node, const Format& wf,
                                      const Format& af, float act_start);
  absl::Status SearchActScale(const graph::Node& node, const Format& af,
                              Candidate& c);
  absl::Status SearchWeightScales(const graph::Node& node, const Format& af,
                                  Candidate& c);
  // Bias correction (see BiasShift): the node's bias rewritten in the
  // fitted graph; returns the mean |shift|.
  absl::StatusOr<double> CorrectBias(const graph::Node& node,
                                     const Candidate& c,
                                     const graph::Tensor& xq);
  void Report(const graph::Node& node, const LayerPlan& plan,
              const InputChoice& input, const Candidate& c,
              const graph::Tensor& yq, double bias_shift,
              esb::v1::LayerReport& report) const;

  // Per-channel output errors of weights `walpha` and input scale
  // `act_alpha` against the FP32 output; the fake-quantized weights in
  // *wq_out when not null.
  absl::StatusOr<std::vector<double>> ErrorOf(const graph::Node& node,
                                              const Format& wf,
                                              const Format& af, float act_alpha,
                                              const std::vector<float>& walpha,
                                              graph::Tensor* wq_out);
  absl::StatusOr<graph::Tensor> Output(const graph::Node& node,
                                       const graph::Tensor& x,
                                       const graph::Tensor& wq,
                                       const graph::Tensor* bias,
                                       bool drop_activation);

  const std::map<std::string, ActivationStats>& stats_;
  const JobSettings& settings_;
  ProgressSink* progress_;
  FittedModel fitted_;
  NodeRunner runner_;
  ValueMap fp_;  // FP32 stream.
  ValueMap qs_;  // Quantized stream.
};

absl::StatusOr<graph::Tensor> Fitter::Output(const graph::Node& node,
                                             const graph::Tensor& x,
                                             const graph::Tensor& wq,
                                             const graph::Tensor* bias,
                                             bool drop_activation) {
  std::map<std::string, graph::Tensor> constants = {{node.inputs[1], wq}};
  if (bias != nullptr) constants[node.inputs[2]] = *bias;
  absl::StatusOr<std::vector<graph::Tensor>> out = runner_.RunWith(
      node, ValueMap{{node.inputs[0], x}}, constants, drop_activation);
  if (!out.ok()) return out.status();
  return std::move(out->front());
}

absl::StatusOr<std::vector<double>> Fitter::ErrorOf(
    const graph::Node& node, const Format& wf, const Format& af,
    float act_alpha, const std::vector<float>& walpha, graph::Tensor* wq_out) {
  const graph::Tensor& w = fitted_.graph.constants.at(node.inputs[1]);
  const graph::Tensor& y_ref = fp_.at(node.outputs[0]);
  absl::StatusOr<graph::Tensor> wq =
      FakeQuantWeights(wf, walpha, w, graph::WeightChannelAxis(node));
  if (!wq.ok()) return wq.status();
  absl::StatusOr<graph::Tensor> y =
      Output(node, FakeQuantInput(af, act_alpha, qs_.at(node.inputs[0])), *wq,
             nullptr, false);
  if (!y.ok()) return y.status();
  if (wq_out != nullptr) *wq_out = *std::move(wq);
  return ChannelErrors(*y, y_ref, OutputChannelAxis(node, y_ref.shape.size()));
}

// The input format of the plan and its starting scale.
absl::StatusOr<InputChoice> Fitter::InputFormat(const graph::Node& node,
                                                const LayerPlan& plan) {
  const ActivationStats& st = stats_.at(node.inputs[0]);
  const bool is_signed = !st.non_negative();
  absl::StatusOr<Format> af = ActivationFormat(plan, is_signed, node.name);
  if (!af.ok()) return af.status();
  InputChoice input{*af, st.ForFormat(is_signed), 0.0f, ""};
  input.start = StartActScale(input.format, input.hist, settings_);
  return input;
}

// With sb auto, the input's sb is chosen too (it costs no shift-adds),
// among the formats the int8 datapath holds, fitted with the configured
// weight format.
absl::Status Fitter::ChooseInputSb(const graph::Node& node,
                                   const LayerPlan& plan, InputChoice& input) {
  const Format* base = &plan.weight_formats.front();
  for (const Format& wf : plan.weight_formats) {
    if (wf.sb() == settings_.weight_sb) base = &wf;
  }
  const Format af = input.format;
  double best_error = std::numeric_limits<double>::infinity();
  std::vector<std::string> tried;
  for (int sb : Format::ValidSb(af.bits(), af.is_signed())) {
    const Format candidate = *Format::Create(af.bits(), sb, af.is_signed());
    if (!candidate.fits_int8()) continue;
    const float start = StartActScale(candidate, input.hist, settings_);
    absl::StatusOr<Candidate> c = FitFormat(node, *base, candidate, start);
    if (!c.ok()) return c.status();
    tried.push_back(absl::StrFormat("%d: %.4g", sb, c->error));
    if (c->error < best_error) {
      best_error = c->error;
      input.format = candidate;
      input.start = start;
    }
  }
  input.reason = absl::StrCat("; input sb ", input.format.sb(), " (tried sb ",
                              absl::StrJoin(tried, ", "), ")");
  return absl::OkStatus();
}

// The `output` rule's input scale: the multiple of the start with the
// lowest total output error, at the starting weight scales.
absl::Status Fitter::SearchActScale(const graph::Node& node, const Format& af,
                                    Candidate& c) {
  const float start = c.act_alpha;
  double best = std::numeric_limits<double>::infinity();
  for (float k : kActMultiples) {
    absl::StatusOr<std::vector<double>> e =
        ErrorOf(node, c.wf, af, start * k, c.weight_alpha, nullptr);
    if (!e.ok()) return e.status();
    if (Total(*e) < best) {
      best = Total(*e);
      c.act_alpha = start * k;
    }
  }
  return absl::OkStatus();
}

// The `output` rule's weight scales: per channel, the multiple of the start
// with the lowest error in that channel (per tensor: in the total).
absl::Status Fitter::SearchWeightScales(const graph::Node& node,
                                        const Format& af, Candidate& c) {
  const std::vector<float> start = c.weight_alpha;
  const size_t channels = start.size();
  std::vector<double> best_ch(channels,
                              std::numeric_limits<double>::infinity());
  std::vector<float> chosen = start;
  for (float k : kWeightMultiples) {
    std::vector<float> scaled = start;
    for (float& a : scaled) a *= k;
    absl::StatusOr<std::vector<double>> e =
        ErrorOf(node, c.wf, af, c.act_alpha, scaled, nullptr);
    if (!e.ok()) return e.status();
    if (!settings_.per_channel) {
      const double t = Total(*e);
      if (t < best_ch[0]) {
        std::fill(best_ch.begin(), best_ch.end(), t);
        chosen = scaled;
      }
      continue;
    }
    for (size_t m = 0; m < channels; ++m) {
      if ((*e)[m] < best_ch[m]) {
        best_ch[m] = (*e)[m];
        chosen[m] = scaled[m];
      }
    }
  }
  c.weight_alpha = chosen;
  return absl::OkStatus();
}

absl::StatusOr<Candidate> Fitter::FitFormat(const graph::Node& node,
                                            const Format& wf, const Format& af,
                                            float act_start) {
  const graph::Tensor& w = fitted_.graph.constants.at(node.inputs[1]);
  absl::StatusOr<std::vector<float>> w_start =
      StartWeightScales(wf, w, graph::WeightChannelAxis(node), settings_);
  if (!w_start.ok()) return w_start.status();
  Candidate c{wf, act_start, *w_start, {}, 0.0};
  if (settings_.dda == DdaRule::kOutput) {
    if (absl::Status s = SearchActScale(node, af, c); !s.ok()) return s;
    if (absl::Status s = SearchWeightScales(node, af, c); !s.ok()) return s;
  }
  absl::StatusOr<std::vector<double>> e =
      ErrorOf(node, wf, af, c.act_alpha, c.weight_alpha, &c.wq);
  if (!e.ok()) return e.status();
  c.error = Total(*e);
  return c;
}

absl::StatusOr<double> Fitter::CorrectBias(const graph::Node& node,
                                           const Candidate& c,
                                           const graph::Tensor& xq) {
  graph::Graph& g = fitted_.graph;
  graph::Node& mutable_node =
      *std::find_if(g.nodes.begin(), g.nodes.end(),
                    [&](const graph::Node& n) { return n.name == node.name; });
  const std::string& in = node.inputs[0];
  const graph::Tensor& w = g.constants.at(node.inputs[1]);
  const graph::Tensor* old_bias =
      node.inputs.size() > 2 ? &g.constants.at(node.inputs[2]) : nullptr;
  absl::StatusOr<graph::Tensor> y_pre =
      Output(node, fp_.at(in), w, old_bias, true);
  if (!y_pre.ok()) return y_pre.status();
  absl::StatusOr<graph::Tensor> yq_pre = Output(node, xq, c.wq, old_bias, true);
  if (!yq_pre.ok()) return yq_pre.status();
  const std::vector<double> shift =
      BiasShift(*y_pre, *yq_pre, node.attrs.activation,
                OutputChannelAxis(node, y_pre->shape.size()));
  const int64_t m = static_cast<int64_t>(shift.size());
  graph::Tensor bias{{m}, std::vector<float>(m, 0.0f)};
  const bool gemm = node.op == graph::Op::kGemm;
  if (node.inputs.size() > 2) {
    const graph::Tensor& old = g.constants.at(node.inputs[2]);
    if (old.size() != m && old.size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "layer '", node.name, "': bias of ", old.size(), " values for ", m,
          " outputs cannot be corrected per channel"));
    }
    const float beta = gemm ? node.attrs.beta : 1.0f;
    for (int64_t k = 0; k < m; ++k) {
      bias.data[k] = beta * old.data[old.size() == 1 ? 0 : k];
    }
  }
  double bias_shift = 0.0;
  for (int64_t k = 0; k < m; ++k) {
    bias.data[k] += static_cast<float>(shift[k]);
    bias_shift += std::fabs(shift[k]) / m;
  }
  const std::string name = absl::StrCat(node.name, "/corrected_bias");
  g.constants[name] = std::move(bias);
  mutable_node.inputs.resize(2);
  mutable_node.inputs.push_back(name);
  if (gemm) mutable_node.attrs.beta = 1.0f;
  return bias_shift;
}

void Fitter::Report(const graph::Node& node, const LayerPlan& plan,
                    const InputChoice& input, const Candidate& c,
                    const graph::Tensor& yq, double bias_shift,
                    esb::v1::LayerReport& report) const {
  const graph::Tensor& y_ref = fp_.at(node.outputs[0]);
  const graph::Tensor& w = fitted_.graph.constants.at(node.inputs[1]);
  double signal = 0.0, noise = 0.0;
  int64_t clipped = 0;
  const int waxis = graph::WeightChannelAxis(node);
  int64_t inner = 1;
  for (size_t d = waxis + 1; d < w.shape.size(); ++d) inner *= w.shape[d];
  for (size_t i = 0; i < w.data.size(); ++i) {
    const double d = static_cast<double>(w.data[i]) - c.wq.data[i];
    signal += static_cast<double>(w.data[i]) * w.data[i];
    noise += d * d;
    const float a = c.weight_alpha[(i / inner) % w.shape[waxis]];
    if (std::fabs(w.data[i] / a) > c.wf.max_level()) ++clipped;
  }
  const double y_energy = SumSquares(y_ref);
  double out_err = 0.0;
  for (size_t i = 0; i < y_ref.data.size(); ++i) {
    const double d = static_cast<double>(y_ref.data[i]) - yq.data[i];
    out_err += d * d;
  }
  const Format& af = input.format;
  report.set_name(node.name);
  const absl::string_view op = graph::OpName(node.op);
  report.set_op(op.data(), op.size());
  auto* wfs = report.mutable_weight_format();
  wfs->set_bits(c.wf.bits());
  wfs->set_sb(c.wf.sb());
  wfs->set_signed_(true);
  auto* afs = report.mutable_input_format();
  afs->set_bits(af.bits());
  afs->set_sb(af.sb());
  afs->set_signed_(af.is_signed());
  report.set_weight_alpha_min(
      *std::min_element(c.weight_alpha.begin(), c.weight_alpha.end()));
  report.set_weight_alpha_max(
      *std::max_element(c.weight_alpha.begin(), c.weight_alpha.end()));
  report.set_input_alpha(c.act_alpha);
  report.set_weight_sqnr_db(noise > 0 ? 10 * std::log10(signal / noise)
                                      : 999.0);
  report.set_weight_clip_pct(100.0 * clipped / w.data.size());
  report.set_input_clip_pct(
      100.0 * HistogramError(af, input.hist, c.act_alpha).clip_fraction());
  const int64_t batch = y_ref.shape.empty() ? 1 : y_ref.shape[0];
  report.set_macs(static_cast<int64_t>(y_ref.data.size()) / batch *
                  graph::MacsPerOutput(node, w));
  report.set_output_error(y_energy > 0 ? out_err / y_energy : 0.0);
  report.set_output_sqnr_db(out_err > 0 ? 10 * std::log10(y_energy / out_err)
                                        : 999.0);
  report.set_edge(plan.edge);
  report.set_bias_shift(bias_shift);
}

absl::Status Fitter::FitLayer(const graph::Node& node, bool edge) {
  absl::StatusOr<LayerPlan> plan = PlanLayer(settings_, node.name, edge);
  if (!plan.ok()) return plan.status();
  absl::StatusOr<InputChoice> input = InputFormat(node, *plan);
  if (!input.ok()) return input.status();
  if (plan->act_sb_auto) {
    if (absl::Status s = ChooseInputSb(node, *plan, *input); !s.ok()) return s;
  }

  // Each weight format fitted; the lowest output error wins.
  std::vector<Candidate> candidates;
  for (const Format& wf : plan->weight_formats) {
    absl::StatusOr<Candidate> c =
        FitFormat(node, wf, input->format, input->start);
    if (!c.ok()) return c.status();
    candidates.push_back(*std::move(c));
  }
  size_t best = 0;
  for (size_t i = 1; i < candidates.size(); ++i) {
    if (candidates[i].error < candidates[best].error) best = i;
  }
  const Candidate& c = candidates[best];
  esb::v1::LayerReport report;
  if (candidates.size() > 1) {
    std::vector<std::string> others;
    for (const Candidate& o : candidates) {
      others.push_back(absl::StrFormat("sb %d: %.4g", o.wf.sb(), o.error));
    }
    report.set_sb_reason(
        absl::StrCat("lowest output error (sum of squares) among ",
                     absl::StrJoin(others, ", "), input->reason));
  }

  const graph::Tensor xq =
      FakeQuantInput(input->format, c.act_alpha, qs_.at(node.inputs[0]));
  double bias_shift = 0.0;
  if (settings_.dda == DdaRule::kOutput && node.op != graph::Op::kMatMul) {
    absl::StatusOr<double> shift = CorrectBias(node, c, xq);
    if (!shift.ok()) return shift.status();
    bias_shift = *shift;
  }
  const graph::Graph& g = fitted_.graph;
  const graph::Node& final_node =
      *std::find_if(g.nodes.begin(), g.nodes.end(),
                    [&](const graph::Node& n) { return n.name == node.name; });
  const graph::Tensor* final_bias = final_node.inputs.size() > 2
                                        ? &g.constants.at(final_node.inputs[2])
                                        : nullptr;
  absl::StatusOr<graph::Tensor> yq =
      Output(final_node, xq, c.wq, final_bias, false);
  if (!yq.ok()) return yq.status();

  Report(node, *plan, *input, c, *yq, bias_shift, report);
  fitted_.reports.push_back(std::move(report));
  fitted_.layers.emplace(
      node.name, LayerQuant{c.wf, c.weight_alpha, input->format, c.act_alpha});
  qs_[node.outputs[0]] = *std::move(yq);
  return absl::OkStatus();
}

absl::StatusOr<FittedModel> Fitter::Run(const graph::Tensor& sample) {
  const graph::Graph& g = fitted_.graph;
  if (g.inputs.size() != 1) {
    return absl::InvalidArgumentError("fitting needs a single-input model");
  }
  fp_[g.inputs[0].name] = sample;
  qs_[g.inputs[0].name] = sample;
  // Readers left per value, to free activations after their last use.
  std::map<std::string, int> readers;
  for (const graph::Node& n : g.nodes) {
    for (const std::string& in : n.inputs) ++readers[in];
  }
  std::vector<std::string> quantized;
  for (const graph::Node& n : g.nodes) {
    if (graph::IsQuantizedOp(n.op)) quantized.push_back(n.name);
  }
  int64_t done = 0;
  // Nodes are copied: FitLayer may rewrite the node in the graph.
  const std::vector<graph::Node> nodes = g.nodes;
  for (const graph::Node& node : nodes) {
    if (progress_ != nullptr && progress_->Cancelled()) {
      return absl::CancelledError("fitting cancelled");
    }
    absl::StatusOr<std::vector<graph::Tensor>> fp = runner_.Run(node, fp_);
    if (!fp.ok()) return fp.status();
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      fp_[node.outputs[i]] = std::move((*fp)[i]);
    }
    if (graph::IsQuantizedOp(node.op)) {
      const bool edge =
          node.name == quantized.front() || node.name == quantized.back();
      if (absl::Status s = FitLayer(node, edge); !s.ok()) return s;
      ++done;
      if (progress_ != nullptr) {
        progress_->OnProgress({esb::v1::STAGE_FIT, done,
                               static_cast<int64_t>(quantized.size()),
                               node.name});
      }
    } else {
      absl::StatusOr<std::vector<graph::Tensor>> q = runner_.Run(node, qs_);
      if (!q.ok()) return q.status();
      for (size_t i = 0; i < node.outputs.size(); ++i) {
        qs_[node.outputs[i]] = std::move((*q)[i]);
      }
    }
    runner_.Forget(node.name);  // Each node runs once per stream.
    for (const std::string& in : node.inputs) {
      if (--readers[in] == 0) {
        fp_.erase(in);
        qs_.erase(in);
      }
    }
  }
  return std::move(fitted_);
}

}  // namespace

absl::StatusOr<FittedModel> FitModel(
    const graph::Graph& graph,
    const std::map<std::string, ActivationStats>& stats,
    const graph::Tensor& sample, const JobSettings& settings, int threads,
    ProgressSink* progress) {
  Fitter fitter(graph, stats, settings, threads, progress);
  return fitter.Run(sample);
}

}  // namespace esb::pipeline
