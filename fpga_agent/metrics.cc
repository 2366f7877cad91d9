#include "fpga_agent/metrics.h"

#include <utility>

namespace esb::agent {
namespace {

// Seconds: 50 us to 10 s, roughly x2.5 a step.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* kBuckets = new prometheus::Histogram::BucketBoundaries{
      50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3,
      25e-3, 50e-3,  0.1,    0.25,   0.5,  1,      2.5,  10};
  return *kBuckets;
}

}  // namespace

AgentMetrics::AgentMetrics(std::string board)
    : board_(std::move(board)),
      registry_(std::make_shared<prometheus::Registry>()) {
  const prometheus::Labels board_label = {{"board", board_}};
  requests_ = &prometheus::BuildCounter()
                   .Name("esb_agent_requests_total")
                   .Help("Inference requests by model and gRPC status.")
                   .Labels(board_label)
                   .Register(*registry_);
  queue_ = &prometheus::BuildHistogram()
                .Name("esb_agent_queue_seconds")
                .Help("Time a request waited for its batch to start.")
                .Labels(board_label)
                .Register(*registry_);
  compute_ = &prometheus::BuildHistogram()
                  .Name("esb_agent_compute_seconds")
                  .Help(
                      "Backend time of the batch a request ran in "
                      "(measured on the host).")
                  .Labels(board_label)
                  .Register(*registry_);
  request_ = &prometheus::BuildHistogram()
                  .Name("esb_agent_request_seconds")
                  .Help("A request from arrival to reply.")
                  .Labels(board_label)
                  .Register(*registry_);
  inferences_ = &prometheus::BuildCounter()
                     .Name("esb_agent_inferences_total")
                     .Help("Images inferred.")
                     .Labels(board_label)
                     .Register(*registry_);
  operations_ = &prometheus::BuildCounter()
                     .Name("esb_agent_operations_total")
                     .Help(
                         "Operations (2 x multiply-accumulates) run; "
                         "rate() is the board's OPS.")
                     .Labels(board_label)
                     .Register(*registry_);
  batch_size_ = &prometheus::BuildHistogram()
                     .Name("esb_agent_batch_size")
                     .Help("Images per backend run.")
                     .Labels(board_label)
                     .Register(*registry_);
  energy_ = &prometheus::BuildCounter()
                 .Name("esb_agent_energy_joules_total")
                 .Help(
                     "Energy of the backend runs; source \"measured\" "
                     "(the board's monitors) or \"model\".")
                 .Labels(board_label)
                 .Register(*registry_);
  power_ = &prometheus::BuildGauge()
                .Name("esb_agent_power_watts")
                .Help("Power per rail; source \"measured\" or \"model\".")
                .Labels(board_label)
                .Register(*registry_);
  bitstream_loads_ = &prometheus::BuildCounter()
                          .Name("esb_agent_bitstream_loads_total")
                          .Help("Bitstream loads by outcome.")
                          .Labels(board_label)
                          .Register(*registry_);
  bitstream_seconds_ =
      &prometheus::BuildHistogram()
           .Name("esb_agent_bitstream_load_seconds")
           .Help("Time of a bitstream load.")
           .Labels(board_label)
           .Register(*registry_)
           .Add({}, prometheus::Histogram::BucketBoundaries{
                        0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30});
  device_timeouts_ = &prometheus::BuildCounter()
                          .Name("esb_agent_device_timeouts_total")
                          .Help("Device runs that passed their deadline.")
                          .Labels(board_label)
                          .Register(*registry_)
                          .Add({});
  models_loaded_ = &prometheus::BuildGauge()
                        .Name("esb_agent_models_loaded")
                        .Help("Models being served.")
                        .Labels(board_label)
                        .Register(*registry_)
                        .Add({});
}

void AgentMetrics::Request(const std::string& model, const std::string& status,
                           double queue_seconds, double compute_seconds,
                           double total_seconds) {
  requests_->Add({{"model", model}, {"status", status}}).Increment();
  if (status != "OK") return;
  const prometheus::Labels labels = {{"model", model}};
  queue_->Add(labels, LatencyBuckets()).Observe(queue_seconds);
  compute_->Add(labels, LatencyBuckets()).Observe(compute_seconds);
  request_->Add(labels, LatencyBuckets()).Observe(total_seconds);
}

void AgentMetrics::Batch(const std::string& model, int images,
                         const BatchStats& stats) {
  static const auto* kBatchBuckets =
      new prometheus::Histogram::BucketBoundaries{1,  2,  4,   8,  16,
                                                  32, 64, 128, 256};
  const prometheus::Labels labels = {{"model", model}};
  inferences_->Add(labels).Increment(images);
  operations_->Add(labels).Increment(static_cast<double>(stats.operations));
  batch_size_->Add(labels, *kBatchBuckets).Observe(images);
  if (!stats.energy_source.empty()) {
    energy_->Add({{"model", model}, {"source", stats.energy_source}})
        .Increment(stats.energy_joules);
  }
}

void AgentMetrics::DeviceTimeout() { device_timeouts_->Increment(); }

void AgentMetrics::BitstreamLoad(bool ok, double seconds) {
  bitstream_loads_->Add({{"outcome", ok ? "ok" : "error"}}).Increment();
  bitstream_seconds_->Observe(seconds);
}

void AgentMetrics::ModelsLoaded(int count) { models_loaded_->Set(count); }

void AgentMetrics::Power(const BoardState& state) {
  const std::string source = state.power_measured ? "measured" : "model";
  std::set<std::pair<std::string, std::string>> now;
  absl::MutexLock lock(&mu_);
  for (const RailPower& rail : state.power) {
    power_->Add({{"rail", rail.rail}, {"source", source}}).Set(rail.watts);
    now.emplace(rail.rail, source);
  }
  for (const auto& [rail, rail_source] : rails_) {
    if (now.count({rail, rail_source}) == 0) {
      power_->Remove(&power_->Add({{"rail", rail}, {"source", rail_source}}));
    }
  }
  rails_ = std::move(now);
}

}  // namespace esb::agent
