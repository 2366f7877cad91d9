#include "server/grpc_services.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/pipeline/config.h"

namespace esb::server {
namespace {

// A unary reply: the result into `*response`, or its status.
template <typename T>
grpc::Status Respond(absl::StatusOr<T> result, T* response) {
  if (!result.ok()) return ToGrpc(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

constexpr size_t kChunkBytes = size_t{1} << 20;

// Streams a stored blob: the first message names it, the rest carry bytes.
grpc::Status StreamBlob(BlobStore* blobs, const std::string& sha256,
                        grpc::ServerContext* context,
                        grpc::ServerWriter<esb::v1::BlobChunk>* writer) {
  absl::StatusOr<int64_t> size = blobs->Size(sha256);
  if (!size.ok()) return ToGrpc(size.status());
  absl::StatusOr<std::unique_ptr<SequentialFile>> file = blobs->Read(sha256);
  if (!file.ok()) return ToGrpc(file.status());
  esb::v1::BlobChunk chunk;
  chunk.mutable_blob()->set_sha256(sha256);
  chunk.mutable_blob()->set_size(*size);
  std::string scratch;
  int64_t sent = 0;
  while (true) {
    absl::string_view piece;
    if (absl::Status s = (*file)->Read(kChunkBytes, &scratch, &piece);
        !s.ok()) {
      return ToGrpc(s);
    }
    if (piece.empty() && sent > 0) break;
    chunk.set_data(std::string{piece});
    if (context->IsCancelled() || !writer->Write(chunk)) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
    }
    chunk.clear_blob();
    sent += static_cast<int64_t>(piece.size());
    if (piece.empty()) break;
  }
  if (sent != *size) {
    return grpc::Status(grpc::StatusCode::DATA_LOSS,
                        absl::StrCat("blob ", sha256, " changed while read"));
  }
  return grpc::Status::OK;
}

}  // namespace

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string{status.message()});
}

grpc::Status QuantizationServiceImpl::UploadBlob(
    grpc::ServerContext* context,
    grpc::ServerReader<esb::v1::UploadBlobRequest>* reader,
    esb::v1::UploadBlobResponse* response) {
  esb::v1::UploadBlobRequest message;
  if (!reader->Read(&message)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "upload sent no message");
  }
  const std::string sha256 = message.sha256();
  if (sha256.empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "the first upload message must carry sha256 and "
                        "size");
  }
  response->mutable_blob()->set_sha256(sha256);
  response->mutable_blob()->set_size(message.size());
  absl::StatusOr<int64_t> held = blobs_->Size(sha256);
  if (held.ok() && *held == message.size()) {
    response->set_already_present(true);
    return grpc::Status::OK;
  }
  absl::StatusOr<std::unique_ptr<BlobUpload>> upload =
      blobs_->Start(sha256, message.size());
  if (!upload.ok()) return ToGrpc(upload.status());
  do {
    if (!message.sha256().empty() && message.sha256() != sha256) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "an upload names one blob in all its messages");
    }
    if (absl::Status s = (*upload)->Append(message.data()); !s.ok()) {
      return ToGrpc(s);
    }
    if (metrics_ != nullptr) {
      metrics_->UploadBytes(static_cast<int64_t>(message.data().size()));
    }
  } while (reader->Read(&message));
  if (context->IsCancelled()) {
    return grpc::Status(
        grpc::StatusCode::CANCELLED,
        absl::StrCat("upload of ", sha256, " cancelled after ",
                     (*upload)->bytes(), " bytes; nothing kept"));
  }
  return ToGrpc((*upload)->Commit());
}

grpc::Status QuantizationServiceImpl::StatBlob(
    grpc::ServerContext* context, const esb::v1::StatBlobRequest* request,
    esb::v1::StatBlobResponse* response) {
  absl::StatusOr<int64_t> size = blobs_->Size(request->sha256());
  if (absl::IsNotFound(size.status())) return grpc::Status::OK;
  if (!size.ok()) return ToGrpc(size.status());
  response->set_present(true);
  response->mutable_blob()->set_sha256(request->sha256());
  response->mutable_blob()->set_size(*size);
  return grpc::Status::OK;
}

grpc::Status QuantizationServiceImpl::SubmitJob(
    grpc::ServerContext* context, const esb::v1::SubmitJobRequest* request,
    esb::v1::SubmitJobResponse* response) {
  return Respond(jobs_->Submit(*request), response);
}

grpc::Status QuantizationServiceImpl::GetJob(
    grpc::ServerContext* context, const esb::v1::GetJobRequest* request,
    esb::v1::Job* response) {
  return Respond(jobs_->Get(request->id()), response);
}

grpc::Status QuantizationServiceImpl::ListJobs(
    grpc::ServerContext* context, const esb::v1::ListJobsRequest* request,
    esb::v1::ListJobsResponse* response) {
  return Respond(jobs_->List(*request), response);
}

grpc::Status QuantizationServiceImpl::WatchJob(
    grpc::ServerContext* context, const esb::v1::WatchJobRequest* request,
    grpc::ServerWriter<esb::v1::JobEvent>* writer) {
  absl::StatusOr<esb::v1::Job> job =
      jobs_->WaitForChange(request->id(), nullptr, absl::ZeroDuration());
  if (!job.ok()) return ToGrpc(job.status());
  esb::v1::JobEvent event;
  while (true) {
    *event.mutable_job() = *job;
    if (!writer->Write(event)) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
    }
    if (IsFinal(job->state())) return grpc::Status::OK;
    const esb::v1::Job seen = *std::move(job);
    const std::string seen_bytes = seen.SerializeAsString();
    do {
      if (context->IsCancelled()) {
        return grpc::Status(grpc::StatusCode::CANCELLED,
                            "the client went away");
      }
      if (jobs_->shutting_down()) {
        return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                            "esb-server is shutting down; watch again");
      }
      job = jobs_->WaitForChange(request->id(), &seen, absl::Seconds(1));
      if (!job.ok()) return ToGrpc(job.status());
      // WaitForChange returns the job unchanged when its second passes.
    } while (job->SerializeAsString() == seen_bytes);
  }
}

grpc::Status QuantizationServiceImpl::CancelJob(
    grpc::ServerContext* context, const esb::v1::CancelJobRequest* request,
    esb::v1::Job* response) {
  return Respond(jobs_->Cancel(request->id()), response);
}

grpc::Status QuantizationServiceImpl::DownloadArtifact(
    grpc::ServerContext* context,
    const esb::v1::DownloadArtifactRequest* request,
    grpc::ServerWriter<esb::v1::BlobChunk>* writer) {
  absl::StatusOr<esb::v1::Job> job = jobs_->Get(request->job_id());
  if (!job.ok()) return ToGrpc(job.status());
  if (job->state() != esb::v1::JOB_STATE_SUCCEEDED) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("job ", job->id(), " is ",
                                     pipeline::JobStateName(job->state()),
                                     "; only a succeeded job has artifacts"));
  }
  if (job->artifacts_expired()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("the artifacts of job ", job->id(),
                                     " were removed by retention "
                                     "(esb-server --keep-days)"));
  }
  std::vector<std::string> names;
  for (const esb::v1::Artifact& a : job->artifacts()) {
    if (a.name() == request->name()) {
      return StreamBlob(blobs_, a.blob().sha256(), context, writer);
    }
    names.push_back(a.name());
  }
  return grpc::Status(
      grpc::StatusCode::NOT_FOUND,
      absl::StrCat("job ", job->id(), " has no artifact '", request->name(),
                   "'; it has ", absl::StrJoin(names, ", ")));
}

grpc::Status WorkerServiceImpl::LeaseJob(
    grpc::ServerContext* context, const esb::v1::LeaseJobRequest* request,
    esb::v1::LeaseJobResponse* response) {
  return Respond(
      jobs_->Lease(*request, [context] { return context->IsCancelled(); }),
      response);
}

grpc::Status WorkerServiceImpl::Heartbeat(
    grpc::ServerContext* context, const esb::v1::HeartbeatRequest* request,
    esb::v1::HeartbeatResponse* response) {
  return Respond(jobs_->Heartbeat(*request), response);
}

grpc::Status WorkerServiceImpl::CompleteJob(
    grpc::ServerContext* context, const esb::v1::CompleteJobRequest* request,
    esb::v1::CompleteJobResponse* response) {
  return Respond(jobs_->Complete(*request), response->mutable_job());
}

grpc::Status WorkerServiceImpl::FailJob(grpc::ServerContext* context,
                                        const esb::v1::FailJobRequest* request,
                                        esb::v1::FailJobResponse* response) {
  return Respond(jobs_->Fail(*request), response->mutable_job());
}

grpc::Status WorkerServiceImpl::ReadBlob(
    grpc::ServerContext* context, const esb::v1::ReadBlobRequest* request,
    grpc::ServerWriter<esb::v1::BlobChunk>* writer) {
  return StreamBlob(blobs_, request->sha256(), context, writer);
}

}  // namespace esb::server
