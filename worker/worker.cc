#include "worker/worker.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/env/digest.h"
#include "core/env/env.h"
#include "core/pipeline/artifacts.h"
#include "esb/v1/report.pb.h"
#include "google/protobuf/util/json_util.h"
#include "worker/job_process.h"
#include "worker/lease.h"

namespace esb::worker {
namespace {

constexpr int64_t kChunk = int64_t{1} << 20;  // UploadBlob message size.
constexpr absl::Duration kCallTimeout = absl::Seconds(10);
// A blob download may not outlast this, so a server that stalls in the
// middle of a stream frees the slot (4 GiB at 5 MB/s fits).
constexpr absl::Duration kBlobTimeout = absl::Minutes(15);
constexpr absl::Duration kPollStep = absl::Milliseconds(100);

using esb::v1::JobError;

void Log(const std::string& line) {
  absl::FPrintF(stderr, "%s\n", line);
  fflush(stderr);
}

JobError MakeError(absl::StatusCode code, const std::string& message,
                   esb::v1::Stage stage) {
  JobError e;
  e.set_code(static_cast<int>(code));
  e.set_message(message);
  e.set_stage(stage);
  return e;
}

}  // namespace

WorkerMetrics::WorkerMetrics(prometheus::Registry& registry)
    : stage_duration(prometheus::BuildHistogram()
                         .Name("esb_worker_stage_duration_seconds")
                         .Help("Time a job spent in each stage.")
                         .Register(registry)),
      jobs(prometheus::BuildCounter()
               .Name("esb_worker_jobs_total")
               .Help("Jobs finished, by outcome (succeeded, failed, "
                     "cancelled, lost).")
               .Register(registry)),
      running(prometheus::BuildGauge()
                  .Name("esb_worker_jobs_running")
                  .Help("Jobs being run.")
                  .Register(registry)
                  .Add({})),
      layers_quantized(prometheus::BuildCounter()
                           .Name("esb_worker_layers_quantized_total")
                           .Help("Layers quantized by succeeded jobs.")
                           .Register(registry)
                           .Add({})) {}

void WorkerMetrics::Stage(const std::string& stage, double seconds) {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800};
  stage_duration.Add({{"stage", stage}}, kBuckets).Observe(seconds);
}

absl::StatusOr<std::unique_ptr<Worker>> Worker::Create(
    const WorkerOptions& options, std::shared_ptr<grpc::Channel> channel,
    WorkerMetrics* metrics) {
  if (options.concurrency < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "concurrency must be at least 1, got ", options.concurrency));
  }
  if (options.work_dir.empty() || options.job_binary.empty()) {
    return absl::InvalidArgumentError("work_dir and job_binary are required");
  }
  for (const std::string& dir :
       {options.work_dir + "/blobs", options.work_dir + "/jobs"}) {
    if (absl::Status s = Env::Default()->CreateDirs(dir); !s.ok()) return s;
  }
  return std::unique_ptr<Worker>(
      new Worker(options, std::move(channel), metrics));
}

Worker::Worker(const WorkerOptions& options,
               std::shared_ptr<grpc::Channel> channel, WorkerMetrics* metrics)
    : options_(options),
      channel_(std::move(channel)),
      worker_stub_(esb::v1::WorkerService::NewStub(channel_)),
      blob_stub_(esb::v1::QuantizationService::NewStub(channel_)),
      metrics_(metrics),
      cache_(options.work_dir + "/blobs", Env::Default()) {}

Worker::~Worker() = default;

void Worker::Run() {
  std::vector<std::thread> slots;
  for (int i = 0; i < options_.concurrency; ++i) {
    slots.emplace_back([this, i] { Slot(i); });
  }
  for (std::thread& t : slots) t.join();
}

void Worker::Drain() {
  absl::MutexLock lock(&mu_);
  draining_ = true;
  for (grpc::ClientContext* ctx : lease_calls_) ctx->TryCancel();
}

void Worker::Abort() {
  absl::MutexLock lock(&mu_);
  draining_ = true;
  aborted_ = true;
  for (grpc::ClientContext* ctx : lease_calls_) ctx->TryCancel();
}

bool Worker::Sleep(absl::Duration d, bool stop_on_drain) {
  absl::MutexLock lock(&mu_);
  auto stop = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return aborted_ || (stop_on_drain && draining_);
  };
  return !mu_.AwaitWithTimeout(absl::Condition(&stop), d);
}

absl::Duration Worker::Backoff(int failures) const {
  return worker::Backoff(failures, options_.backoff_min, options_.backoff_max);
}

void Worker::Slot(int index) {
  int failures = 0;
  while (true) {
    grpc::ClientContext ctx;
    {
      absl::MutexLock lock(&mu_);
      if (draining_) return;
      lease_calls_.push_back(&ctx);
    }
    esb::v1::LeaseJobRequest req;
    req.set_worker(options_.name);
    req.set_wait_ms(static_cast<int32_t>(std::clamp<int64_t>(
        absl::ToInt64Milliseconds(options_.lease_wait), 0, 30000)));
    SetDeadline(ctx, options_.lease_wait + kCallTimeout);
    esb::v1::LeaseJobResponse resp;
    const grpc::Status s = worker_stub_->LeaseJob(&ctx, req, &resp);
    {
      absl::MutexLock lock(&mu_);
      lease_calls_.erase(
          std::find(lease_calls_.begin(), lease_calls_.end(), &ctx));
    }
    if (!s.ok()) {
      // Drain() cancels the call; the loop then sees draining_.
      if (s.error_code() == grpc::StatusCode::CANCELLED) continue;
      if (failures == 0) Log(absl::StrCat("LeaseJob: ", s.error_message()));
      if (!Sleep(Backoff(++failures), /*stop_on_drain=*/true)) return;
      continue;
    }
    failures = 0;
    if (!resp.leased()) continue;
    RunLeased(resp);
  }
}

absl::Status Worker::FetchBlob(
    const std::string& sha256,
    const std::function<absl::Status(absl::string_view)>& sink) {
  grpc::ClientContext ctx;
  SetDeadline(ctx, kBlobTimeout);
  esb::v1::ReadBlobRequest req;
  req.set_sha256(sha256);
  auto reader = worker_stub_->ReadBlob(&ctx, req);
  esb::v1::BlobChunk chunk;
  absl::Status status;
  while (reader->Read(&chunk)) {
    if (!status.ok()) continue;
    status = sink(chunk.data());
    if (!status.ok()) ctx.TryCancel();
  }
  const grpc::Status s = reader->Finish();
  if (!status.ok()) return status;
  return ToAbsl(s);
}

absl::Status Worker::Upload(const std::string& path, esb::v1::BlobRef* ref) {
  // Artifacts are protobuf-sized (< 2 GiB), read whole.
  absl::StatusOr<std::string> bytes =
      ReadFileToString(Env::Default(), path, int64_t{2} << 30);
  if (!bytes.ok()) return bytes.status();
  ref->set_sha256(Sha256Hex(*bytes));
  ref->set_size(static_cast<int64_t>(bytes->size()));
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx, kCallTimeout);
    esb::v1::StatBlobRequest req;
    req.set_sha256(ref->sha256());
    esb::v1::StatBlobResponse resp;
    const grpc::Status s = blob_stub_->StatBlob(&ctx, req, &resp);
    if (!s.ok()) return ToAbsl(s);
    if (resp.present() && resp.blob().size() == ref->size()) {
      return absl::OkStatus();
    }
  }
  grpc::ClientContext ctx;
  esb::v1::UploadBlobResponse resp;
  auto writer = blob_stub_->UploadBlob(&ctx, &resp);
  int64_t offset = 0;
  bool first = true;
  while (first || offset < ref->size()) {
    esb::v1::UploadBlobRequest req;
    if (first) {
      req.set_sha256(ref->sha256());
      req.set_size(ref->size());
      first = false;
    }
    const int64_t n = std::min(kChunk, ref->size() - offset);
    req.set_data(
        bytes->substr(static_cast<size_t>(offset), static_cast<size_t>(n)));
    offset += n;
    if (!writer->Write(req)) break;  // Finish() says why.
  }
  writer->WritesDone();
  return ToAbsl(writer->Finish());
}

void Worker::RunLeased(const esb::v1::LeaseJobResponse& lease) {
  const esb::v1::Job& job = lease.job();
  const std::string& id = job.id();
  Log(absl::StrCat("job ", id, " leased (attempt ", job.attempts(), ")"));
  metrics_->running.Increment();
  LeaseKeeperOptions keep;
  keep.job_id = id;
  keep.lease_id = lease.lease_id();
  keep.deadline_unix_ms = lease.lease_deadline_unix_ms();
  keep.interval = options_.heartbeat_interval;
  keep.backoff_min = options_.backoff_min;
  keep.backoff_max = options_.backoff_max;
  LeaseKeeper keeper(worker_stub_.get(), keep);
  bool aborted = false;
  // Runs `call` until it succeeds or fails for good. ABORTED when the
  // lease is lost meanwhile (or, for a call naming the lease, when the
  // answer says so), CANCELLED when the worker is aborted.
  auto persist = [&](const std::function<absl::Status()>& call,
                     bool names_lease) {
    int failures = 0;
    while (true) {
      absl::Status s = call();
      if (s.ok()) return s;
      if (names_lease && LeaseGone(s.code())) {
        keeper.Lose(absl::StrCat(s.message()));
        return absl::AbortedError(s.message());
      }
      if (!Transient(s.code())) return s;
      if (std::string why = keeper.lost(); !why.empty()) {
        return absl::AbortedError(why);
      }
      if (failures == 0) Log(absl::StrCat("job ", id, ": ", s.ToString()));
      if (!Sleep(Backoff(++failures), /*stop_on_drain=*/false)) {
        aborted = true;
        return absl::CancelledError("worker stopping");
      }
    }
  };
  // The job is no longer ours to report.
  auto gone = [&] { return aborted || !keeper.lost().empty(); };
  auto finish = [&](const std::string& outcome, const std::string& detail) {
    keeper.Stop();
    metrics_->running.Decrement();
    if (!aborted) metrics_->Finished(outcome);
    Log(absl::StrCat("job ", id, " ", aborted ? "abandoned" : outcome,
                     detail.empty() ? "" : ": ", detail));
  };
  auto fail = [&](const JobError& error, const std::string& outcome) {
    absl::Status s = persist(
        [&] {
          esb::v1::FailJobRequest req;
          req.set_job_id(id);
          req.set_lease_id(lease.lease_id());
          *req.mutable_error() = error;
          esb::v1::FailJobResponse resp;
          grpc::ClientContext ctx;
          SetDeadline(ctx, kCallTimeout);
          return ToAbsl(worker_stub_->FailJob(&ctx, req, &resp));
        },
        /*names_lease=*/true);
    finish(gone() ? "lost" : outcome,
           s.ok() ? error.message()
                  : absl::StrCat(error.message(), " (FailJob: ", s.message(),
                                 ")"));
  };

  // Fetch.
  auto clock = absl::Now();
  std::vector<const esb::v1::BlobRef*> blobs = {&job.inputs().model()};
  for (const esb::v1::DataRef* d : {&job.inputs().calib(), &job.inputs().eval(),
                                    &job.inputs().eval_labels()}) {
    if (!d->blob().sha256().empty()) blobs.push_back(&d->blob());
  }
  for (const esb::v1::BlobRef* blob : blobs) {
    absl::Status s = persist(
        [&] {
          return cache_
              .Get(blob->sha256(), blob->size(),
                   [this](const std::string& sha,
                          const std::function<absl::Status(absl::string_view)>&
                              sink) { return FetchBlob(sha, sink); })
              .status();
        },
        /*names_lease=*/false);
    if (gone()) return finish("lost", s.ToString());
    if (!s.ok()) {
      return fail(MakeError(s.code(),
                            absl::StrCat("input blob ", blob->sha256(), ": ",
                                         s.message()),
                            esb::v1::STAGE_UNSPECIFIED),
                  "failed");
    }
  }
  metrics_->Stage("fetch", absl::ToDoubleSeconds(absl::Now() - clock));
  if (keeper.cancel_requested()) {
    return fail(MakeError(absl::StatusCode::kCancelled, "cancelled",
                          esb::v1::STAGE_UNSPECIFIED),
                "cancelled");
  }

  // Run.
  JobSpawnOptions spawn;
  spawn.binary = options_.job_binary;
  spawn.job_dir = absl::StrCat(options_.work_dir, "/jobs/", id);
  spawn.blob_dir = options_.work_dir + "/blobs";
  spawn.threads = options_.threads_per_job;
  spawn.memory_limit = options_.job_memory_limit;
  absl::StatusOr<std::unique_ptr<JobProcess>> process =
      [&]() -> absl::StatusOr<std::unique_ptr<JobProcess>> {
    if (absl::Status s = WriteJobSpec(spawn.job_dir, job); !s.ok()) return s;
    return JobProcess::Spawn(spawn);
  }();
  if (!process.ok()) {
    return fail(MakeError(process.status().code(),
                          absl::StrCat(process.status().message()),
                          esb::v1::STAGE_UNSPECIFIED),
                "failed");
  }
  esb::v1::Stage stage = esb::v1::STAGE_UNSPECIFIED;
  clock = absl::Now();
  auto stage_done = [&] {
    if (stage != esb::v1::STAGE_UNSPECIFIED) {
      metrics_->Stage(StageName(stage),
                      absl::ToDoubleSeconds(absl::Now() - clock));
    }
    clock = absl::Now();
  };
  std::vector<esb::v1::JobProgress> events;
  while ((*process)->ReadProgress(kPollStep, &events)) {
    for (const esb::v1::JobProgress& e : events) {
      if (e.stage() != stage) {
        stage_done();
        stage = e.stage();
      }
      keeper.SetProgress(e);
    }
    events.clear();
    if (keeper.cancel_requested()) {
      (*process)->Kill();
      (*process)->Wait();
      return fail(MakeError(absl::StatusCode::kCancelled, "cancelled",
                            (*process)->last_progress().stage()),
                  "cancelled");
    }
    if (std::string why = keeper.lost(); !why.empty()) {
      (*process)->Kill();
      (*process)->Wait();
      return finish("lost", why);
    }
    bool stopping;
    {
      absl::MutexLock lock(&mu_);
      stopping = aborted_;
    }
    if (stopping) {
      // No FailJob: the lease expires and the server requeues the job.
      (*process)->Kill();
      (*process)->Wait();
      aborted = true;
      return finish("lost", "worker stopping");
    }
  }
  JobExit exit = (*process)->Wait();
  stage_done();
  if (!exit.ok) return fail(exit.error, "failed");

  // Upload and complete.
  clock = absl::Now();
  esb::v1::CompleteJobRequest complete;
  complete.set_job_id(id);
  complete.set_lease_id(lease.lease_id());
  for (const char* name : pipeline::kArtifactNames) {
    esb::v1::Artifact* artifact = complete.add_artifacts();
    artifact->set_name(name);
    const std::string path = absl::StrCat(exit.output_dir, "/", name);
    absl::Status s =
        persist([&] { return Upload(path, artifact->mutable_blob()); },
                /*names_lease=*/false);
    if (gone()) return finish("lost", s.ToString());
    if (!s.ok()) {
      return fail(MakeError(s.code(),
                            absl::StrCat("upload of ", name, ": ", s.message()),
                            esb::v1::STAGE_EXPORT),
                  "failed");
    }
  }
  metrics_->Stage("upload", absl::ToDoubleSeconds(absl::Now() - clock));
  if (keeper.cancel_requested()) {
    return fail(MakeError(absl::StatusCode::kCancelled, "cancelled",
                          esb::v1::STAGE_UNSPECIFIED),
                "cancelled");
  }
  absl::Status s = persist(
      [&] {
        esb::v1::CompleteJobResponse resp;
        grpc::ClientContext ctx;
        SetDeadline(ctx, kCallTimeout);
        return ToAbsl(worker_stub_->CompleteJob(&ctx, complete, &resp));
      },
      /*names_lease=*/true);
  if (!s.ok()) {
    return finish(gone() ? "lost" : "failed",
                  absl::StrCat("CompleteJob: ", s.ToString()));
  }
  absl::StatusOr<std::string> json = ReadFileToString(
      Env::Default(), exit.output_dir + "/report.json", int64_t{64} << 20);
  esb::v1::QuantReport report;
  google::protobuf::util::JsonParseOptions parse;
  parse.ignore_unknown_fields = true;
  if (json.ok() &&
      google::protobuf::util::JsonStringToMessage(*json, &report, parse).ok()) {
    metrics_->layers_quantized.Increment(report.layers_size());
  }
  finish("succeeded", "");
}

}  // namespace esb::worker
