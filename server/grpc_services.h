// esb.v1.QuantizationService and esb.v1.WorkerService over a JobService
// and a BlobStore (gRPC's synchronous API: each call holds one of the
// server's threads, which long polls and watches do for their length).
#ifndef ESB_SERVER_GRPC_SERVICES_H_
#define ESB_SERVER_GRPC_SERVICES_H_

#include "esb/v1/service.grpc.pb.h"
#include "server/blob_store.h"
#include "server/job_service.h"
#include "server/metrics.h"

namespace esb::server {

class QuantizationServiceImpl final
    : public esb::v1::QuantizationService::Service {
 public:
  // None owned; `metrics` may be null.
  QuantizationServiceImpl(JobService* jobs, BlobStore* blobs,
                          ServerMetrics* metrics)
      : jobs_(jobs), blobs_(blobs), metrics_(metrics) {}

  grpc::Status UploadBlob(
      grpc::ServerContext* context,
      grpc::ServerReader<esb::v1::UploadBlobRequest>* reader,
      esb::v1::UploadBlobResponse* response) override;
  grpc::Status StatBlob(grpc::ServerContext* context,
                        const esb::v1::StatBlobRequest* request,
                        esb::v1::StatBlobResponse* response) override;
  grpc::Status SubmitJob(grpc::ServerContext* context,
                         const esb::v1::SubmitJobRequest* request,
                         esb::v1::SubmitJobResponse* response) override;
  grpc::Status GetJob(grpc::ServerContext* context,
                      const esb::v1::GetJobRequest* request,
                      esb::v1::Job* response) override;
  grpc::Status ListJobs(grpc::ServerContext* context,
                        const esb::v1::ListJobsRequest* request,
                        esb::v1::ListJobsResponse* response) override;
  grpc::Status WatchJob(grpc::ServerContext* context,
                        const esb::v1::WatchJobRequest* request,
                        grpc::ServerWriter<esb::v1::JobEvent>* writer) override;
  grpc::Status CancelJob(grpc::ServerContext* context,
                         const esb::v1::CancelJobRequest* request,
                         esb::v1::Job* response) override;
  grpc::Status DownloadArtifact(
      grpc::ServerContext* context,
      const esb::v1::DownloadArtifactRequest* request,
      grpc::ServerWriter<esb::v1::BlobChunk>* writer) override;

 private:
  JobService* jobs_;
  BlobStore* blobs_;
  ServerMetrics* metrics_;
};

class WorkerServiceImpl final : public esb::v1::WorkerService::Service {
 public:
  WorkerServiceImpl(JobService* jobs, BlobStore* blobs)
      : jobs_(jobs), blobs_(blobs) {}

  grpc::Status LeaseJob(grpc::ServerContext* context,
                        const esb::v1::LeaseJobRequest* request,
                        esb::v1::LeaseJobResponse* response) override;
  grpc::Status Heartbeat(grpc::ServerContext* context,
                         const esb::v1::HeartbeatRequest* request,
                         esb::v1::HeartbeatResponse* response) override;
  grpc::Status CompleteJob(grpc::ServerContext* context,
                           const esb::v1::CompleteJobRequest* request,
                           esb::v1::CompleteJobResponse* response) override;
  grpc::Status FailJob(grpc::ServerContext* context,
                       const esb::v1::FailJobRequest* request,
                       esb::v1::FailJobResponse* response) override;
  grpc::Status ReadBlob(
      grpc::ServerContext* context, const esb::v1::ReadBlobRequest* request,
      grpc::ServerWriter<esb::v1::BlobChunk>* writer) override;

 private:
  JobService* jobs_;
  BlobStore* blobs_;
};

// The gRPC status of an absl one (the codes are the same numbers).
grpc::Status ToGrpc(const absl::Status& status);

}  // namespace esb::server

#endif  // ESB_SERVER_GRPC_SERVICES_H_
