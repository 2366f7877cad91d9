// What `esbctl deploy` sends to an esb-agent: a model.esbm's bytes, from a
// file or from a finished job on esb-server, and the name it is served as.
#ifndef ESB_CLIENT_AGENT_DEPLOY_H_
#define ESB_CLIENT_AGENT_DEPLOY_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace esb::client {

// Packages larger than this are refused before they are read (the agent's
// default --max-model-bytes).
inline constexpr int64_t kMaxDeployBytes = int64_t{1} << 30;

// True when `arg` names a package file: it ends in ".esbm" or is an
// existing file. Anything else is a job id.
bool IsPackagePath(const std::string& arg);

// OK when the agent takes `name` as a model name (agent.proto: 1..64
// letters, digits, '-', '_', '.', neither "." nor ".."); INVALID_ARGUMENT
// naming the rule otherwise.
absl::Status CheckModelName(const std::string& name);

// The name a package is served as without --name: its model_name when the
// agent takes it, else the stem of `path` (may be "") when it does; ""
// when neither does.
std::string DefaultDeployName(const std::string& model_name,
                              const std::string& path);

struct DeployPayload {
  std::string bytes;   // The whole model.esbm.
  std::string name;    // Served as.
  std::string source;  // The file, or "job ID on HOST:PORT".
};

// Reads the file `arg`, or downloads job `arg`'s model.esbm from esb-server
// at `server`, checks that it is a package (pipeline::ParsePackage) and
// picks the name: `name` when not empty (checked), else DefaultDeployName.
// The file's or the server's errors; INVALID_ARGUMENT naming the source
// when it is not a package or no name can be derived (then --name says
// how).
absl::StatusOr<DeployPayload> LoadDeployPayload(const std::string& arg,
                                                const std::string& name,
                                                const std::string& server);

}  // namespace esb::client

#endif  // ESB_CLIENT_AGENT_DEPLOY_H_
