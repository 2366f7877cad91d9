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
  if (command == "help") {
    std::cout << kUsage << "\n";
    return 0;
  }
  std::cerr << "esbctl: unknown command '" << command << "'\n\n"
            << kUsage << "\n";
  return 2;
}
