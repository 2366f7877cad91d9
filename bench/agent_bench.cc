// The board agent's serving overhead, against the ESB executor run in this
// process on the same package in the same run (bench/agent_bench.sh starts
// the agent and deploys the package):
//
//   in-process  runtime::EsbExecutor on the unpacked package: latency of
//               batch-1 runs (p50) and throughput of batch-32 runs, for
//               --seconds each;
//   floor       ServerLive round trips to the agent: the gRPC cost alone;
//   ceiling     ServerLive calls from 32 threads, one connection each: the
//               most calls a second this machine carries between the
//               agent and its clients when no model runs at all;
//   agent       esbctl bench's closed loop (client/agent_bench.h) at
//               concurrency 1, 8 and 32, batch 1, and at concurrency 32 with
//               requests of 32 images, for --seconds each: p50/p99 latency
//               and throughput.
//
// Both sides get uniform random FP32 images. Targets: the p50 round-trip
// overhead at concurrency 1 (agent p50 minus in-process p50) < 200 us, and
// the agent's throughput at concurrency 32 (batch 1, merged by the agent's
// batcher) at least 0.8 of the in-process batch-32 throughput. The client
// threads run on the same machine as the agent and take CPU from it; the
// ceiling says how far any batch-1 figure can go here.
//
//   esb_agent_bench --esbm model.esbm --agent HOST:PORT --model NAME
//                   [--seconds S] [--metrics HOST:PORT]
//
// Exits 1 when a target is missed, 2 when the bench itself cannot run.
#include "client/agent_bench.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "client/agent_client.h"
#include "client/agent_infer.h"
#include "core/env/env.h"
#include "core/package/esbm.h"
#include "core/runtime/esb_executor.h"
#include "esb/v1/report.pb.h"

ABSL_FLAG(std::string, esbm, "", "The package the agent serves.");
ABSL_FLAG(std::string, agent, "", "esb-agent serving it, HOST:PORT.");
ABSL_FLAG(std::string, model, "", "The name it is deployed as.");
ABSL_FLAG(double, seconds, 3, "Seconds per figure.");
ABSL_FLAG(std::string, metrics, "",
          "The agent's metrics HOST:PORT, for energy per inference.");

namespace {

using esb::graph::Tensor;

constexpr double kMaxOverheadUs = 200;
constexpr double kMinThroughputRatio = 0.8;

int Fail(const std::string& message) {
  std::cerr << "esb_agent_bench: " << message << "\n";
  return 2;
}

Tensor RandomImages(const esb::graph::ValueInfo& input, int64_t n,
                    uint64_t seed) {
  Tensor t;
  t.shape = input.shape;
  t.shape[0] = n;
  int64_t count = 1;
  for (int64_t d : t.shape) count *= d;
  t.data.resize(static_cast<size_t>(count));
  std::mt19937_64 random(seed);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  for (float& v : t.data) v = uniform(random);
  return t;
}

struct InProcess {
  double p50_ms = 0;
  double batch32_images_per_second = 0;
};

absl::StatusOr<InProcess> MeasureInProcess(const std::string& path,
                                           double seconds) {
  absl::StatusOr<std::string> bytes =
      esb::ReadFileToString(esb::Env::Default(), path);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<esb::v1::Package> package =
      esb::pipeline::ParsePackage(*bytes);
  if (!package.ok()) return package.status();
  absl::StatusOr<esb::pipeline::PackagedModel> model =
      esb::pipeline::UnpackPackage(*package);
  if (!model.ok()) return model.status();
  absl::StatusOr<std::unique_ptr<esb::runtime::EsbExecutor>> executor =
      esb::runtime::EsbExecutor::Create(model->graph, model->layers, {},
                                        &model->weight_integers);
  if (!executor.ok()) return executor.status();
  const esb::graph::ValueInfo& input = model->graph.inputs.front();
  InProcess out;
  for (int batch : {1, 32}) {
    const Tensor images = RandomImages(input, batch, 1);
    for (int i = 0; i < 20; ++i) {  // Warm-up: plans and caches.
      if (auto r = (*executor)->Run({images}); !r.ok()) return r.status();
    }
    std::vector<double> latencies;
    int64_t done = 0;
    const auto start = std::chrono::steady_clock::now();
    const auto end = start + std::chrono::duration<double>(seconds);
    auto now = start;
    while (now < end) {
      const auto t0 = std::chrono::steady_clock::now();
      if (auto r = (*executor)->Run({images}); !r.ok()) return r.status();
      now = std::chrono::steady_clock::now();
      latencies.push_back(std::chrono::duration<double>(now - t0).count());
      done += batch;
    }
    const double elapsed = std::chrono::duration<double>(now - start).count();
    if (batch == 1) {
      out.p50_ms = esb::client::SummarizeLatency(latencies).p50_ms();
    } else {
      out.batch32_images_per_second = static_cast<double>(done) / elapsed;
    }
  }
  return out;
}

// The gRPC floor: ServerLive round trips on one connection, p50 in ms.
absl::StatusOr<double> MeasureFloor(const std::string& agent, double seconds) {
  esb::client::AgentConnectOptions options;
  options.own_connection = true;
  absl::StatusOr<std::unique_ptr<esb::client::AgentClient>> client =
      esb::client::AgentClient::Connect(agent, options);
  if (!client.ok()) return client.status();
  std::vector<double> latencies;
  const auto end =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  for (int i = 0; std::chrono::steady_clock::now() < end || i < 20; ++i) {
    grpc::ClientContext context;
    inference::ServerLiveResponse response;
    const auto t0 = std::chrono::steady_clock::now();
    const grpc::Status status = (*client)->inference_stub()->ServerLive(
        &context, inference::ServerLiveRequest{}, &response);
    if (!status.ok()) return (*client)->FromGrpc(status);
    if (i >= 20) {  // After a warm-up.
      latencies.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
              .count());
    }
  }
  return esb::client::SummarizeLatency(latencies).p50_ms();
}

// The gRPC ceiling: ServerLive calls a second from `threads` threads, each
// on its own connection, for `seconds`.
absl::StatusOr<double> MeasureCeiling(const std::string& agent, int threads,
                                      double seconds) {
  esb::client::AgentConnectOptions options;
  options.own_connection = true;
  std::vector<std::unique_ptr<esb::client::AgentClient>> clients;
  for (int i = 0; i < threads; ++i) {
    absl::StatusOr<std::unique_ptr<esb::client::AgentClient>> client =
        esb::client::AgentClient::Connect(agent, options);
    if (!client.ok()) return client.status();
    clients.push_back(*std::move(client));
  }
  std::vector<int64_t> calls(threads, 0);
  std::vector<grpc::Status> failures(threads);
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i) {
    workers.emplace_back([&, i] {
      while (std::chrono::steady_clock::now() < end) {
        grpc::ClientContext context;
        inference::ServerLiveResponse response;
        const grpc::Status status = clients[i]->inference_stub()->ServerLive(
            &context, inference::ServerLiveRequest{}, &response);
        if (!status.ok()) {
          failures[i] = status;
          return;
        }
        ++calls[i];
      }
    });
  }
  for (std::thread& t : workers) t.join();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  int64_t total = 0;
  for (int i = 0; i < threads; ++i) {
    if (!failures[i].ok()) return clients[i]->FromGrpc(failures[i]);
    total += calls[i];
  }
  return static_cast<double>(total) / elapsed;
}

}  // namespace

int main(int argc, char** argv) {
  // As esbctl does: no lock-order cycle check on every Mutex call.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::SetProgramUsageMessage(
      "esb-agent serving overhead against the in-process ESB executor");
  absl::ParseCommandLine(argc, argv);
  const std::string esbm = absl::GetFlag(FLAGS_esbm);
  const std::string agent = absl::GetFlag(FLAGS_agent);
  const std::string model = absl::GetFlag(FLAGS_model);
  const double seconds = absl::GetFlag(FLAGS_seconds);
  if (esbm.empty() || agent.empty() || model.empty()) {
    return Fail("--esbm, --agent and --model are required");
  }
  if (!(seconds >= 0.2 && seconds <= 600)) {
    return Fail("--seconds must be in 0.2..600");
  }

  absl::StatusOr<InProcess> local = MeasureInProcess(esbm, seconds);
  if (!local.ok()) return Fail(std::string{local.status().message()});

  absl::StatusOr<double> floor_ms = MeasureFloor(agent, seconds);
  if (!floor_ms.ok()) return Fail(std::string{floor_ms.status().message()});

  absl::StatusOr<double> ceiling = MeasureCeiling(agent, 32, seconds);
  if (!ceiling.ok()) return Fail(std::string{ceiling.status().message()});

  // Concurrency and images per request of each agent figure.
  const std::vector<std::pair<int, int>> loads = {
      {1, 1}, {8, 1}, {32, 1}, {32, 32}};
  std::vector<esb::v1::BenchReport> remote;
  for (const auto& [concurrency, batch] : loads) {
    esb::client::BenchOptions options;
    options.agent = agent;
    options.model = model;
    options.concurrency = concurrency;
    options.duration = absl::Seconds(seconds);
    options.batch = batch;
    options.metrics_address = absl::GetFlag(FLAGS_metrics);
    absl::StatusOr<esb::v1::BenchReport> report =
        esb::client::RunBench(options);
    if (!report.ok()) return Fail(std::string{report.status().message()});
    if (report->errors() > 0) {
      std::cerr << esb::client::BenchText(*report);
      return Fail(absl::StrCat("concurrency ", concurrency, ": ",
                               report->errors(), " requests failed"));
    }
    remote.push_back(*std::move(report));
  }

  std::cout << absl::StrFormat("esb-agent serving %s (%s), %.1f s per figure\n",
                               model, esbm, seconds);
  std::cout << absl::StrFormat("%-34s %10s %10s %14s %16s\n", "", "p50 ms",
                               "p99 ms", "images/s", "energy mJ/inf");
  std::cout << absl::StrFormat("%-34s %10.3f %10s %14s %16s\n",
                               "in-process EsbExecutor, batch 1", local->p50_ms,
                               "-", "-", "-");
  std::cout << absl::StrFormat("%-34s %10s %10s %14.1f %16s\n",
                               "in-process EsbExecutor, batch 32", "-", "-",
                               local->batch32_images_per_second, "-");
  std::cout << absl::StrFormat("%-34s %10.3f %10s %14s %16s\n",
                               "gRPC floor: ServerLive round trip", *floor_ms,
                               "-", "-", "-");
  std::cout << absl::StrFormat("%-34s %10s %10s %14.1f %16s\n",
                               "gRPC ceiling: ServerLive, 32 threads", "-", "-",
                               *ceiling, "-");
  for (size_t i = 0; i < remote.size(); ++i) {
    const esb::v1::BenchReport& r = remote[i];
    std::cout << absl::StrFormat(
        "%-34s %10.3f %10.3f %14.1f %16s\n",
        absl::StrCat("agent, concurrency ", r.concurrency(), ", batch ",
                     loads[i].second),
        r.latency().p50_ms(), r.latency().p99_ms(), r.inferences_per_second(),
        r.has_joules_per_inference()
            ? absl::StrFormat("%.4g (%s)", 1e3 * r.joules_per_inference(),
                              r.energy_source())
            : std::string{"unknown"});
  }
  const double overhead_us =
      1e3 * (remote[0].latency().p50_ms() - local->p50_ms);
  const double ratio =
      remote[2].inferences_per_second() / local->batch32_images_per_second;
  const bool overhead_ok = overhead_us < kMaxOverheadUs;
  const bool ratio_ok = ratio >= kMinThroughputRatio;
  std::cout << absl::StrFormat(
      "p50 round-trip overhead at concurrency 1: %.0f us (target < %.0f us) "
      "%s\n",
      overhead_us, kMaxOverheadUs, overhead_ok ? "PASS" : "FAIL");
  std::cout << absl::StrFormat(
      "agent throughput at concurrency 32 / in-process batch 32: %.2f "
      "(target >= %.1f) %s\n",
      ratio, kMinThroughputRatio, ratio_ok ? "PASS" : "FAIL");
  std::cout << absl::StrFormat(
      "  for scale: the gRPC ceiling / in-process batch 32: %.2f; agent at "
      "concurrency 32 / ceiling: %.2f; with 32-image requests / in-process "
      "batch 32: %.2f\n",
      *ceiling / local->batch32_images_per_second,
      remote[2].inferences_per_second() / *ceiling,
      remote[3].inferences_per_second() / local->batch32_images_per_second);
  return overhead_ok && ratio_ok ? 0 : 1;
}
