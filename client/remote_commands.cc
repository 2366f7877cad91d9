#include "client/remote_commands.h"

#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "client/output.h"
#include "client/quantize.h"
#include "client/remote.h"
#include "core/data/tar.h"
#include "core/env/env.h"
#include "core/pipeline/artifacts.h"
#include "core/pipeline/config.h"
#include "esb/v1/report.pb.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

ABSL_FLAG(std::string, server, "localhost:50051",
          "esb-server address, HOST:PORT.");
ABSL_FLAG(bool, wait, false,
          "Watch the job until it ends, then print its report.");
ABSL_FLAG(std::string, idempotency_key, "",
          "Submitting again with the same key returns the first job.");
ABSL_FLAG(std::string, state, "",
          "Only jobs in these states: queued, running, succeeded, failed, "
          "cancelled (comma separated).");
ABSL_FLAG(int, max_jobs, 20, "How many jobs to list, newest first.");

ABSL_DECLARE_FLAG(bool, json);
ABSL_DECLARE_FLAG(bool, quiet);
ABSL_DECLARE_FLAG(std::string, o);

namespace esb::client {
namespace {

absl::StatusOr<std::unique_ptr<Remote>> Connect() {
  return Remote::Connect(absl::GetFlag(FLAGS_server));
}

// Uploads a --calib/--eval/--labels path; `progress` shows its bytes.
absl::StatusOr<esb::v1::DataRef> UploadData(Remote& remote,
                                            const std::string& path,
                                            const char* flag) {
  esb::v1::DataRef ref;
  ref.set_name(std::filesystem::path(path).filename().string());
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    // A folder travels as one ustar blob, deterministic bytes, so the same
    // folder is uploaded once.
    const std::string tar =
        absl::StrCat(std::filesystem::temp_directory_path().string(),
                     "/esbctl.", getpid(), ".", flag, ".tar");
    absl::Status packed = data::WriteImageTar(path, Env::Default(), tar);
    absl::StatusOr<esb::v1::BlobRef> blob =
        packed.ok() ? remote.UploadFile(tar, nullptr)
                    : absl::StatusOr<esb::v1::BlobRef>(packed);
    std::filesystem::remove(tar, error);
    if (!blob.ok()) {
      return absl::Status(
          blob.status().code(),
          absl::StrCat("--", flag, " ", path, ": ", blob.status().message()));
    }
    *ref.mutable_blob() = *std::move(blob);
    ref.set_format(esb::v1::DATA_FORMAT_IMAGE_TAR);
    return ref;
  }
  absl::StatusOr<esb::v1::BlobRef> blob = remote.UploadFile(path, nullptr);
  if (!blob.ok()) return blob.status();
  *ref.mutable_blob() = *std::move(blob);
  return ref;
}

std::string When(int64_t unix_ms) {
  if (unix_ms == 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(unix_ms),
                          absl::LocalTimeZone());
}

// Follows a job to its end with a bar per stage on stderr.
absl::StatusOr<esb::v1::Job> Follow(Remote& remote, const std::string& id,
                                    bool quiet) {
  StageBars bars(quiet);
  esb::v1::JobState last_state = esb::v1::JOB_STATE_UNSPECIFIED;
  int last_attempt = 0;
  std::optional<pipeline::ProgressEvent> shown;
  // Watching sees snapshots, not every step: a stage that was left, or a
  // job that succeeded, finished its bar.
  auto complete_shown = [&] {
    if (shown.has_value() && shown->total > 0) {
      shown->step = shown->total;
      bars.OnProgress(*shown);
    }
    shown.reset();
  };
  return remote.Watch(id, [&](const esb::v1::Job& job) {
    if (quiet) return;
    if (job.state() != last_state || job.attempts() != last_attempt) {
      if (job.state() == esb::v1::JOB_STATE_SUCCEEDED) complete_shown();
      shown.reset();
      bars.Done();
      if (job.state() == esb::v1::JOB_STATE_RUNNING) {
        std::cerr << absl::StrFormat("job %s running on %s (attempt %d)\n",
                                     job.id(), job.worker(), job.attempts());
      } else if (job.state() == esb::v1::JOB_STATE_QUEUED) {
        std::cerr << absl::StrFormat("job %s queued\n", job.id());
      }
      last_state = job.state();
      last_attempt = job.attempts();
    }
    if (job.state() == esb::v1::JOB_STATE_RUNNING &&
        job.progress().stage() != esb::v1::STAGE_UNSPECIFIED) {
      pipeline::ProgressEvent e;
      e.stage = job.progress().stage();
      e.step = job.progress().step();
      e.total = job.progress().total();
      e.message = job.progress().message();
      if (shown.has_value() &&
          (shown->stage != e.stage || shown->message != e.message)) {
        complete_shown();
      }
      bars.OnProgress(e);
      shown = e;
    }
  });
}

absl::StatusOr<esb::v1::QuantReport> ReportOf(Remote& remote,
                                              const std::string& id) {
  absl::StatusOr<std::string> json =
      remote.Download(id, pipeline::kReportArtifact);
  if (!json.ok()) return json.status();
  esb::v1::QuantReport report;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(*json, &report, options)
           .ok()) {
    return absl::DataLossError(
        absl::StrCat("report.json of job ", id, " is not a job report"));
  }
  return report;
}

// The summary `quantize` prints, for a job done on the service.
std::string Summary(const esb::v1::QuantReport& report, const std::string& id,
                    const std::string& dir) {
  pipeline::JobResult result;
  result.report = report;
  const std::string where =
      dir.empty() ? absl::StrCat("job ", id, ":") : dir + "/";
  result.onnx_path = where + pipeline::kOnnxArtifact;
  result.esbm_path = where + pipeline::kEsbmArtifact;
  result.report_path = where + pipeline::kReportArtifact;
  std::string out = QuantizeSummary(result);
  if (dir.empty()) {
    absl::StrAppend(&out, "  fetch them: esbctl fetch ", id, " -o DIR\n");
  }
  return out;
}

// The end of a watched job: its report (or the final job as JSON), and
// the artifacts when -o names a folder.
int Finish(Remote& remote, const esb::v1::Job& job) {
  const std::string dir = absl::GetFlag(FLAGS_o);
  if (job.state() == esb::v1::JOB_STATE_SUCCEEDED && !dir.empty()) {
    absl::StatusOr<std::vector<std::string>> paths =
        remote.Fetch(job.id(), dir);
    if (!paths.ok()) return Fail(paths.status());
  }
  if (absl::GetFlag(FLAGS_json)) {
    const int printed = PrintJson(job);
    if (printed != 0) return printed;
    return job.state() == esb::v1::JOB_STATE_SUCCEEDED ? 0 : 1;
  }
  if (job.state() != esb::v1::JOB_STATE_SUCCEEDED) {
    std::cerr << "esbctl: " << JobOutcome(job) << "\n";
    return 1;
  }
  absl::StatusOr<esb::v1::QuantReport> report = ReportOf(remote, job.id());
  if (!report.ok()) return Fail(report.status());
  std::cout << Summary(*report, job.id(), dir);
  return 0;
}

int Submit(const CommandLine& line, const JobFromFlags& job_flags) {
  pipeline::JobInputs in;
  in.model_path = line.args[0];
  esb::v1::JobConfig config;
  if (absl::Status s = job_flags(&in, &config); !s.ok()) return Usage(s);
  absl::StatusOr<std::unique_ptr<Remote>> remote = Connect();
  if (!remote.ok()) return Fail(remote.status());
  const bool quiet = absl::GetFlag(FLAGS_quiet);

  esb::v1::SubmitJobRequest request;
  esb::v1::JobInputs* inputs = request.mutable_inputs();
  absl::StatusOr<esb::v1::BlobRef> model =
      (*remote)->UploadFile(in.model_path, nullptr);
  if (!model.ok()) return Fail(model.status());
  *inputs->mutable_model() = *model;
  inputs->set_model_name(std::filesystem::path(in.model_path).stem().string());
  struct Data {
    const std::string* path;
    esb::v1::DataRef* ref;
    const char* flag;
  };
  for (const Data& d :
       {Data{&in.calib_images, inputs->mutable_calib(), "calib"},
        Data{&in.eval_images, inputs->mutable_eval(), "eval"},
        Data{&in.eval_labels, inputs->mutable_eval_labels(), "labels"}}) {
    if (d.path->empty()) continue;
    absl::StatusOr<esb::v1::DataRef> ref =
        UploadData(**remote, *d.path, d.flag);
    if (!ref.ok()) return Fail(ref.status());
    *d.ref = *std::move(ref);
  }
  if (in.eval_limit > 0) inputs->set_eval_limit(in.eval_limit);
  *request.mutable_config() = config;
  request.set_idempotency_key(absl::GetFlag(FLAGS_idempotency_key));
  absl::StatusOr<esb::v1::SubmitJobResponse> submitted =
      (*remote)->Submit(request);
  if (!submitted.ok()) return Fail(submitted.status());
  const esb::v1::Job& job = submitted->job();
  if (!absl::GetFlag(FLAGS_wait)) {
    if (absl::GetFlag(FLAGS_json)) return PrintJson(job);
    std::cout << absl::StrFormat(
        "%s job %s (follow it: esbctl watch %s --server %s)\n",
        submitted->existing() ? "existing" : "submitted", job.id(), job.id(),
        (*remote)->address());
    return 0;
  }
  if (!quiet) std::cerr << "submitted job " << job.id() << "\n";
  absl::StatusOr<esb::v1::Job> final_job = Follow(**remote, job.id(), quiet);
  if (!final_job.ok()) return Fail(final_job.status());
  return Finish(**remote, *final_job);
}

int Watch(const CommandLine& line) {
  absl::StatusOr<std::unique_ptr<Remote>> remote = Connect();
  if (!remote.ok()) return Fail(remote.status());
  absl::StatusOr<esb::v1::Job> job =
      Follow(**remote, line.args[0], absl::GetFlag(FLAGS_quiet));
  if (!job.ok()) return Fail(job.status());
  return Finish(**remote, *job);
}

absl::StatusOr<std::vector<esb::v1::JobState>> ParseStates(
    const std::string& text) {
  std::vector<esb::v1::JobState> states;
  for (absl::string_view name : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    bool found = false;
    for (int s = 1; s <= esb::v1::JobState_MAX; ++s) {
      if (pipeline::JobStateName(static_cast<esb::v1::JobState>(s)) == name) {
        states.push_back(static_cast<esb::v1::JobState>(s));
        found = true;
      }
    }
    if (!found) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--state: '", name,
          "' is not one of queued, running, succeeded, failed, cancelled"));
    }
  }
  return states;
}

int List(const CommandLine& line) {
  absl::StatusOr<std::vector<esb::v1::JobState>> states =
      ParseStates(absl::GetFlag(FLAGS_state));
  if (!states.ok()) return Usage(states.status());
  const int max_jobs = absl::GetFlag(FLAGS_max_jobs);
  if (max_jobs < 1 || max_jobs > 100000) {
    return Usage(absl::InvalidArgumentError("--max-jobs must be in 1..100000"));
  }
  absl::StatusOr<std::unique_ptr<Remote>> remote = Connect();
  if (!remote.ok()) return Fail(remote.status());
  esb::v1::ListJobsResponse all;
  esb::v1::ListJobsRequest request;
  for (esb::v1::JobState s : *states) request.add_states(s);
  while (all.jobs_size() < max_jobs) {
    request.set_page_size(std::min(1000, max_jobs - all.jobs_size()));
    absl::StatusOr<esb::v1::ListJobsResponse> page = (*remote)->List(request);
    if (!page.ok()) return Fail(page.status());
    for (esb::v1::Job& job : *page->mutable_jobs()) {
      *all.add_jobs() = std::move(job);
    }
    all.set_next_page_token(page->next_page_token());
    if (page->next_page_token().empty()) break;
    request.set_page_token(page->next_page_token());
  }
  if (absl::GetFlag(FLAGS_json)) return PrintJson(all);
  std::cout << absl::StrFormat("%-12s %-10s %-10s %-8s %-20s %s\n", "JOB",
                               "STATE", "STAGE", "ATTEMPTS", "SUBMITTED",
                               "MODEL");
  for (const esb::v1::Job& job : all.jobs()) {
    const std::string stage =
        job.progress().stage() == esb::v1::STAGE_UNSPECIFIED
            ? "-"
            : std::string{pipeline::StageName(job.progress().stage())};
    std::cout << absl::StrFormat("%-12s %-10s %-10s %-8d %-20s %s\n", job.id(),
                                 pipeline::JobStateName(job.state()), stage,
                                 job.attempts(), When(job.created_unix_ms()),
                                 job.inputs().model_name());
  }
  if (!all.next_page_token().empty()) {
    std::cout << "(more: raise --max-jobs)\n";
  }
  return 0;
}

int Get(const CommandLine& line) {
  absl::StatusOr<std::unique_ptr<Remote>> remote = Connect();
  if (!remote.ok()) return Fail(remote.status());
  absl::StatusOr<esb::v1::Job> job = (*remote)->Get(line.args[0]);
  if (!job.ok()) return Fail(job.status());
  if (absl::GetFlag(FLAGS_json)) return PrintJson(*job);
  std::cout << absl::StrFormat("job %s: %s\n", job->id(),
                               pipeline::JobStateName(job->state()));
  std::cout << absl::StrFormat("  model      %s (%s, %d bytes)\n",
                               job->inputs().model_name(),
                               job->inputs().model().sha256().substr(0, 12),
                               job->inputs().model().size());
  std::cout << absl::StrFormat("  submitted  %s\n",
                               When(job->created_unix_ms()));
  if (job->attempts() > 0) {
    std::cout << absl::StrFormat("  attempts   %d, last on %s at %s\n",
                                 job->attempts(), job->worker(),
                                 When(job->started_unix_ms()));
  }
  if (job->state() == esb::v1::JOB_STATE_RUNNING) {
    std::cout << absl::StrFormat(
        "  progress   %s %d/%d %s\n",
        pipeline::StageName(job->progress().stage()), job->progress().step(),
        job->progress().total(), job->progress().message());
  }
  if (job->finished_unix_ms() > 0) {
    std::cout << absl::StrFormat("  finished   %s\n",
                                 When(job->finished_unix_ms()));
  }
  if (job->state() == esb::v1::JOB_STATE_FAILED ||
      job->state() == esb::v1::JOB_STATE_CANCELLED) {
    std::cout << "  error      " << JobOutcome(*job) << "\n";
  }
  if (job->has_eval()) {
    std::cout << absl::StrFormat(
        "  top-1      fp32 %.2f%%, esb %.2f%%, agreement %.2f%%\n",
        100 * job->fp32_top1(), 100 * job->esb_top1(), 100 * job->agreement());
  }
  for (const esb::v1::Artifact& a : job->artifacts()) {
    std::cout << absl::StrFormat("  artifact   %-15s %10d bytes%s\n", a.name(),
                                 a.blob().size(),
                                 job->artifacts_expired() ? " (expired)" : "");
  }
  return 0;
}

int Cancel(const CommandLine& line) {
  absl::StatusOr<std::unique_ptr<Remote>> remote = Connect();
  if (!remote.ok()) return Fail(remote.status());
  absl::StatusOr<esb::v1::Job> job = (*remote)->Cancel(line.args[0]);
  if (!job.ok()) return Fail(job.status());
  if (absl::GetFlag(FLAGS_json)) return PrintJson(*job);
  if (job->state() == esb::v1::JOB_STATE_CANCELLED) {
    std::cout << "job " << job->id() << " cancelled\n";
  } else {
    std::cout << "job " << job->id()
              << ": cancel requested; its worker stops it within a second\n";
  }
  return 0;
}

int Fetch(const CommandLine& line) {
  const std::string dir = absl::GetFlag(FLAGS_o);
  absl::StatusOr<std::unique_ptr<Remote>> remote = Connect();
  if (!remote.ok()) return Fail(remote.status());
  absl::StatusOr<std::vector<std::string>> paths =
      (*remote)->Fetch(line.args[0], dir);
  if (!paths.ok()) return Fail(paths.status());
  if (absl::GetFlag(FLAGS_json)) {
    google::protobuf::Struct out;
    (*out.mutable_fields())["job"].set_string_value(line.args[0]);
    google::protobuf::ListValue* list =
        (*out.mutable_fields())["paths"].mutable_list_value();
    for (const std::string& p : *paths) list->add_values()->set_string_value(p);
    return PrintJson(out);
  }
  for (const std::string& p : *paths) std::cout << p << "\n";
  return 0;
}

int Report(const CommandLine& line) {
  absl::StatusOr<std::unique_ptr<Remote>> remote = Connect();
  if (!remote.ok()) return Fail(remote.status());
  absl::StatusOr<esb::v1::QuantReport> report =
      ReportOf(**remote, line.args[0]);
  if (!report.ok()) return Fail(report.status());
  if (absl::GetFlag(FLAGS_json)) return PrintJson(*report);
  std::cout << Summary(*report, line.args[0], "");
  return 0;
}

int Health(const CommandLine& line) {
  absl::StatusOr<std::unique_ptr<Remote>> remote =
      Remote::Connect(absl::GetFlag(FLAGS_server), absl::Seconds(3));
  if (!remote.ok()) return Fail(remote.status());
  absl::StatusOr<bool> healthy = (*remote)->Healthy();
  if (!healthy.ok()) return Fail(healthy.status());
  if (absl::GetFlag(FLAGS_json)) {
    google::protobuf::Struct out;
    (*out.mutable_fields())["address"].set_string_value((*remote)->address());
    (*out.mutable_fields())["serving"].set_bool_value(*healthy);
    const int printed = PrintJson(out);
    return printed != 0 ? printed : (*healthy ? 0 : 1);
  }
  std::cout << (*remote)->address() << ": "
            << (*healthy ? "serving" : "not serving") << "\n";
  return *healthy ? 0 : 1;
}

}  // namespace

std::vector<CommandSpec> RemoteCommands(
    const std::vector<FlagUse>& quantize_flags) {
  const FlagUse server{"server", "HOST:PORT"};
  const FlagUse json{"json", ""};
  std::vector<CommandSpec> c;
  CommandSpec submit{
      "submit",
      "MODEL.onnx",
      1,
      "Submit a quantization job to esb-server (it takes every quantize "
      "flag); --wait follows it to its report.",
      {server,
       {"wait", ""},
       {"idempotency_key", "KEY"},
       {"o", "OUTDIR", "With --wait: fetch the artifacts here."}}};
  for (const FlagUse& f : quantize_flags) {
    const std::string name = f.name;
    if (name == "o" || name == "threads" || name == "max_tensor_elements" ||
        name == "max_arena_bytes" || name == "max_plan_bytes") {
      continue;
    }
    submit.flags.push_back(f);
  }
  c.push_back(submit);
  c.push_back({"watch",
               "JOB",
               1,
               "Follow a job: a progress bar per stage, then its report.",
               {server,
                {"o", "OUTDIR", "Fetch the artifacts here."},
                json,
                {"quiet", ""}}});
  c.push_back({"list",
               "",
               0,
               "Jobs on the server, newest first.",
               {server, {"state", "STATES"}, {"max_jobs", "N"}, json}});
  c.push_back({"get",
               "JOB",
               1,
               "One job: state, progress, error, artifacts.",
               {server, json}});
  c.push_back(
      {"cancel", "JOB", 1, "Cancel a queued or running job.", {server, json}});
  c.push_back({"fetch",
               "JOB",
               1,
               "Download a job's model.esb.onnx, model.esbm and report.json.",
               {server, {"o", "OUTDIR", nullptr, nullptr, true}, json}});
  c.push_back({"report",
               "JOB",
               1,
               "A finished job's report, as quantize prints it.",
               {server, json}});
  c.push_back({"health",
               "",
               0,
               "Whether esb-server answers and is serving (exit 0 if so).",
               {server, json}});
  return c;
}

bool IsRemoteCommand(const std::string& name) {
  for (const CommandSpec& spec : RemoteCommands({})) {
    if (name == spec.name) return true;
  }
  return false;
}

int RunRemoteCommand(const CommandLine& line, const JobFromFlags& job_flags) {
  const std::string name = line.command->name;
  if (name == "submit") return Submit(line, job_flags);
  if (name == "watch") return Watch(line);
  if (name == "list") return List(line);
  if (name == "get") return Get(line);
  if (name == "cancel") return Cancel(line);
  if (name == "fetch") return Fetch(line);
  if (name == "report") return Report(line);
  if (name == "health") return Health(line);
  return Fail(absl::InternalError(absl::StrCat("no command ", name)));
}

}  // namespace esb::client
