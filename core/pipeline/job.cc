#include "core/pipeline/job.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/data/dataset.h"
#include "core/data/images.h"
#include "core/data/normalize.h"
#include "core/env/digest.h"
#include "core/eval/eval.h"
#include "core/graph/passes.h"
#include "core/graph/shapes.h"
#include "core/onnx/export_qdq.h"
#include "core/package/esbm.h"
#include "core/pipeline/artifacts.h"
#include "core/pipeline/calibrate.h"
#include "core/pipeline/config.h"
#include "core/pipeline/fit.h"
#include "core/runtime/esb_executor.h"
#include "core/runtime/executor.h"
#include "google/protobuf/util/json_util.h"

namespace esb::pipeline {
namespace {

constexpr int64_t kBatch = 64;
// Calibration images whose activations the fitting keeps: bounded by a
// budget of floats over all the model's values for one image.
constexpr int64_t kSampleFloatBudget = int64_t{48} << 20;
constexpr int64_t kMaxSample = 64;

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Normalized images, one after another.
struct Images {
  std::vector<float> data;  // N x C x H x W.
  int64_t count = 0;
  std::vector<int64_t> item_shape;  // C, H, W.

  int64_t per_item() const {
    return item_shape[0] * item_shape[1] * item_shape[2];
  }
  graph::Tensor Batch(int64_t start, int64_t n) const {
    graph::Tensor t;
    t.shape = {n, item_shape[0], item_shape[1], item_shape[2]};
    t.data.assign(data.begin() + start * per_item(),
                  data.begin() + (start + n) * per_item());
    return t;
  }
};

// The executor of a run of the whole model: the job's threads and budget.
runtime::ExecutorOptions FullModelOptions(const JobInputs& in) {
  runtime::ExecutorOptions options;
  options.threads = in.threads;
  options.budget = in.budget;
  return options;
}

data::ImageGeometry GeometryOf(const graph::ValueInfo& input) {
  // N x C x H x W, checked by Load.
  return {input.name, input.shape[1], input.shape[2], input.shape[3]};
}

// `count` indices of [0, n) picked by the seed (all when count >= n), in a
// fixed order: the same seed always gives the same calibration set.
std::vector<int64_t> PickIndices(int64_t n, int64_t count, uint64_t seed) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  for (int64_t i = n - 1; i > 0; --i) {  // Fisher-Yates.
    const auto j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1));
    std::swap(order[i], order[j]);
  }
  order.resize(static_cast<size_t>(std::min(count, n)));
  return order;
}

// What every stage after load shares.
struct Job {
  Job(const JobInputs& inputs, const JobSettings& job_settings,
      ProgressSink* sink, JobResult& job_result)
      : in(inputs),
        settings(job_settings),
        progress(sink),
        result(job_result) {}

  const JobInputs& in;
  const JobSettings& settings;
  ProgressSink* progress;
  JobResult& result;

  esb::v1::QuantReport& report() { return result.report; }
  void Progress(const ProgressEvent& event) {
    if (progress != nullptr) progress->OnProgress(event);
  }

  // Filled by the stages, in order.
  graph::Graph graph;
  data::Normalization norm;
  std::string name;
  Images calib;
  std::map<std::string, ActivationStats> stats;
  FittedModel fitted;
};

absl::Status Load(Job& job) {
  const JobInputs& in = job.in;
  absl::StatusOr<std::string> bytes =
      ReadFileToString(in.env, in.model_path, in.import.max_model_bytes);
  if (!bytes.ok()) return bytes.status();
  job.name = !in.model_name.empty()
                 ? in.model_name
                 : std::filesystem::path(in.model_path).stem().string();
  job.report().set_model(job.name);
  job.report().set_model_sha256(Sha256Hex(*bytes));
  absl::StatusOr<graph::Graph> graph =
      graph::ImportOnnxBytes(*bytes, DirName(in.model_path), in.import);
  if (!graph.ok()) {
    return absl::Status(
        graph.status().code(),
        absl::StrCat(in.model_path, ": ", graph.status().message()));
  }
  job.graph = *std::move(graph);
  graph::Graph& g = job.graph;
  graph::Optimize(g);
  if (g.inputs.size() != 1 || g.inputs[0].shape.size() != 4) {
    return absl::InvalidArgumentError(
        "the model must have one 4-D NCHW image input");
  }
  if (g.inputs[0].shape[0] != graph::kBatch) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input '", g.inputs[0].name, "' has a fixed batch of ",
        g.inputs[0].shape[0],
        "; calibration and fitting run batches of many images: export the "
        "model with a free batch dimension (torch.onnx.export's "
        "dynamic_axes={'input': {0: 'N'}})"));
  }
  std::set<std::string> node_names;
  for (const auto& n : g.nodes) node_names.insert(n.name);
  for (const auto& [name, o] : job.settings.overrides) {
    if (!node_names.count(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("overrides: the model has no node '", name, "'"));
    }
  }
  job.norm = data::Normalization{job.settings.mean, job.settings.std};
  std::string source = "config";
  if (job.norm.empty()) {
    auto m = g.metadata.find("input_mean");
    auto s = g.metadata.find("input_std");
    source = "none (pixels / 255)";
    if (m != g.metadata.end() && s != g.metadata.end()) {
      absl::StatusOr<data::Normalization> parsed =
          data::ParseNormalization(m->second, s->second);
      if (!parsed.ok()) return parsed.status();
      job.norm = *parsed;
      source = "model metadata";
    }
  }
  (*job.report().mutable_config())["normalization"] = source;
  return absl::OkStatus();
}

absl::Status CalibrateStage(Job& job) {
  const graph::ValueInfo& input = job.graph.inputs[0];
  absl::StatusOr<std::unique_ptr<data::Dataset>> set =
      data::Dataset::Open(job.in.calib_images, GeometryOf(input), job.norm);
  if (!set.ok()) return set.status();
  // Only the picked images are decoded (or normalized, for IDX).
  const std::vector<int64_t> picked =
      PickIndices((*set)->count(), job.settings.calib_count, job.settings.seed);
  absl::StatusOr<std::vector<float>> data = (*set)->Images(picked);
  if (!data.ok()) return data.status();
  job.calib = Images{*std::move(data),
                     static_cast<int64_t>(picked.size()),
                     {input.shape[1], input.shape[2], input.shape[3]}};
  const Images& calib = job.calib;
  job.report().set_calib_images(static_cast<int32_t>(calib.count));

  int64_t next = 0;
  const int64_t batches = (calib.count + kBatch - 1) / kBatch;
  auto source = [&]() -> std::vector<graph::Tensor> {
    if (next >= calib.count) return {};
    const int64_t n = std::min(kBatch, calib.count - next);
    graph::Tensor b = calib.Batch(next, n);
    next += n;
    job.Progress({esb::v1::STAGE_CALIBRATE,
                  next / kBatch + (next % kBatch != 0), batches,
                  "activation histograms"});
    return {std::move(b)};
  };
  absl::StatusOr<std::map<std::string, ActivationStats>> stats =
      CollectActivationStats(job.graph, source, FullModelOptions(job.in),
                             job.progress);
  if (!stats.ok()) return stats.status();
  job.stats = *std::move(stats);
  return absl::OkStatus();
}

// The fitting sample: the first calibration images, as many as keep every
// value of the model for all of them within kSampleFloatBudget floats.
absl::StatusOr<int64_t> SampleCount(const Job& job) {
  std::vector<int64_t> one = job.graph.inputs[0].shape;
  one[0] = 1;
  absl::StatusOr<std::map<std::string, std::vector<int64_t>>> shapes =
      graph::InferShapes(job.graph, {{job.graph.inputs[0].name, one}});
  if (!shapes.ok()) return shapes.status();
  int64_t per_image_floats = 0;
  for (const auto& [name, s] : *shapes) {
    if (job.graph.FindConstant(name) != nullptr) continue;
    int64_t n = 1;
    for (int64_t d : s) n *= d;
    per_image_floats += n;
  }
  return std::clamp<int64_t>(
      kSampleFloatBudget / std::max<int64_t>(per_image_floats, 1), 1,
      std::min(kMaxSample, job.calib.count));
}

absl::Status FitStage(Job& job) {
  absl::StatusOr<int64_t> sample = SampleCount(job);
  if (!sample.ok()) return sample.status();
  absl::StatusOr<FittedModel> fitted =
      FitModel(job.graph, job.stats, job.calib.Batch(0, *sample), job.settings,
               job.in.threads, job.progress);
  if (!fitted.ok()) return fitted.status();
  job.fitted = *std::move(fitted);
  double mac_sb = 0.0;
  int64_t macs = 0;
  for (const auto& l : job.fitted.reports) {
    *job.report().add_layers() = l;
    macs += l.macs();
    mac_sb += static_cast<double>(l.macs()) * l.weight_format().sb();
  }
  job.report().set_total_macs(macs);
  job.report().set_mean_sb(macs > 0 ? mac_sb / macs : 0.0);
  return absl::OkStatus();
}

absl::Status ExportStage(Job& job) {
  const JobInputs& in = job.in;
  if (absl::Status s = in.env->CreateDirs(in.output_dir); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("cannot create the output "
                                               "folder: ",
                                               s.message()));
  }
  QdqOptions qdq;
  qdq.metadata["esb_config"] = job.settings.Summary();
  qdq.graph_name = job.name;
  absl::StatusOr<std::string> onnx =
      ExportQdqOnnx(job.fitted.graph, job.fitted.layers, qdq);
  if (!onnx.ok()) return onnx.status();
  absl::StatusOr<esb::v1::Package> package =
      BuildPackage(job.fitted.graph, job.fitted.layers, job.norm, job.name);
  if (!package.ok()) return package.status();
  JobResult& r = job.result;
  r.onnx_path = absl::StrCat(in.output_dir, "/", kOnnxArtifact);
  r.esbm_path = absl::StrCat(in.output_dir, "/", kEsbmArtifact);
  r.report_path = absl::StrCat(in.output_dir, "/", kReportArtifact);
  if (absl::Status s = WriteFileAtomically(in.env, r.onnx_path, *onnx);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          WriteFileAtomically(in.env, r.esbm_path, SerializePackage(*package));
      !s.ok()) {
    return s;
  }
  job.Progress({esb::v1::STAGE_EXPORT, 1, 1, "artifacts"});
  return absl::OkStatus();
}

// The ESB executor of model.esbm as written.
absl::StatusOr<std::unique_ptr<runtime::EsbExecutor>> LoadPackage(Job& job) {
  // A package is at most a protobuf message (< 2 GiB) plus its header.
  absl::StatusOr<std::string> bytes =
      ReadFileToString(job.in.env, job.result.esbm_path, int64_t{1} << 31);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<esb::v1::Package> package = ParsePackage(*bytes);
  if (!package.ok()) return package.status();
  absl::StatusOr<PackagedModel> model = UnpackPackage(*package);
  if (!model.ok()) return model.status();
  runtime::EsbExecutorOptions options;
  options.threads = job.in.threads;
  options.budget = job.in.budget;
  return runtime::EsbExecutor::Create(model->graph, model->layers, options,
                                      &model->weight_integers);
}

absl::Status EvalStage(Job& job) {
  const JobInputs& in = job.in;
  const graph::ValueInfo& input = job.graph.inputs[0];
  data::DatasetOptions options;
  options.limit = in.eval_limit;
  options.labels_path = in.eval_labels;
  absl::StatusOr<std::unique_ptr<data::Dataset>> set =
      data::Dataset::Open(in.eval_images, GeometryOf(input), job.norm, options);
  if (!set.ok()) return set.status();
  const data::Dataset& images = **set;
  if (!images.has_labels()) {
    return absl::InvalidArgumentError(absl::StrCat(
        in.eval_images,
        ": the eval images have no labels; give a labels file, or a folder "
        "(or tar) with one subfolder per class"));
  }
  const int64_t count = images.count();
  const std::vector<int32_t>& labels = images.labels();

  absl::StatusOr<std::unique_ptr<runtime::Executor>> fp32 =
      runtime::Executor::Create(job.graph, FullModelOptions(in));
  if (!fp32.ok()) return fp32.status();
  absl::StatusOr<std::unique_ptr<runtime::EsbExecutor>> esb = LoadPackage(job);
  if (!esb.ok()) return esb.status();
  job.report().set_esb_path((*esb)->Description());
  job.report().set_esb_source(kEsbmArtifact);

  auto predict =
      [&](const eval::InferFn& infer,
          const std::string& what) -> absl::StatusOr<std::vector<int>> {
    eval::BatchOptions options;
    options.batch = kBatch;
    options.on_progress = [&](int64_t done) {
      job.Progress({esb::v1::STAGE_EVAL, done, count, what});
    };
    if (job.progress != nullptr) {
      options.cancelled = [&] { return job.progress->Cancelled(); };
    }
    // Batch by batch from the data set: a large eval set is never held
    // whole (it is read once per model).
    const eval::ItemSource source = [&](int64_t start, int64_t n) {
      return images.ImageRange(start, n);
    };
    absl::StatusOr<eval::Outputs> out = eval::RunBatches(
        infer, source, count, {input.shape[1], input.shape[2], input.shape[3]},
        options);
    if (!out.ok()) return out.status();
    return eval::Predictions(*out);
  };
  absl::StatusOr<std::vector<int>> p32 =
      predict(eval::FirstOutputOf(**fp32), "fp32");
  if (!p32.ok()) return p32.status();
  absl::StatusOr<std::vector<int>> pesb =
      predict(eval::FirstOutputOf(**esb), "esb");
  if (!pesb.ok()) return pesb.status();
  job.report().set_eval_images(static_cast<int32_t>(count));
  job.report().set_top1_fp32(eval::Top1<int32_t>(*p32, labels));
  job.report().set_top1_esb(eval::Top1<int32_t>(*pesb, labels));
  job.report().set_agreement(eval::Agreement(*p32, *pesb));
  return absl::OkStatus();
}

absl::Status WriteReport(Job& job) {
  google::protobuf::util::JsonPrintOptions json_options;
  json_options.add_whitespace = true;
  json_options.always_print_primitive_fields = true;
  json_options.preserve_proto_field_names = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(job.report(), &json,
                                                   json_options)
           .ok()) {
    return absl::InternalError("cannot render report.json");
  }
  return WriteFileAtomically(job.in.env, job.result.report_path, json);
}

}  // namespace

absl::StatusOr<JobResult> RunJob(const JobInputs& in,
                                 const esb::v1::JobConfig& config,
                                 ProgressSink* progress) {
  absl::StatusOr<JobSettings> settings = ResolveConfig(config);
  if (!settings.ok()) return settings.status();
  JobResult result;
  Job job(in, *settings, progress, result);
  esb::v1::QuantReport& report = result.report;
  report.set_config_summary(settings->Summary());
  for (const auto& [k, v] : settings->AsMap()) {
    (*report.mutable_config())[k] = v;
  }
  struct Stage {
    const char* name;
    absl::Status (*run)(Job&);
  };
  std::vector<Stage> stages = {{"load", Load},
                               {"calibrate", CalibrateStage},
                               {"fit", FitStage},
                               {"export", ExportStage}};
  if (!in.eval_images.empty()) stages.push_back({"eval", EvalStage});
  for (const Stage& stage : stages) {
    const auto t = Clock::now();
    if (absl::Status s = stage.run(job); !s.ok()) return s;
    (*report.mutable_timings())[stage.name] = Since(t);
  }
  if (absl::Status s = WriteReport(job); !s.ok()) return s;
  return result;
}

}  // namespace esb::pipeline
