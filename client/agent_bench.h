// `esbctl bench`: closed-loop load on one model of an esb-agent. N client
// threads, each on its own connection, send ModelInfer requests one after
// another for the duration (after one warm-up request each, not counted):
// the throughput, the latency percentiles of the requests that succeeded,
// and the errors by gRPC code.
//
// Energy per inference is read, never estimated here: with --metrics
// HOST:PORT (the agent's --metrics-port), the agent's
// esb_agent_energy_joules_total{model=...} counter is read before and
// after the run, and the difference over the inferences is reported with
// the counter's `source` label ("measured" by the board's monitors, or
// "model" from the accelerator's cost model). Without it, or when the
// agent exports no such counter for the model, the energy is unknown and
// the report says why. Requests others send to the model during the run
// count in the counter too.
//
// Thread-safe functions; RunBench starts and joins its own threads.
#ifndef ESB_CLIENT_AGENT_BENCH_H_
#define ESB_CLIENT_AGENT_BENCH_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/data/normalize.h"
#include "esb/v1/report.pb.h"

namespace esb::client {

struct BenchOptions {
  std::string agent;  // HOST:PORT of esb-agent.
  std::string model;
  int concurrency = 1;  // Client threads, one connection each.
  absl::Duration duration = absl::Seconds(10);
  int batch = 1;  // Images per request.
  // Images to send (any data set esbctl infer takes), cycled; "" sends
  // uniform random FP32 values.
  std::string input_path;
  data::Normalization normalization;  // --mean/--std, as for infer.
  // HOST:PORT of the agent's metrics endpoint; "" leaves energy unknown.
  std::string metrics_address;
  // For BoardStatus (the power rails); "" when the agent has none.
  std::string admin_token;
};

// INVALID_ARGUMENT naming the flag: no model, concurrency outside
// 1..1024, duration outside 0.1 s..1 h, batch outside 1..65536, a
// --metrics that is not HOST:PORT.
absl::Status CheckBenchOptions(const BenchOptions& options);

// Runs the load. CheckInputPath's errors for --input; the agent's errors before
// the run (unknown model, no agent, a batch over the model's max batch) fail
// it; errors during the run are counted in the report.
absl::StatusOr<esb::v1::BenchReport> RunBench(const BenchOptions& options);

std::string BenchText(const esb::v1::BenchReport& report);

// The sum of the esb_agent_energy_joules_total series of `model` in a
// Prometheus text exposition, and their `source` labels.
struct EnergyReading {
  bool found = false;  // At least one series of the model.
  double joules = 0;
  std::vector<std::string> sources;  // Sorted, distinct.
};

inline constexpr char kEnergyMetric[] = "esb_agent_energy_joules_total";

// INVALID_ARGUMENT naming the line when a sample of the metric does not
// parse.
absl::StatusOr<EnergyReading> EnergyOf(absl::string_view exposition,
                                       const std::string& model);

}  // namespace esb::client

#endif  // ESB_CLIENT_AGENT_BENCH_H_
