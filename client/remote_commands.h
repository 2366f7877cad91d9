// esbctl's commands that talk to esb-server: submit, watch, list, get,
// cancel, fetch, report and health. Each takes --server (default
// localhost:50051) and --json.
//
// Exit status as for the local commands: 0 done (a watched job succeeded),
// 1 a failure (the server's error, or a job that failed or was cancelled),
// 2 a mistake in the command line.
#ifndef ESB_CLIENT_REMOTE_COMMANDS_H_
#define ESB_CLIENT_REMOTE_COMMANDS_H_

#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "client/command_line.h"
#include "core/pipeline/job.h"
#include "esb/v1/job.pb.h"

namespace esb::client {

// Fills a job's inputs and config from the quantize flags (main.cc owns
// those flags), INVALID_ARGUMENT naming the flag on a mistake.
using JobFromFlags =
    std::function<absl::Status(pipeline::JobInputs*, esb::v1::JobConfig*)>;

// The command table entries; `quantize_flags` are quantize's own, which
// submit takes too.
std::vector<CommandSpec> RemoteCommands(
    const std::vector<FlagUse>& quantize_flags);

// True when `name` is one of RemoteCommands().
bool IsRemoteCommand(const std::string& name);

// Runs the remote command `line` names; returns the exit status.
int RunRemoteCommand(const CommandLine& line, const JobFromFlags& job_flags);

}  // namespace esb::client

#endif  // ESB_CLIENT_REMOTE_COMMANDS_H_
