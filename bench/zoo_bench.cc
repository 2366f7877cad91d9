// Latency of one model on the CPU runtime, FP32 and ESB-int8, for the zoo
// table (bench/zoo.sh), measured the way bench/ort_run.mjs measures ONNX
// Runtime:
//
//   esb_zoo_bench --model M.onnx --input X.npy [--esbm model.esbm]
//                 --out DIR [--batches 1,8] [--threads 2] [--warmup 3]
//                 [--min_runs 7] [--min_seconds 2] [--engines fp32,esb]
//                 [--esb_path auto|exact_float|reference]
//
// Engines: "fp32" is runtime::Executor on the imported and optimised model
// (what `esbctl run` runs); "esb" is runtime::EsbExecutor on the package
// read back and unpacked with its integer codes (what esb-agent runs). For
// each engine and batch B the input is the first B items of X (cycled when
// X holds fewer). --esb_path picks EsbExecutorOptions::Path, so that
// bench/check_paths.sh can compare the paths' outputs bit for bit on a
// whole model. The first run (which builds the plan) is timed on its
// own, then --warmup more runs, then runs timed one at a time until there
// are at least --min_runs and --min_seconds have passed; the figures are
// the median and the minimum of those.
//
// Stdout: one JSON object per line,
//   {"engine":"fp32","batch":8,"runs":12,"median_ms":..,"min_ms":..,
//    "first_ms":..}
// or {"engine":"fp32","error":"..."} when the engine cannot be built or
// run, and for esb a {"engine":"esb","description":"..."} line saying which
// layers take the int8 fast path. The output of each engine at the largest
// batch goes to DIR/ENGINE_bB.npy. Exit 0 when every line was printed
// (errors included), 2 for bad flags or an unreadable input.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/data/npy.h"
#include "core/env/env.h"
#include "core/graph/passes.h"
#include "core/onnx/onnx_import.h"
#include "core/package/esbm.h"
#include "core/runtime/esb_executor.h"
#include "core/runtime/executor.h"

ABSL_FLAG(std::string, model, "", "The ONNX model (FP32).");
ABSL_FLAG(std::string, input, "", "Float32 .npy input, NCHW; batch 0 axis.");
ABSL_FLAG(std::string, esbm, "", "The model's package; empty: FP32 only.");
ABSL_FLAG(std::string, out, "", "Folder for the outputs (.npy).");
ABSL_FLAG(std::string, batches, "1,8", "Batch sizes, comma separated.");
ABSL_FLAG(int, threads, 2, "OpenMP threads per run.");
ABSL_FLAG(int, warmup, 3, "Untimed runs after the first.");
ABSL_FLAG(int, min_runs, 7, "Fewest timed runs.");
ABSL_FLAG(double, min_seconds, 2, "Least time spent in timed runs.");
ABSL_FLAG(std::string, engines, "fp32,esb", "Engines to run: fp32, esb.");
ABSL_FLAG(std::string, esb_path, "auto",
          "The ESB layers' path: auto, exact_float or reference.");

namespace {

using esb::graph::Tensor;
using Clock = std::chrono::steady_clock;
using RunFn = std::function<absl::StatusOr<std::vector<Tensor>>(
    const std::vector<Tensor>&)>;

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

void PrintError(const std::string& engine, const absl::Status& status) {
  std::cout << "{\"engine\":" << JsonString(engine)
            << ",\"error\":" << JsonString(std::string{status.message()}) << "}"
            << std::endl;
}

// The first `batch` items of `x`, cycling through them when it has fewer.
Tensor Batch(const esb::data::NpyArray& x, int64_t batch) {
  const int64_t items = x.shape[0];
  const int64_t per_item = x.size() / items;
  Tensor t;
  t.shape = x.shape;
  t.shape[0] = batch;
  t.data.resize(static_cast<size_t>(batch * per_item));
  for (int64_t i = 0; i < batch; ++i) {
    std::copy_n(x.f32.begin() + (i % items) * per_item, per_item,
                t.data.begin() + i * per_item);
  }
  return t;
}

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

struct Options {
  int warmup = 3;
  int min_runs = 7;
  double min_seconds = 2;
};

// Times `run` on every batch, printing one line each; writes the output
// of the last batch to `out_path`.
void Measure(const std::string& engine, const RunFn& run,
             const esb::data::NpyArray& x, const std::vector<int64_t>& batches,
             const Options& options, const std::string& out_path) {
  for (size_t b = 0; b < batches.size(); ++b) {
    const std::vector<Tensor> inputs = {Batch(x, batches[b])};
    const Clock::time_point t0 = Clock::now();
    absl::StatusOr<std::vector<Tensor>> first = run(inputs);
    const double first_ms = Ms(Clock::now() - t0);
    if (!first.ok()) {
      PrintError(engine, first.status());
      return;
    }
    for (int i = 0; i < options.warmup; ++i) {
      if (absl::Status s = run(inputs).status(); !s.ok()) {
        PrintError(engine, s);
        return;
      }
    }
    std::vector<double> times;
    const Clock::time_point start = Clock::now();
    while (static_cast<int>(times.size()) < options.min_runs ||
           Ms(Clock::now() - start) < 1000 * options.min_seconds) {
      const Clock::time_point r0 = Clock::now();
      if (absl::Status s = run(inputs).status(); !s.ok()) {
        PrintError(engine, s);
        return;
      }
      times.push_back(Ms(Clock::now() - r0));
    }
    std::sort(times.begin(), times.end());
    const size_t n = times.size();
    const double median =
        n % 2 == 1 ? times[n / 2] : (times[n / 2 - 1] + times[n / 2]) / 2;
    std::cout << absl::StrFormat(
                     "{\"engine\":\"%s\",\"batch\":%d,\"runs\":%d,"
                     "\"median_ms\":%.4f,\"min_ms\":%.4f,\"first_ms\":%.2f}",
                     engine, batches[b], n, median, times.front(), first_ms)
              << std::endl;
    if (b + 1 == batches.size()) {
      const Tensor& y = first->front();
      if (absl::Status s = esb::WriteFileAtomically(
              esb::Env::Default(), out_path,
              esb::data::SerializeNpy(y.data, y.shape));
          !s.ok()) {
        PrintError(engine, s);
      }
    }
  }
}

absl::StatusOr<std::unique_ptr<esb::runtime::Executor>> Fp32Executor(
    const std::string& path, int threads) {
  absl::StatusOr<esb::graph::Graph> graph = esb::graph::ImportOnnxFile(path);
  if (!graph.ok()) return graph.status();
  esb::graph::Optimize(*graph);
  esb::runtime::ExecutorOptions options;
  options.threads = threads;
  return esb::runtime::Executor::Create(*graph, options);
}

absl::StatusOr<std::unique_ptr<esb::runtime::EsbExecutor>> EsbExecutor(
    const std::string& path, int threads,
    esb::runtime::EsbExecutorOptions::Path esb_path) {
  absl::StatusOr<std::string> bytes =
      esb::ReadFileToString(esb::Env::Default(), path);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<esb::v1::Package> package =
      esb::pipeline::ParsePackage(*bytes);
  if (!package.ok()) return package.status();
  absl::StatusOr<esb::pipeline::PackagedModel> model =
      esb::pipeline::UnpackPackage(*package);
  if (!model.ok()) return model.status();
  esb::runtime::EsbExecutorOptions options;
  options.threads = threads;
  options.path = esb_path;
  return esb::runtime::EsbExecutor::Create(model->graph, model->layers, options,
                                           &model->weight_integers);
}

int Usage(const std::string& message) {
  std::cerr << "esb_zoo_bench: " << message << "\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "esb_zoo_bench --model M.onnx --input X.npy [--esbm model.esbm] "
      "--out DIR");
  absl::ParseCommandLine(argc, argv);
  const std::string model = absl::GetFlag(FLAGS_model);
  const std::string out = absl::GetFlag(FLAGS_out);
  if (model.empty() || out.empty() || absl::GetFlag(FLAGS_input).empty()) {
    return Usage("--model, --input and --out are required");
  }
  std::vector<int64_t> batches;
  for (absl::string_view part :
       absl::StrSplit(absl::GetFlag(FLAGS_batches), ',')) {
    int64_t b = 0;
    if (!absl::SimpleAtoi(part, &b) || b < 1 || b > 4096) {
      return Usage(absl::StrCat("--batches: '", part, "' is not 1..4096"));
    }
    batches.push_back(b);
  }
  bool run_fp32 = false, run_esb = false;
  for (absl::string_view e :
       absl::StrSplit(absl::GetFlag(FLAGS_engines), ',')) {
    if (e == "fp32") {
      run_fp32 = true;
    } else if (e == "esb") {
      run_esb = true;
    } else {
      return Usage(
          absl::StrCat("--engines: '", e, "' is neither fp32 nor esb"));
    }
  }
  using Path = esb::runtime::EsbExecutorOptions::Path;
  const std::string path_flag = absl::GetFlag(FLAGS_esb_path);
  Path esb_path = Path::kAuto;
  if (path_flag == "exact_float") {
    esb_path = Path::kExactFloat;
  } else if (path_flag == "reference") {
    esb_path = Path::kReference;
  } else if (path_flag != "auto") {
    return Usage(absl::StrCat("--esb_path: '", path_flag,
                              "' is not auto, exact_float or reference"));
  }
  const int threads = absl::GetFlag(FLAGS_threads);
  Options options;
  options.warmup = absl::GetFlag(FLAGS_warmup);
  options.min_runs = std::max(1, absl::GetFlag(FLAGS_min_runs));
  options.min_seconds = absl::GetFlag(FLAGS_min_seconds);
  absl::StatusOr<esb::data::NpyArray> x =
      esb::data::ReadNpy(absl::GetFlag(FLAGS_input));
  if (!x.ok()) return Usage(std::string{x.status().message()});
  if (x->dtype != esb::data::NpyArray::DType::kFloat32 || x->shape.empty() ||
      x->shape[0] < 1) {
    return Usage("--input must be a float32 array with a batch axis");
  }
  const std::string suffix = absl::StrCat("_b", batches.back(), ".npy");

  if (run_fp32) {
    auto fp32 = Fp32Executor(model, threads);
    if (!fp32.ok()) {
      PrintError("fp32", fp32.status());
    } else {
      Measure(
          "fp32",
          [&](const std::vector<Tensor>& in) { return (*fp32)->Run(in); }, *x,
          batches, options, out + "/fp32" + suffix);
    }
  }

  const std::string esbm = absl::GetFlag(FLAGS_esbm);
  if (esbm.empty() || !run_esb) return 0;
  auto esb = EsbExecutor(esbm, threads, esb_path);
  if (!esb.ok()) {
    PrintError("esb", esb.status());
    return 0;
  }
  std::cout << "{\"engine\":\"esb\",\"description\":"
            << JsonString((*esb)->Description()) << "}" << std::endl;
  Measure(
      "esb", [&](const std::vector<Tensor>& in) { return (*esb)->Run(in); }, *x,
      batches, options, out + "/esb" + suffix);
  return 0;
}
