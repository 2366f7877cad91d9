#include "fpga_agent/sim_backend.h"

#include <algorithm>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/accel/runner.h"
#include "core/runtime/esb_executor.h"
#include "fpga_agent/names.h"

namespace esb::agent {
namespace {

class SimModel final : public LoadedModel {
 public:
  SimModel(SimBackend* backend, const SimBackendOptions& options,
           pipeline::PackagedModel model,
           std::unique_ptr<runtime::EsbExecutor> executor, int max_batch,
           accel::Cost cost_of_one)
      : backend_(backend),
        options_(options),
        model_(std::move(model)),
        executor_(std::move(executor)),
        max_batch_(max_batch) {
    costs_.emplace(1, cost_of_one);
  }

  absl::StatusOr<std::vector<graph::Tensor>> Run(const graph::Tensor& input,
                                                 BatchStats* stats) override {
    if (input.shape.empty() || input.shape[0] < 1 ||
        input.shape[0] > max_batch_) {
      return absl::InvalidArgumentError(
          absl::StrCat("a run takes 1..", max_batch_, " images; got ",
                       input.shape.empty() ? 0 : input.shape[0]));
    }
    const int batch = static_cast<int>(input.shape[0]);
    absl::StatusOr<accel::Cost> cost = CostOf(batch);
    if (!cost.ok()) return cost.status();
    const absl::Time start = absl::Now();
    absl::StatusOr<std::vector<graph::Tensor>> outputs =
        executor_->Run({input});
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    if (!outputs.ok()) return outputs.status();
    const double joules =
        accel::EnergyJoules(*cost, options_.array, options_.power);
    backend_->RecordRun(joules -
                        options_.power.static_watts *
                            accel::Seconds(cost->cycles, options_.array));
    if (stats != nullptr) {
      stats->compute_seconds = seconds;
      stats->cycles = cost->cycles;
      stats->cycles_modelled = true;
      stats->energy_joules = joules;
      stats->energy_source = "model";
      stats->operations = 2 * cost->macs;
    }
    return outputs;
  }

  int max_batch() const override { return max_batch_; }

  std::string Description() const override {
    return absl::StrCat("sim: ", executor_->Description(),
                        "; cycles and energy modelled on ",
                        accel::Describe(options_.array));
  }

 private:
  // The modelled cost of a batch, compiled once per batch size.
  absl::StatusOr<accel::Cost> CostOf(int batch) {
    {
      absl::MutexLock lock(&mu_);
      auto it = costs_.find(batch);
      if (it != costs_.end()) return it->second;
    }
    absl::StatusOr<accel::Cost> cost =
        accel::EstimateCost(model_, options_.array, batch);
    if (!cost.ok()) return cost.status();
    absl::MutexLock lock(&mu_);
    costs_.emplace(batch, *cost);
    return *cost;
  }

  SimBackend* const backend_;
  const SimBackendOptions& options_;
  const pipeline::PackagedModel model_;
  const std::unique_ptr<runtime::EsbExecutor> executor_;
  const int max_batch_;
  absl::Mutex mu_;
  std::map<int, accel::Cost> costs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::Status SimBackend::LoadBitstream(const std::string& name) {
  if (absl::Status s = ValidateName(name, "bitstream name"); !s.ok()) return s;
  if (options_.bitstream_dir.empty()) {
    return absl::FailedPreconditionError(
        "esb-agent runs without --bitstream-dir; no bitstream can be loaded");
  }
  const std::string path = absl::StrCat(options_.bitstream_dir, "/", name);
  if (!env_->FileExists(path)) {
    return absl::NotFoundError(absl::StrCat("bitstream '", name,
                                            "' is not in the bitstream "
                                            "directory ",
                                            options_.bitstream_dir));
  }
  absl::MutexLock lock(&mu_);
  bitstream_ = name;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<LoadedModel>> SimBackend::Prepare(
    const pipeline::PackagedModel& model, int max_batch) {
  if (max_batch < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_batch ", max_batch, " is not positive"));
  }
  absl::StatusOr<accel::Cost> cost =
      accel::EstimateCost(model, options_.array, 1);
  if (!cost.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the model does not fit the modelled accelerator (",
        accel::Describe(options_.array), "): ", cost.status().message()));
  }
  runtime::EsbExecutorOptions executor_options;
  executor_options.threads = options_.threads;
  executor_options.budget = options_.budget;
  // A plan per batch size the batcher may form, so varying batches do not
  // evict and rebuild each other's plans.
  executor_options.max_cached_shapes =
      std::max(executor_options.max_cached_shapes, max_batch);
  absl::StatusOr<std::unique_ptr<runtime::EsbExecutor>> executor =
      runtime::EsbExecutor::Create(model.graph, model.layers, executor_options,
                                   &model.weight_integers);
  if (!executor.ok()) return executor.status();
  return std::make_unique<SimModel>(this, options_, model, *std::move(executor),
                                    max_batch, *cost);
}

void SimBackend::RecordRun(double dynamic_joules) {
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&mu_);
  runs_.emplace_back(now, dynamic_joules);
  while (!runs_.empty() && runs_.front().first < now - kPowerWindow) {
    runs_.pop_front();
  }
}

BoardState SimBackend::Status() {
  BoardState state;
  state.backend = "sim";
  state.accelerator =
      absl::StrCat(accel::Describe(options_.array), " (modelled)");
  const absl::Time now = absl::Now();
  double dynamic = 0;
  absl::MutexLock lock(&mu_);
  state.bitstream = bitstream_;
  state.bitstream_state =
      bitstream_.empty() ? "none (sim)" : "recorded (sim: nothing programmed)";
  for (const auto& [at, joules] : runs_) {
    if (at >= now - kPowerWindow) dynamic += joules;
  }
  state.power.push_back(
      RailPower{"accel", options_.power.static_watts +
                             dynamic / absl::ToDoubleSeconds(kPowerWindow)});
  state.power_measured = false;
  state.healthy = true;
  return state;
}

}  // namespace esb::agent
