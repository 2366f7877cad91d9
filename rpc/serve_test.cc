// The daemons' serving plumbing on loopback: HOST:PORT parsing, a gRPC
// server on a free port that answers health checks and its services, a
// taken port refused, and /metrics served over plain HTTP.
#include "rpc/serve.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "gtest/gtest.h"
#include "inference/grpc_service.grpc.pb.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"

namespace esb::rpc {
namespace {

using ::grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;
using ::testing::SizeIs;

// A service to register: live, and ModelMetadata echoes the name asked for
// (a reply as large as the request).
class EchoService final : public inference::GRPCInferenceService::Service {
 public:
  grpc::Status ServerLive(grpc::ServerContext*,
                          const inference::ServerLiveRequest*,
                          inference::ServerLiveResponse* response) override {
    response->set_live(true);
    return grpc::Status::OK;
  }
  grpc::Status ModelMetadata(
      grpc::ServerContext*, const inference::ModelMetadataRequest* request,
      inference::ModelMetadataResponse* response) override {
    response->set_name(request->name());
    return grpc::Status::OK;
  }
};

HostPort Loopback(int port) { return {"127.0.0.1", port}; }

int PortOf(const std::string& address) {
  absl::StatusOr<HostPort> parsed = ParseHostPort(address, "address");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? parsed->port : -1;
}

void SetDeadline(grpc::ClientContext* context) {
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(10));
}

// The overall status ("" service) the server's health service reports.
HealthCheckResponse::ServingStatus Health(const std::string& address) {
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  SetDeadline(&context);
  grpc::health::v1::HealthCheckRequest request;
  HealthCheckResponse response;
  const grpc::Status status = stub->Check(&context, request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response.status();
}

// ModelMetadata for a name of `bytes` bytes: its status and echoed name.
grpc::Status Echo(const std::string& address, int bytes, std::string* name) {
  auto stub = inference::GRPCInferenceService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  SetDeadline(&context);
  inference::ModelMetadataRequest request;
  request.set_name(std::string(bytes, 'n'));
  inference::ModelMetadataResponse response;
  grpc::Status status = stub->ModelMetadata(&context, request, &response);
  *name = response.name();
  return status;
}

// The whole HTTP/1.0 response to GET `path` from 127.0.0.1:`port`, read to
// the server's close; "" when the connection fails. At most 10 s.
std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  timeval timeout{};
  timeout.tv_sec = 10;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) ==
      0) {
    const std::string request =
        absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buffer[4096];
      ssize_t n = 0;
      while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) {
        response.append(buffer, static_cast<size_t>(n));
      }
    }
  }
  close(fd);
  return response;
}

TEST(ParseHostPortTest, SplitsAtTheLastColon) {
  absl::StatusOr<HostPort> v4 = ParseHostPort("127.0.0.1:8001", "--listen");
  ASSERT_TRUE(v4.ok()) << v4.status();
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 8001);
  absl::StatusOr<HostPort> v6 = ParseHostPort("[::1]:0", "--listen");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->host, "[::1]");
  EXPECT_EQ(v6->port, 0);
  EXPECT_EQ(v6->ToString(), "[::1]:0");
}

TEST(ParseHostPortTest, WhatIsNotHostPortIsInvalidNamingTheFlag) {
  for (const char* bad :
       {"no-port", "", "host:", "host:http", "host:-1", "host:65536"}) {
    absl::StatusOr<HostPort> parsed = ParseHostPort(bad, "--listen");
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
    EXPECT_EQ(parsed.status().message(),
              absl::StrCat("--listen '", bad, "' is not HOST:PORT"));
  }
}

TEST(StartGrpcServerTest, PortZeroBindsAPortThatServesHealthAndServices) {
  EchoService echo;
  GrpcServerOptions options;
  options.listen = Loopback(0);
  options.services = {&echo};
  absl::StatusOr<GrpcServer> server = StartGrpcServer(options);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_NE(server->server, nullptr);
  EXPECT_THAT(server->address, ::testing::StartsWith("127.0.0.1:"));
  EXPECT_GT(PortOf(server->address), 0);

  EXPECT_EQ(Health(server->address), HealthCheckResponse::SERVING);
  auto stub = inference::GRPCInferenceService::NewStub(
      grpc::CreateChannel(server->address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  SetDeadline(&context);
  inference::ServerLiveResponse live;
  ASSERT_TRUE(stub->ServerLive(&context, {}, &live).ok());
  EXPECT_TRUE(live.live());

  // The health service is the caller's to set.
  server->server->GetHealthCheckService()->SetServingStatus(false);
  EXPECT_EQ(Health(server->address), HealthCheckResponse::NOT_SERVING);
  server->server->GetHealthCheckService()->SetServingStatus(true);
  EXPECT_EQ(Health(server->address), HealthCheckResponse::SERVING);
  server->server->Shutdown();
}

TEST(StartGrpcServerTest, MessageLimitsAreTheCallers) {
  EchoService echo;
  GrpcServerOptions options;
  options.listen = Loopback(0);
  options.services = {&echo};
  options.max_receive_message_bytes = 1024;
  absl::StatusOr<GrpcServer> small_in = StartGrpcServer(options);
  ASSERT_TRUE(small_in.ok()) << small_in.status();
  std::string name;
  grpc::Status status = Echo(small_in->address, 512, &name);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_THAT(name, SizeIs(512));
  status = Echo(small_in->address, 4096, &name);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << status.error_message();
  small_in->server->Shutdown();

  options.max_receive_message_bytes.reset();
  options.max_send_message_bytes = 1024;
  absl::StatusOr<GrpcServer> small_out = StartGrpcServer(options);
  ASSERT_TRUE(small_out.ok()) << small_out.status();
  status = Echo(small_out->address, 512, &name);
  ASSERT_TRUE(status.ok()) << status.error_message();
  status = Echo(small_out->address, 4096, &name);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << status.error_message();
  small_out->server->Shutdown();
}

TEST(StartGrpcServerTest, ATakenPortIsUnavailableAndNotShared) {
  GrpcServerOptions options;
  options.listen = Loopback(0);
  absl::StatusOr<GrpcServer> first = StartGrpcServer(options);
  ASSERT_TRUE(first.ok()) << first.status();
  options.listen.port = PortOf(first->address);
  absl::StatusOr<GrpcServer> second = StartGrpcServer(options);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(second.status().message(),
            absl::StrCat("cannot listen on ", first->address,
                         " (in use, or not an address of this host)"));
  if (second.ok()) second->server->Shutdown();
  EXPECT_EQ(Health(first->address), HealthCheckResponse::SERVING);
  first->server->Shutdown();
}

TEST(StartGrpcServerTest, AnAddressOfAnotherHostIsUnavailable) {
  GrpcServerOptions options;
  options.listen = {"192.0.2.1", 0};  // TEST-NET-1: never this host's.
  absl::StatusOr<GrpcServer> server = StartGrpcServer(options);
  EXPECT_EQ(server.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(server.status().message(),
              HasSubstr("cannot listen on 192.0.2.1:0"));
  if (server.ok()) server->server->Shutdown();
}

TEST(StartMetricsExposerTest, PortZeroServesTheRegistry) {
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildCounter()
      .Name("esb_rpc_test_calls_total")
      .Help("Calls the test made.")
      .Register(*registry)
      .Add({{"kind", "test"}})
      .Increment(3);
  absl::StatusOr<MetricsExposer> exposer =
      StartMetricsExposer(Loopback(0), registry);
  ASSERT_TRUE(exposer.ok()) << exposer.status();
  ASSERT_NE(exposer->exposer, nullptr);
  EXPECT_THAT(exposer->address, ::testing::StartsWith("127.0.0.1:"));
  const int port = PortOf(exposer->address);
  ASSERT_GT(port, 0);
  const std::string response = HttpGet(port, "/metrics");
  EXPECT_THAT(response, ::testing::StartsWith("HTTP/1.1 200 OK"));
  EXPECT_THAT(response, HasSubstr("esb_rpc_test_calls_total{kind=\"test\"} 3"));
}

TEST(StartMetricsExposerTest, ATakenPortIsUnavailable) {
  auto registry = std::make_shared<prometheus::Registry>();
  absl::StatusOr<MetricsExposer> first =
      StartMetricsExposer(Loopback(0), registry);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<MetricsExposer> second =
      StartMetricsExposer(Loopback(PortOf(first->address)), registry);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  const std::string prefix =
      absl::StrCat("cannot serve metrics on ", first->address, ": ");
  EXPECT_THAT(std::string{second.status().message()},
              ::testing::StartsWith(prefix));
  // The web server's reason follows.
  EXPECT_GT(second.status().message().size(), prefix.size());
}

}  // namespace
}  // namespace esb::rpc
