#include "client/agent_deploy.h"

#include <filesystem>
#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/remote.h"
#include "core/env/env.h"
#include "core/package/esbm.h"
#include "core/pipeline/artifacts.h"

namespace esb::client {

bool IsPackagePath(const std::string& arg) {
  if (absl::EndsWith(arg, ".esbm")) return true;
  std::error_code error;
  return std::filesystem::is_regular_file(arg, error);
}

absl::Status CheckModelName(const std::string& name) {
  if (name.empty() || name.size() > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("model name '", name, "' must have 1 to 64 characters"));
  }
  if (name == "." || name == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat("model name '", name, "' is not allowed"));
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' &&
        c != '_' && c != '.') {
      return absl::InvalidArgumentError(
          absl::StrCat("model name '", name,
                       "' may hold only letters, digits, '-', '_' and '.'"));
    }
  }
  return absl::OkStatus();
}

std::string DefaultDeployName(const std::string& model_name,
                              const std::string& path) {
  if (CheckModelName(model_name).ok()) return model_name;
  std::string stem = std::filesystem::path(path).stem().string();
  if (!path.empty() && CheckModelName(stem).ok()) return stem;
  return "";
}

absl::StatusOr<DeployPayload> LoadDeployPayload(const std::string& arg,
                                                const std::string& name,
                                                const std::string& server) {
  if (!name.empty()) {
    if (absl::Status s = CheckModelName(name); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--name: ", s.message()));
    }
  }
  DeployPayload payload;
  std::string path;
  if (IsPackagePath(arg)) {
    path = arg;
    if (!Env::Default()->FileExists(arg)) {
      return absl::NotFoundError(absl::StrCat(arg, ": no such file"));
    }
    absl::StatusOr<std::string> bytes =
        ReadFileToString(Env::Default(), arg, kMaxDeployBytes);
    if (!bytes.ok()) return bytes.status();
    payload.bytes = *std::move(bytes);
    payload.source = arg;
  } else {
    absl::StatusOr<std::unique_ptr<Remote>> remote = Remote::Connect(server);
    if (!remote.ok()) {
      return absl::Status(
          remote.status().code(),
          absl::StrCat("'", arg,
                       "' is not a file, so it is taken as a job id: ",
                       remote.status().message()));
    }
    absl::StatusOr<std::string> bytes =
        (*remote)->Download(arg, pipeline::kEsbmArtifact);
    if (!bytes.ok()) {
      return absl::Status(bytes.status().code(),
                          absl::StrCat(pipeline::kEsbmArtifact, " of job ", arg,
                                       ": ", bytes.status().message()));
    }
    payload.bytes = *std::move(bytes);
    payload.source = absl::StrCat("job ", arg, " on ", server);
  }
  absl::StatusOr<esb::v1::Package> package =
      pipeline::ParsePackage(payload.bytes);
  if (!package.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        payload.source,
        " is not a model.esbm package: ", package.status().message()));
  }
  payload.name =
      name.empty() ? DefaultDeployName(package->model_name(), path) : name;
  if (payload.name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the package's model name '", package->model_name(),
        "' is not a name the agent takes; give one with --name NAME"));
  }
  return payload;
}

}  // namespace esb::client
