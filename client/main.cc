// esbctl: the command-line client of ESB.
//
// Flags are parsed here and nowhere else; each command gets an options
// struct and runs through the client library.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "client/eval.h"
#include "client/fit.h"
#include "client/levels.h"
#include "client/quantize.h"
#include "core/data/normalize.h"
#include "core/pipeline/config.h"
#include "google/protobuf/util/json_util.h"

ABSL_FLAG(int, bits, 4,
          "Bit width b of the format, 2..8 (includes the sign "
          "bit for signed formats).");
ABSL_FLAG(std::string, sb, "2",
          "Significant bits per value: a multiply costs sb shift-adds. Valid "
          "values depend on --bits. quantize also takes 'auto' (DDA picks sb "
          "per layer, at most --max-sb).");
ABSL_FLAG(bool, unsigned, false,
          "Unsigned format (activations after "
          "ReLU/ReLU6): all bits hold magnitude.");
ABSL_FLAG(bool, json, false, "Print one JSON object instead of text.");
ABSL_FLAG(std::string, dda, "",
          "DDA rule. fit: 'mse' (default: the scale minimising the error on "
          "the values) or 'gaussian' (closed form). quantize: 'output' "
          "(default: scales scored by each layer's output error, with bias "
          "correction), 'mse' or 'gaussian'.");
ABSL_FLAG(int, axis, 0,
          "fit: channel axis for per-channel scales "
          "(0 = output channels of ONNX Conv/Gemm weights; "
          "negative counts from the end).");
ABSL_FLAG(bool, per_tensor, false, "fit: one scale for the whole tensor.");
ABSL_FLAG(int, rows, 8, "fit: per-channel rows printed in text mode.");
ABSL_FLAG(std::string, images, "",
          "eval: IDX images (gzipped or not), "
          "e.g. t10k-images-idx3-ubyte.gz.");
ABSL_FLAG(std::string, labels, "", "eval: IDX labels matching --images.");
ABSL_FLAG(int64_t, limit, -1, "eval: use the first N images only.");
ABSL_FLAG(int, batch, 64,
          "run/eval: images per inference call (a model "
          "with a fixed batch size uses its own).");
ABSL_FLAG(int, threads, 0, "run/eval: CPU threads; 0 uses every core.");
ABSL_FLAG(std::string, mean, "",
          "run/eval: input mean, one value or one "
          "per channel, comma separated. Default: "
          "the model's input_mean metadata, else "
          "none.");
ABSL_FLAG(std::string, std, "", "run/eval: input std, like --mean.");
ABSL_FLAG(std::string, input, "",
          "run: input .npy (float32 NCHW fed as is, "
          "or uint8 images normalized).");
ABSL_FLAG(std::string, output, "", "run: output .npy for the first output.");
ABSL_FLAG(std::string, precision, "fp32",
          "run/eval: 'fp32' or 'esb' "
          "(weights --bits/--sb, "
          "activations --act-bits/--act-sb).");
ABSL_FLAG(int, act_bits, 4, "run/eval --precision esb: activation bits.");
ABSL_FLAG(int, act_sb, 0,
          "quantize, run/eval --precision esb: activation significant "
          "bits (default 2; quantize --sb auto picks them per layer "
          "unless given).");
ABSL_FLAG(std::string, calib, "",
          "run/eval --precision esb: IDX images "
          "that fit the activation scales.");
ABSL_FLAG(int64_t, calib_count, 512,
          "run/eval --precision esb: "
          "calibration images used.");
ABSL_FLAG(bool, quiet, false, "No progress output.");
ABSL_FLAG(std::string, o, "",
          "quantize: output folder for model.esb.onnx, "
          "model.esbm and report.json.");
ABSL_FLAG(std::string, eval, "",
          "quantize: IDX images to measure top-1 "
          "before and after (with --labels).");
ABSL_FLAG(int, max_sb, 0,
          "quantize --sb auto: at most this many "
          "shift-adds per multiply (default bits - 1).");
ABSL_FLAG(std::string, method, "esb",
          "quantize: 'esb', or the baselines "
          "'uniform' and 'pot' (power of two).");
ABSL_FLAG(std::string, scale_rule, "dda",
          "quantize: 'dda' or 'minmax' "
          "(baseline scales).");
ABSL_FLAG(bool, all_layers, false,
          "quantize: quantize the first and last "
          "layers like the rest (default: they get "
          "--edge-bits).");
ABSL_FLAG(int, edge_bits, 8, "quantize: bits of the first and last layers.");
ABSL_FLAG(uint64_t, seed, 0, "quantize: picks the calibration images.");
ABSL_FLAG(std::string, override, "",
          "quantize: per-layer precision, e.g. "
          "'conv1:bits=8:sb=7;fc:act_bits=8'.");

namespace {

constexpr char kUsage[] = R"(esbctl: ESB quantization client

usage: esbctl <command> [flags] [args]

commands:
  levels            Print the level set of an ESB format: levels (units of
                    alpha), integer view, codes, and whether it fits int8.
                      esbctl levels --bits 4 --sb 2 [--unsigned] [--json]
  fit TENSOR.npy    Fit DDA scales to a float32 weight tensor and report
                    alpha, MSE, SQNR and clipping.
                      esbctl fit w.npy --bits 4 --sb 2 [--dda mse|gaussian]
                          [--axis 0 | --per-tensor] [--json]
  run MODEL.onnx    Run a model on CPU over every item of an .npy input.
                      esbctl run m.onnx --input x.npy --output y.npy
                          [--precision fp32|esb] [--batch 64] [--threads 0]
  quantize MODEL.onnx  Quantize a model: calibrate, fit ESB formats and
                    scales, write model.esb.onnx, model.esbm, report.json.
                      esbctl quantize m.onnx --sb 2 [--bits 4] [--act-bits 4]
                          [--act-sb 2] --calib train-images-idx3-ubyte.gz
                          [--calib-count 512] [--eval IMAGES --labels LABELS]
                          -o OUTDIR [--sb auto --max-sb 3] [--all-layers]
                          [--dda output|mse|gaussian] [--method esb|uniform|pot]
                          [--json]
  eval MODEL.onnx   Top-1 accuracy and throughput on labelled IDX images.
                      esbctl eval m.onnx --images t10k-images-idx3-ubyte.gz
                          --labels t10k-labels-idx1-ubyte.gz [--limit N]
                          [--batch 64] [--threads 0] [--mean M --std S]
                          [--precision esb --bits 4 --sb 2 --act-bits 4
                           --act-sb 2 --calib train-images-idx3-ubyte.gz]
                          [--json]

Exit status: 0 on success, 2 for invalid arguments, 1 for other errors.
Run 'esbctl --help' for every flag.)";

int ExitCode(const absl::Status& status) {
  return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

int Fail(const absl::Status& status) {
  std::cerr << "esbctl: " << status.message() << "\n";
  return ExitCode(status);
}

int PrintJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  auto status =
      google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    std::cerr << "esbctl: cannot render JSON: " << status.ToString() << "\n";
    return 1;
  }
  std::cout << json;
  return 0;
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

int Levels(const std::vector<char*>& args) {
  if (args.size() != 2) {
    return Fail(absl::InvalidArgumentError("levels takes no arguments"));
  }
  auto format = FormatFromFlags();
  if (!format.ok()) return Fail(format.status());
  const esb::v1::LevelsReport report = esb::client::BuildLevelsReport(*format);
  if (absl::GetFlag(FLAGS_json)) return PrintJson(report);
  std::cout << esb::client::LevelsText(report);
  return 0;
}

int Fit(const std::vector<char*>& args) {
  if (args.size() != 3) {
    return Fail(absl::InvalidArgumentError(
        "fit takes one argument, the tensor (.npy): esbctl fit W.npy"));
  }
  auto format = FormatFromFlags();
  if (!format.ok()) return Fail(format.status());
  const std::string dda = absl::GetFlag(FLAGS_dda);
  auto mode = esb::ParseDdaMode(dda.empty() ? "mse" : dda);
  if (!mode.ok()) return Fail(mode.status());
  esb::client::FitOptions options;
  options.path = args[2];
  options.dda.mode = *mode;
  options.per_channel = !absl::GetFlag(FLAGS_per_tensor);
  options.axis = absl::GetFlag(FLAGS_axis);
  auto fit = esb::client::FitTensorFile(*format, options);
  if (!fit.ok()) return Fail(fit.status());
  if (absl::GetFlag(FLAGS_json)) return PrintJson(*fit);
  std::cout << esb::client::FitText(*fit, absl::GetFlag(FLAGS_rows));
  return 0;
}

absl::StatusOr<esb::client::EsbSettings> EsbFromFlags(bool* esb) {
  const std::string precision = absl::GetFlag(FLAGS_precision);
  if (precision != "fp32" && precision != "esb") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--precision '", precision, "' is unknown; use fp32 or esb"));
  }
  *esb = precision == "esb";
  esb::client::EsbSettings s;
  s.bits = absl::GetFlag(FLAGS_bits);
  absl::StatusOr<int> sb = SbFromFlag();
  if (!sb.ok()) return sb.status();
  s.sb = *sb;
  s.act_bits = absl::GetFlag(FLAGS_act_bits);
  s.act_sb = absl::GetFlag(FLAGS_act_sb) != 0 ? absl::GetFlag(FLAGS_act_sb) : 2;
  s.calib_path = absl::GetFlag(FLAGS_calib);
  s.calib_count = absl::GetFlag(FLAGS_calib_count);
  return s;
}

absl::Status InferenceFromFlags(esb::client::InferenceOptions* options) {
  options->batch = absl::GetFlag(FLAGS_batch);
  options->threads = absl::GetFlag(FLAGS_threads);
  options->mean_csv = absl::GetFlag(FLAGS_mean);
  options->std_csv = absl::GetFlag(FLAGS_std);
  options->quiet = absl::GetFlag(FLAGS_quiet);
  auto esb_settings = EsbFromFlags(&options->esb);
  if (!esb_settings.ok()) return esb_settings.status();
  options->esb_settings = *esb_settings;
  return absl::OkStatus();
}

int Eval(const std::vector<char*>& args) {
  if (args.size() != 3) {
    return Fail(absl::InvalidArgumentError(
        "eval takes one argument, the model: esbctl eval MODEL.onnx "
        "--images I --labels L"));
  }
  esb::client::EvalOptions options;
  options.model_path = args[2];
  options.images_path = absl::GetFlag(FLAGS_images);
  options.labels_path = absl::GetFlag(FLAGS_labels);
  if (options.images_path.empty() || options.labels_path.empty()) {
    return Fail(absl::InvalidArgumentError(
        "eval needs --images and --labels (IDX files)"));
  }
  options.limit = absl::GetFlag(FLAGS_limit);
  if (absl::Status s = InferenceFromFlags(&options.inference); !s.ok()) {
    return Fail(s);
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

int Run(const std::vector<char*>& args) {
  if (args.size() != 3) {
    return Fail(absl::InvalidArgumentError(
        "run takes one argument, the model: esbctl run MODEL.onnx --input "
        "X.npy --output Y.npy"));
  }
  esb::client::RunOptions options;
  options.model_path = args[2];
  options.input_path = absl::GetFlag(FLAGS_input);
  options.output_path = absl::GetFlag(FLAGS_output);
  if (options.input_path.empty() || options.output_path.empty()) {
    return Fail(absl::InvalidArgumentError("run needs --input and --output"));
  }
  if (absl::Status s = InferenceFromFlags(&options.inference); !s.ok()) {
    return Fail(s);
  }
  auto summary = esb::client::RunModel(options);
  if (!summary.ok()) return Fail(summary.status());
  std::cout << *summary << "\n";
  return 0;
}

// 'conv1:bits=8:sb=7;fc:act_bits=8' -> overrides.
absl::Status ParseOverrides(const std::string& text,
                            esb::v1::JobConfig* config) {
  for (absl::string_view entry : absl::StrSplit(text, ';', absl::SkipEmpty())) {
    std::vector<std::string> parts = absl::StrSplit(entry, ':');
    esb::v1::LayerOverride* o = config->add_overrides();
    o->set_node(parts[0]);
    for (size_t i = 1; i < parts.size(); ++i) {
      std::vector<std::string> kv = absl::StrSplit(parts[i], '=');
      int value;
      if (kv.size() != 2 || !absl::SimpleAtoi(kv[1], &value)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--override '", entry, "': '", parts[i], "' is not key=number"));
      }
      if (kv[0] == "bits") {
        o->set_bits(value);
      } else if (kv[0] == "sb") {
        o->set_sb(value);
      } else if (kv[0] == "act_bits") {
        o->set_act_bits(value);
      } else if (kv[0] == "act_sb") {
        o->set_act_sb(value);
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("--override '", entry, "': key '", kv[0],
                         "' is unknown; valid: bits, sb, act_bits, act_sb"));
      }
    }
  }
  return absl::OkStatus();
}

int QuantizeCommand(const std::vector<char*>& args) {
  if (args.size() != 3) {
    return Fail(absl::InvalidArgumentError(
        "quantize takes one argument, the model: esbctl quantize MODEL.onnx "
        "--calib IMAGES -o OUTDIR"));
  }
  esb::pipeline::JobInputs in;
  in.model_path = args[2];
  in.calib_images = absl::GetFlag(FLAGS_calib);
  in.eval_images = absl::GetFlag(FLAGS_eval);
  in.eval_labels = absl::GetFlag(FLAGS_labels);
  in.eval_limit = absl::GetFlag(FLAGS_limit);
  in.output_dir = absl::GetFlag(FLAGS_o);
  if (in.output_dir.empty()) in.output_dir = absl::GetFlag(FLAGS_output);
  in.threads = absl::GetFlag(FLAGS_threads);
  if (in.calib_images.empty() || in.output_dir.empty()) {
    return Fail(absl::InvalidArgumentError(
        "quantize needs --calib IMAGES and -o OUTDIR"));
  }
  if (in.eval_images.empty() != in.eval_labels.empty()) {
    return Fail(absl::InvalidArgumentError("--eval and --labels go together"));
  }
  esb::v1::JobConfig config;
  config.set_weight_bits(absl::GetFlag(FLAGS_bits));
  if (absl::GetFlag(FLAGS_sb) == "auto") {
    config.set_sb_auto(true);
  } else {
    absl::StatusOr<int> sb = SbFromFlag();
    if (!sb.ok()) return Fail(sb.status());
    config.set_weight_sb(*sb);
  }
  if (absl::GetFlag(FLAGS_max_sb) > 0) {
    config.set_max_sb(absl::GetFlag(FLAGS_max_sb));
  }
  config.set_act_bits(absl::GetFlag(FLAGS_act_bits));
  // Unset, --sb auto picks each layer's input sb too.
  if (absl::GetFlag(FLAGS_act_sb) != 0) {
    config.set_act_sb(absl::GetFlag(FLAGS_act_sb));
  }
  config.set_granularity(absl::GetFlag(FLAGS_per_tensor)
                             ? esb::v1::GRANULARITY_PER_TENSOR
                             : esb::v1::GRANULARITY_PER_CHANNEL);
  if (!absl::GetFlag(FLAGS_dda).empty()) {
    auto dda = esb::pipeline::ParseDdaRule(absl::GetFlag(FLAGS_dda));
    if (!dda.ok()) return Fail(dda.status());
    config.set_dda(*dda);
  }
  auto method = esb::pipeline::ParseMethod(absl::GetFlag(FLAGS_method));
  if (!method.ok()) return Fail(method.status());
  config.set_method(*method);
  auto scale_rule =
      esb::pipeline::ParseScaleRule(absl::GetFlag(FLAGS_scale_rule));
  if (!scale_rule.ok()) return Fail(scale_rule.status());
  config.set_scale_rule(*scale_rule);
  if (!absl::GetFlag(FLAGS_all_layers)) {
    config.set_edge_bits(absl::GetFlag(FLAGS_edge_bits));
  }
  config.set_all_layers(absl::GetFlag(FLAGS_all_layers));
  if (absl::GetFlag(FLAGS_calib_count) < 1 ||
      absl::GetFlag(FLAGS_calib_count) > 1000000) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--calib-count ", absl::GetFlag(FLAGS_calib_count),
                     " is out of range [1, 1000000]")));
  }
  config.set_calib_count(
      static_cast<int32_t>(absl::GetFlag(FLAGS_calib_count)));
  config.set_seed(absl::GetFlag(FLAGS_seed));
  if (absl::Status s = ParseOverrides(absl::GetFlag(FLAGS_override), &config);
      !s.ok()) {
    return Fail(s);
  }
  auto norm = esb::data::ParseNormalization(absl::GetFlag(FLAGS_mean),
                                            absl::GetFlag(FLAGS_std));
  if (!norm.ok()) return Fail(norm.status());
  for (float m : norm->mean) config.add_mean(m);
  for (float s : norm->std) config.add_std(s);

  auto result = esb::client::Quantize(in, config, absl::GetFlag(FLAGS_quiet));
  if (!result.ok()) return Fail(result.status());
  if (absl::GetFlag(FLAGS_json)) return PrintJson(result->report);
  std::cout << esb::client::QuantizeSummary(*result);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  // Flags are spelled with dashes on the command line (--act-bits) and with
  // underscores in the code (act_bits): map the former onto the latter.
  std::vector<std::string> spelled(argv, argv + argc);
  std::vector<char*> argv_flags;
  for (std::string& arg : spelled) {
    if (arg.size() > 2 && arg.rfind("--", 0) == 0) {
      const size_t end = std::min(arg.find('='), arg.size());
      std::replace(arg.begin() + 2, arg.begin() + end, '-', '_');
    }
    argv_flags.push_back(arg.data());
  }
  const std::vector<char*> args = absl::ParseCommandLine(
      static_cast<int>(argv_flags.size()), argv_flags.data());
  if (args.size() < 2) {
    std::cerr << kUsage << "\n";
    return 2;
  }
  const std::string command = args[1];
  if (command == "levels") return Levels(args);
  if (command == "fit") return Fit(args);
  if (command == "eval") return Eval(args);
  if (command == "run") return Run(args);
  if (command == "quantize") return QuantizeCommand(args);
  if (command == "help") {
    std::cout << kUsage << "\n";
    return 0;
  }
  std::cerr << "esbctl: unknown command '" << command << "'\n\n"
            << kUsage << "\n";
  return 2;
}
