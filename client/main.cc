// esbctl: the command-line client of ESB.
//
// Flags are parsed here and nowhere else: the command table below says
// which flags each command takes; each command checks its flags into an
// options struct and runs through the client library. Mistakes found while
// checking exit 2; everything that fails once the command runs (unreadable
// or corrupt files included) exits 1.
#include <cstdint>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "client/agent_commands.h"
#include "client/command_line.h"
#include "client/eval.h"
#include "client/fit.h"
#include "client/levels.h"
#include "client/output.h"
#include "client/overrides.h"
#include "client/quantize.h"
#include "client/remote_commands.h"
#include "core/cli/budget_flags.h"
#include "core/data/dataset.h"
#include "core/data/normalize.h"
#include "core/pipeline/config.h"
#include "core/runtime/executor.h"
#include "google/protobuf/util/json_util.h"

ABSL_FLAG(int, bits, esb::pipeline::JobSettings().weight_bits,
          "Bits b of the format, 2..8 (sign included).");
ABSL_FLAG(std::string, sb, "2",
          "Significant bits per value: a multiply costs sb shift-adds.");
ABSL_FLAG(bool, unsigned, false,
          "Unsigned format (after ReLU): all bits hold magnitude.");
ABSL_FLAG(bool, json, false, "Print one JSON object instead of text.");
ABSL_FLAG(std::optional<std::string>, dda, std::nullopt, "DDA rule.");
ABSL_FLAG(int, axis, 0,
          "Channel axis of per-channel scales (0: output channels of "
          "Conv/Gemm weights; negative counts from the end).");
ABSL_FLAG(bool, per_tensor, false, "One scale for the whole tensor.");
ABSL_FLAG(int, rows, 8, "Per-channel rows printed in text mode.");
ABSL_FLAG(std::string, images, "",
          "Images: IDX (gzipped or not), .npy (float32 NCHW fed as is, or "
          "uint8), a folder of PNG/JPEG images, or a .tar of such a folder.");
ABSL_FLAG(std::string, labels, "",
          "Labels matching the images: IDX labels or text with one integer "
          "per line; not needed for a folder with one subfolder per class.");
ABSL_FLAG(std::optional<int64_t>, limit, std::nullopt,
          "Use the first N images only.");
ABSL_FLAG(std::optional<int>, batch, std::nullopt,
          "Images per inference call (a fixed-batch model uses its own).");
ABSL_FLAG(std::optional<int>, threads, std::nullopt, "CPU threads.");
ABSL_FLAG(std::string, mean, "",
          "Input mean, one value or one per channel, comma separated.");
ABSL_FLAG(std::string, std, "", "Input std, like --mean.");
ABSL_FLAG(std::string, input, "",
          "Input .npy: float32 NCHW fed as is, or uint8 images normalized.");
ABSL_FLAG(std::string, output, "", "Output .npy of the first output.");
ABSL_FLAG(std::string, precision, "fp32",
          "'fp32', or 'esb' (weights --bits/--sb, activations "
          "--act-bits/--act-sb).");
ABSL_FLAG(int, act_bits, esb::pipeline::JobSettings().act_bits,
          "Activation bits.");
ABSL_FLAG(std::optional<int>, act_sb, std::nullopt,
          "Activation significant bits.");
ABSL_FLAG(std::string, calib, "",
          "Images that fit the activation scales: IDX, .npy, a folder of "
          "PNG/JPEG images or a .tar of one.");
ABSL_FLAG(int64_t, max_tensor_elements,
          esb::graph::ImportOptions().max_tensor_elements,
          "Import budget: the largest tensor a model may hold or compute at "
          "batch 1, in elements; larger ones are refused.");
ABSL_FLAG(int64_t, calib_count, esb::pipeline::JobSettings().calib_count,
          "Calibration images used, 1..1000000.");
ABSL_FLAG(bool, quiet, false, "No progress output.");
ABSL_FLAG(std::string, o, "",
          "Output folder for model.esb.onnx, model.esbm and report.json.");
ABSL_FLAG(std::string, eval, "",
          "Images to measure top-1 before and after: IDX, .npy, a folder of "
          "PNG/JPEG images or a .tar of one (with --labels, unless it has one "
          "subfolder per class).");
ABSL_FLAG(std::optional<int>, max_sb, std::nullopt,
          "With --sb auto: at most this many shift-adds per multiply.");
ABSL_FLAG(std::string, method, "esb",
          "'esb', or the baselines 'uniform' and 'pot' (power of two).");
ABSL_FLAG(std::string, scale_rule, "dda",
          "'dda' or 'minmax' (baseline scales).");
ABSL_FLAG(bool, all_layers, false,
          "Quantize the first and last layers like the rest.");
ABSL_FLAG(std::optional<int>, edge_bits, std::nullopt,
          "Bits of the first and last layers (without --all-layers).");
ABSL_FLAG(uint64_t, seed, 0, "Picks the calibration images.");
ABSL_FLAG(std::string, override, "",
          "Per-layer precision, e.g. 'conv1:bits=8:sb=7;fc:act_bits=8'.");

namespace {

using esb::client::CommandSpec;
using esb::client::Fail;
using esb::client::FlagUse;
using esb::client::PrintJson;
using esb::client::Usage;

// The job's defaults come from core/pipeline/config.h.
const int kActSbDefault = esb::pipeline::JobSettings().act_sb;

// The flags of --precision esb, shared by run and eval.
std::vector<FlagUse> InferenceFlags() {
  return {
      {"precision", "fp32|esb"},
      {"bits", "N", "--precision esb: weight bits."},
      {"sb", "N", "--precision esb: weight significant bits."},
      {"act_bits", "N", "--precision esb: activation bits."},
      {"act_sb", "N", "--precision esb: activation significant bits.", "2"},
      {"calib", "IMAGES",
       "--precision esb: images (IDX, .npy, image folder or .tar) that fit "
       "the activation scales "
       "(required with it)."},
      {"calib_count", "N", "--precision esb: calibration images used."},
      {"batch", "N", nullptr, "64"},
      {"max_tensor_elements", "N"},
      {"max_arena_bytes", "SIZE"},
      {"max_plan_bytes", "SIZE"},
      {"threads", "N", nullptr, "every core"},
      {"mean", "M", nullptr, "the model's input_mean metadata, else none"},
      {"std", "S", nullptr, "the model's input_std metadata, else none"},
      {"quiet", ""},
  };
}

// The flags of quantize, which submit takes too.
std::vector<FlagUse> QuantizeFlags() {
  return {{"calib", "IMAGES",
           "Images to calibrate on: IDX, .npy, a PNG/JPEG folder or a .tar "
           "of one.",
           nullptr, true},
          {"o", "OUTDIR", nullptr, nullptr, true},
          {"bits", "N", "Weight bits, 2..8 (sign included)."},
          {"sb", "N|auto",
           "Weight significant bits; auto: DDA picks them per layer, at most "
           "--max-sb."},
          {"max_sb", "N", nullptr, "bits - 1"},
          {"act_bits", "N"},
          {"act_sb", "N", nullptr, "2; per layer with --sb auto"},
          {"calib_count", "N"},
          {"max_tensor_elements", "N"},
          {"max_arena_bytes", "SIZE"},
          {"max_plan_bytes", "SIZE"},
          {"seed", "N"},
          {"dda", "output|mse|gaussian",
           "output: scales scored by each layer's output error, with bias "
           "correction; mse; gaussian.",
           "output"},
          {"method", "esb|uniform|pot"},
          {"scale_rule", "dda|minmax"},
          {"per_tensor", "", "One weight scale per tensor."},
          {"all_layers", ""},
          {"edge_bits", "N", nullptr, "8"},
          {"override", "SPEC"},
          {"eval", "IMAGES"},
          {"labels", "LABELS",
           "Labels matching --eval (IDX, or text with one integer per line); "
           "not needed when --eval has one subfolder per class."},
          {"limit", "N", "Measure on the first N --eval images only.",
           "every image"},
          {"threads", "N", nullptr, "every core"},
          {"mean", "M", nullptr, "the model's input_mean metadata, else none"},
          {"std", "S", nullptr, "the model's input_std metadata, else none"},
          {"quiet", ""},
          {"json", "", "Print the report as one JSON object."}};
}

const std::vector<CommandSpec>& Commands() {
  static const std::vector<CommandSpec>* commands = [] {
    auto* c = new std::vector<CommandSpec>;
    c->push_back(
        {"levels",
         "",
         0,
         "The level set of an ESB format: levels (units of alpha), "
         "integer view, codes, and whether it fits int8.",
         {{"bits", "N"}, {"sb", "N"}, {"unsigned", ""}, {"json", ""}}});
    c->push_back({"fit",
                  "TENSOR.npy",
                  1,
                  "DDA scales of a float32 weight tensor: alpha, MSE, SQNR "
                  "and clipping.",
                  {{"bits", "N"},
                   {"sb", "N"},
                   {"unsigned", ""},
                   {"dda", "mse|gaussian",
                    "mse: the scale minimising the error on the values; "
                    "gaussian: the closed form.",
                    "mse"},
                   {"axis", "N"},
                   {"per_tensor", ""},
                   {"rows", "N"},
                   {"json", ""}}});
    CommandSpec run{"run",
                    "MODEL.onnx",
                    1,
                    "A model on CPU over every item of an .npy input, "
                    "writing the first output as .npy.",
                    {{"input", "X.npy", nullptr, nullptr, true},
                     {"output", "Y.npy", nullptr, nullptr, true}}};
    for (FlagUse& f : InferenceFlags()) run.flags.push_back(f);
    c->push_back(run);
    CommandSpec eval{"eval",
                     "MODEL.onnx",
                     1,
                     "Top-1 accuracy and throughput on labelled images (IDX, "
                     ".npy, a PNG/JPEG folder or a .tar of one).",
                     {{"images", "IMAGES", nullptr, nullptr, true},
                      {"labels", "LABELS", nullptr,
                       "the class subfolders of an image folder or .tar"},
                      {"limit", "N", nullptr, "every image"}}};
    for (FlagUse& f : InferenceFlags()) eval.flags.push_back(f);
    eval.flags.push_back({"json", ""});
    c->push_back(eval);
    c->push_back(
        {"quantize", "MODEL.onnx", 1,
         "Quantize a model: calibrate, fit ESB formats and scales, write "
         "model.esb.onnx, model.esbm and report.json.",
         QuantizeFlags()});
    for (CommandSpec& spec : esb::client::RemoteCommands(QuantizeFlags())) {
      c->push_back(std::move(spec));
    }
    for (CommandSpec& spec : esb::client::AgentCommands()) {
      c->push_back(std::move(spec));
    }
    return c;
  }();
  return *commands;
}

absl::Status CheckRange(const std::string& flag, int64_t value, int64_t lo,
                        int64_t hi) {
  if (value >= lo && value <= hi) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(esb::client::FlagSpelling(flag), " ", value,
                   " is out of range [", lo, ", ", hi, "]"));
}

absl::StatusOr<int> SbFromFlag() {
  int sb;
  if (!absl::SimpleAtoi(absl::GetFlag(FLAGS_sb), &sb)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--sb '", absl::GetFlag(FLAGS_sb), "' is not a number"));
  }
  return sb;
}

absl::StatusOr<esb::Format> FormatFromFlags() {
  absl::StatusOr<int> sb = SbFromFlag();
  if (!sb.ok()) return sb.status();
  return esb::Format::Create(absl::GetFlag(FLAGS_bits), *sb,
                             !absl::GetFlag(FLAGS_unsigned));
}

int Levels(const esb::client::CommandLine&) {
  auto format = FormatFromFlags();
  if (!format.ok()) return Usage(format.status());
  const esb::v1::LevelsReport report = esb::client::BuildLevelsReport(*format);
  if (absl::GetFlag(FLAGS_json)) return PrintJson(report);
  std::cout << esb::client::LevelsText(report);
  return 0;
}

int Fit(const esb::client::CommandLine& line) {
  auto format = FormatFromFlags();
  if (!format.ok()) return Usage(format.status());
  auto mode = esb::ParseDdaMode(absl::GetFlag(FLAGS_dda).value_or("mse"));
  if (!mode.ok()) return Usage(mode.status());
  if (absl::Status s =
          CheckRange("rows", absl::GetFlag(FLAGS_rows), 0, 1 << 20);
      !s.ok()) {
    return Usage(s);
  }
  esb::client::FitOptions options;
  options.path = line.args[0];
  options.dda.mode = *mode;
  options.per_channel = !absl::GetFlag(FLAGS_per_tensor);
  options.axis = absl::GetFlag(FLAGS_axis);
  auto fit = esb::client::FitTensorFile(*format, options);
  if (!fit.ok()) return Fail(fit.status());
  if (absl::GetFlag(FLAGS_json)) return PrintJson(*fit);
  std::cout << esb::client::FitText(*fit, absl::GetFlag(FLAGS_rows));
  return 0;
}

// run and eval: how the model runs, checked before anything is read.
absl::Status InferenceFromFlags(esb::client::InferenceOptions* options) {
  options->batch = absl::GetFlag(FLAGS_batch).value_or(64);
  if (absl::Status s = CheckRange("batch", options->batch, 1, 1 << 16);
      !s.ok()) {
    return s;
  }
  if (const std::optional<int> threads = absl::GetFlag(FLAGS_threads)) {
    if (absl::Status s = CheckRange("threads", *threads, 1, 1024); !s.ok()) {
      return s;
    }
    options->threads = *threads;
  }
  options->import.max_tensor_elements =
      absl::GetFlag(FLAGS_max_tensor_elements);
  if (absl::Status s =
          CheckRange("max_tensor_elements", options->import.max_tensor_elements,
                     1, int64_t{1} << 40);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<esb::runtime::MemoryBudget> budget =
      esb::cli::MemoryBudgetFromFlags();
  if (!budget.ok()) return budget.status();
  options->budget = *budget;
  options->mean_csv = absl::GetFlag(FLAGS_mean);
  options->std_csv = absl::GetFlag(FLAGS_std);
  if (absl::StatusOr<esb::data::Normalization> norm =
          esb::data::ParseNormalization(options->mean_csv, options->std_csv);
      !norm.ok()) {
    return norm.status();
  }
  options->quiet = absl::GetFlag(FLAGS_quiet);
  const std::string precision = absl::GetFlag(FLAGS_precision);
  if (precision != "fp32" && precision != "esb") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--precision '", precision, "' is unknown; use fp32 or esb"));
  }
  options->esb = precision == "esb";
  if (!options->esb) return absl::OkStatus();
  esb::client::EsbSettings& s = options->esb_settings;
  s.bits = absl::GetFlag(FLAGS_bits);
  absl::StatusOr<int> sb = SbFromFlag();
  if (!sb.ok()) return sb.status();
  s.sb = *sb;
  if (absl::StatusOr<esb::Format> f = esb::Format::Create(s.bits, s.sb, true);
      !f.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("weights (--bits/--sb): ", f.status().message()));
  }
  s.act_bits = absl::GetFlag(FLAGS_act_bits);
  s.act_sb = absl::GetFlag(FLAGS_act_sb).value_or(kActSbDefault);
  if (!esb::Format::Create(s.act_bits, s.act_sb, true).ok() &&
      !esb::Format::Create(s.act_bits, s.act_sb, false).ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "activations (--act-bits/--act-sb): sb = ", s.act_sb,
        " is invalid for ", s.act_bits, " bits; valid: signed {",
        absl::StrJoin(esb::Format::ValidSb(s.act_bits, true), ", "),
        "}, unsigned {",
        absl::StrJoin(esb::Format::ValidSb(s.act_bits, false), ", "), "}"));
  }
  s.calib_path = absl::GetFlag(FLAGS_calib);
  if (s.calib_path.empty()) {
    return absl::InvalidArgumentError(
        "--precision esb needs --calib IMAGES to fit the activation scales");
  }
  s.calib_count = absl::GetFlag(FLAGS_calib_count);
  return CheckRange("calib_count", s.calib_count, 1, 1000000);
}

int Eval(const esb::client::CommandLine& line) {
  esb::client::EvalOptions options;
  options.model_path = line.args[0];
  options.images_path = absl::GetFlag(FLAGS_images);
  options.labels_path = absl::GetFlag(FLAGS_labels);
  if (const std::optional<int64_t> limit = absl::GetFlag(FLAGS_limit)) {
    if (absl::Status s = CheckRange("limit", *limit, 1, INT64_MAX); !s.ok()) {
      return Usage(s);
    }
    options.limit = *limit;
  }
  if (absl::Status s = InferenceFromFlags(&options.inference); !s.ok()) {
    return Usage(s);
  }
  auto report = esb::client::Evaluate(options);
  if (!report.ok()) return Fail(report.status());
  if (absl::GetFlag(FLAGS_json)) return PrintJson(*report);
  std::cout << absl::StrFormat(
      "%s (%s): top-1 %.2f%% on %d images, %.1f images/s (batch %d)%s\n",
      report->model(), report->precision(), 100 * report->top1(),
      report->images(), report->images_per_second(), report->batch(),
      report->esb_path().empty() ? "" : ", " + report->esb_path());
  return 0;
}

int Run(const esb::client::CommandLine& line) {
  esb::client::RunOptions options;
  options.model_path = line.args[0];
  options.input_path = absl::GetFlag(FLAGS_input);
  options.output_path = absl::GetFlag(FLAGS_output);
  if (absl::Status s = InferenceFromFlags(&options.inference); !s.ok()) {
    return Usage(s);
  }
  auto summary = esb::client::RunModel(options);
  if (!summary.ok()) return Fail(summary.status());
  std::cout << *summary << "\n";
  return 0;
}

// The job's inputs and config from the flags, checked as the job would.
absl::Status QuantizeFromFlags(esb::pipeline::JobInputs* in,
                               esb::v1::JobConfig* config) {
  in->calib_images = absl::GetFlag(FLAGS_calib);
  in->eval_images = absl::GetFlag(FLAGS_eval);
  in->eval_labels = absl::GetFlag(FLAGS_labels);
  in->output_dir = absl::GetFlag(FLAGS_o);
  if (in->eval_images.empty() && !in->eval_labels.empty()) {
    return absl::InvalidArgumentError("--labels applies to --eval only");
  }
  if (!in->eval_images.empty() && in->eval_labels.empty()) {
    // Only an image folder (or its tar) can carry labels, in its class
    // subfolders; the job checks that it has them.
    absl::StatusOr<esb::data::Dataset::Format> format =
        esb::data::Dataset::Detect(in->eval_images);
    if (!format.ok()) return format.status();
    if (*format != esb::data::Dataset::Format::kImageFolder &&
        *format != esb::data::Dataset::Format::kImageTar) {
      return absl::InvalidArgumentError(
          "--eval and --labels go together, unless --eval is an image folder "
          "(or .tar) with one subfolder per class");
    }
  }
  if (const std::optional<int64_t> limit = absl::GetFlag(FLAGS_limit)) {
    if (in->eval_images.empty()) {
      return absl::InvalidArgumentError("--limit applies to --eval only");
    }
    if (absl::Status s = CheckRange("limit", *limit, 1, INT64_MAX); !s.ok()) {
      return s;
    }
    in->eval_limit = *limit;
  }
  if (const std::optional<int> threads = absl::GetFlag(FLAGS_threads)) {
    if (absl::Status s = CheckRange("threads", *threads, 1, 1024); !s.ok()) {
      return s;
    }
    in->threads = *threads;
  }
  config->set_weight_bits(absl::GetFlag(FLAGS_bits));
  if (absl::GetFlag(FLAGS_sb) == "auto") {
    config->set_sb_auto(true);
  } else {
    absl::StatusOr<int> sb = SbFromFlag();
    if (!sb.ok()) return sb.status();
    config->set_weight_sb(*sb);
  }
  if (const std::optional<int> max_sb = absl::GetFlag(FLAGS_max_sb)) {
    config->set_max_sb(*max_sb);
  }
  config->set_act_bits(absl::GetFlag(FLAGS_act_bits));
  if (const std::optional<int> act_sb = absl::GetFlag(FLAGS_act_sb)) {
    config->set_act_sb(*act_sb);
  }
  config->set_granularity(absl::GetFlag(FLAGS_per_tensor)
                              ? esb::v1::GRANULARITY_PER_TENSOR
                              : esb::v1::GRANULARITY_PER_CHANNEL);
  if (const std::optional<std::string> name = absl::GetFlag(FLAGS_dda)) {
    absl::StatusOr<esb::v1::DdaRule> dda = esb::pipeline::ParseDdaRule(*name);
    if (!dda.ok()) return dda.status();
    config->set_dda(*dda);
  }
  absl::StatusOr<esb::v1::Method> method =
      esb::pipeline::ParseMethod(absl::GetFlag(FLAGS_method));
  if (!method.ok()) return method.status();
  config->set_method(*method);
  absl::StatusOr<esb::v1::ScaleRule> scale_rule =
      esb::pipeline::ParseScaleRule(absl::GetFlag(FLAGS_scale_rule));
  if (!scale_rule.ok()) return scale_rule.status();
  config->set_scale_rule(*scale_rule);
  if (const std::optional<int> edge_bits = absl::GetFlag(FLAGS_edge_bits)) {
    config->set_edge_bits(*edge_bits);
  }
  config->set_all_layers(absl::GetFlag(FLAGS_all_layers));
  const int64_t calib_count = absl::GetFlag(FLAGS_calib_count);
  if (absl::Status s = CheckRange("calib_count", calib_count, 1, 1000000);
      !s.ok()) {
    return s;
  }
  config->set_calib_count(static_cast<int32_t>(calib_count));
  config->set_seed(absl::GetFlag(FLAGS_seed));
  in->import.max_tensor_elements = absl::GetFlag(FLAGS_max_tensor_elements);
  if (absl::Status s =
          CheckRange("max_tensor_elements", in->import.max_tensor_elements, 1,
                     int64_t{1} << 40);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<esb::runtime::MemoryBudget> budget =
      esb::cli::MemoryBudgetFromFlags();
  if (!budget.ok()) return budget.status();
  in->budget = *budget;
  if (absl::Status s =
          esb::client::ParseOverrides(absl::GetFlag(FLAGS_override), config);
      !s.ok()) {
    return s;
  }
  auto norm = esb::data::ParseNormalization(absl::GetFlag(FLAGS_mean),
                                            absl::GetFlag(FLAGS_std));
  if (!norm.ok()) return norm.status();
  for (float m : norm->mean) config->add_mean(m);
  for (float s : norm->std) config->add_std(s);
  return esb::pipeline::ResolveConfig(*config).status();
}

int QuantizeCommand(const esb::client::CommandLine& line) {
  esb::pipeline::JobInputs in;
  in.model_path = line.args[0];
  esb::v1::JobConfig config;
  if (absl::Status s = QuantizeFromFlags(&in, &config); !s.ok()) {
    return Usage(s);
  }
  auto result = esb::client::Quantize(in, config, absl::GetFlag(FLAGS_quiet));
  if (!result.ok()) return Fail(result.status());
  if (absl::GetFlag(FLAGS_json)) return PrintJson(result->report);
  std::cout << esb::client::QuantizeSummary(*result);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Debian's absl checks every Mutex acquisition for lock-order cycles;
  // the tests keep that check, the binaries skip its cost on every call.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const std::vector<CommandSpec>& commands = Commands();
  if (argc < 2) {
    std::cerr << esb::client::GeneralHelp(commands);
    return 2;
  }
  absl::StatusOr<esb::client::CommandLine> line =
      esb::client::ParseCommandLine(commands, absl::MakeSpan(argv, argc));
  if (!line.ok()) {
    if (line.status().code() != absl::StatusCode::kInvalidArgument) {
      return Fail(line.status());
    }
    return Usage(line.status());
  }
  if (line->help) {
    std::cout << (line->command == nullptr
                      ? esb::client::GeneralHelp(commands)
                      : esb::client::CommandHelp(*line->command));
    return 0;
  }
  const std::string command = line->command->name;
  if (esb::client::IsRemoteCommand(command)) {
    return esb::client::RunRemoteCommand(*line, QuantizeFromFlags);
  }
  if (esb::client::IsAgentCommand(command)) {
    return esb::client::RunAgentCommand(*line);
  }
  if (command == "levels") return Levels(*line);
  if (command == "fit") return Fit(*line);
  if (command == "eval") return Eval(*line);
  if (command == "run") return Run(*line);
  return QuantizeCommand(*line);
}
