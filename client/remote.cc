#include "client/remote.h"

#include <chrono>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/env/digest.h"
#include "core/env/env.h"
#include "core/pipeline/artifacts.h"
#include "core/pipeline/config.h"

namespace esb::client {
namespace {

constexpr size_t kChunkBytes = size_t{1} << 20;
constexpr int kMaxMessageBytes = 8 << 20;

std::chrono::system_clock::time_point DeadlineIn(absl::Duration d) {
  return std::chrono::system_clock::now() + absl::ToChronoMilliseconds(d);
}

// The digest and size of a file, read in chunks.
absl::Status DigestFile(Env* env, const std::string& path, std::string* sha,
                        int64_t* size) {
  absl::StatusOr<std::unique_ptr<SequentialFile>> file =
      env->NewSequentialFile(path);
  if (!file.ok()) return file.status();
  Sha256Stream hash;
  std::string scratch;
  *size = 0;
  while (true) {
    absl::string_view piece;
    if (absl::Status s = (*file)->Read(kChunkBytes, &scratch, &piece);
        !s.ok()) {
      return s;
    }
    if (piece.empty()) break;
    hash.Update(piece);
    *size += static_cast<int64_t>(piece.size());
  }
  *sha = hash.HexDigest();
  return absl::OkStatus();
}

}  // namespace

std::string JobOutcome(const esb::v1::Job& job) {
  if (job.state() == esb::v1::JOB_STATE_SUCCEEDED) return "succeeded";
  std::string where;
  if (job.error().stage() != esb::v1::STAGE_UNSPECIFIED) {
    where =
        absl::StrCat(" in stage ", pipeline::StageName(job.error().stage()));
  }
  return absl::StrFormat(
      "job %s %s%s: %s (%s)", job.id(), pipeline::JobStateName(job.state()),
      where, job.error().message(),
      absl::StatusCodeToString(
          static_cast<absl::StatusCode>(job.error().code())));
}

Remote::Remote(std::string address, std::shared_ptr<grpc::Channel> channel)
    : address_(std::move(address)),
      channel_(std::move(channel)),
      stub_(esb::v1::QuantizationService::NewStub(channel_)),
      health_(grpc::health::v1::Health::NewStub(channel_)) {}

absl::StatusOr<std::unique_ptr<Remote>> Remote::Connect(
    const std::string& address, absl::Duration timeout) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  auto channel = grpc::CreateCustomChannel(
      address, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(DeadlineIn(timeout))) {
    return absl::UnavailableError(absl::StrFormat(
        "no esb-server answers at %s; start one with `esb-server --listen %s "
        "--data-dir DIR`, or name another with --server HOST:PORT",
        address, address));
  }
  return absl::WrapUnique(new Remote(address, std::move(channel)));
}

absl::Status Remote::FromGrpc(const grpc::Status& status) const {
  if (status.ok()) return absl::OkStatus();
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    return absl::UnavailableError(absl::StrCat(
        "esb-server at ", address_, " went away: ", status.error_message()));
  }
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

template <typename Response, typename Invoke>
absl::StatusOr<Response> Remote::Unary(const Invoke& invoke,
                                       absl::Duration timeout) const {
  grpc::ClientContext context;
  context.set_deadline(DeadlineIn(timeout));
  Response response;
  if (absl::Status s = FromGrpc(invoke(&context, &response)); !s.ok()) {
    return s;
  }
  return response;
}

absl::StatusOr<esb::v1::BlobRef> Remote::UploadFile(
    const std::string& path,
    const std::function<void(int64_t, int64_t)>& progress) {
  Env* env = Env::Default();
  std::string sha;
  int64_t size = 0;
  if (absl::Status s = DigestFile(env, path, &sha, &size); !s.ok()) return s;
  esb::v1::StatBlobRequest stat;
  stat.set_sha256(sha);
  absl::StatusOr<esb::v1::StatBlobResponse> held =
      Unary<esb::v1::StatBlobResponse>([&](auto* context, auto* response) {
        return stub_->StatBlob(context, stat, response);
      });
  if (!held.ok()) return held.status();
  if (held->present() && held->blob().size() == size) {
    if (progress) progress(size, size);
    return held->blob();
  }
  absl::StatusOr<std::unique_ptr<SequentialFile>> file =
      env->NewSequentialFile(path);
  if (!file.ok()) return file.status();
  grpc::ClientContext context;
  esb::v1::UploadBlobResponse response;
  auto writer = stub_->UploadBlob(&context, &response);
  esb::v1::UploadBlobRequest message;
  message.set_sha256(sha);
  message.set_size(size);
  std::string scratch;
  int64_t sent = 0;
  absl::Status read_status;
  while (true) {
    absl::string_view piece;
    read_status = (*file)->Read(kChunkBytes, &scratch, &piece);
    if (!read_status.ok()) {
      context.TryCancel();
      break;
    }
    if (piece.empty() && sent > 0) break;
    message.set_data(std::string{piece});
    if (!writer->Write(message)) break;  // Finish says why.
    message.clear_sha256();
    message.clear_size();
    sent += static_cast<int64_t>(piece.size());
    if (progress) progress(sent, size);
    if (piece.empty()) break;
  }
  writer->WritesDone();
  const grpc::Status finished = writer->Finish();
  if (!read_status.ok()) return read_status;
  if (absl::Status s = FromGrpc(finished); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
  }
  return response.blob();
}

absl::StatusOr<esb::v1::BlobRef> Remote::UploadBytes(const std::string& bytes) {
  grpc::ClientContext context;
  esb::v1::UploadBlobResponse response;
  auto writer = stub_->UploadBlob(&context, &response);
  esb::v1::UploadBlobRequest message;
  message.set_sha256(Sha256Hex(bytes));
  message.set_size(static_cast<int64_t>(bytes.size()));
  for (size_t at = 0; at == 0 || at < bytes.size(); at += kChunkBytes) {
    message.set_data(bytes.substr(at, kChunkBytes));
    if (!writer->Write(message)) break;
    message.clear_sha256();
    message.clear_size();
  }
  writer->WritesDone();
  if (absl::Status s = FromGrpc(writer->Finish()); !s.ok()) return s;
  return response.blob();
}

absl::StatusOr<esb::v1::SubmitJobResponse> Remote::Submit(
    const esb::v1::SubmitJobRequest& request) {
  return Unary<esb::v1::SubmitJobResponse>([&](auto* context, auto* response) {
    return stub_->SubmitJob(context, request, response);
  });
}

absl::StatusOr<esb::v1::Job> Remote::Get(const std::string& id) {
  esb::v1::GetJobRequest request;
  request.set_id(id);
  return Unary<esb::v1::Job>([&](auto* context, auto* response) {
    return stub_->GetJob(context, request, response);
  });
}

absl::StatusOr<esb::v1::ListJobsResponse> Remote::List(
    const esb::v1::ListJobsRequest& request) {
  return Unary<esb::v1::ListJobsResponse>([&](auto* context, auto* response) {
    return stub_->ListJobs(context, request, response);
  });
}

absl::StatusOr<esb::v1::Job> Remote::Cancel(const std::string& id) {
  esb::v1::CancelJobRequest request;
  request.set_id(id);
  return Unary<esb::v1::Job>([&](auto* context, auto* response) {
    return stub_->CancelJob(context, request, response);
  });
}

absl::StatusOr<esb::v1::Job> Remote::Watch(
    const std::string& id,
    const std::function<void(const esb::v1::Job&)>& on_event) {
  // A server restart ends the stream with UNAVAILABLE; the watch goes on
  // against the restarted server for up to this many reconnections.
  constexpr int kMaxResumes = 30;
  for (int resumes = 0;; ++resumes) {
    grpc::ClientContext context;
    esb::v1::WatchJobRequest request;
    request.set_id(id);
    auto reader = stub_->WatchJob(&context, request);
    esb::v1::JobEvent event;
    std::optional<esb::v1::Job> last;
    while (reader->Read(&event)) {
      on_event(event.job());
      last = event.job();
    }
    const grpc::Status status = reader->Finish();
    if (status.ok() && last.has_value()) return *last;
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE ||
        resumes == kMaxResumes) {
      return FromGrpc(status.ok() ? grpc::Status(grpc::StatusCode::INTERNAL,
                                                 "watch ended without a job")
                                  : status);
    }
    channel_->WaitForConnected(DeadlineIn(absl::Seconds(2)));
  }
}

absl::StatusOr<std::string> Remote::Download(const std::string& id,
                                             const std::string& name) {
  grpc::ClientContext context;
  esb::v1::DownloadArtifactRequest request;
  request.set_job_id(id);
  request.set_name(name);
  auto reader = stub_->DownloadArtifact(&context, request);
  esb::v1::BlobChunk chunk;
  std::string bytes;
  std::string expected_sha;
  while (reader->Read(&chunk)) {
    if (chunk.has_blob()) expected_sha = chunk.blob().sha256();
    bytes += chunk.data();
  }
  if (absl::Status s = FromGrpc(reader->Finish()); !s.ok()) return s;
  if (Sha256Hex(bytes) != expected_sha) {
    return absl::DataLossError(
        absl::StrFormat("%s of job %s arrived with sha256 %s, not %s", name, id,
                        Sha256Hex(bytes), expected_sha));
  }
  return bytes;
}

absl::StatusOr<std::vector<std::string>> Remote::Fetch(const std::string& id,
                                                       const std::string& dir) {
  Env* env = Env::Default();
  if (absl::Status s = env->CreateDirs(dir); !s.ok()) return s;
  std::vector<std::string> written;
  for (const char* name : pipeline::kArtifactNames) {
    absl::StatusOr<std::string> bytes = Download(id, name);
    if (!bytes.ok()) return bytes.status();
    const std::string path = absl::StrCat(dir, "/", name);
    if (absl::Status s = WriteFileAtomically(env, path, *bytes); !s.ok()) {
      return s;
    }
    written.push_back(path);
  }
  return written;
}

absl::StatusOr<bool> Remote::Healthy() {
  grpc::health::v1::HealthCheckRequest request;
  absl::StatusOr<grpc::health::v1::HealthCheckResponse> health =
      Unary<grpc::health::v1::HealthCheckResponse>(
          [&](auto* context, auto* response) {
            return health_->Check(context, request, response);
          },
          absl::Seconds(5));
  if (!health.ok()) return health.status();
  return health->status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

}  // namespace esb::client
