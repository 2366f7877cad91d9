#include "worker/lease.h"

#include <algorithm>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace esb::worker {
namespace {

int64_t NowUnixMs() { return absl::ToUnixMillis(absl::Now()); }

}  // namespace

bool Transient(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
      return true;
    default:
      return false;
  }
}

bool LeaseGone(absl::StatusCode code) {
  return code == absl::StatusCode::kAborted ||
         code == absl::StatusCode::kNotFound;
}

absl::Status ToAbsl(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      s.error_message());
}

void SetDeadline(grpc::ClientContext& ctx, absl::Duration d) {
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + d));
}

absl::Duration Backoff(int failures, absl::Duration min, absl::Duration max) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  absl::Duration d = min;
  for (int i = 1; i < failures && d < max; ++i) d *= 2;
  d = std::min(d, max);
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  return d * jitter(rng);
}

LeaseKeeper::LeaseKeeper(esb::v1::WorkerService::StubInterface* stub,
                         LeaseKeeperOptions options)
    : stub_(stub),
      options_(std::move(options)),
      deadline_(options_.deadline_unix_ms),
      thread_([this] { Loop(); }) {}

LeaseKeeper::~LeaseKeeper() { Stop(); }

void LeaseKeeper::SetProgress(const esb::v1::JobProgress& p) {
  absl::MutexLock lock(&mu_);
  progress_ = p;
}

void LeaseKeeper::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

bool LeaseKeeper::cancel_requested() {
  absl::MutexLock lock(&mu_);
  return cancel_;
}

std::string LeaseKeeper::lost() {
  absl::MutexLock lock(&mu_);
  return lost_;
}

void LeaseKeeper::Lose(const std::string& why) {
  absl::MutexLock lock(&mu_);
  if (lost_.empty()) lost_ = why;
}

void LeaseKeeper::Loop() {
  int failures = 0;
  absl::Duration wait = options_.interval;
  while (true) {
    esb::v1::HeartbeatRequest req;
    {
      absl::MutexLock lock(&mu_);
      auto done = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stop_ || !lost_.empty();
      };
      if (mu_.AwaitWithTimeout(absl::Condition(&done), wait)) return;
      *req.mutable_progress() = progress_;
    }
    req.set_job_id(options_.job_id);
    req.set_lease_id(options_.lease_id);
    esb::v1::HeartbeatResponse resp;
    grpc::ClientContext ctx;
    // While the server is away (a restart), a heartbeat waits for the channel
    // to reconnect instead of failing at once with the last connect error, so
    // the first heartbeat after the server is back is the one that lands.
    // Bounded: a heartbeat stuck longer than this would let the lease lapse.
    ctx.set_wait_for_ready(true);
    SetDeadline(ctx, std::max(absl::Seconds(2), options_.interval * 2));
    const absl::Status s = ToAbsl(stub_->Heartbeat(&ctx, req, &resp));
    absl::MutexLock lock(&mu_);
    if (s.ok()) {
      failures = 0;
      wait = options_.interval;
      if (resp.lease_deadline_unix_ms() > 0) {
        deadline_ = resp.lease_deadline_unix_ms();
      }
      if (resp.cancel_requested()) cancel_ = true;
      continue;
    }
    if (LeaseGone(s.code())) {
      if (lost_.empty()) lost_ = absl::StrCat("heartbeat: ", s.message());
      return;
    }
    const int64_t left = deadline_ - NowUnixMs();
    if (left <= 0) {
      if (lost_.empty()) {
        lost_ = absl::StrCat(
            "the lease expired without a heartbeat (last: ", s.ToString(), ")");
      }
      return;
    }
    // Retries stay close together while the lease is at stake: a gap as long
    // as the worker's general backoff could straddle the lease's deadline.
    const absl::Duration cap = std::min(
        options_.backoff_max, std::max(options_.interval, absl::Seconds(1)));
    wait = std::min(Backoff(++failures, options_.backoff_min, cap),
                    absl::Milliseconds(left) / 2);
  }
}

}  // namespace esb::worker
