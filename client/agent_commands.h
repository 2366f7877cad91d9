// esbctl's commands that talk to a board agent (esb-agent): deploy,
// models, undeploy, board, infer and bench. Each takes --agent (default
// localhost:8001, esb-agent's default --listen) and --json; the admin
// commands (deploy, models, undeploy, board) take --admin-token-file for
// an agent that needs its token.
//
// Exit status as for the other commands: 0 done, 1 a failure (the agent's
// error, an unreadable input, no agent at the address), 2 a mistake in the
// command line.
#ifndef ESB_CLIENT_AGENT_COMMANDS_H_
#define ESB_CLIENT_AGENT_COMMANDS_H_

#include <string>
#include <vector>

#include "client/command_line.h"

namespace esb::client {

// The command table entries.
std::vector<CommandSpec> AgentCommands();

// True when `name` is one of AgentCommands().
bool IsAgentCommand(const std::string& name);

// Runs the agent command `line` names; returns the exit status.
int RunAgentCommand(const CommandLine& line);

}  // namespace esb::client

#endif  // ESB_CLIENT_AGENT_COMMANDS_H_
