#include "client/command_line.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <set>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"

namespace esb::client {
namespace {

std::string SeeHelp(const CommandSpec& command) {
  return absl::StrCat("; see 'esbctl ", command.name, " --help'");
}

absl::Status Usage(const CommandSpec& command, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(message, SeeHelp(command)));
}

bool IsHelpToken(absl::string_view token) {
  return token == "--help" || token == "-help" || token == "-h";
}

const CommandSpec* FindCommand(absl::Span<const CommandSpec> commands,
                               absl::string_view name) {
  for (const CommandSpec& c : commands) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

const FlagUse* FindUse(const CommandSpec& command, absl::string_view name) {
  for (const FlagUse& f : command.flags) {
    if (name == f.name) return &f;
  }
  return nullptr;
}

bool IsBool(const FlagUse& use) {
  const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(use.name);
  return flag != nullptr && flag->IsOfType<bool>();
}

// Why `value` did not parse, in the flag's terms.
std::string ParseProblem(const absl::CommandLineFlag& flag) {
  if (flag.IsOfType<int>() || flag.IsOfType<int64_t>() ||
      flag.IsOfType<std::optional<int>>() ||
      flag.IsOfType<std::optional<int64_t>>()) {
    return "is not an integer";
  }
  if (flag.IsOfType<uint64_t>()) return "is not a non-negative integer";
  if (flag.IsOfType<bool>()) return "is not true or false";
  return "does not parse";
}

// The commands other than `command` that take the flag `name`.
std::vector<std::string> OtherUsers(absl::Span<const CommandSpec> commands,
                                    const CommandSpec& command,
                                    absl::string_view name) {
  std::vector<std::string> users;
  for (const CommandSpec& c : commands) {
    if (&c != &command && FindUse(c, name) != nullptr) users.push_back(c.name);
  }
  return users;
}

// Parses the tokens after the command name.
absl::Status ParseFlagsAndArgs(absl::Span<const CommandSpec> commands,
                               const CommandSpec& command,
                               absl::Span<char* const> tokens,
                               std::vector<std::string>* args) {
  std::set<std::string> given;
  bool flags_done = false;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const absl::string_view token = tokens[i];
    if (flags_done || token.size() < 2 || token[0] != '-') {
      args->emplace_back(token);
      continue;
    }
    if (token == "--") {
      flags_done = true;
      continue;
    }
    absl::string_view body = token.substr(token[1] == '-' ? 2 : 1);
    const size_t eq = body.find('=');
    const absl::string_view spelled =
        token.substr(0, token.size() - body.size() + std::min(eq, body.size()));
    std::string name(body.substr(0, eq));
    std::replace(name.begin(), name.end(), '-', '_');
    std::optional<std::string> value;
    if (eq != absl::string_view::npos) value.emplace(body.substr(eq + 1));

    const FlagUse* use = FindUse(command, name);
    if (use == nullptr && absl::StartsWith(name, "no")) {
      const FlagUse* negated = FindUse(command, name.substr(2));
      if (negated != nullptr && IsBool(*negated) && !value.has_value()) {
        use = negated;
        name = name.substr(2);
        value = "false";
      }
    }
    if (use == nullptr) {
      const std::vector<std::string> users =
          OtherUsers(commands, command, name);
      if (users.empty()) {
        return Usage(command, absl::StrCat("unknown flag ", spelled,
                                           " for 'esbctl ", command.name, "'"));
      }
      return Usage(
          command,
          absl::StrCat("'esbctl ", command.name, "' does not take ", spelled,
                       " (a flag of ", absl::StrJoin(users, ", "), ")"));
    }
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) {
      return absl::InternalError(absl::StrCat(
          "esbctl ", command.name, " lists flag '", name, "', not defined"));
    }
    const std::string shown = FlagSpelling(name);
    if (!given.insert(name).second) {
      return Usage(command, absl::StrCat(shown, " is given twice"));
    }
    if (!value.has_value()) {
      if (flag->IsOfType<bool>()) {
        value = "true";
      } else if (i + 1 < tokens.size() &&
                 !absl::StartsWith(tokens[i + 1], "--")) {
        value = tokens[++i];
      } else {
        return Usage(command, absl::StrCat(shown, " needs a value (", shown,
                                           " ", use->value, ")"));
      }
    }
    if (value->empty()) {
      return Usage(command, absl::StrCat(shown, " needs a non-empty value"));
    }
    std::string error;
    if (!flag->ParseFrom(*value, &error)) {
      return Usage(command, absl::StrCat(shown, " '", *value, "' ",
                                         ParseProblem(*flag)));
    }
  }
  for (const FlagUse& f : command.flags) {
    if (f.required && given.count(f.name) == 0) {
      return Usage(command, absl::StrCat("'esbctl ", command.name, "' needs ",
                                         FlagSpelling(f.name), " ", f.value));
    }
  }
  if (static_cast<int>(args->size()) != command.arg_count) {
    if (command.arg_count == 0) {
      return Usage(command, absl::StrCat("'esbctl ", command.name,
                                         "' takes no arguments; got '",
                                         (*args)[0], "'"));
    }
    return Usage(command, absl::StrCat("'esbctl ", command.name, "' takes ",
                                       command.arg_count, " argument (",
                                       command.args, "); got ", args->size()));
  }
  return absl::OkStatus();
}

}  // namespace

std::string FlagSpelling(const std::string& name) {
  std::string dashed = name;
  std::replace(dashed.begin(), dashed.end(), '_', '-');
  return absl::StrCat(name.size() == 1 ? "-" : "--", dashed);
}

absl::StatusOr<CommandLine> ParseCommandLine(
    absl::Span<const CommandSpec> commands, absl::Span<char* const> argv) {
  CommandLine line;
  if (argv.size() < 2) {
    return absl::InvalidArgumentError(
        "no command; usage: esbctl COMMAND [flags] [args]; see 'esbctl help'");
  }
  const absl::string_view first = argv[1];
  if (first == "help" || IsHelpToken(first)) {
    line.help = true;
    if (argv.size() == 2) return line;
    line.command = FindCommand(commands, argv[2]);
    if (line.command == nullptr || argv.size() > 3) {
      return absl::InvalidArgumentError(absl::StrCat(
          "'esbctl help' takes one command name, one of ",
          absl::StrJoin(commands, ", ",
                        [](std::string* out, const CommandSpec& c) {
                          out->append(c.name);
                        }),
          "; see 'esbctl help'"));
    }
    return line;
  }
  if (absl::StartsWith(first, "-")) {
    return absl::InvalidArgumentError(
        absl::StrCat("the command comes first, before ", first,
                     ": esbctl COMMAND [flags] [args]; see 'esbctl help'"));
  }
  line.command = FindCommand(commands, first);
  if (line.command == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown command '", first, "'; see 'esbctl help'"));
  }
  const absl::Span<char* const> rest = argv.subspan(2);
  for (const char* token : rest) {
    if (absl::string_view(token) == "--") break;
    if (IsHelpToken(token)) {
      line.help = true;
      return line;
    }
  }
  if (absl::Status s =
          ParseFlagsAndArgs(commands, *line.command, rest, &line.args);
      !s.ok()) {
    return s;
  }
  return line;
}

std::string CommandHelp(const CommandSpec& command) {
  std::string usage = absl::StrCat("usage: esbctl ", command.name);
  if (command.args[0] != '\0') absl::StrAppend(&usage, " ", command.args);
  std::vector<std::pair<std::string, std::string>> rows;
  for (const FlagUse& f : command.flags) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(f.name);
    std::string spec = FlagSpelling(f.name);
    if (f.value[0] != '\0') absl::StrAppend(&spec, " ", f.value);
    if (f.required) absl::StrAppend(&usage, " ", spec);
    std::string help = f.help != nullptr ? f.help
                       : flag != nullptr ? flag->Help()
                                         : "";
    std::string def;
    if (f.required) {
      def = "required";
    } else if (f.default_text != nullptr) {
      def = absl::StrCat("default: ", f.default_text);
    } else if (flag != nullptr && !flag->IsOfType<bool>() &&
               !flag->DefaultValue().empty()) {
      def = absl::StrCat("default: ", flag->DefaultValue());
    }
    if (!def.empty()) absl::StrAppend(&help, " (", def, ")");
    rows.emplace_back(std::move(spec), std::move(help));
  }
  rows.emplace_back("--help", "Print this help.");
  absl::StrAppend(&usage, " [flags]\n\n", command.summary, "\n\nflags:\n");
  size_t width = 0;
  for (const auto& [spec, help] : rows) width = std::max(width, spec.size());
  for (const auto& [spec, help] : rows) {
    absl::StrAppend(&usage, "  ", spec,
                    std::string(width + 2 - spec.size(), ' '), help, "\n");
  }
  return usage;
}

std::string GeneralHelp(absl::Span<const CommandSpec> commands) {
  std::vector<std::pair<std::string, std::string>> rows;
  for (const CommandSpec& c : commands) {
    std::string spec = absl::StrCat("esbctl ", c.name);
    if (c.args[0] != '\0') absl::StrAppend(&spec, " ", c.args);
    rows.emplace_back(std::move(spec), c.summary);
  }
  rows.emplace_back("esbctl help [COMMAND]", "This help, or a command's.");
  size_t width = 0;
  for (const auto& [spec, help] : rows) width = std::max(width, spec.size());
  std::string text =
      "esbctl: the ESB quantization client\n\n"
      "usage: esbctl COMMAND [flags] [args]\n\ncommands:\n";
  for (const auto& [spec, help] : rows) {
    absl::StrAppend(&text, "  ", spec,
                    std::string(width + 2 - spec.size(), ' '), help, "\n");
  }
  absl::StrAppend(
      &text,
      "\nRun 'esbctl COMMAND --help' (or 'esbctl help COMMAND') for a "
      "command's flags.\n"
      "Exit status: 0 on success, 2 for invalid arguments, 1 for other "
      "errors.\n");
  return text;
}

}  // namespace esb::client
