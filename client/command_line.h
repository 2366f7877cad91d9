// esbctl's command line: a table of commands, each naming the flags it
// takes, and a parser that checks a command line against that table.
//
// Flag values live in absl flags (ABSL_FLAG in main.cc). The parser replaces
// absl::ParseCommandLine so that a command accepts only its own flags and
// every mistake comes back as INVALID_ARGUMENT naming the flag, the command
// and where its help is, which main turns into exit status 2.
//
// The command line reads: esbctl COMMAND [flags] [args], flags and args in
// any order after the command. A flag is --name VALUE, --name=VALUE, or a
// lone --name for a boolean (--noname sets it false); dashes and
// underscores are the same in names; -o and --o are the same; "--" ends
// the flags. Not thread-safe: parsing sets process-wide flags.
#ifndef ESB_CLIENT_COMMAND_LINE_H_
#define ESB_CLIENT_COMMAND_LINE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace esb::client {

// One flag as a command uses it.
struct FlagUse {
  const char* name;   // The absl flag, e.g. "act_bits" (--act-bits).
  const char* value;  // Placeholder in help, e.g. "N"; "" for booleans.
  // One line in this command's terms; null: the absl flag's own help.
  const char* help = nullptr;
  // The default shown in help; null: the absl flag's default (booleans and
  // empty defaults show none).
  const char* default_text = nullptr;
  bool required = false;  // The command refuses to run without it.
};

struct CommandSpec {
  const char* name;     // e.g. "fit".
  const char* args;     // Positional arguments for help, e.g. "TENSOR.npy".
  int arg_count;        // How many positional arguments it takes.
  const char* summary;  // One line.
  std::vector<FlagUse> flags;
};

struct CommandLine {
  // The command to run, or whose help to print; null with `help` for the
  // general help.
  const CommandSpec* command = nullptr;
  bool help = false;              // Print help instead of running.
  std::vector<std::string> args;  // The command's positional arguments.
};

// Parses `argv` (argv[0] is the program) against `commands` and sets the
// absl flag of every flag given. INVALID_ARGUMENT for: no command, an unknown
// command, a flag before the command, an unknown flag, a flag the command
// does not take, a flag given twice, a missing or empty value, a value that
// does not parse, a missing required flag, or the wrong number of
// arguments. INTERNAL when the table names a flag that is not defined.
// With --help (or -h) anywhere, or `help [COMMAND]` as the command, returns
// `help` set and checks nothing else.
absl::StatusOr<CommandLine> ParseCommandLine(
    absl::Span<const CommandSpec> commands, absl::Span<char* const> argv);

// How a flag is spelled on the command line: "o" -> "-o",
// "act_bits" -> "--act-bits".
std::string FlagSpelling(const std::string& name);

// `esbctl COMMAND --help`: its usage line, summary, and one line per flag
// with its default.
std::string CommandHelp(const CommandSpec& command);

// `esbctl help`: every command with its summary.
std::string GeneralHelp(absl::Span<const CommandSpec> commands);

}  // namespace esb::client

#endif  // ESB_CLIENT_COMMAND_LINE_H_
