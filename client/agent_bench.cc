#include "client/agent_bench.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/agent_client.h"
#include "client/agent_infer.h"
#include "client/http_get.h"
#include "core/data/dataset.h"

namespace esb::client {
namespace {

// Distinct requests built from an --input; threads cycle through them.
constexpr int64_t kMaxPreparedRequests = 64;

// What one client thread saw.
struct ThreadResult {
  std::vector<double> latencies;  // Seconds, successful requests.
  int64_t requests = 0;
  int64_t images = 0;
  std::map<std::string, int64_t> errors;
  std::map<std::string, std::string> first_errors;
  absl::Time finished;
  absl::Status setup;  // Connecting failed.
};

std::string CodeName(grpc::StatusCode code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

// Parses `{a="x",b="y"}` at the start of `text` into `labels`; returns the
// characters taken, or 0 when it does not parse.
size_t ParseLabels(absl::string_view text,
                   std::map<std::string, std::string>* labels) {
  if (text.empty() || text[0] != '{') return 0;
  size_t i = 1;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == ',')) ++i;
    if (i < text.size() && text[i] == '}') return i + 1;
    const size_t eq = text.find('=', i);
    if (eq == absl::string_view::npos || eq + 1 >= text.size() ||
        text[eq + 1] != '"') {
      return 0;
    }
    const std::string name{absl::StripAsciiWhitespace(text.substr(i, eq - i))};
    std::string value;
    size_t j = eq + 2;
    for (; j < text.size() && text[j] != '"'; ++j) {
      if (text[j] == '\\' && j + 1 < text.size()) {
        ++j;
        value.push_back(text[j] == 'n' ? '\n' : text[j]);
      } else {
        value.push_back(text[j]);
      }
    }
    if (j >= text.size()) return 0;
    (*labels)[name] = std::move(value);
    i = j + 1;
  }
  return 0;
}

// One client thread: its own connection, a warm-up request, then requests
// until `end`.
void RunClient(const BenchOptions& options,
               const std::vector<inference::ModelInferRequest>& requests,
               size_t first, absl::Time start, absl::Time end,
               ThreadResult* out) {
  AgentConnectOptions connect;
  connect.own_connection = true;
  absl::StatusOr<std::unique_ptr<AgentClient>> client =
      AgentClient::Connect(options.agent, connect);
  if (!client.ok()) {
    out->setup = client.status();
    out->finished = absl::Now();
    return;
  }
  inference::GRPCInferenceService::Stub* stub = (*client)->inference_stub();
  auto call = [&](const inference::ModelInferRequest& request,
                  inference::ModelInferResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
    return stub->ModelInfer(&context, request, response);
  };
  inference::ModelInferResponse response;
  call(requests[first % requests.size()], &response);  // Warm-up.
  const int64_t images = options.batch;
  std::this_thread::sleep_for(absl::ToChronoNanoseconds(
      std::max(absl::ZeroDuration(), start - absl::Now())));
  for (size_t i = first; absl::Now() < end; ++i) {
    const inference::ModelInferRequest& request = requests[i % requests.size()];
    const auto sent = std::chrono::steady_clock::now();
    const grpc::Status status = call(request, &response);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - sent)
            .count();
    ++out->requests;
    if (status.ok()) {
      out->latencies.push_back(seconds);
      out->images += images;
    } else {
      const std::string code = CodeName(status.error_code());
      if (out->errors[code]++ == 0) {
        out->first_errors[code] = status.error_message();
      }
    }
  }
  out->finished = absl::Now();
}

// The energy counter of the model at `address`, or why it is unknown.
absl::StatusOr<EnergyReading> ReadEnergy(const std::string& address,
                                         const std::string& model) {
  absl::StatusOr<std::string> page = HttpGet(address, "/metrics");
  if (!page.ok()) return page.status();
  return EnergyOf(*page, model);
}

}  // namespace

absl::StatusOr<EnergyReading> EnergyOf(absl::string_view exposition,
                                       const std::string& model) {
  EnergyReading reading;
  std::set<std::string> sources;
  const absl::string_view metric = kEnergyMetric;
  for (absl::string_view line : absl::StrSplit(exposition, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    if (!absl::StartsWith(line, metric)) continue;
    absl::string_view rest = line.substr(metric.size());
    if (!rest.empty() && rest[0] != '{' && rest[0] != ' ') continue;
    std::map<std::string, std::string> labels;
    if (!rest.empty() && rest[0] == '{') {
      const size_t taken = ParseLabels(rest, &labels);
      if (taken == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("metrics line '", line, "' does not parse"));
      }
      rest = rest.substr(taken);
    }
    // The value, then an optional timestamp.
    std::vector<absl::string_view> fields = absl::StrSplit(
        absl::StripAsciiWhitespace(rest), ' ', absl::SkipEmpty());
    double value = 0;
    if (fields.empty() || !absl::SimpleAtod(fields[0], &value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("metrics line '", line, "' has no value"));
    }
    auto m = labels.find("model");
    if (m == labels.end() || m->second != model) continue;
    reading.found = true;
    reading.joules += value;
    auto s = labels.find("source");
    sources.insert(s == labels.end() ? "unlabelled" : s->second);
  }
  reading.sources.assign(sources.begin(), sources.end());
  return reading;
}

absl::Status CheckBenchOptions(const BenchOptions& options) {
  if (options.model.empty()) {
    return absl::InvalidArgumentError("--model NAME is required");
  }
  if (options.concurrency < 1 || options.concurrency > 1024) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--concurrency ", options.concurrency, " is out of range [1, 1024]"));
  }
  if (options.duration < absl::Milliseconds(100) ||
      options.duration > absl::Hours(1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--duration ", absl::FormatDuration(options.duration),
                     " is out of range [0.1 s, 1 h]"));
  }
  if (options.batch < 1 || options.batch > 65536) {
    return absl::InvalidArgumentError(
        absl::StrCat("--batch ", options.batch, " is out of range [1, 65536]"));
  }
  if (!options.metrics_address.empty()) {
    std::string host;
    int port = 0;
    if (absl::Status s = SplitHostPort(options.metrics_address, &host, &port);
        !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--metrics ", s.message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<esb::v1::BenchReport> RunBench(const BenchOptions& options) {
  if (absl::Status s = CheckBenchOptions(options); !s.ok()) return s;
  if (!options.input_path.empty()) {
    if (absl::Status s = CheckInputPath(options.input_path); !s.ok()) return s;
  }
  AgentConnectOptions connect;
  connect.admin_token = options.admin_token;
  absl::StatusOr<std::unique_ptr<AgentClient>> agent =
      AgentClient::Connect(options.agent, connect);
  if (!agent.ok()) return agent.status();
  absl::StatusOr<inference::ModelMetadataResponse> metadata =
      (*agent)->ModelMetadata(options.model);
  if (!metadata.ok()) return metadata.status();
  absl::StatusOr<ModelInput> input = ModelInputOf(*metadata);
  if (!input.ok()) return input.status();
  // The model's max batch, when the admin surface says (it may need a
  // token this client lacks: the agent's refusal then speaks).
  if (absl::StatusOr<esb::v1::ListModelsResponse> list = (*agent)->ListModels();
      list.ok()) {
    for (const esb::v1::ModelVersionInfo& v : list->models()) {
      if (v.name() == options.model && v.serving() && v.max_batch() > 0 &&
          options.batch > v.max_batch()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--batch ", options.batch, " is over model '", options.model,
            "''s max batch of ", v.max_batch(), " on the agent"));
      }
    }
  }

  esb::v1::BenchReport report;
  report.set_agent(options.agent);
  report.set_model(options.model);
  report.set_concurrency(options.concurrency);
  report.set_batch(options.batch);
  std::vector<std::vector<inference::ModelInferRequest>> requests(
      static_cast<size_t>(options.concurrency));
  if (options.input_path.empty()) {
    report.set_inputs("random FP32");
    for (size_t t = 0; t < requests.size(); ++t) {
      requests[t].push_back(RandomRequest(*input, options.batch, t + 1));
    }
  } else {
    absl::StatusOr<std::unique_ptr<InferInputs>> inputs = InferInputs::Open(
        options.input_path, "", -1, *input, options.normalization);
    if (!inputs.ok()) return inputs.status();
    report.set_inputs(
        absl::StrCat(options.input_path, " (", (*inputs)->datatype(), ")"));
    const int64_t count = (*inputs)->count();
    std::vector<inference::ModelInferRequest> shared;
    for (int64_t r = 0; r < kMaxPreparedRequests; ++r) {
      // Batches of consecutive images, wrapping around a small set.
      const int64_t start = (r * options.batch) % count;
      const int64_t n = std::min<int64_t>(options.batch, count - start);
      if (n < options.batch) {
        if (r == 0) {
          return absl::InvalidArgumentError(
              absl::StrCat("--input ", options.input_path, " holds ", count,
                           " images, fewer than --batch ", options.batch));
        }
        break;
      }
      absl::StatusOr<inference::ModelInferRequest> request =
          (*inputs)->Request(start, n);
      if (!request.ok()) return request.status();
      shared.push_back(*std::move(request));
    }
    for (auto& r : requests) r = shared;
  }

  std::string energy_note;
  std::optional<EnergyReading> before;
  if (options.metrics_address.empty()) {
    energy_note =
        "unknown: no --metrics HOST:PORT (the agent's --metrics-port) given";
  } else {
    absl::StatusOr<EnergyReading> reading =
        ReadEnergy(options.metrics_address, options.model);
    if (!reading.ok()) {
      energy_note = absl::StrCat("unknown: ", reading.status().message());
    } else if (!reading->found) {
      energy_note = absl::StrCat(
          "unknown: the metrics at ", options.metrics_address, " have no ",
          kEnergyMetric, " for model '", options.model, "'");
      before = *reading;  // It may appear with the first run.
    } else {
      before = *reading;
    }
  }

  std::vector<ThreadResult> results(static_cast<size_t>(options.concurrency));
  // Every thread connects and warms up first; the window starts after.
  const absl::Time start =
      absl::Now() + absl::Milliseconds(200 + 2 * options.concurrency);
  const absl::Time end = start + options.duration;
  {
    std::vector<std::thread> threads;
    for (size_t t = 0; t < results.size(); ++t) {
      threads.emplace_back(RunClient, std::cref(options),
                           std::cref(requests[t]), t, start, end, &results[t]);
    }
    for (std::thread& t : threads) t.join();
  }
  std::vector<double> latencies;
  absl::Time last = start;
  for (ThreadResult& r : results) {
    if (!r.setup.ok()) return r.setup;
    latencies.insert(latencies.end(), r.latencies.begin(), r.latencies.end());
    report.set_requests(report.requests() + r.requests);
    report.set_inferences(report.inferences() + r.images);
    for (const auto& [code, n] : r.errors) {
      (*report.mutable_errors_by_code())[code] += n;
      report.set_errors(report.errors() + n);
      report.mutable_first_errors()->insert({code, r.first_errors[code]});
    }
    last = std::max(last, r.finished);
  }
  const double seconds = absl::ToDoubleSeconds(last - start);
  report.set_seconds(seconds);
  if (seconds > 0) {
    report.set_inferences_per_second(static_cast<double>(report.inferences()) /
                                     seconds);
    report.set_requests_per_second(static_cast<double>(report.requests()) /
                                   seconds);
  }
  *report.mutable_latency() = SummarizeLatency(std::move(latencies));

  if (before.has_value()) {
    absl::StatusOr<EnergyReading> after =
        ReadEnergy(options.metrics_address, options.model);
    if (!after.ok()) {
      energy_note = absl::StrCat("unknown: ", after.status().message());
    } else if (after->found && report.inferences() == 0) {
      energy_note = "unknown: no inference succeeded";
    } else if (after->found) {
      const double joules = after->joules - before->joules;
      report.set_energy_joules(joules);
      report.set_joules_per_inference(joules /
                                      static_cast<double>(report.inferences()));
      energy_note = absl::StrJoin(after->sources, ",");
    }
  }
  report.set_energy_source(energy_note);
  if (absl::StatusOr<esb::v1::BoardStatusResponse> board =
          (*agent)->BoardStatus();
      board.ok()) {
    report.set_power_source(board->power_source());
    for (const esb::v1::RailPowerReading& rail : board->power()) {
      report.add_power(
          absl::StrFormat("%s: %.3f W", rail.rail(), rail.watts()));
    }
  }
  return report;
}

std::string BenchText(const esb::v1::BenchReport& r) {
  std::string out = absl::StrFormat(
      "bench %s at %s: concurrency %d, batch %d, %s inputs, %.2f s\n",
      r.model(), r.agent(), r.concurrency(), r.batch(), r.inputs(),
      r.seconds());
  absl::StrAppendFormat(&out,
                        "throughput  %.1f inferences/s (%.1f requests/s, %d "
                        "requests)\n",
                        r.inferences_per_second(), r.requests_per_second(),
                        r.requests());
  const esb::v1::LatencySummary& l = r.latency();
  absl::StrAppendFormat(&out,
                        "latency     p50 %.3f ms, p90 %.3f ms, p99 %.3f ms "
                        "(%d successful requests)\n",
                        l.p50_ms(), l.p90_ms(), l.p99_ms(), l.count());
  if (r.errors() == 0) {
    absl::StrAppend(&out, "errors      none\n");
  } else {
    for (const auto& [code, n] : r.errors_by_code()) {
      auto first = r.first_errors().find(code);
      absl::StrAppendFormat(
          &out, "errors      %s: %d (first: %s)\n", code, n,
          first == r.first_errors().end() ? "" : first->second);
    }
  }
  if (r.has_joules_per_inference()) {
    absl::StrAppendFormat(&out,
                          "energy      %.6g mJ/inference (%.6g J in all; "
                          "source: %s, %s)\n",
                          1e3 * r.joules_per_inference(), r.energy_joules(),
                          r.energy_source(), kEnergyMetric);
  } else {
    absl::StrAppendFormat(&out, "energy: %s\n", r.energy_source());
  }
  if (!r.power().empty()) {
    absl::StrAppendFormat(&out, "power       %s (source: %s)\n",
                          absl::StrJoin(r.power(), ", "), r.power_source());
  }
  return out;
}

}  // namespace esb::client
