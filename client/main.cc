// esbctl: the command-line client of ESB.
//
// Flags are parsed here and nowhere else; each command gets an options
// struct and runs through the client library.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/eval.h"
#include "client/fit.h"
#include "client/levels.h"
#include "google/protobuf/util/json_util.h"

ABSL_FLAG(int, bits, 4,
          "Bit width b of the format, 2..8 (includes the sign "
          "bit for signed formats).");
ABSL_FLAG(int, sb, 2,
          "Significant bits per value: a multiply costs sb "
          "shift-adds. Valid values depend on --bits.");
ABSL_FLAG(bool, unsigned, false,
          "Unsigned format (activations after "
          "ReLU/ReLU6): all bits hold magnitude.");
ABSL_FLAG(bool, json, false, "Print one JSON object instead of text.");
ABSL_FLAG(std::string, dda, "mse",
          "fit: DDA mode, 'mse' (search the scale "
          "that minimises the error on the values) "
          "or 'gaussian' (closed form only).");
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
ABSL_FLAG(int, act_sb, 2,
          "run/eval --precision esb: activation "
          "significant bits.");
ABSL_FLAG(std::string, calib, "",
          "run/eval --precision esb: IDX images "
          "that fit the activation scales.");
ABSL_FLAG(int64_t, calib_count, 512,
          "run/eval --precision esb: "
          "calibration images used.");
ABSL_FLAG(bool, quiet, false, "No progress output.");

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

absl::StatusOr<esb::Format> FormatFromFlags() {
  return esb::Format::Create(absl::GetFlag(FLAGS_bits), absl::GetFlag(FLAGS_sb),
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
  auto mode = esb::ParseDdaMode(absl::GetFlag(FLAGS_dda));
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
  s.sb = absl::GetFlag(FLAGS_sb);
  s.act_bits = absl::GetFlag(FLAGS_act_bits);
  s.act_sb = absl::GetFlag(FLAGS_act_sb);
  s.calib_path = absl::GetFlag(FLAGS_calib);
  s.calib_count = absl::GetFlag(FLAGS_calib_count);
  return s;
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
  options.batch = absl::GetFlag(FLAGS_batch);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.mean_csv = absl::GetFlag(FLAGS_mean);
  options.std_csv = absl::GetFlag(FLAGS_std);
  options.quiet = absl::GetFlag(FLAGS_quiet);
  auto esb_settings = EsbFromFlags(&options.esb);
  if (!esb_settings.ok()) return Fail(esb_settings.status());
  options.esb_settings = *esb_settings;
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
  options.batch = absl::GetFlag(FLAGS_batch);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.mean_csv = absl::GetFlag(FLAGS_mean);
  options.std_csv = absl::GetFlag(FLAGS_std);
  options.quiet = absl::GetFlag(FLAGS_quiet);
  auto esb_settings = EsbFromFlags(&options.esb);
  if (!esb_settings.ok()) return Fail(esb_settings.status());
  options.esb_settings = *esb_settings;
  auto summary = esb::client::RunModel(options);
  if (!summary.ok()) return Fail(summary.status());
  std::cout << *summary << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  const std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() < 2) {
    std::cerr << kUsage << "\n";
    return 2;
  }
  const std::string command = args[1];
  if (command == "levels") return Levels(args);
  if (command == "fit") return Fit(args);
  if (command == "eval") return Eval(args);
  if (command == "run") return Run(args);
  if (command == "help") {
    std::cout << kUsage << "\n";
    return 0;
  }
  std::cerr << "esbctl: unknown command '" << command << "'\n\n"
            << kUsage << "\n";
  return 2;
}
