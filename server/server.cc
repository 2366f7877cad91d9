#include "server/server.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "prometheus/exposer.h"
#include "rpc/serve.h"
#include "server/grpc_services.h"
#include "server/sqlite_job_store.h"

namespace esb::server {
namespace {

constexpr int kMaxMessageBytes = 8 << 20;

// One line on stderr, stamped: what an operator's log collector reads.
void LogLine(absl::string_view message) {
  std::cerr << absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ ", absl::Now(),
                                absl::UTCTimeZone())
            << "esb-server: " << message << std::endl;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(
    const ServerOptions& options) {
  if (options.data_dir.empty()) {
    return absl::InvalidArgumentError("--data-dir is required");
  }
  absl::StatusOr<rpc::HostPort> listen =
      rpc::ParseHostPort(options.listen, "--listen");
  if (!listen.ok()) return listen.status();
  auto server = absl::WrapUnique(new Server());
  server->options_ = options;
  Env* env = Env::Default();
  if (absl::Status s = env->CreateDirs(options.data_dir); !s.ok()) return s;

  const std::string lock_path = options.data_dir + "/LOCK";
  server->lock_fd_ =
      open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (server->lock_fd_ < 0) {
    return absl::PermissionDeniedError(
        absl::StrFormat("cannot open %s: %s", lock_path, std::strerror(errno)));
  }
  if (flock(server->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "another esb-server is using the data dir %s", options.data_dir));
  }

  absl::StatusOr<std::unique_ptr<SqliteJobStore>> store =
      SqliteJobStore::Open(options.data_dir + "/jobs.db");
  if (!store.ok()) return store.status();
  server->store_ = *std::move(store);
  absl::StatusOr<std::unique_ptr<BlobStore>> blobs =
      BlobStore::Open(env, options.data_dir, options.max_upload_bytes);
  if (!blobs.ok()) return blobs.status();
  server->blobs_ = *std::move(blobs);
  server->metrics_ =
      std::make_unique<ServerMetrics>(3 * options.jobs.lease_ms + 30000);
  server->jobs_ =
      std::make_unique<JobService>(server->store_.get(), server->blobs_.get(),
                                   server->metrics_.get(), options.jobs);
  if (absl::Status s = server->jobs_->RenewRunningLeases(); !s.ok()) return s;
  server->quantization_ = std::make_unique<QuantizationServiceImpl>(
      server->jobs_.get(), server->blobs_.get(), server->metrics_.get());
  server->worker_ = std::make_unique<WorkerServiceImpl>(server->jobs_.get(),
                                                        server->blobs_.get());

  rpc::GrpcServerOptions grpc_options;
  grpc_options.listen = *listen;
  grpc_options.services = {server->quantization_.get(), server->worker_.get()};
  grpc_options.max_receive_message_bytes = kMaxMessageBytes;
  absl::StatusOr<rpc::GrpcServer> grpc = rpc::StartGrpcServer(grpc_options);
  if (!grpc.ok()) return grpc.status();
  server->grpc_ = std::move(grpc->server);
  server->address_ = std::move(grpc->address);

  if (options.metrics_port.has_value()) {
    absl::StatusOr<rpc::MetricsExposer> exposer = rpc::StartMetricsExposer(
        {listen->host, *options.metrics_port}, server->metrics_->registry());
    if (!exposer.ok()) {
      server->grpc_->Shutdown();
      return exposer.status();
    }
    server->exposer_ = std::move(exposer->exposer);
    server->metrics_address_ = std::move(exposer->address);
  }
  server->background_ = std::thread([s = server.get()] { s->Background(); });
  return server;
}

void Server::Background() {
  const absl::Duration tick = absl::Milliseconds(
      std::clamp<int64_t>(options_.jobs.lease_ms / 4, 50, 1000));
  absl::Time next_retention = absl::Now();
  const auto keep_ms = static_cast<int64_t>(options_.keep_days * 86400000.0);
  while (!stop_.WaitForNotificationWithTimeout(tick)) {
    absl::StatusOr<int> expired = jobs_->ExpireLeases();
    if (!expired.ok()) {
      LogLine(absl::StrCat("lease expiry: ", expired.status().ToString()));
    }
    if (absl::Status s = jobs_->RefreshMetrics(); !s.ok()) {
      LogLine(absl::StrCat("metrics: ", s.ToString()));
    }
    if (absl::Now() >= next_retention) {
      next_retention = absl::Now() + absl::Hours(1);
      absl::StatusOr<int> deleted = jobs_->Retain(keep_ms);
      if (!deleted.ok()) {
        LogLine(absl::StrCat("retention: ", deleted.status().ToString()));
      } else if (*deleted > 0) {
        LogLine(absl::StrCat("retention removed ", *deleted, " blobs"));
      }
    }
  }
}

void Server::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  jobs_->Shutdown();
  grpc_->Shutdown(std::chrono::system_clock::now() +
                  absl::ToChronoMilliseconds(grace));
  stop_.Notify();
  if (background_.joinable()) background_.join();
  exposer_.reset();
}

Server::~Server() {
  if (grpc_ != nullptr) Shutdown();
  if (lock_fd_ >= 0) close(lock_fd_);
}

}  // namespace esb::server
