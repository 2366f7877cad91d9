#include "fpga_agent/agent_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/env/digest.h"
#include "fpga_agent/inference_service.h"
#include "fpga_agent/names.h"

namespace esb::agent {
namespace {

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string{status.message()});
}

// A streamed file: the first message's header, then the bytes.
struct Upload {
  std::string name;
  std::string sha256;
  int64_t size = 0;
  std::string bytes;
  bool header_only = false;  // One message with a name and nothing else.
};

// Reads a LoadBitstream or DeployModel stream (same field names) and
// checks its byte count and digest. `what` names the file in messages.
template <typename Request>
absl::StatusOr<Upload> ReadUpload(grpc::ServerContext* context,
                                  grpc::ServerReader<Request>* reader,
                                  int64_t max_bytes, absl::string_view what) {
  Request message;
  if (!reader->Read(&message)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the ", what, " stream sent no message"));
  }
  Upload upload;
  upload.name = message.name();
  upload.sha256 = message.sha256();
  upload.size = message.size();
  if (upload.size > max_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, " of ", upload.size, " bytes is over the limit of ",
                     max_bytes, " bytes"));
  }
  bool more = false;
  do {
    if (more &&
        ((!message.name().empty() && message.name() != upload.name) ||
         (!message.sha256().empty() && message.sha256() != upload.sha256))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "a ", what, " stream names one file; a later message names '",
          message.name(), "' ", message.sha256()));
    }
    if (static_cast<int64_t>(upload.bytes.size() + message.data().size()) >
        std::max(upload.size, int64_t{0})) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the ", what, " stream sent more than the declared size of ",
          upload.size, " bytes"));
    }
    upload.bytes.append(message.data());
    more = true;
  } while (reader->Read(&message));
  if (context->IsCancelled()) {
    return absl::CancelledError(
        absl::StrCat("the ", what, " upload was cancelled after ",
                     upload.bytes.size(), " bytes; nothing kept"));
  }
  upload.header_only =
      upload.sha256.empty() && upload.size == 0 && upload.bytes.empty();
  return upload;
}

// The header and bytes of an upload that must carry a file.
absl::Status CheckUpload(const Upload& upload, int64_t max_bytes,
                         absl::string_view what) {
  if (!IsSha256Hex(upload.sha256)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the first ", what,
                     " message must carry sha256 (64 "
                     "lowercase hex characters); got '",
                     upload.sha256, "'"));
  }
  if (upload.size <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the first ", what, " message must carry the size (bytes > 0)"));
  }
  if (upload.size > max_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, " of ", upload.size, " bytes is over the limit of ",
                     max_bytes, " bytes"));
  }
  if (static_cast<int64_t>(upload.bytes.size()) != upload.size) {
    return absl::InvalidArgumentError(
        absl::StrCat("the ", what, " stream ended after ", upload.bytes.size(),
                     " of its declared ", upload.size, " bytes"));
  }
  const std::string digest = Sha256Hex(upload.bytes);
  if (digest != upload.sha256) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sha256 mismatch: declared ", upload.sha256, ", received ", digest));
  }
  return absl::OkStatus();
}

void FillVersion(const StoredVersion& v, esb::v1::ModelVersionInfo* out) {
  out->set_name(v.name);
  out->set_version(v.version);
  out->set_sha256(v.sha256);
  out->set_size(v.size);
  out->set_description(v.description);
  out->set_serving(v.serving);
  out->set_max_batch(v.max_batch);
}

}  // namespace

std::string PowerSource(const BoardState& state) {
  if (state.power.empty()) return "none";
  return state.power_measured ? "measured" : "model";
}

absl::Status AgentServiceImpl::CheckAdmin(
    const grpc::ServerContext& context) const {
  if (options_.admin_token.empty()) return absl::OkStatus();
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return absl::UnauthenticatedError(
        "this esb-agent needs its admin token: send the metadata "
        "'authorization: Bearer <token>'");
  }
  const std::string expected = absl::StrCat("Bearer ", options_.admin_token);
  const absl::string_view got(it->second.data(), it->second.size());
  // Constant time in the token's length: no early exit on a mismatch.
  unsigned char diff = got.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    diff |=
        static_cast<unsigned char>(expected[i] ^ (i < got.size() ? got[i] : 0));
  }
  if (diff != 0) {
    return absl::UnauthenticatedError(
        absl::StartsWith(got, "Bearer ")
            ? "the admin token does not match"
            : "the authorization metadata must be 'Bearer <token>'");
  }
  return absl::OkStatus();
}

grpc::Status AgentServiceImpl::LoadBitstream(
    grpc::ServerContext* context,
    grpc::ServerReader<esb::v1::LoadBitstreamRequest>* reader,
    esb::v1::LoadBitstreamResponse* response) {
  if (absl::Status s = CheckAdmin(*context); !s.ok()) return ToGrpc(s);
  absl::StatusOr<Upload> upload =
      ReadUpload(context, reader, options_.max_bitstream_bytes, "bitstream");
  if (!upload.ok()) return ToGrpc(upload.status());
  if (absl::Status s = ValidateName(upload->name, "bitstream name"); !s.ok()) {
    return ToGrpc(s);
  }
  if (!upload->header_only) {
    if (absl::Status s =
            CheckUpload(*upload, options_.max_bitstream_bytes, "bitstream");
        !s.ok()) {
      return ToGrpc(s);
    }
    if (options_.bitstream_dir.empty()) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "esb-agent runs without --bitstream-dir; it cannot "
                          "store a bitstream");
    }
    if (absl::Status s = env_->CreateDirs(options_.bitstream_dir); !s.ok()) {
      return ToGrpc(s);
    }
    if (absl::Status s = WriteFileAtomically(
            env_, absl::StrCat(options_.bitstream_dir, "/", upload->name),
            upload->bytes);
        !s.ok()) {
      return ToGrpc(s);
    }
    response->set_stored(true);
  }
  const absl::Time start = absl::Now();
  absl::Status loaded = backend_->LoadBitstream(upload->name);
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (metrics_ != nullptr) metrics_->BitstreamLoad(loaded.ok(), seconds);
  if (!loaded.ok()) return ToGrpc(loaded);
  const BoardState state = backend_->Status();
  response->set_name(upload->name);
  response->set_state(state.bitstream_state);
  response->set_accelerator(state.accelerator);
  response->set_load_seconds(seconds);
  return grpc::Status::OK;
}

grpc::Status AgentServiceImpl::DeployModel(
    grpc::ServerContext* context,
    grpc::ServerReader<esb::v1::DeployModelRequest>* reader,
    esb::v1::DeployModelResponse* response) {
  if (absl::Status s = CheckAdmin(*context); !s.ok()) return ToGrpc(s);
  absl::StatusOr<Upload> upload =
      ReadUpload(context, reader, options_.max_model_bytes, "model");
  if (!upload.ok()) return ToGrpc(upload.status());
  if (absl::Status s = ValidateName(upload->name); !s.ok()) return ToGrpc(s);
  if (absl::Status s = CheckUpload(*upload, options_.max_model_bytes, "model");
      !s.ok()) {
    return ToGrpc(s);
  }
  absl::StatusOr<std::shared_ptr<const ServedModel>> served =
      repository_->Deploy(upload->name, upload->sha256, upload->bytes);
  if (!served.ok()) return ToGrpc(served.status());
  response->set_name((*served)->name);
  response->set_version((*served)->version);
  response->set_sha256((*served)->sha256);
  response->set_description((*served)->description);
  return grpc::Status::OK;
}

grpc::Status AgentServiceImpl::UnloadModel(
    grpc::ServerContext* context, const esb::v1::UnloadModelRequest* request,
    esb::v1::UnloadModelResponse* response) {
  if (absl::Status s = CheckAdmin(*context); !s.ok()) return ToGrpc(s);
  absl::StatusOr<UnloadResult> result =
      repository_->Unload(request->name(), request->version());
  if (!result.ok()) return ToGrpc(result.status());
  for (int64_t v : result->removed_versions) response->add_removed_versions(v);
  response->set_serving_version(result->serving_version);
  return grpc::Status::OK;
}

grpc::Status AgentServiceImpl::ListModels(
    grpc::ServerContext* context, const esb::v1::ListModelsRequest* request,
    esb::v1::ListModelsResponse* response) {
  if (absl::Status s = CheckAdmin(*context); !s.ok()) return ToGrpc(s);
  for (const StoredVersion& v : repository_->List()) {
    FillVersion(v, response->add_models());
  }
  return grpc::Status::OK;
}

grpc::Status AgentServiceImpl::BoardStatus(
    grpc::ServerContext* context, const esb::v1::BoardStatusRequest* request,
    esb::v1::BoardStatusResponse* response) {
  if (absl::Status s = CheckAdmin(*context); !s.ok()) return ToGrpc(s);
  const BoardState state = backend_->Status();
  if (metrics_ != nullptr) metrics_->Power(state);
  response->set_board(options_.board);
  response->set_backend(state.backend);
  response->set_bitstream(state.bitstream);
  response->set_bitstream_state(state.bitstream_state);
  response->set_accelerator(state.accelerator);
  if (state.temperature_c.has_value()) {
    response->set_temperature_c(*state.temperature_c);
  }
  for (const RailPower& rail : state.power) {
    auto* out = response->add_power();
    out->set_rail(rail.rail);
    out->set_watts(rail.watts);
  }
  response->set_power_source(PowerSource(state));
  for (const StoredVersion& v : repository_->List()) {
    FillVersion(v, response->add_models());
  }
  response->set_healthy(state.healthy);
  response->set_health_detail(state.health_detail);
  response->set_agent_version(AgentVersion());
  response->set_cpu(options_.cpu);
  return grpc::Status::OK;
}

}  // namespace esb::agent
