#include "core/accel/runner.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/accel/compile.h"
#include "core/accel/machine.h"
#include "core/graph/shapes.h"

namespace esb::accel {

struct ModelRunner::Compiled : internal::CompiledModel {};

namespace {

runtime::EsbExecutorOptions HostOptions(const RunnerOptions& options) {
  runtime::EsbExecutorOptions o;
  o.threads = options.host_threads;
  o.budget = options.host_budget;
  // A plan per batch size the batcher may form, so varying batches do not
  // evict and rebuild each other's plans.
  o.max_cached_shapes = std::max(o.max_cached_shapes, options.max_batch);
  return o;
}

absl::Status CheckOptions(const RunnerOptions& options) {
  if (options.max_batch < 1 ||
      options.max_batch > static_cast<int>(kMaxBatch)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_batch ", options.max_batch, " is outside 1..", kMaxBatch));
  }
  return absl::OkStatus();
}

}  // namespace

ModelRunner::ModelRunner(std::unique_ptr<Compiled> compiled, Device* device,
                         const RunnerOptions& options)
    : compiled_(std::move(compiled)), device_(device), options_(options) {}

ModelRunner::~ModelRunner() = default;

absl::StatusOr<std::unique_ptr<ModelRunner>> ModelRunner::Create(
    const pipeline::PackagedModel& model, Device* device,
    const RunnerOptions& options) {
  absl::Status st = CheckOptions(options);
  if (!st.ok()) return st;
  absl::StatusOr<std::unique_ptr<internal::CompiledModel>> compiled =
      internal::Compile(model, device->config(), options.max_batch,
                        HostOptions(options), /*build_executors=*/true);
  if (!compiled.ok()) return compiled.status();
  auto c = std::make_unique<Compiled>();
  static_cast<internal::CompiledModel&>(*c) = std::move(**compiled);
  const absl::Span<uint8_t> buffer = device->buffer();
  if (c->buffer_bytes > buffer.size()) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "the model needs %d bytes of the accelerator's buffer region (%d of "
        "programs and weights, the rest activations for %d images); it has "
        "%d",
        c->buffer_bytes, c->image.size(), options.max_batch, buffer.size()));
  }
  std::memcpy(buffer.data(), c->image.data(), c->image.size());
  return absl::WrapUnique(new ModelRunner(std::move(c), device, options));
}

int ModelRunner::max_batch() const { return compiled_->max_batch; }

std::string ModelRunner::Description() const {
  int programs = 0;
  int host = 0;
  for (const internal::Segment& s : compiled_->segments) {
    if (s.device && !s.layers.empty()) ++programs;
    if (!s.device) ++host;
  }
  std::string out =
      absl::StrFormat("%d device program%s (%d layers), %d host segment%s",
                      programs, programs == 1 ? "" : "s",
                      compiled_->device_layers, host, host == 1 ? "" : "s");
  if (!compiled_->host_ops.empty()) {
    absl::StrAppend(&out, " (", absl::StrJoin(compiled_->host_ops, ", "), ")");
  }
  absl::StrAppendFormat(&out, "; image %.1f KiB, buffers %.1f KiB",
                        compiled_->image.size() / 1024.0,
                        compiled_->buffer_bytes / 1024.0);
  return out;
}

absl::StatusOr<std::vector<graph::Tensor>> ModelRunner::Run(
    const std::vector<graph::Tensor>& inputs, RunStats* stats) {
  const internal::CompiledModel& c = *compiled_;
  if (inputs.size() != c.input_names.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected ", c.input_names.size(), " inputs, got ", inputs.size()));
  }
  int64_t batch = -1;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::vector<int64_t>& want = c.shapes.at(c.input_names[i]);
    const graph::Tensor& t = inputs[i];
    const bool same_rank = t.shape.size() == want.size();
    bool ok = same_rank && !t.shape.empty() && t.shape[0] >= 1;
    for (size_t d = 1; ok && d < want.size(); ++d) ok = t.shape[d] == want[d];
    const std::optional<int64_t> n = t.CheckedSize();
    ok = ok && n && *n == static_cast<int64_t>(t.data.size());
    if (!ok || (batch >= 0 && t.shape[0] != batch)) {
      std::vector<int64_t> expect = want;
      expect[0] = graph::kBatch;
      return absl::InvalidArgumentError(
          absl::StrCat("input '", c.input_names[i], "': shape ",
                       graph::ShapeToString(t.shape), " with ", t.data.size(),
                       " values; expected ", graph::ShapeToString(expect)));
    }
    batch = t.shape[0];
  }
  RunStats total;
  std::vector<graph::Tensor> outputs(c.output_names.size());
  absl::MutexLock lock(&device_mu_);
  const absl::Span<uint8_t> buffer = device_->buffer();
  for (int64_t start = 0; start < batch; start += c.max_batch) {
    const int64_t n = std::min<int64_t>(c.max_batch, batch - start);
    std::map<std::string, graph::Tensor> host;
    for (size_t i = 0; i < inputs.size(); ++i) {
      graph::Tensor t;
      t.shape = inputs[i].shape;
      t.shape[0] = n;
      const int64_t per = graph::NumElements(c.shapes.at(c.input_names[i]));
      t.data.assign(inputs[i].data.begin() + start * per,
                    inputs[i].data.begin() + (start + n) * per);
      host[c.input_names[i]] = std::move(t);
    }
    for (const internal::Segment& s : c.segments) {
      if (!s.device) {
        std::vector<graph::Tensor> in;
        for (const graph::ValueInfo& v : s.graph.inputs) {
          in.push_back(host.at(v.name));
        }
        absl::StatusOr<std::vector<graph::Tensor>> out = s.executor->Run(in);
        if (!out.ok()) return out.status();
        for (size_t o = 0; o < out->size(); ++o) {
          host[s.graph.outputs[o].name] = std::move((*out)[o]);
        }
        ++total.host_segments;
        continue;
      }
      for (const std::string& v : s.uploads) {
        const internal::Region& r = c.regions.at(v);
        const graph::Tensor& t = host.at(v);
        std::memcpy(buffer.data() + r.offset, t.data.data(),
                    t.data.size() * sizeof(float));
      }
      if (!s.layers.empty()) {
        StoreU32(buffer.data() + s.program_offset + 12,
                 static_cast<uint32_t>(n));
        absl::StatusOr<DeviceRun> run =
            device_->Run(s.program_offset, options_.device_timeout);
        if (!run.ok()) {
          return absl::Status(
              run.status().code(),
              absl::StrCat("device program of layers '", s.layer_names.front(),
                           "'..'", s.layer_names.back(),
                           "': ", run.status().message()));
        }
        total.device_cycles += run->cycles;
        ++total.device_runs;
        for (const Descriptor& d : s.layers) {
          total.cost += LayerCost(d, static_cast<int>(n), device_->config());
        }
      }
      for (const std::string& v : s.downloads) {
        const internal::Region& r = c.regions.at(v);
        graph::Tensor t;
        t.shape = c.shapes.at(v);
        t.shape[0] = n;
        t.data.resize(static_cast<size_t>(r.image_elements * n));
        std::memcpy(t.data.data(), buffer.data() + r.offset,
                    t.data.size() * sizeof(float));
        host[v] = std::move(t);
      }
    }
    for (size_t o = 0; o < c.output_names.size(); ++o) {
      graph::Tensor& part = host.at(c.output_names[o]);
      graph::Tensor& whole = outputs[o];
      if (whole.shape.empty()) {
        whole.shape = part.shape;
        whole.shape[0] = 0;
      }
      whole.shape[0] += part.shape[0];
      whole.data.insert(whole.data.end(), part.data.begin(), part.data.end());
    }
  }
  if (stats != nullptr) *stats = total;
  return outputs;
}

absl::StatusOr<Cost> EstimateCost(const pipeline::PackagedModel& model,
                                  const ArrayConfig& config, int batch) {
  RunnerOptions options;
  options.max_batch = batch;
  absl::Status st = CheckOptions(options);
  if (!st.ok()) return st;
  absl::StatusOr<std::unique_ptr<internal::CompiledModel>> compiled =
      internal::Compile(model, config, batch, HostOptions(options),
                        /*build_executors=*/false);
  if (!compiled.ok()) return compiled.status();
  Cost total;
  for (const internal::Segment& s : (*compiled)->segments) {
    for (const Descriptor& d : s.layers) total += LayerCost(d, batch, config);
  }
  return total;
}

}  // namespace esb::accel
