#include "client/eval.h"

#include <algorithm>
#include <chrono>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/model_input.h"
#include "client/progress.h"
#include "core/data/idx.h"
#include "core/data/npy.h"
#include "core/pipeline/calibrate.h"
#include "core/pipeline/job.h"
#include "core/runtime/esb_executor.h"
#include "core/runtime/executor.h"

namespace esb::client {
namespace {

// Runs one batch of N x C x H x W floats; returns the first output.
using InferFn =
    std::function<absl::StatusOr<graph::Tensor>(const graph::Tensor&)>;

struct Engine {
  InferFn infer;
  std::string esb_path;  // Empty for FP32.
  std::unique_ptr<runtime::Executor> fp32;
  std::unique_ptr<runtime::EsbExecutor> esb;
};

// The first output of `executor` (owned by the engine) for one batch.
template <typename Executor>
InferFn FirstOutputOf(Executor& executor) {
  return
      [&executor](const graph::Tensor& batch) -> absl::StatusOr<graph::Tensor> {
        absl::StatusOr<std::vector<graph::Tensor>> out = executor.Run({batch});
        if (!out.ok()) return out.status();
        return std::move(out->front());
      };
}

absl::StatusOr<Engine> MakeFp32Engine(const graph::Graph& graph, int threads) {
  runtime::ExecutorOptions options;
  options.threads = threads;
  absl::StatusOr<std::unique_ptr<runtime::Executor>> executor =
      runtime::Executor::Create(graph, options);
  if (!executor.ok()) return executor.status();
  Engine engine;
  engine.fp32 = *std::move(executor);
  engine.infer = FirstOutputOf(*engine.fp32);
  return engine;
}

// --precision esb: DDA scales fitted on the calibration images (weights
// per channel, activations on histograms), then the exact ESB executor.
absl::StatusOr<Engine> MakeEsbEngine(const graph::Graph& graph,
                                     const ImageInput& input,
                                     const data::Normalization& norm,
                                     const EsbSettings& esb, int threads,
                                     bool quiet) {
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
  int64_t count = 0;
  absl::StatusOr<std::vector<float>> images = data::ReadImagesFor(
      esb.calib_path, esb.calib_count, input.geometry(), norm, &count);
  if (!images.ok()) return images.status();
  pipeline::CalibrationOptions options;
  options.weight_bits = esb.bits;
  options.weight_sb = esb.sb;
  options.act_bits = esb.act_bits;
  options.act_sb = esb.act_sb;
  options.threads = threads;
  constexpr int64_t kCalibBatch = 64;
  int64_t next = 0;
  Progress progress("calibrate", count, "images", quiet);
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
  exec_options.threads = threads;
  absl::StatusOr<std::unique_ptr<runtime::EsbExecutor>> executor =
      runtime::EsbExecutor::Create(graph, *layers, exec_options);
  if (!executor.ok()) return executor.status();
  Engine engine;
  engine.esb_path = (*executor)->Description();
  engine.esb = *std::move(executor);
  engine.infer = FirstOutputOf(*engine.esb);
  return engine;
}

absl::StatusOr<Engine> MakeEngine(const graph::Graph& graph,
                                  const ImageInput& input,
                                  const data::Normalization& norm,
                                  const InferenceOptions& options) {
  if (options.esb) {
    return MakeEsbEngine(graph, input, norm, options.esb_settings,
                         options.threads, options.quiet);
  }
  return MakeFp32Engine(graph, options.threads);
}

// Feeds `count` items of `per_item` floats in batches of `batch` (or the
// model's fixed batch, padding the last one) and collects the first output,
// `out_per_item` floats per item.
absl::Status RunBatches(const Engine& engine, const ImageInput& input,
                        const std::vector<float>& data, int64_t count,
                        int batch, Progress* progress,
                        std::vector<float>* outputs, int64_t* out_per_item) {
  const int64_t per_item = input.pixels();
  const int64_t step =
      input.batch == graph::kBatch ? std::max(batch, 1) : input.batch;
  outputs->clear();
  for (int64_t start = 0; start < count; start += step) {
    const int64_t n = std::min(step, count - start);
    const int64_t fed = input.batch == graph::kBatch ? n : step;
    graph::Tensor t;
    t.shape = {fed, input.channels, input.height, input.width};
    t.data.assign(static_cast<size_t>(fed * per_item), 0.0f);
    std::copy_n(data.begin() + start * per_item, n * per_item, t.data.begin());
    absl::StatusOr<graph::Tensor> y = engine.infer(t);
    if (!y.ok()) return y.status();
    if (y->shape.empty() || y->shape[0] != fed) {
      return absl::InternalError(
          "the model's output does not follow the "
          "batch dimension");
    }
    *out_per_item = y->size() / fed;
    outputs->insert(outputs->end(), y->data.begin(),
                    y->data.begin() + n * *out_per_item);
    if (progress != nullptr) progress->Update(start + n);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<esb::v1::EvalReport> Evaluate(const EvalOptions& options) {
  absl::StatusOr<graph::Graph> graph = LoadModel(options.model_path);
  if (!graph.ok()) return graph.status();
  absl::StatusOr<ImageInput> input = FindImageInput(*graph);
  if (!input.ok()) return input.status();
  std::string norm_source;
  absl::StatusOr<data::Normalization> norm =
      ResolveNormalization(options.inference.mean_csv,
                           options.inference.std_csv, *graph, &norm_source);
  if (!norm.ok()) return norm.status();

  int64_t count = 0;
  absl::StatusOr<std::vector<float>> images = data::ReadImagesFor(
      options.images_path, options.limit, input->geometry(), *norm, &count);
  if (!images.ok()) return images.status();
  absl::StatusOr<data::IdxArray> labels =
      data::ReadIdx(options.labels_path, options.limit);
  if (!labels.ok()) return labels.status();
  if (labels->shape.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        options.labels_path, ": labels must be a 1-D IDX array; this one has ",
        labels->shape.size(), " dimensions"));
  }
  if (labels->shape[0] != count) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.labels_path, ": holds ", labels->shape[0],
                     " labels for ", count, " images"));
  }

  absl::StatusOr<Engine> engine =
      MakeEngine(*graph, *input, *norm, options.inference);
  if (!engine.ok()) return engine.status();

  Progress progress("eval", count, "images", options.inference.quiet);
  std::vector<float> logits;
  int64_t classes = 0;
  const auto start = std::chrono::steady_clock::now();
  absl::Status s =
      RunBatches(*engine, *input, *images, count, options.inference.batch,
                 &progress, &logits, &classes);
  if (!s.ok()) return s;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  progress.Finish();

  int64_t right = 0;
  for (int64_t i = 0; i < count; ++i) {
    const float* row = logits.data() + i * classes;
    const int64_t predicted = std::max_element(row, row + classes) - row;
    if (predicted == labels->data[i]) ++right;
  }
  esb::v1::EvalReport report;
  report.set_model(options.model_path);
  report.set_precision(options.inference.esb ? "esb" : "fp32");
  report.set_top1(count ? static_cast<double>(right) / count : 0.0);
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
  absl::StatusOr<graph::Graph> graph = LoadModel(options.model_path);
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
  std::vector<float> outputs;
  int64_t per_item = 0;
  absl::Status s =
      RunBatches(*engine, *input, data, count, options.inference.batch,
                 &progress, &outputs, &per_item);
  if (!s.ok()) return s;
  progress.Finish();
  if (absl::Status written = pipeline::WriteFileAtomically(
          options.output_path,
          data::SerializeNpy(outputs, std::vector<int64_t>{count, per_item}));
      !written.ok()) {
    return written;
  }
  return absl::StrFormat("%d items (%s) -> %s: %d x %d float32", count, how,
                         options.output_path, count, per_item);
}

}  // namespace esb::client
