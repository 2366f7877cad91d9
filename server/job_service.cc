#include "server/job_service.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/pipeline/artifacts.h"
#include "core/pipeline/config.h"
#include "esb/v1/report.pb.h"
#include "google/protobuf/util/json_util.h"

namespace esb::server {
namespace {

constexpr int64_t kMaxReportBytes = int64_t{64} << 20;
constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;

std::string RandomHex(int chars) {
  thread_local absl::BitGen gen;
  std::string out;
  out.reserve(chars);
  for (int i = 0; i < chars; ++i) {
    out.push_back("0123456789abcdef"[absl::Uniform(gen, 0, 16)]);
  }
  return out;
}

// A model name as reports show it: the file stem a client sent, checked
// so it is safe in any message or file name.
absl::Status CheckModelName(const std::string& name) {
  if (name.size() > 200) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "inputs.model_name is %d characters; at most 200", name.size()));
  }
  for (char c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == '/' || c == '\\') {
      return absl::InvalidArgumentError(
          "inputs.model_name may not hold '/', '\\' or control characters");
    }
  }
  return absl::OkStatus();
}

absl::Status FailedTransition(const esb::v1::Job& job, absl::string_view op) {
  return absl::FailedPreconditionError(
      absl::StrFormat("cannot %s job %s: it is already %s", op, job.id(),
                      pipeline::JobStateName(job.state())));
}

absl::Status LeaseLost(const std::string& id) {
  return absl::AbortedError(absl::StrFormat(
      "the lease on job %s is no longer held (it expired and the job was "
      "requeued); drop the job",
      id));
}

}  // namespace

JobService::JobService(JobStore* store, BlobStore* blobs,
                       ServerMetrics* metrics, JobServiceOptions options,
                       Clock clock)
    : store_(store),
      blobs_(blobs),
      metrics_(metrics),
      options_(options),
      now_ms_(clock ? std::move(clock)
                    : [] { return absl::ToUnixMillis(absl::Now()); }) {}

void JobService::Notify() {
  absl::MutexLock lock(&mu_);
  ++generation_;
  changed_.SignalAll();
}

void JobService::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
  ++generation_;
  changed_.SignalAll();
}

absl::StatusOr<esb::v1::SubmitJobResponse> JobService::Submit(
    const esb::v1::SubmitJobRequest& request) {
  esb::v1::JobInputs inputs = request.inputs();
  // The blobs must be on the server; their sizes come from the store.
  struct Named {
    const char* field;
    esb::v1::BlobRef* blob;
    bool required;
  };
  const Named named[] = {
      {"inputs.model", inputs.mutable_model(), true},
      {"inputs.calib", inputs.mutable_calib()->mutable_blob(), true},
      {"inputs.eval", inputs.mutable_eval()->mutable_blob(), false},
      {"inputs.eval_labels", inputs.mutable_eval_labels()->mutable_blob(),
       false},
  };
  for (const Named& n : named) {
    if (n.blob->sha256().empty()) {
      if (n.required) {
        return absl::InvalidArgumentError(
            absl::StrCat(n.field, " is required"));
      }
      continue;
    }
    if (!IsSha256Hex(n.blob->sha256())) {
      return absl::InvalidArgumentError(
          absl::StrCat(n.field, ".sha256 is not 64 lowercase hex characters"));
    }
    absl::StatusOr<int64_t> size = blobs_->Size(n.blob->sha256());
    if (absl::IsNotFound(size.status())) {
      return absl::FailedPreconditionError(
          absl::StrFormat("%s: blob %s was never uploaded (UploadBlob first)",
                          n.field, n.blob->sha256()));
    }
    if (!size.ok()) return size.status();
    n.blob->set_size(*size);
  }
  if (inputs.eval().blob().sha256().empty() &&
      !inputs.eval_labels().blob().sha256().empty()) {
    return absl::InvalidArgumentError(
        "inputs.eval_labels is set without inputs.eval");
  }
  if (inputs.eval_limit() < 0) {
    return absl::InvalidArgumentError("inputs.eval_limit is negative");
  }
  if (absl::Status s = CheckModelName(inputs.model_name()); !s.ok()) return s;
  if (inputs.model_name().empty()) inputs.set_model_name("model");
  if (absl::Status s = pipeline::ResolveConfig(request.config()).status();
      !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("config: ", s.message()));
  }
  if (request.idempotency_key().size() > 256) {
    return absl::InvalidArgumentError(
        "idempotency_key is longer than 256 characters");
  }

  JobRecord record;
  esb::v1::Job& job = record.job;
  job.set_state(esb::v1::JOB_STATE_QUEUED);
  *job.mutable_config() = request.config();
  *job.mutable_inputs() = std::move(inputs);
  job.set_idempotency_key(request.idempotency_key());
  job.set_created_unix_ms(now_ms_());
  esb::v1::SubmitJobResponse response;
  for (int tries = 0;; ++tries) {
    job.set_id(RandomHex(12));
    bool existing = false;
    absl::StatusOr<esb::v1::Job> stored = store_->Insert(record, &existing);
    if (stored.ok()) {
      *response.mutable_job() = *std::move(stored);
      response.set_existing(existing);
      break;
    }
    // Only an id collision (48 random bits) is worth another try.
    if (tries == 2) return stored.status();
  }
  if (!response.existing()) {
    if (metrics_ != nullptr) metrics_->JobSubmitted();
    Notify();
  }
  return response;
}

absl::StatusOr<esb::v1::Job> JobService::Get(const std::string& id) {
  absl::StatusOr<JobRecord> record = store_->Get(id);
  if (!record.ok()) return record.status();
  return std::move(record->job);
}

absl::StatusOr<esb::v1::ListJobsResponse> JobService::List(
    const esb::v1::ListJobsRequest& request) {
  int page_size = request.page_size();
  if (page_size < 0 || page_size > kMaxPageSize) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "page_size %d is outside 0..%d", page_size, kMaxPageSize));
  }
  if (page_size == 0) page_size = kDefaultPageSize;
  std::vector<esb::v1::JobState> states;
  for (int s : request.states()) {
    if (!esb::v1::JobState_IsValid(s) || s == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("states: ", s, " is not a job state"));
    }
    states.push_back(static_cast<esb::v1::JobState>(s));
  }
  absl::StatusOr<JobPage> page =
      store_->List(states, page_size, request.page_token());
  if (!page.ok()) return page.status();
  esb::v1::ListJobsResponse response;
  for (esb::v1::Job& job : page->jobs) *response.add_jobs() = std::move(job);
  response.set_next_page_token(page->next_page_token);
  return response;
}

absl::StatusOr<esb::v1::Job> JobService::Cancel(const std::string& id) {
  const int64_t now = now_ms_();
  bool finished = false;
  absl::StatusOr<JobRecord> record =
      store_->Update(id, [&](JobRecord* r) -> absl::Status {
        esb::v1::Job& job = r->job;
        if (IsFinal(job.state())) return FailedTransition(job, "cancel");
        if (job.state() == esb::v1::JOB_STATE_QUEUED) {
          job.set_state(esb::v1::JOB_STATE_CANCELLED);
          job.set_finished_unix_ms(now);
          job.mutable_error()->set_code(
              static_cast<int>(absl::StatusCode::kCancelled));
          job.mutable_error()->set_message("cancelled before it started");
          finished = true;
        }
        job.set_cancel_requested(true);
        return absl::OkStatus();
      });
  if (!record.ok()) return record.status();
  if (finished && metrics_ != nullptr) {
    metrics_->JobFinished(esb::v1::JOB_STATE_CANCELLED,
                          (now - record->job.created_unix_ms()) / 1000.0);
  }
  Notify();
  return std::move(record->job);
}

absl::StatusOr<esb::v1::Job> JobService::WaitForChange(const std::string& id,
                                                       const esb::v1::Job* seen,
                                                       absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  const std::string seen_bytes =
      seen == nullptr ? "" : seen->SerializeAsString();
  while (true) {
    uint64_t generation;
    {
      absl::MutexLock lock(&mu_);
      generation = generation_;
    }
    absl::StatusOr<esb::v1::Job> job = Get(id);
    if (!job.ok() || seen == nullptr ||
        job->SerializeAsString() != seen_bytes) {
      return job;
    }
    absl::MutexLock lock(&mu_);
    while (generation_ == generation && !shutdown_) {
      if (changed_.WaitWithDeadline(&mu_, deadline)) break;
    }
    if (shutdown_ || absl::Now() >= deadline) return job;
  }
}

absl::StatusOr<esb::v1::LeaseJobResponse> JobService::Lease(
    const esb::v1::LeaseJobRequest& request,
    const std::function<bool()>& abandoned) {
  if (request.worker().empty() || request.worker().size() > 256) {
    return absl::InvalidArgumentError(
        "worker must name the worker (1..256 characters)");
  }
  const int64_t wait_ms =
      std::clamp<int64_t>(request.wait_ms(), 0, options_.max_wait_ms);
  const absl::Time deadline = absl::Now() + absl::Milliseconds(wait_ms);
  esb::v1::LeaseJobResponse response;
  while (true) {
    uint64_t generation;
    {
      absl::MutexLock lock(&mu_);
      if (shutdown_) return response;
      generation = generation_;
    }
    const int64_t now = now_ms_();
    if (metrics_ != nullptr) metrics_->WorkerSeen(request.worker(), now);
    const std::string lease_id = RandomHex(16);
    absl::StatusOr<std::optional<JobRecord>> leased =
        store_->UpdateOldestQueued([&](JobRecord* r) {
          esb::v1::Job& job = r->job;
          job.set_state(esb::v1::JOB_STATE_RUNNING);
          job.set_attempts(job.attempts() + 1);
          job.set_worker(request.worker());
          job.set_started_unix_ms(now);
          job.clear_progress();
          r->lease_id = lease_id;
          r->lease_deadline_ms = now + options_.lease_ms;
          return absl::OkStatus();
        });
    if (!leased.ok()) return leased.status();
    if (leased->has_value()) {
      if (metrics_ != nullptr) metrics_->JobLeased();
      response.set_leased(true);
      *response.mutable_job() = (*leased)->job;
      response.set_lease_id(lease_id);
      response.set_lease_deadline_unix_ms((*leased)->lease_deadline_ms);
      Notify();
      return response;
    }
    {
      absl::MutexLock lock(&mu_);
      // Wake at least every 200 ms to notice an abandoned call.
      const absl::Time step =
          std::min(deadline, absl::Now() + absl::Milliseconds(200));
      while (generation_ == generation && !shutdown_) {
        if (changed_.WaitWithDeadline(&mu_, step)) break;
      }
      if (absl::Now() >= deadline || shutdown_) return response;
    }
    if (abandoned && abandoned()) return response;
  }
}

absl::StatusOr<esb::v1::HeartbeatResponse> JobService::Heartbeat(
    const esb::v1::HeartbeatRequest& request) {
  const int64_t now = now_ms_();
  absl::StatusOr<JobRecord> record =
      store_->Update(request.job_id(), [&](JobRecord* r) -> absl::Status {
        if (r->job.state() != esb::v1::JOB_STATE_RUNNING ||
            r->lease_id != request.lease_id()) {
          return LeaseLost(request.job_id());
        }
        *r->job.mutable_progress() = request.progress();
        r->lease_deadline_ms = now + options_.lease_ms;
        return absl::OkStatus();
      });
  if (!record.ok()) return record.status();
  if (metrics_ != nullptr) metrics_->WorkerSeen(record->job.worker(), now);
  Notify();
  esb::v1::HeartbeatResponse response;
  response.set_cancel_requested(record->job.cancel_requested());
  response.set_lease_deadline_unix_ms(record->lease_deadline_ms);
  return response;
}

absl::StatusOr<JobRecord> JobService::Finish(const std::string& id,
                                             const std::string& lease_id,
                                             const Mutation& finish) {
  const int64_t now = now_ms_();
  bool finished_now = false;
  absl::StatusOr<JobRecord> record =
      store_->Update(id, [&](JobRecord* r) -> absl::Status {
        if (r->lease_id != lease_id) return LeaseLost(id);
        // A retry of a call that already finished the job under this lease.
        if (IsFinal(r->job.state())) return absl::OkStatus();
        if (r->job.state() != esb::v1::JOB_STATE_RUNNING) {
          return LeaseLost(id);
        }
        if (absl::Status s = finish(r); !s.ok()) return s;
        r->job.set_finished_unix_ms(now);
        r->lease_deadline_ms = 0;
        finished_now = true;
        return absl::OkStatus();
      });
  if (!record.ok()) return record.status();
  if (finished_now) {
    if (metrics_ != nullptr) {
      metrics_->JobFinished(record->job.state(),
                            (now - record->job.created_unix_ms()) / 1000.0);
    }
    Notify();
  }
  return record;
}

absl::StatusOr<esb::v1::Job> JobService::Complete(
    const esb::v1::CompleteJobRequest& request) {
  // The artifacts must be stored before the job points at them.
  std::vector<esb::v1::Artifact> artifacts;
  std::string report_sha;
  for (const char* name : pipeline::kArtifactNames) {
    auto it = std::find_if(
        request.artifacts().begin(), request.artifacts().end(),
        [&](const esb::v1::Artifact& a) { return a.name() == name; });
    if (it == request.artifacts().end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("CompleteJob lacks the artifact ", name));
    }
    absl::StatusOr<int64_t> size = blobs_->Size(it->blob().sha256());
    if (!size.ok()) {
      return absl::FailedPreconditionError(
          absl::StrFormat("artifact %s: blob %s was never uploaded", name,
                          it->blob().sha256()));
    }
    esb::v1::Artifact a = *it;
    a.mutable_blob()->set_size(*size);
    if (a.name() == pipeline::kReportArtifact) report_sha = a.blob().sha256();
    artifacts.push_back(std::move(a));
  }
  esb::v1::QuantReport report;
  absl::StatusOr<std::string> json =
      blobs_->ReadAll(report_sha, kMaxReportBytes);
  if (!json.ok()) return json.status();
  google::protobuf::util::JsonParseOptions parse;
  parse.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(*json, &report, parse)
           .ok()) {
    return absl::InvalidArgumentError("report.json is not a job report");
  }
  absl::StatusOr<JobRecord> record =
      Finish(request.job_id(), request.lease_id(), [&](JobRecord* r) {
        esb::v1::Job& job = r->job;
        if (job.cancel_requested()) {
          // The user asked to stop it; the work done is not kept.
          job.set_state(esb::v1::JOB_STATE_CANCELLED);
          job.mutable_error()->set_code(
              static_cast<int>(absl::StatusCode::kCancelled));
          job.mutable_error()->set_message("cancelled while running");
          return absl::OkStatus();
        }
        job.set_state(esb::v1::JOB_STATE_SUCCEEDED);
        for (esb::v1::Artifact& a : artifacts) *job.add_artifacts() = a;
        job.set_has_eval(report.has_top1_esb());
        job.set_fp32_top1(report.top1_fp32());
        job.set_esb_top1(report.top1_esb());
        job.set_agreement(report.agreement());
        return absl::OkStatus();
      });
  if (!record.ok()) return record.status();
  return std::move(record->job);
}

absl::StatusOr<esb::v1::Job> JobService::Fail(
    const esb::v1::FailJobRequest& request) {
  absl::StatusOr<JobRecord> record =
      Finish(request.job_id(), request.lease_id(), [&](JobRecord* r) {
        esb::v1::Job& job = r->job;
        *job.mutable_error() = request.error();
        if (job.error().code() == 0) {
          job.mutable_error()->set_code(
              static_cast<int>(absl::StatusCode::kUnknown));
        }
        const bool cancelled = job.error().code() ==
                               static_cast<int>(absl::StatusCode::kCancelled);
        job.set_state(cancelled ? esb::v1::JOB_STATE_CANCELLED
                                : esb::v1::JOB_STATE_FAILED);
        return absl::OkStatus();
      });
  if (!record.ok()) return record.status();
  return std::move(record->job);
}

absl::Status JobService::RenewRunningLeases() {
  std::string token;
  do {
    absl::StatusOr<JobPage> page =
        store_->List({esb::v1::JOB_STATE_RUNNING}, kMaxPageSize, token);
    if (!page.ok()) return page.status();
    const int64_t deadline = now_ms_() + options_.lease_ms;
    for (const esb::v1::Job& job : page->jobs) {
      absl::StatusOr<JobRecord> renewed =
          store_->Update(job.id(), [&](JobRecord* r) -> absl::Status {
            if (r->job.state() != esb::v1::JOB_STATE_RUNNING) {
              return absl::OkStatus();
            }
            r->lease_deadline_ms = std::max(r->lease_deadline_ms, deadline);
            return absl::OkStatus();
          });
      if (!renewed.ok()) return renewed.status();
    }
    token = page->next_page_token;
  } while (!token.empty());
  return absl::OkStatus();
}

absl::StatusOr<int> JobService::ExpireLeases() {
  const int64_t now = now_ms_();
  absl::StatusOr<std::vector<std::string>> ids = store_->ExpiredLeases(now);
  if (!ids.ok()) return ids.status();
  int expired = 0;
  for (const std::string& id : *ids) {
    bool finished = false;
    absl::StatusOr<JobRecord> record =
        store_->Update(id, [&](JobRecord* r) -> absl::Status {
          esb::v1::Job& job = r->job;
          // Another call may have moved it since the query.
          if (job.state() != esb::v1::JOB_STATE_RUNNING ||
              r->lease_deadline_ms >= now) {
            return absl::CancelledError("lease renewed");
          }
          r->lease_deadline_ms = 0;
          const std::string stage =
              job.progress().stage() == esb::v1::STAGE_UNSPECIFIED
                  ? "before its first stage"
                  : absl::StrCat("in stage ",
                                 pipeline::StageName(job.progress().stage()));
          if (job.cancel_requested()) {
            job.set_state(esb::v1::JOB_STATE_CANCELLED);
            job.mutable_error()->set_code(
                static_cast<int>(absl::StatusCode::kCancelled));
            job.mutable_error()->set_message("cancelled; its worker was lost");
            finished = true;
          } else if (job.attempts() >= options_.max_attempts) {
            job.set_state(esb::v1::JOB_STATE_FAILED);
            job.mutable_error()->set_code(
                static_cast<int>(absl::StatusCode::kUnavailable));
            job.mutable_error()->set_message(absl::StrFormat(
                "worker lost %d times, last seen %s (worker %s)",
                job.attempts(), stage, job.worker()));
            job.mutable_error()->set_stage(job.progress().stage());
            finished = true;
          } else {
            job.set_state(esb::v1::JOB_STATE_QUEUED);
          }
          if (finished) job.set_finished_unix_ms(now);
          return absl::OkStatus();
        });
    if (absl::IsCancelled(record.status())) continue;
    if (!record.ok()) return record.status();
    ++expired;
    if (metrics_ != nullptr) {
      metrics_->LeaseExpired();
      if (finished) {
        metrics_->JobFinished(record->job.state(),
                              (now - record->job.created_unix_ms()) / 1000.0);
      }
    }
  }
  if (expired > 0) Notify();
  return expired;
}

absl::StatusOr<int> JobService::Retain(int64_t keep_ms) {
  const int64_t now = now_ms_();
  absl::StatusOr<std::vector<JobRecord>> old =
      store_->FinishedBefore(now - keep_ms);
  if (!old.ok()) return old.status();
  std::set<std::string> candidates;
  for (const JobRecord& r : *old) {
    for (std::string& b : BlobsOf(r.job)) candidates.insert(std::move(b));
    absl::StatusOr<JobRecord> marked =
        store_->Update(r.job.id(), [](JobRecord* m) {
          m->job.set_artifacts_expired(true);
          return absl::OkStatus();
        });
    if (!marked.ok()) return marked.status();
  }
  absl::StatusOr<std::vector<std::string>> live = store_->LiveBlobs();
  if (!live.ok()) return live.status();
  for (const std::string& b : *live) candidates.erase(b);
  int deleted = 0;
  for (const std::string& b : candidates) {
    absl::Status s = blobs_->Delete(b);
    if (s.ok()) {
      ++deleted;
    } else if (!absl::IsNotFound(s)) {
      return s;
    }
  }
  return deleted;
}

absl::Status JobService::RefreshMetrics() {
  if (metrics_ == nullptr) return absl::OkStatus();
  absl::StatusOr<std::map<esb::v1::JobState, int64_t>> counts =
      store_->CountByState();
  if (!counts.ok()) return counts.status();
  metrics_->Refresh(*counts, now_ms_());
  return absl::OkStatus();
}

}  // namespace esb::server
