#include "core/pipeline/job.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <random>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/data/idx.h"
#include "core/data/images.h"
#include "core/data/normalize.h"
#include "core/graph/onnx_import.h"
#include "core/graph/passes.h"
#include "core/graph/shapes.h"
#include "core/pipeline/calibrate.h"
#include "core/pipeline/config.h"
#include "core/pipeline/esbm.h"
#include "core/pipeline/export_qdq.h"
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

struct Images {
  std::vector<float> data;  // N x C x H x W, normalized.
  int64_t count = 0;
  std::vector<int64_t> item_shape;  // C, H, W.
};

absl::StatusOr<Images> LoadImages(const std::string& path, int64_t limit,
                                  const graph::ValueInfo& input,
                                  const data::Normalization& norm) {
  const auto& shape = input.shape;  // N x C x H x W, checked by RunJob.
  Images out;
  out.item_shape = {shape[1], shape[2], shape[3]};
  absl::StatusOr<std::vector<float>> data = data::ReadImagesFor(
      path, limit, {input.name, shape[1], shape[2], shape[3]}, norm,
      &out.count);
  if (!data.ok()) return data.status();
  out.data = *std::move(data);
  return out;
}

// `count` images picked by the seed (all when count >= N), in a fixed
// order: the same seed always gives the same calibration set.
Images Pick(const Images& all, int64_t count, uint64_t seed) {
  std::vector<int64_t> order(all.count);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  for (int64_t i = all.count - 1; i > 0; --i) {  // Fisher-Yates.
    const auto j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1));
    std::swap(order[i], order[j]);
  }
  Images out;
  out.count = std::min(count, all.count);
  out.item_shape = all.item_shape;
  const int64_t per = all.data.size() / std::max<int64_t>(all.count, 1);
  out.data.resize(out.count * per);
  for (int64_t i = 0; i < out.count; ++i) {
    std::copy_n(all.data.begin() + order[i] * per, per,
                out.data.begin() + i * per);
  }
  return out;
}

graph::Tensor Batch(const Images& images, int64_t start, int64_t n) {
  const int64_t per = images.data.size() / std::max<int64_t>(images.count, 1);
  graph::Tensor t;
  t.shape = {n};
  t.shape.insert(t.shape.end(), images.item_shape.begin(),
                 images.item_shape.end());
  t.data.assign(images.data.begin() + start * per,
                images.data.begin() + (start + n) * per);
  return t;
}

// Predicted classes of every image.
template <typename Engine>
absl::StatusOr<std::vector<int>> Predict(Engine& engine, const Images& images,
                                         ProgressSink* progress,
                                         const std::string& what) {
  std::vector<int> out;
  for (int64_t start = 0; start < images.count; start += kBatch) {
    if (progress != nullptr && progress->Cancelled()) {
      return absl::CancelledError("evaluation cancelled");
    }
    const int64_t n = std::min(kBatch, images.count - start);
    absl::StatusOr<std::vector<graph::Tensor>> y =
        engine.Run({Batch(images, start, n)});
    if (!y.ok()) return y.status();
    const graph::Tensor& logits = y->front();
    const int64_t classes = logits.size() / n;
    for (int64_t i = 0; i < n; ++i) {
      const float* row = logits.data.data() + i * classes;
      out.push_back(
          static_cast<int>(std::max_element(row, row + classes) - row));
    }
    if (progress != nullptr) {
      progress->OnProgress({"eval", start + n, images.count, what});
    }
  }
  return out;
}

}  // namespace

absl::Status WriteFileAtomically(const std::string& path,
                                 const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  auto fail = [&](absl::string_view what, int err) {
    ::unlink(tmp.c_str());
    return absl::Status(
        absl::ErrnoToStatusCode(err),
        absl::StrCat(tmp, ": ", what, ": ", std::strerror(err)));
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return fail("cannot create", errno);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return fail("write failed", err);
    }
    done += static_cast<size_t>(n);
  }
  const int synced = ::fsync(fd) == 0 ? 0 : errno;
  const int closed = ::close(fd) == 0 ? 0 : errno;
  if (synced != 0) return fail("fsync failed", synced);
  if (closed != 0) return fail("close failed", closed);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return fail(absl::StrCat("rename to ", path, " failed"), errno);
  }
  return absl::OkStatus();
}

absl::StatusOr<JobResult> RunJob(const JobInputs& in,
                                 const esb::v1::JobConfig& config,
                                 ProgressSink* progress) {
  absl::StatusOr<JobSettings> settings = ResolveConfig(config);
  if (!settings.ok()) return settings.status();
  JobResult result;
  esb::v1::QuantReport& report = result.report;
  report.set_model(in.model_path);
  report.set_config_summary(settings->Summary());
  for (const auto& [k, v] : settings->AsMap()) {
    (*report.mutable_config())[k] = v;
  }

  // Load.
  auto t = Clock::now();
  absl::StatusOr<graph::Graph> graph = graph::ImportOnnxFile(in.model_path);
  if (!graph.ok()) return graph.status();
  graph::Optimize(*graph);
  if (graph->inputs.size() != 1 || graph->inputs[0].shape.size() != 4) {
    return absl::InvalidArgumentError(
        "the model must have one 4-D NCHW image input");
  }
  if (graph->inputs[0].shape[0] != graph::kBatch) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input '", graph->inputs[0].name, "' has a fixed batch of ",
        graph->inputs[0].shape[0],
        "; calibration and fitting run batches of many images: export the "
        "model with a free batch dimension (torch.onnx.export's "
        "dynamic_axes={'input': {0: 'N'}})"));
  }
  std::set<std::string> node_names;
  for (const auto& n : graph->nodes) node_names.insert(n.name);
  for (const auto& [name, o] : settings->overrides) {
    if (!node_names.count(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("overrides: the model has no node '", name, "'"));
    }
  }
  data::Normalization norm{settings->mean, settings->std};
  std::string norm_source = "config";
  if (norm.empty()) {
    auto m = graph->metadata.find("input_mean");
    auto s = graph->metadata.find("input_std");
    norm_source = "none (pixels / 255)";
    if (m != graph->metadata.end() && s != graph->metadata.end()) {
      absl::StatusOr<data::Normalization> parsed =
          data::ParseNormalization(m->second, s->second);
      if (!parsed.ok()) return parsed.status();
      norm = *parsed;
      norm_source = "model metadata";
    }
  }
  (*report.mutable_config())["normalization"] = norm_source;
  (*report.mutable_timings())["load"] = Since(t);

  // Calibrate.
  t = Clock::now();
  absl::StatusOr<Images> all =
      LoadImages(in.calib_images, -1, graph->inputs[0], norm);
  if (!all.ok()) return all.status();
  const Images calib = Pick(*all, settings->calib_count, settings->seed);
  report.set_calib_images(static_cast<int32_t>(calib.count));
  int64_t next = 0;
  const int64_t batches = (calib.count + kBatch - 1) / kBatch;
  auto source = [&]() -> std::vector<graph::Tensor> {
    if (next >= calib.count) return {};
    const int64_t n = std::min(kBatch, calib.count - next);
    graph::Tensor b = Batch(calib, next, n);
    next += n;
    if (progress != nullptr) {
      progress->OnProgress({"calibrate", next / kBatch + (next % kBatch != 0),
                            batches, "activation histograms"});
    }
    return {std::move(b)};
  };
  absl::StatusOr<std::map<std::string, ActivationStats>> stats =
      CollectActivationStats(*graph, source, in.threads, progress);
  if (!stats.ok()) return stats.status();
  (*report.mutable_timings())["calibrate"] = Since(t);

  // Fit on a sample of the calibration images.
  t = Clock::now();
  absl::StatusOr<std::map<std::string, std::vector<int64_t>>> shapes;
  int64_t per_image_floats = 0;
  {
    std::vector<int64_t> one = graph->inputs[0].shape;
    one[0] = 1;
    shapes = graph::InferShapes(*graph, {{graph->inputs[0].name, one}});
    if (!shapes.ok()) return shapes.status();
    for (const auto& [name, s] : *shapes) {
      if (graph->FindConstant(name) != nullptr) continue;
      int64_t n = 1;
      for (int64_t d : s) n *= d;
      per_image_floats += n;
    }
  }
  const int64_t sample_count = std::clamp<int64_t>(
      kSampleFloatBudget / std::max<int64_t>(per_image_floats, 1), 1,
      std::min(kMaxSample, calib.count));
  absl::StatusOr<FittedModel> fitted =
      FitModel(*graph, *stats, Batch(calib, 0, sample_count), *settings,
               in.threads, progress);
  if (!fitted.ok()) return fitted.status();
  (*report.mutable_timings())["fit"] = Since(t);
  double mac_sb = 0.0;
  int64_t macs = 0;
  for (const auto& l : fitted->reports) {
    *report.add_layers() = l;
    macs += l.macs();
    mac_sb += static_cast<double>(l.macs()) * l.weight_format().sb();
  }
  report.set_total_macs(macs);
  report.set_mean_sb(macs > 0 ? mac_sb / macs : 0.0);

  // Export.
  t = Clock::now();
  std::error_code ec;
  std::filesystem::create_directories(in.output_dir, ec);
  if (ec) {
    return absl::PermissionDeniedError(absl::StrCat(
        in.output_dir, ": cannot create the output folder: ", ec.message()));
  }
  const std::string name = std::filesystem::path(in.model_path).stem().string();
  QdqOptions qdq;
  qdq.metadata["esb_config"] = settings->Summary();
  qdq.graph_name = name;
  absl::StatusOr<std::string> onnx =
      ExportQdqOnnx(fitted->graph, fitted->layers, qdq);
  if (!onnx.ok()) return onnx.status();
  absl::StatusOr<esb::v1::Package> package =
      BuildPackage(fitted->graph, fitted->layers, norm, name);
  if (!package.ok()) return package.status();
  result.onnx_path = (std::filesystem::path(in.output_dir) / "model.esb.onnx");
  result.esbm_path = (std::filesystem::path(in.output_dir) / "model.esbm");
  result.report_path = (std::filesystem::path(in.output_dir) / "report.json");
  if (absl::Status s = WriteFileAtomically(result.onnx_path, *onnx); !s.ok()) {
    return s;
  }
  if (absl::Status s =
          WriteFileAtomically(result.esbm_path, SerializePackage(*package));
      !s.ok()) {
    return s;
  }
  if (progress != nullptr) progress->OnProgress({"export", 1, 1, "artifacts"});
  (*report.mutable_timings())["export"] = Since(t);

  // Evaluate.
  if (!in.eval_images.empty()) {
    t = Clock::now();
    absl::StatusOr<Images> eval =
        LoadImages(in.eval_images, in.eval_limit, graph->inputs[0], norm);
    if (!eval.ok()) return eval.status();
    absl::StatusOr<data::IdxArray> labels =
        data::ReadIdx(in.eval_labels, in.eval_limit);
    if (!labels.ok()) return labels.status();
    if (labels->shape.size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          in.eval_labels, ": labels must be a 1-D IDX array; this one has ",
          labels->shape.size(), " dimensions"));
    }
    if (labels->shape[0] != eval->count) {
      return absl::InvalidArgumentError(
          absl::StrCat(in.eval_labels, ": ", labels->shape[0], " labels for ",
                       eval->count, " images"));
    }
    runtime::ExecutorOptions fp_options;
    fp_options.threads = in.threads;
    absl::StatusOr<std::unique_ptr<runtime::Executor>> fp32 =
        runtime::Executor::Create(*graph, fp_options);
    if (!fp32.ok()) return fp32.status();
    runtime::EsbExecutorOptions esb_options;
    esb_options.threads = in.threads;
    absl::StatusOr<std::unique_ptr<runtime::EsbExecutor>> esb =
        runtime::EsbExecutor::Create(fitted->graph, fitted->layers,
                                     esb_options);
    if (!esb.ok()) return esb.status();
    report.set_esb_path((*esb)->Description());
    absl::StatusOr<std::vector<int>> p32 =
        Predict(**fp32, *eval, progress, "fp32");
    if (!p32.ok()) return p32.status();
    absl::StatusOr<std::vector<int>> pesb =
        Predict(**esb, *eval, progress, "esb");
    if (!pesb.ok()) return pesb.status();
    int64_t right32 = 0, right_esb = 0, agree = 0;
    for (int64_t i = 0; i < eval->count; ++i) {
      right32 += (*p32)[i] == labels->data[i];
      right_esb += (*pesb)[i] == labels->data[i];
      agree += (*p32)[i] == (*pesb)[i];
    }
    const double n = static_cast<double>(std::max<int64_t>(eval->count, 1));
    report.set_eval_images(static_cast<int32_t>(eval->count));
    report.set_top1_fp32(right32 / n);
    report.set_top1_esb(right_esb / n);
    report.set_agreement(agree / n);
    (*report.mutable_timings())["eval"] = Since(t);
  }

  google::protobuf::util::JsonPrintOptions json_options;
  json_options.add_whitespace = true;
  json_options.always_print_primitive_fields = true;
  json_options.preserve_proto_field_names = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(report, &json, json_options)
           .ok()) {
    return absl::InternalError("cannot render report.json");
  }
  if (absl::Status s = WriteFileAtomically(result.report_path, json); !s.ok()) {
    return s;
  }
  return result;
}

}  // namespace esb::pipeline
