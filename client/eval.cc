#include "client/eval.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/model_input.h"
#include "client/progress.h"
#include "core/data/dataset.h"
#include "core/data/npy.h"
#include "core/env/env.h"
#include "core/eval/eval.h"
#include "core/pipeline/calibrate.h"
#include "core/runtime/esb_executor.h"
#include "core/runtime/executor.h"

namespace esb::client {
namespace {

struct Engine {
  eval::InferFn infer;
  std::string esb_path;  // Empty for FP32.
  std::unique_ptr<runtime::Executor> fp32;
  std::unique_ptr<runtime::EsbExecutor> esb;
};

absl::StatusOr<Engine> MakeFp32Engine(const graph::Graph& graph,
                                      const InferenceOptions& inference) {
  runtime::ExecutorOptions options;
  options.threads = inference.threads;
  options.budget = inference.budget;
  absl::StatusOr<std::unique_ptr<runtime::Executor>> executor =
      runtime::Executor::Create(graph, options);
  if (!executor.ok()) return executor.status();
  Engine engine;
  engine.fp32 = *std::move(executor);
  engine.infer = eval::FirstOutputOf(*engine.fp32);
  return engine;
}

// --precision esb: DDA scales fitted on the calibration images (weights
// per channel, activations on histograms), then the exact ESB executor.
absl::StatusOr<Engine> MakeEsbEngine(const graph::Graph& graph,
                                     const ImageInput& input,
                                     const data::Normalization& norm,
                                     const InferenceOptions& inference) {
  const EsbSettings& esb = inference.esb_settings;
  if (input.batch != graph::kBatch) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--precision esb calibrates on batches of images, but input '",
        input.name, "' has a fixed batch of ", input.batch,
        ": export the model with a free batch dimension"));
  }
  if (esb.calib_path.empty()) {
    return absl::InvalidArgumentError(
        "--precision esb needs --calib IMAGES to fit the activation scales");
  }
  data::DatasetOptions data_options;
  data_options.limit = esb.calib_count;
  absl::StatusOr<std::unique_ptr<data::Dataset>> set =
      data::Dataset::Open(esb.calib_path, input.geometry(), norm, data_options);
  if (!set.ok()) return set.status();
  const int64_t count = (*set)->count();
  absl::StatusOr<std::vector<float>> images = (*set)->ImageRange(0, count);
  if (!images.ok()) return images.status();
  pipeline::CalibrationOptions options;
  options.weight_bits = esb.bits;
  options.weight_sb = esb.sb;
  options.act_bits = esb.act_bits;
  options.act_sb = esb.act_sb;
  options.executor.threads = inference.threads;
  options.executor.budget = inference.budget;
  constexpr int64_t kCalibBatch = 64;
  int64_t next = 0;
  Progress progress("calibrate", count, "images", inference.quiet);
  auto source = [&]() -> std::vector<graph::Tensor> {
    if (next >= count) return {};
    const int64_t n = std::min(kCalibBatch, count - next);
    graph::Tensor t;
    t.shape = {n, input.channels, input.height, input.width};
    t.data.assign(images->begin() + next * input.pixels(),
                  images->begin() + (next + n) * input.pixels());
    next += n;
    progress.Update(next);
    return {std::move(t)};
  };
  absl::StatusOr<std::map<std::string, LayerQuant>> layers =
      pipeline::Calibrate(graph, source, options);
  if (!layers.ok()) return layers.status();
  progress.Finish();
  runtime::EsbExecutorOptions exec_options;
  exec_options.threads = inference.threads;
  exec_options.budget = inference.budget;
  absl::StatusOr<std::unique_ptr<runtime::EsbExecutor>> executor =
      runtime::EsbExecutor::Create(graph, *layers, exec_options);
  if (!executor.ok()) return executor.status();
  Engine engine;
  engine.esb_path = (*executor)->Description();
  engine.esb = *std::move(executor);
  engine.infer = eval::FirstOutputOf(*engine.esb);
  return engine;
}

absl::StatusOr<Engine> MakeEngine(const graph::Graph& graph,
                                  const ImageInput& input,
                                  const data::Normalization& norm,
                                  const InferenceOptions& options) {
  if (options.esb) {
    return MakeEsbEngine(graph, input, norm, options);
  }
  return MakeFp32Engine(graph, options);
}

// Every item's first output, in batches of `batch` (or the model's fixed
// batch, the last one padded).
absl::StatusOr<eval::Outputs> RunItems(const Engine& engine,
                                       const ImageInput& input,
                                       const eval::ItemSource& items,
                                       int64_t count, int batch,
                                       Progress* progress) {
  eval::BatchOptions options;
  options.batch = batch;
  if (input.batch != graph::kBatch) options.fixed_batch = input.batch;
  options.on_progress = [progress](int64_t done) { progress->Update(done); };
  return eval::RunBatches(engine.infer, items, count,
                          {input.channels, input.height, input.width}, options);
}

}  // namespace

absl::StatusOr<esb::v1::EvalReport> Evaluate(const EvalOptions& options) {
  absl::StatusOr<graph::Graph> graph =
      LoadModel(options.model_path, options.inference.import);
  if (!graph.ok()) return graph.status();
  absl::StatusOr<ImageInput> input = FindImageInput(*graph);
  if (!input.ok()) return input.status();
  std::string norm_source;
  absl::StatusOr<data::Normalization> norm =
      ResolveNormalization(options.inference.mean_csv,
                           options.inference.std_csv, *graph, &norm_source);
  if (!norm.ok()) return norm.status();

  data::DatasetOptions data_options;
  data_options.limit = options.limit;
  data_options.labels_path = options.labels_path;
  absl::StatusOr<std::unique_ptr<data::Dataset>> set = data::Dataset::Open(
      options.images_path, input->geometry(), *norm, data_options);
  if (!set.ok()) return set.status();
  const data::Dataset& images = **set;
  if (!images.has_labels()) {
    return absl::InvalidArgumentError(absl::StrCat(
        options.images_path,
        ": the images have no labels; give --labels, or a folder (or tar) "
        "with one subfolder per class"));
  }
  const int64_t count = images.count();

  absl::StatusOr<Engine> engine =
      MakeEngine(*graph, *input, *norm, options.inference);
  if (!engine.ok()) return engine.status();

  Progress progress("eval", count, "images", options.inference.quiet);
  const auto start = std::chrono::steady_clock::now();
  // Read batch by batch: a large image set is never held whole.
  const eval::ItemSource source = [&](int64_t start, int64_t n) {
    return images.ImageRange(start, n);
  };
  absl::StatusOr<eval::Outputs> logits = RunItems(
      *engine, *input, source, count, options.inference.batch, &progress);
  if (!logits.ok()) return logits.status();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  progress.Finish();

  esb::v1::EvalReport report;
  report.set_model(options.model_path);
  report.set_precision(options.inference.esb ? "esb" : "fp32");
  report.set_top1(
      eval::Top1<int32_t>(eval::Predictions(*logits), images.labels()));
  report.set_images(count);
  report.set_seconds(seconds);
  report.set_images_per_second(seconds > 0 ? count / seconds : 0.0);
  report.set_batch(input->batch == graph::kBatch
                       ? options.inference.batch
                       : static_cast<int32_t>(input->batch));
  report.set_threads(options.inference.threads);
  report.set_normalization(norm_source);
  report.set_esb_path(engine->esb_path);
  return report;
}

absl::StatusOr<std::string> RunModel(const RunOptions& options) {
  absl::StatusOr<graph::Graph> graph =
      LoadModel(options.model_path, options.inference.import);
  if (!graph.ok()) return graph.status();
  absl::StatusOr<ImageInput> input = FindImageInput(*graph);
  if (!input.ok()) return input.status();
  absl::StatusOr<data::NpyArray> array = data::ReadNpy(options.input_path);
  if (!array.ok()) return array.status();
  const auto& shape = array->shape;
  const bool fits = shape.size() == 4 && shape[1] == input->channels &&
                    shape[2] == input->height && shape[3] == input->width;
  const bool fits_gray = shape.size() == 3 && input->channels == 1 &&
                         shape[1] == input->height && shape[2] == input->width;
  if (!fits && !fits_gray) {
    std::string dims;
    for (int64_t d : shape) absl::StrAppend(&dims, dims.empty() ? "" : "x", d);
    return absl::InvalidArgumentError(absl::StrCat(
        options.input_path, ": shape ", dims, " does not fit the model input '",
        input->name, "' (N x ", input->channels, " x ", input->height, " x ",
        input->width, ")"));
  }
  const int64_t count = shape.empty() ? 0 : shape[0];
  // Normalizes uint8 inputs and, with --precision esb, calibration images.
  std::string norm_source;
  absl::StatusOr<data::Normalization> norm =
      ResolveNormalization(options.inference.mean_csv,
                           options.inference.std_csv, *graph, &norm_source);
  if (!norm.ok()) return norm.status();
  std::vector<float> data;
  std::string how = "float32 input fed as is";
  if (array->dtype == data::NpyArray::DType::kFloat32) {
    data = std::move(array->f32);
  } else {
    how = absl::StrCat("uint8 images normalized (", norm_source, ")");
    data.resize(array->u8.size());
    absl::Status s = data::NormalizeImages(
        array->u8.data(), count, static_cast<int>(input->channels),
        input->height * input->width, *norm, data.data());
    if (!s.ok()) return s;
  }
  absl::StatusOr<Engine> engine =
      MakeEngine(*graph, *input, *norm, options.inference);
  if (!engine.ok()) return engine.status();
  Progress progress("run", count, "items", options.inference.quiet);
  const int64_t per = input->pixels();
  const eval::ItemSource source =
      [&](int64_t start, int64_t n) -> absl::StatusOr<std::vector<float>> {
    return std::vector<float>(data.begin() + start * per,
                              data.begin() + (start + n) * per);
  };
  absl::StatusOr<eval::Outputs> outputs = RunItems(
      *engine, *input, source, count, options.inference.batch, &progress);
  if (!outputs.ok()) return outputs.status();
  progress.Finish();
  const int64_t per_item = outputs->per_item;
  if (absl::Status written = WriteFileAtomically(
          Env::Default(), options.output_path,
          data::SerializeNpy(outputs->data,
                             std::vector<int64_t>{count, per_item}));
      !written.ok()) {
    return written;
  }
  return absl::StrFormat("%d items (%s) -> %s: %d x %d float32", count, how,
                         options.output_path, count, per_item);
}

}  // namespace esb::client
