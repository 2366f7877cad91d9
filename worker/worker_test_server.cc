#include "worker/worker_test_server.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/env/digest.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"

namespace esb::worker::testing {

using grpc::ServerContext;
using grpc::Status;
using grpc::StatusCode;

class FakeServer::Workers final : public esb::v1::WorkerService::Service {
 public:
  explicit Workers(FakeState& s) : s_(s) {}

  Status LeaseJob(ServerContext*, const esb::v1::LeaseJobRequest* req,
                  esb::v1::LeaseJobResponse* resp) override {
    absl::MutexLock lock(&s_.mu);
    auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(s_.mu) {
      return !s_.queue.empty();
    };
    if (!s_.mu.AwaitWithTimeout(
            absl::Condition(&ready),
            absl::Milliseconds(std::min(req->wait_ms(), 200)))) {
      return Status::OK;
    }
    esb::v1::Job job = s_.queue.front();
    s_.queue.pop_front();
    ++s_.leases;
    job.set_state(esb::v1::JOB_STATE_RUNNING);
    job.set_attempts(job.attempts() + 1);
    job.set_worker(req->worker());
    resp->set_leased(true);
    *resp->mutable_job() = job;
    resp->set_lease_id(absl::StrCat("lease-", s_.leases));
    resp->set_lease_deadline_unix_ms(
        absl::ToUnixMillis(absl::Now() + s_.lease));
    return Status::OK;
  }

  Status Heartbeat(ServerContext*, const esb::v1::HeartbeatRequest* req,
                   esb::v1::HeartbeatResponse* resp) override {
    absl::MutexLock lock(&s_.mu);
    if (s_.unavailable_heartbeats > 0) {
      --s_.unavailable_heartbeats;
      return Status(StatusCode::UNAVAILABLE, "server restarting");
    }
    if (s_.on_heartbeat) s_.on_heartbeat(*req);
    s_.heartbeats.push_back({*req, absl::Now(), false});
    if (s_.aborted.count(req->job_id())) {
      return Status(StatusCode::ABORTED, "the lease is held by another worker");
    }
    if (s_.cancel.count(req->job_id())) {
      resp->set_cancel_requested(true);
      s_.heartbeats.back().answered_cancel = true;
    }
    resp->set_lease_deadline_unix_ms(
        absl::ToUnixMillis(absl::Now() + s_.lease));
    return Status::OK;
  }

  Status CompleteJob(ServerContext*, const esb::v1::CompleteJobRequest* req,
                     esb::v1::CompleteJobResponse* resp) override {
    absl::MutexLock lock(&s_.mu);
    if (s_.unavailable_completes > 0) {
      --s_.unavailable_completes;
      return Status(StatusCode::UNAVAILABLE, "server restarting");
    }
    if (s_.aborted.count(req->job_id())) {
      return Status(StatusCode::ABORTED, "the lease is held by another worker");
    }
    for (const esb::v1::Artifact& a : req->artifacts()) {
      if (!s_.blobs.count(a.blob().sha256())) {
        return Status(StatusCode::FAILED_PRECONDITION,
                      absl::StrCat("artifact ", a.name(), " not uploaded"));
      }
    }
    s_.completes.push_back(*req);
    resp->mutable_job()->set_id(req->job_id());
    resp->mutable_job()->set_state(esb::v1::JOB_STATE_SUCCEEDED);
    return Status::OK;
  }

  Status FailJob(ServerContext*, const esb::v1::FailJobRequest* req,
                 esb::v1::FailJobResponse* resp) override {
    absl::MutexLock lock(&s_.mu);
    if (s_.aborted.count(req->job_id())) {
      return Status(StatusCode::ABORTED, "the lease is held by another worker");
    }
    s_.fails.emplace_back(*req, absl::Now());
    resp->mutable_job()->set_id(req->job_id());
    resp->mutable_job()->set_state(esb::v1::JOB_STATE_FAILED);
    return Status::OK;
  }

  Status ReadBlob(ServerContext*, const esb::v1::ReadBlobRequest* req,
                  grpc::ServerWriter<esb::v1::BlobChunk>* writer) override {
    std::string bytes;
    {
      absl::MutexLock lock(&s_.mu);
      auto it = s_.blobs.find(req->sha256());
      if (it == s_.blobs.end()) {
        return Status(StatusCode::NOT_FOUND, "no such blob");
      }
      ++s_.reads[req->sha256()];
      bytes = it->second;
    }
    constexpr size_t kPiece = 256 << 10;
    for (size_t i = 0; i == 0 || i < bytes.size(); i += kPiece) {
      esb::v1::BlobChunk chunk;
      if (i == 0) {
        chunk.mutable_blob()->set_sha256(req->sha256());
        chunk.mutable_blob()->set_size(static_cast<int64_t>(bytes.size()));
      }
      chunk.set_data(bytes.substr(i, kPiece));
      if (!writer->Write(chunk)) break;
    }
    return Status::OK;
  }

 private:
  FakeState& s_;
};

class FakeServer::Blobs final : public esb::v1::QuantizationService::Service {
 public:
  explicit Blobs(FakeState& s) : s_(s) {}

  Status UploadBlob(ServerContext*,
                    grpc::ServerReader<esb::v1::UploadBlobRequest>* reader,
                    esb::v1::UploadBlobResponse* resp) override {
    esb::v1::UploadBlobRequest req;
    std::string sha;
    int64_t size = -1;
    std::string bytes;
    bool first = true;
    while (reader->Read(&req)) {
      if (first) {
        sha = req.sha256();
        size = req.size();
        first = false;
      }
      bytes += req.data();
    }
    if (static_cast<int64_t>(bytes.size()) != size || Sha256Hex(bytes) != sha) {
      return Status(StatusCode::INVALID_ARGUMENT, "size or digest mismatch");
    }
    absl::MutexLock lock(&s_.mu);
    resp->set_already_present(s_.blobs.count(sha) > 0);
    s_.blobs[sha] = bytes;
    ++s_.uploads;
    resp->mutable_blob()->set_sha256(sha);
    resp->mutable_blob()->set_size(size);
    return Status::OK;
  }

  Status StatBlob(ServerContext*, const esb::v1::StatBlobRequest* req,
                  esb::v1::StatBlobResponse* resp) override {
    absl::MutexLock lock(&s_.mu);
    auto it = s_.blobs.find(req->sha256());
    resp->set_present(it != s_.blobs.end());
    if (it != s_.blobs.end()) {
      resp->mutable_blob()->set_sha256(it->first);
      resp->mutable_blob()->set_size(static_cast<int64_t>(it->second.size()));
    }
    return Status::OK;
  }

 private:
  FakeState& s_;
};

FakeServer::FakeServer()
    : workers_(std::make_unique<Workers>(state_)),
      blobs_(std::make_unique<Blobs>(state_)) {
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(workers_.get());
  builder.RegisterService(blobs_.get());
  server_ = builder.BuildAndStart();
  address_ = absl::StrCat("127.0.0.1:", port);
}

FakeServer::~FakeServer() {
  server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
}

esb::v1::BlobRef FakeServer::AddBlob(const std::string& bytes) {
  esb::v1::BlobRef ref;
  ref.set_sha256(Sha256Hex(bytes));
  ref.set_size(static_cast<int64_t>(bytes.size()));
  absl::MutexLock lock(&state_.mu);
  state_.blobs[ref.sha256()] = bytes;
  return ref;
}

void FakeServer::Enqueue(const esb::v1::Job& job) {
  absl::MutexLock lock(&state_.mu);
  state_.queue.push_back(job);
}

bool FakeServer::WaitFor(const std::function<bool()>& done,
                         absl::Duration timeout) {
  absl::MutexLock lock(&state_.mu);
  return state_.mu.AwaitWithTimeout(absl::Condition(&done), timeout);
}

}  // namespace esb::worker::testing
