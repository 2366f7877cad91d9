#include "client/agent_infer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/data/npy.h"
#include "core/env/env.h"

namespace esb::client {
namespace {

std::string ShapeText(const google::protobuf::RepeatedField<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

// Whether a data set holds 8-bit pixels (normalization applies to them)
// rather than float32 values fed as they are.
absl::StatusOr<bool> HoldsPixels(const std::string& path,
                                 data::Dataset::Format format) {
  if (format != data::Dataset::Format::kNpy) return true;
  absl::StatusOr<std::unique_ptr<SequentialFile>> file =
      Env::Default()->NewSequentialFile(path);
  if (!file.ok()) return file.status();
  std::string scratch;
  absl::string_view head;
  if (absl::Status s = (*file)->Read(data::kMaxNpyHeaderBytes, &scratch, &head);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<data::NpyHeader> header = data::ParseNpyHeader(head, path);
  if (!header.ok()) return header.status();
  return header->dtype == data::NpyArray::DType::kUInt8;
}

}  // namespace

esb::v1::LatencySummary SummarizeLatency(std::vector<double> seconds) {
  esb::v1::LatencySummary out;
  out.set_count(static_cast<int64_t>(seconds.size()));
  if (seconds.empty()) return out;
  std::sort(seconds.begin(), seconds.end());
  // Nearest rank: the smallest value with at least p of the values at or
  // below it.
  auto rank = [&](double p) {
    const size_t n = seconds.size();
    size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(n)));
    i = std::clamp<size_t>(i, 1, n);
    return 1e3 * seconds[i - 1];
  };
  double sum = 0;
  for (double s : seconds) sum += s;
  out.set_p50_ms(rank(0.50));
  out.set_p90_ms(rank(0.90));
  out.set_p99_ms(rank(0.99));
  out.set_mean_ms(1e3 * sum / static_cast<double>(seconds.size()));
  out.set_max_ms(1e3 * seconds.back());
  return out;
}

absl::StatusOr<ModelInput> ModelInputOf(
    const inference::ModelMetadataResponse& metadata) {
  ModelInput in;
  in.model = metadata.name();
  if (!metadata.versions().empty()) in.version = metadata.versions(0);
  if (metadata.inputs_size() != 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model '", metadata.name(), "' has ", metadata.inputs_size(),
        " inputs; esbctl feeds models with one image input"));
  }
  const auto& tensor = metadata.inputs(0);
  const auto& shape = tensor.shape();
  if (shape.size() != 4 || shape[0] != -1 || shape[1] < 1 || shape[2] < 1 ||
      shape[3] < 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "input '", tensor.name(), "' of model '", metadata.name(),
        "' has shape ", ShapeText(shape),
        "; esbctl feeds NCHW images with a free batch, [-1,C,H,W]"));
  }
  if (metadata.outputs_size() < 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("model '", metadata.name(), "' has no output"));
  }
  in.name = tensor.name();
  in.geometry =
      data::ImageGeometry{tensor.name(), shape[1], shape[2], shape[3]};
  in.output = metadata.outputs(0).name();
  return in;
}

absl::StatusOr<std::unique_ptr<InferInputs>> InferInputs::Open(
    const std::string& path, const std::string& labels_path, int64_t limit,
    const ModelInput& input, const data::Normalization& normalization) {
  absl::StatusOr<data::Dataset::Format> format = data::Dataset::Detect(path);
  if (!format.ok()) return format.status();
  absl::StatusOr<bool> pixels = HoldsPixels(path, *format);
  if (!pixels.ok()) return pixels.status();
  Wire wire = Wire::kFp32;
  std::string where;
  data::Normalization norm;
  if (!*pixels) {
    where = "none: float32 .npy values sent as they are";
  } else if (!normalization.empty()) {
    norm = normalization;
    where = absl::StrCat("--mean ", absl::StrJoin(normalization.mean, ","),
                         " --std ", absl::StrJoin(normalization.std, ","),
                         ", applied by esbctl");
  } else {
    // Read as p / 255 and sent back as the pixels p (exact: p / 255 in
    // float is within 2^-24 of the real quotient, far from a rounding
    // boundary after * 255).
    wire = Wire::kUint8;
    where = "the package's mean and std, applied by the agent";
  }
  data::DatasetOptions options;
  options.limit = limit;
  options.labels_path = labels_path;
  absl::StatusOr<std::unique_ptr<data::Dataset>> set =
      data::Dataset::Open(path, input.geometry, norm, options);
  if (!set.ok()) return set.status();
  if ((*set)->count() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, " holds no image"));
  }
  return absl::WrapUnique(
      new InferInputs(*std::move(set), input, wire, std::move(where)));
}

absl::StatusOr<inference::ModelInferRequest> InferInputs::Request(
    int64_t start, int64_t n) const {
  absl::StatusOr<std::vector<float>> images = dataset_->ImageRange(start, n);
  if (!images.ok()) return images.status();
  inference::ModelInferRequest request;
  request.set_model_name(input_.model);
  auto* tensor = request.add_inputs();
  tensor->set_name(input_.name);
  tensor->set_datatype(datatype());
  for (int64_t d : {n, input_.geometry.channels, input_.geometry.height,
                    input_.geometry.width}) {
    tensor->add_shape(d);
  }
  std::string* bytes = request.add_raw_input_contents();
  if (wire_ == Wire::kUint8) {
    bytes->resize(images->size());
    for (size_t i = 0; i < images->size(); ++i) {
      const int p = static_cast<int>(std::lround((*images)[i] * 255.0));
      (*bytes)[i] = static_cast<char>(std::clamp(p, 0, 255));
    }
  } else {
    bytes->resize(images->size() * sizeof(float));
    std::memcpy(bytes->data(), images->data(), bytes->size());
  }
  return request;
}

inference::ModelInferRequest RandomRequest(const ModelInput& input, int64_t n,
                                           uint64_t seed) {
  inference::ModelInferRequest request;
  request.set_model_name(input.model);
  auto* tensor = request.add_inputs();
  tensor->set_name(input.name);
  tensor->set_datatype("FP32");
  for (int64_t d : {n, input.geometry.channels, input.geometry.height,
                    input.geometry.width}) {
    tensor->add_shape(d);
  }
  std::vector<float> values(
      static_cast<size_t>(n * input.geometry.channels * input.geometry.height *
                          input.geometry.width));
  std::mt19937_64 random(seed);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  for (float& v : values) v = uniform(random);
  std::string* bytes = request.add_raw_input_contents();
  bytes->resize(values.size() * sizeof(float));
  std::memcpy(bytes->data(), values.data(), bytes->size());
  return request;
}

absl::StatusOr<std::vector<float>> FirstOutput(
    const inference::ModelInferResponse& response, int64_t n,
    int64_t* per_image) {
  if (response.outputs_size() < 1) {
    return absl::InvalidArgumentError("the reply has no output");
  }
  const auto& out = response.outputs(0);
  if (out.datatype() != "FP32") {
    return absl::InvalidArgumentError(absl::StrCat(
        "output '", out.name(), "' is ", out.datatype(), ", not FP32"));
  }
  int64_t count = 1;
  for (int64_t d : out.shape()) {
    if (d < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "output '", out.name(), "' has shape ", ShapeText(out.shape())));
    }
    count *= d;
  }
  if (out.shape().empty() || out.shape(0) != n || n < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "output '", out.name(), "' has shape ", ShapeText(out.shape()),
        " for a request of ", n, " images"));
  }
  std::vector<float> values;
  if (response.raw_output_contents_size() > 0) {
    const std::string& bytes = response.raw_output_contents(0);
    if (static_cast<int64_t>(bytes.size()) != count * 4) {
      return absl::InvalidArgumentError(absl::StrCat(
          "output '", out.name(), "' has ", bytes.size(), " bytes; shape ",
          ShapeText(out.shape()), " of FP32 needs ", count * 4));
    }
    values.resize(static_cast<size_t>(count));
    std::memcpy(values.data(), bytes.data(), bytes.size());
  } else {
    const auto& typed = out.contents().fp32_contents();
    if (typed.size() != count) {
      return absl::InvalidArgumentError(absl::StrCat(
          "output '", out.name(), "' has ", typed.size(), " values; shape ",
          ShapeText(out.shape()), " needs ", count));
    }
    values.assign(typed.begin(), typed.end());
  }
  *per_image = count / n;
  return values;
}

std::vector<int32_t> TopK(absl::Span<const float> values, int k) {
  const size_t keep =
      std::min(values.size(), static_cast<size_t>(std::max(k, 0)));
  std::vector<int32_t> top;
  std::vector<bool> taken(values.size(), false);
  for (size_t r = 0; r < keep; ++r) {
    // As std::max_element: a later value wins only when strictly larger.
    size_t best = values.size();
    for (size_t i = 0; i < values.size(); ++i) {
      if (taken[i]) continue;
      if (best == values.size() || values[best] < values[i]) best = i;
    }
    taken[best] = true;
    top.push_back(static_cast<int32_t>(best));
  }
  return top;
}

absl::Status CheckInferOptions(const InferOptions& options) {
  if (options.model.empty()) {
    return absl::InvalidArgumentError("--model NAME is required");
  }
  if (options.batch < 0 || options.batch > 65536) {
    return absl::InvalidArgumentError(
        absl::StrCat("--batch ", options.batch, " is out of range [1, 65536]"));
  }
  if (options.top < 1 || options.top > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("--top ", options.top, " is out of range [1, 1000]"));
  }
  if (options.limit == 0 || options.limit < -1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--limit ", options.limit, " must be at least 1"));
  }
  if (options.input_path.empty()) {
    return absl::InvalidArgumentError(
        "--input IMAGES is required (IDX, .npy, an image folder or a .tar)");
  }
  return absl::OkStatus();
}

absl::Status CheckInputPath(const std::string& path) {
  absl::StatusOr<data::Dataset::Format> format = data::Dataset::Detect(path);
  if (!format.ok()) {
    return absl::Status(format.status().code(),
                        absl::StrCat("--input: ", format.status().message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<esb::v1::InferReport> RunInfer(AgentClient& agent,
                                              const InferOptions& options,
                                              int64_t max_batch) {
  if (absl::Status s = CheckInferOptions(options); !s.ok()) return s;
  if (absl::Status s = CheckInputPath(options.input_path); !s.ok()) return s;
  int batch = options.batch;
  if (batch > 0 && max_batch > 0 && batch > max_batch) {
    return absl::InvalidArgumentError(
        absl::StrCat("--batch ", batch, " is over model '", options.model,
                     "''s max batch of ", max_batch,
                     " on the agent (its --max-batch); use --batch ", max_batch,
                     " or less"));
  }
  if (batch == 0) {
    batch = kDefaultInferBatch;
    if (max_batch > 0 && max_batch < batch) batch = static_cast<int>(max_batch);
  }
  absl::StatusOr<inference::ModelMetadataResponse> metadata =
      agent.ModelMetadata(options.model);
  if (!metadata.ok()) return metadata.status();
  absl::StatusOr<ModelInput> input = ModelInputOf(*metadata);
  if (!input.ok()) return input.status();
  absl::StatusOr<std::unique_ptr<InferInputs>> inputs =
      InferInputs::Open(options.input_path, options.labels_path, options.limit,
                        *input, options.normalization);
  if (!inputs.ok()) return inputs.status();
  const data::Dataset& set = (*inputs)->dataset();

  esb::v1::InferReport report;
  report.set_agent(agent.address());
  report.set_model(options.model);
  report.set_model_version(input->version);
  report.set_input(options.input_path);
  report.set_input_format(std::string{data::FormatName(set.format())});
  report.set_datatype((*inputs)->datatype());
  report.set_normalization((*inputs)->normalization());
  report.set_images(set.count());
  report.set_batch(batch);
  report.set_labelled(set.has_labels());
  report.set_top(options.top);

  std::vector<double> latencies;
  int64_t correct = 0;
  int64_t in_top = 0;
  const absl::Time start = absl::Now();
  for (int64_t first = 0; first < set.count(); first += batch) {
    const int64_t n = std::min<int64_t>(batch, set.count() - first);
    absl::StatusOr<inference::ModelInferRequest> request =
        (*inputs)->Request(first, n);
    if (!request.ok()) return request.status();
    request->set_id(absl::StrCat(first));
    const absl::Time sent = absl::Now();
    absl::StatusOr<inference::ModelInferResponse> response =
        agent.Infer(*request);
    latencies.push_back(absl::ToDoubleSeconds(absl::Now() - sent));
    if (!response.ok()) {
      return absl::Status(
          response.status().code(),
          absl::StrCat("images ", first, "..", first + n - 1, " of ",
                       options.input_path, ": ", response.status().message()));
    }
    int64_t per_image = 0;
    absl::StatusOr<std::vector<float>> values =
        FirstOutput(*response, n, &per_image);
    if (!values.ok()) {
      return absl::DataLossError(absl::StrCat("the agent's reply to images ",
                                              first, "..", first + n - 1, ": ",
                                              values.status().message()));
    }
    for (int64_t i = 0; i < n; ++i) {
      const absl::Span<const float> row(values->data() + i * per_image,
                                        static_cast<size_t>(per_image));
      esb::v1::Prediction* p = report.add_predictions();
      p->set_index(first + i);
      for (int32_t c : TopK(row, options.top)) {
        p->add_classes(c);
        p->add_logits(row[static_cast<size_t>(c)]);
      }
      if (options.raw) {
        for (float v : row) p->add_outputs(v);
      }
      if (set.has_labels()) {
        const int32_t label = set.labels()[static_cast<size_t>(first + i)];
        p->set_label(label);
        if (!p->classes().empty() && p->classes(0) == label) ++correct;
        if (std::find(p->classes().begin(), p->classes().end(), label) !=
            p->classes().end()) {
          ++in_top;
        }
      }
    }
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  report.set_requests(static_cast<int64_t>(latencies.size()));
  report.set_seconds(seconds);
  report.set_images_per_second(
      seconds > 0 ? static_cast<double>(set.count()) / seconds : 0);
  *report.mutable_latency() = SummarizeLatency(std::move(latencies));
  if (set.has_labels()) {
    const double count = static_cast<double>(set.count());
    report.set_correct(correct);
    report.set_top1(static_cast<double>(correct) / count);
    report.set_topk(static_cast<double>(in_top) / count);
  }
  return report;
}

std::string InferText(const esb::v1::InferReport& report, int lines) {
  std::string out = absl::StrFormat(
      "%s (version %s) at %s: %d images of %s (%s) as %s, normalized by %s; "
      "batches of %d\n",
      report.model(), report.model_version(), report.agent(), report.images(),
      report.input(), report.input_format(), report.datatype(),
      report.normalization(), report.batch());
  if (report.has_top1()) {
    absl::StrAppendFormat(&out, "top-1 %.2f%% (%d of %d images)\n",
                          100 * report.top1(), report.correct(),
                          report.images());
    if (report.top() > 1) {
      absl::StrAppendFormat(&out, "top-%d %.2f%%\n", report.top(),
                            100 * report.topk());
    }
  } else {
    const int shown = std::min(lines, report.predictions_size());
    for (int i = 0; i < shown; ++i) {
      const esb::v1::Prediction& p = report.predictions(i);
      std::vector<std::string> parts;
      for (int k = 0; k < p.classes_size(); ++k) {
        parts.push_back(absl::StrFormat("class %d (logit %.4g)", p.classes(k),
                                        p.logits(k)));
      }
      absl::StrAppendFormat(&out, "image %d: %s", p.index(),
                            absl::StrJoin(parts, ", "));
      if (p.outputs_size() > 0) {
        absl::StrAppend(&out, "  outputs [",
                        absl::StrJoin(p.outputs(), " ",
                                      [](std::string* s, float v) {
                                        absl::StrAppendFormat(s, "%.6g", v);
                                      }),
                        "]");
      }
      absl::StrAppend(&out, "\n");
    }
    if (report.predictions_size() > shown) {
      absl::StrAppendFormat(&out, "... and %d more images (--json for all)\n",
                            report.predictions_size() - shown);
    }
  }
  const esb::v1::LatencySummary& l = report.latency();
  absl::StrAppendFormat(
      &out,
      "throughput %.1f images/s (%.3f s); request latency p50 %.3f ms, p99 "
      "%.3f ms over %d requests\n",
      report.images_per_second(), report.seconds(), l.p50_ms(), l.p99_ms(),
      l.count());
  return out;
}

}  // namespace esb::client
