#include "client/agent_commands.h"

#include <cmath>
#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "client/agent_bench.h"
#include "client/agent_client.h"
#include "client/agent_deploy.h"
#include "client/agent_infer.h"
#include "client/http_get.h"
#include "client/output.h"
#include "core/data/normalize.h"
#include "core/env/env.h"

ABSL_FLAG(std::string, agent, "localhost:8001",
          "esb-agent address, HOST:PORT.");
ABSL_FLAG(std::string, admin_token_file, "",
          "File holding the agent's admin token (its --admin-token-file).");
ABSL_FLAG(std::string, name, "", "The name the model is served as.");
ABSL_FLAG(int64_t, version, 0, "A model version; 0: every version.");
ABSL_FLAG(std::string, model, "", "The deployed model's name.");
ABSL_FLAG(int, top, 1, "Classes shown per image, best first.");
ABSL_FLAG(bool, raw, false, "Also keep every output value of each image.");
ABSL_FLAG(int, concurrency, 1, "Client threads, one connection each.");
ABSL_FLAG(double, duration, 10, "Seconds of load.");
ABSL_FLAG(std::string, metrics, "",
          "The agent's metrics endpoint, HOST:PORT (its --metrics-port), "
          "for energy per inference.");

ABSL_DECLARE_FLAG(bool, json);
ABSL_DECLARE_FLAG(std::string, server);
ABSL_DECLARE_FLAG(std::string, input);
ABSL_DECLARE_FLAG(std::string, labels);
ABSL_DECLARE_FLAG(std::optional<int>, batch);
ABSL_DECLARE_FLAG(std::optional<int64_t>, limit);
ABSL_DECLARE_FLAG(std::string, mean);
ABSL_DECLARE_FLAG(std::string, std);

namespace esb::client {
namespace {

// --agent checked, so a typo is a usage error, not a connect timeout.
absl::Status CheckAgentFlag() {
  std::string host;
  int port = 0;
  if (absl::Status s = SplitHostPort(absl::GetFlag(FLAGS_agent), &host, &port);
      !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--agent ", s.message()));
  }
  return absl::OkStatus();
}

// The admin token from --admin-token-file ("" without one).
absl::StatusOr<std::string> AdminToken() {
  const std::string path = absl::GetFlag(FLAGS_admin_token_file);
  if (path.empty()) return std::string{};
  absl::StatusOr<std::string> token =
      ReadFileToString(Env::Default(), path, 4096);
  if (!token.ok()) {
    return absl::Status(
        token.status().code(),
        absl::StrCat("--admin-token-file: ", token.status().message()));
  }
  std::string t{absl::StripAsciiWhitespace(*token)};
  if (t.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--admin-token-file ", path, " is empty"));
  }
  return t;
}

absl::StatusOr<std::unique_ptr<AgentClient>> ConnectAgent() {
  absl::StatusOr<std::string> token = AdminToken();
  if (!token.ok()) return token.status();
  AgentConnectOptions options;
  options.admin_token = *token;
  return AgentClient::Connect(absl::GetFlag(FLAGS_agent), options);
}

absl::StatusOr<data::Normalization> NormalizationFlags() {
  return data::ParseNormalization(absl::GetFlag(FLAGS_mean),
                                  absl::GetFlag(FLAGS_std));
}

std::string Short(const std::string& sha) { return sha.substr(0, 12); }

int Deploy(const CommandLine& line) {
  if (absl::Status s = CheckAgentFlag(); !s.ok()) return Usage(s);
  const std::string name = absl::GetFlag(FLAGS_name);
  if (!name.empty()) {
    if (absl::Status s = CheckModelName(name); !s.ok()) {
      return Usage(
          absl::InvalidArgumentError(absl::StrCat("--name: ", s.message())));
    }
  }
  absl::StatusOr<DeployPayload> payload =
      LoadDeployPayload(line.args[0], name, absl::GetFlag(FLAGS_server));
  if (!payload.ok()) return Fail(payload.status());
  absl::StatusOr<std::unique_ptr<AgentClient>> agent = ConnectAgent();
  if (!agent.ok()) return Fail(agent.status());
  absl::StatusOr<esb::v1::DeployModelResponse> deployed =
      (*agent)->Deploy(payload->name, payload->bytes);
  if (!deployed.ok()) {
    return Fail(absl::Status(
        deployed.status().code(),
        absl::StrCat("deploying ", payload->source, " as '", payload->name,
                     "': ", deployed.status().message())));
  }
  if (absl::GetFlag(FLAGS_json)) return PrintJson(*deployed);
  std::cout << absl::StrFormat(
      "deployed %s as model %s version %d on %s\n"
      "  sha256       %s\n"
      "  size         %d bytes\n"
      "  description  %s\n",
      payload->source, deployed->name(), deployed->version(),
      (*agent)->address(), deployed->sha256(), payload->bytes.size(),
      deployed->description());
  return 0;
}

int Models(const CommandLine&) {
  if (absl::Status s = CheckAgentFlag(); !s.ok()) return Usage(s);
  absl::StatusOr<std::unique_ptr<AgentClient>> agent = ConnectAgent();
  if (!agent.ok()) return Fail(agent.status());
  absl::StatusOr<esb::v1::ListModelsResponse> list = (*agent)->ListModels();
  if (!list.ok()) return Fail(list.status());
  if (absl::GetFlag(FLAGS_json)) return PrintJson(*list);
  if (list->models().empty()) {
    std::cout << "no models on " << (*agent)->address()
              << " (deploy one: esbctl deploy FILE.esbm --agent "
              << (*agent)->address() << ")\n";
    return 0;
  }
  std::cout << absl::StrFormat("%-24s %-8s %-8s %-9s %-10s %-12s %s\n", "MODEL",
                               "VERSION", "SERVING", "MAX_BATCH", "BYTES",
                               "SHA256", "DESCRIPTION");
  for (const esb::v1::ModelVersionInfo& m : list->models()) {
    std::cout << absl::StrFormat(
        "%-24s %-8d %-8s %-9s %-10d %-12s %s\n", m.name(), m.version(),
        m.serving() ? "yes" : "no",
        m.max_batch() > 0 ? absl::StrCat(m.max_batch()) : "-", m.size(),
        Short(m.sha256()), m.description());
  }
  return 0;
}

int Undeploy(const CommandLine& line) {
  if (absl::Status s = CheckAgentFlag(); !s.ok()) return Usage(s);
  const int64_t version = absl::GetFlag(FLAGS_version);
  if (version < 0) {
    return Usage(
        absl::InvalidArgumentError(absl::StrCat("--version ", version,
                                                " is negative; 0 means every "
                                                "version")));
  }
  absl::StatusOr<std::unique_ptr<AgentClient>> agent = ConnectAgent();
  if (!agent.ok()) return Fail(agent.status());
  absl::StatusOr<esb::v1::UnloadModelResponse> unloaded =
      (*agent)->Unload(line.args[0], version);
  if (!unloaded.ok()) return Fail(unloaded.status());
  if (absl::GetFlag(FLAGS_json)) return PrintJson(*unloaded);
  std::cout << absl::StrFormat(
      "removed model %s version%s %s from %s; %s\n", line.args[0],
      unloaded->removed_versions_size() == 1 ? "" : "s",
      absl::StrJoin(unloaded->removed_versions(), ", "), (*agent)->address(),
      unloaded->serving_version() == 0
          ? "no version of it is served now"
          : absl::StrCat("version ", unloaded->serving_version(),
                         " is served now"));
  return 0;
}

int Board(const CommandLine&) {
  if (absl::Status s = CheckAgentFlag(); !s.ok()) return Usage(s);
  absl::StatusOr<std::unique_ptr<AgentClient>> agent = ConnectAgent();
  if (!agent.ok()) return Fail(agent.status());
  absl::StatusOr<esb::v1::BoardStatusResponse> b = (*agent)->BoardStatus();
  if (!b.ok()) return Fail(b.status());
  if (absl::GetFlag(FLAGS_json)) return PrintJson(*b);
  std::string out =
      absl::StrFormat("board        %s (esb-agent %s at %s)\n", b->board(),
                      b->agent_version(), (*agent)->address());
  absl::StrAppendFormat(&out, "backend      %s\n", b->backend());
  if (!b->cpu().empty()) {
    absl::StrAppendFormat(&out, "host         %s\n", b->cpu());
  }
  absl::StrAppendFormat(
      &out, "bitstream    %s\n",
      b->bitstream().empty()
          ? std::string{"none loaded"}
          : absl::StrCat(b->bitstream(), " (", b->bitstream_state(), ")"));
  absl::StrAppendFormat(
      &out, "accelerator  %s\n",
      b->accelerator().empty() ? "unknown" : b->accelerator());
  absl::StrAppendFormat(&out, "temperature  %s\n",
                        b->has_temperature_c()
                            ? absl::StrFormat("%.1f C", b->temperature_c())
                            : std::string{"unknown"});
  if (b->power().empty()) {
    absl::StrAppendFormat(&out, "power        unknown (source: %s)\n",
                          b->power_source());
  }
  for (const esb::v1::RailPowerReading& rail : b->power()) {
    absl::StrAppendFormat(&out, "power        %-12s %8.3f W (source: %s)\n",
                          rail.rail(), rail.watts(), b->power_source());
  }
  if (b->models().empty()) absl::StrAppend(&out, "models       none\n");
  for (const esb::v1::ModelVersionInfo& m : b->models()) {
    absl::StrAppendFormat(&out, "model        %s version %d%s\n", m.name(),
                          m.version(), m.serving() ? " (serving)" : "");
  }
  absl::StrAppendFormat(
      &out, "health       %s\n",
      b->healthy() ? std::string{"ok"}
                   : absl::StrCat("NOT HEALTHY: ", b->health_detail()));
  std::cout << out;
  return 0;
}

// The model's max batch on the agent, when its admin surface tells (0
// otherwise: the agent's refusal of a batch then speaks).
int64_t MaxBatchOf(AgentClient& agent, const std::string& model) {
  absl::StatusOr<esb::v1::ListModelsResponse> list = agent.ListModels();
  if (!list.ok()) return 0;
  for (const esb::v1::ModelVersionInfo& m : list->models()) {
    if (m.name() == model && m.serving()) return m.max_batch();
  }
  return 0;
}

int Infer(const CommandLine&) {
  if (absl::Status s = CheckAgentFlag(); !s.ok()) return Usage(s);
  InferOptions options;
  options.model = absl::GetFlag(FLAGS_model);
  options.input_path = absl::GetFlag(FLAGS_input);
  options.labels_path = absl::GetFlag(FLAGS_labels);
  options.limit = absl::GetFlag(FLAGS_limit).value_or(-1);
  options.batch = absl::GetFlag(FLAGS_batch).value_or(0);
  if (absl::GetFlag(FLAGS_batch).has_value() && options.batch < 1) {
    return Usage(absl::InvalidArgumentError(
        absl::StrCat("--batch ", options.batch, " must be at least 1")));
  }
  options.top = absl::GetFlag(FLAGS_top);
  options.raw = absl::GetFlag(FLAGS_raw);
  absl::StatusOr<data::Normalization> norm = NormalizationFlags();
  if (!norm.ok()) return Usage(norm.status());
  options.normalization = *norm;
  if (absl::Status s = CheckInferOptions(options); !s.ok()) return Usage(s);
  if (absl::Status s = CheckInputPath(options.input_path); !s.ok()) {
    return Fail(s);
  }
  absl::StatusOr<std::unique_ptr<AgentClient>> agent = ConnectAgent();
  if (!agent.ok()) return Fail(agent.status());
  absl::StatusOr<esb::v1::InferReport> report =
      RunInfer(**agent, options, MaxBatchOf(**agent, options.model));
  if (!report.ok()) return Fail(report.status());
  if (absl::GetFlag(FLAGS_json)) return PrintJson(*report);
  std::cout << InferText(*report);
  return 0;
}

int Bench(const CommandLine&) {
  if (absl::Status s = CheckAgentFlag(); !s.ok()) return Usage(s);
  BenchOptions options;
  options.agent = absl::GetFlag(FLAGS_agent);
  options.model = absl::GetFlag(FLAGS_model);
  options.concurrency = absl::GetFlag(FLAGS_concurrency);
  const double seconds = absl::GetFlag(FLAGS_duration);
  if (!std::isfinite(seconds)) {
    return Usage(absl::InvalidArgumentError("--duration must be finite"));
  }
  options.duration = absl::Seconds(seconds);
  options.batch = absl::GetFlag(FLAGS_batch).value_or(1);
  options.input_path = absl::GetFlag(FLAGS_input);
  options.metrics_address = absl::GetFlag(FLAGS_metrics);
  absl::StatusOr<data::Normalization> norm = NormalizationFlags();
  if (!norm.ok()) return Usage(norm.status());
  options.normalization = *norm;
  if (absl::Status s = CheckBenchOptions(options); !s.ok()) return Usage(s);
  if (!options.input_path.empty()) {
    if (absl::Status s = CheckInputPath(options.input_path); !s.ok()) {
      return Fail(s);
    }
  }
  absl::StatusOr<std::string> token = AdminToken();
  if (!token.ok()) return Fail(token.status());
  options.admin_token = *token;
  absl::StatusOr<esb::v1::BenchReport> report = RunBench(options);
  if (!report.ok()) return Fail(report.status());
  if (absl::GetFlag(FLAGS_json)) return PrintJson(*report);
  std::cout << BenchText(*report);
  return 0;
}

}  // namespace

std::vector<CommandSpec> AgentCommands() {
  const FlagUse agent{"agent", "HOST:PORT"};
  const FlagUse token{"admin_token_file", "FILE"};
  const FlagUse json{"json", ""};
  const FlagUse model{"model", "NAME", nullptr, nullptr, true};
  const FlagUse mean{"mean", "M",
                     "Normalize 8-bit images here with this mean "
                     "(with --std) and send FP32.",
                     "the package's, applied by the agent"};
  const FlagUse std_flag{"std", "S", "Input std, like --mean."};
  std::vector<CommandSpec> c;
  c.push_back(
      {"deploy",
       "JOB|FILE.esbm",
       1,
       "Deploy a model.esbm (a file, or a finished job's, fetched from "
       "esb-server) to a board agent.",
       {agent,
        {"name", "NAME", nullptr,
         "the package's model name, else the file's stem"},
        {"server", "HOST:PORT", "esb-server holding the job (with JOB)."},
        token,
        json}});
  c.push_back({"models",
               "",
               0,
               "The models deployed on a board agent, every version.",
               {agent, token, json}});
  c.push_back(
      {"undeploy",
       "NAME",
       1,
       "Remove a model (or one --version of it) from a board agent.",
       {agent, {"version", "V", nullptr, "every version"}, token, json}});
  c.push_back({"board",
               "",
               0,
               "A board agent's state: backend, bitstream, accelerator, "
               "temperature, power per rail, models, health.",
               {agent, token, json}});
  c.push_back(
      {"infer",
       "",
       0,
       "Images through a deployed model (KServe v2 ModelInfer): predictions, "
       "or top-1 with labels; throughput and request latency.",
       {agent,
        model,
        {"input", "IMAGES",
         "IDX, .npy, a folder of PNG/JPEG images or a .tar of one.", nullptr,
         true},
        {"labels", "LABELS",
         "Labels of --input (IDX, or text with one integer per line).",
         "the class subfolders of an image folder or .tar"},
        {"batch", "N", "Images per request.",
         "32, or the model's max batch when smaller"},
        {"limit", "N", "The first N images only.", "every image"},
        {"top", "K"},
        {"raw", ""},
        mean,
        std_flag,
        token,
        json}});
  c.push_back({"bench",
               "",
               0,
               "Load on a deployed model: N client threads for S seconds; "
               "throughput, latency p50/p90/p99, errors by code, energy per "
               "inference.",
               {agent,
                model,
                {"concurrency", "N"},
                {"duration", "S"},
                {"batch", "B", "Images per request.", "1"},
                {"input", "IMAGES", "Images to send, cycled (as for infer).",
                 "random FP32 values"},
                {"metrics", "HOST:PORT", nullptr, "none: energy unknown"},
                mean,
                std_flag,
                token,
                json}});
  return c;
}

bool IsAgentCommand(const std::string& name) {
  for (const CommandSpec& spec : AgentCommands()) {
    if (name == spec.name) return true;
  }
  return false;
}

int RunAgentCommand(const CommandLine& line) {
  const std::string name = line.command->name;
  if (name == "deploy") return Deploy(line);
  if (name == "models") return Models(line);
  if (name == "undeploy") return Undeploy(line);
  if (name == "board") return Board(line);
  if (name == "infer") return Infer(line);
  if (name == "bench") return Bench(line);
  return Fail(absl::InternalError(absl::StrCat("no command ", name)));
}

}  // namespace esb::client
