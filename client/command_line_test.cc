#include "client/command_line.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

ABSL_FLAG(int, count, 3, "How many.");
ABSL_FLAG(std::string, name, "", "A name.");
ABSL_FLAG(bool, loud, false, "Louder.");
ABSL_FLAG(std::optional<int>, depth, std::nullopt, "How deep.");
ABSL_FLAG(std::string, o, "", "Where to.");
ABSL_FLAG(int, other, 0, "Only the other command takes it.");

namespace esb::client {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::vector<CommandSpec>& Table() {
  static const auto* table = new std::vector<CommandSpec>{
      {"make",
       "THING",
       1,
       "Makes a thing.",
       {{"count", "N"},
        {"name", "NAME", "The thing's name.", nullptr, true},
        {"loud", ""},
        {"depth", "N", nullptr, "as deep as it goes"},
        {"o", "DIR"}}},
      {"list", "", 0, "Lists things.", {{"loud", ""}, {"other", "N"}}},
  };
  return *table;
}

void ResetFlags() {
  absl::SetFlag(&FLAGS_count, 3);
  absl::SetFlag(&FLAGS_name, "");
  absl::SetFlag(&FLAGS_loud, false);
  absl::SetFlag(&FLAGS_depth, std::nullopt);
  absl::SetFlag(&FLAGS_o, "");
  absl::SetFlag(&FLAGS_other, 0);
}

absl::StatusOr<CommandLine> Parse(std::vector<std::string> words) {
  ResetFlags();
  words.insert(words.begin(), "esbctl");
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  return ParseCommandLine(Table(), argv);
}

std::string ErrorOf(std::vector<std::string> words) {
  absl::StatusOr<CommandLine> line = Parse(std::move(words));
  if (line.ok()) return "parsed";
  EXPECT_EQ(line.status().code(), absl::StatusCode::kInvalidArgument);
  return {line.status().message().begin(), line.status().message().end()};
}

TEST(ParseCommandLineTest, SetsTheFlagsGivenInEverySpelling) {
  absl::StatusOr<CommandLine> line =
      Parse({"make", "--count", "-7", "box", "--name=lid", "--loud", "-o",
             "out", "--depth", "2"});
  ASSERT_TRUE(line.ok()) << line.status();
  ASSERT_NE(line->command, nullptr);
  EXPECT_STREQ(line->command->name, "make");
  EXPECT_FALSE(line->help);
  EXPECT_EQ(line->args, std::vector<std::string>{"box"});
  EXPECT_EQ(absl::GetFlag(FLAGS_count), -7);
  EXPECT_EQ(absl::GetFlag(FLAGS_name), "lid");
  EXPECT_TRUE(absl::GetFlag(FLAGS_loud));
  EXPECT_EQ(absl::GetFlag(FLAGS_depth), 2);
  EXPECT_EQ(absl::GetFlag(FLAGS_o), "out");
}

TEST(ParseCommandLineTest, FlagsNotGivenKeepTheirDefaults) {
  absl::StatusOr<CommandLine> line = Parse({"make", "box", "--name", "n"});
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(absl::GetFlag(FLAGS_count), 3);
  EXPECT_FALSE(absl::GetFlag(FLAGS_depth).has_value());
  EXPECT_FALSE(absl::GetFlag(FLAGS_loud));
}

TEST(ParseCommandLineTest, BooleanSpellingsAndDoubleDash) {
  absl::StatusOr<CommandLine> line =
      Parse({"make", "--name", "n", "--loud=false", "--", "--count"});
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_FALSE(absl::GetFlag(FLAGS_loud));
  EXPECT_EQ(line->args, std::vector<std::string>{"--count"});
  line = Parse({"list", "--noloud"});
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_FALSE(absl::GetFlag(FLAGS_loud));
}

TEST(ParseCommandLineTest, HelpWinsOverEverythingElse) {
  for (const std::vector<std::string>& words :
       std::vector<std::vector<std::string>>{{"make", "--count", "x", "--help"},
                                             {"make", "-h"},
                                             {"help", "make"}}) {
    absl::StatusOr<CommandLine> line = Parse(words);
    ASSERT_TRUE(line.ok()) << line.status();
    EXPECT_TRUE(line->help);
    ASSERT_NE(line->command, nullptr);
    EXPECT_STREQ(line->command->name, "make");
  }
  for (const char* general : {"help", "--help"}) {
    absl::StatusOr<CommandLine> line = Parse({general});
    ASSERT_TRUE(line.ok()) << line.status();
    EXPECT_TRUE(line->help);
    EXPECT_EQ(line->command, nullptr);
  }
}

TEST(ParseCommandLineTest, UsageErrorsNameTheFlagAndTheCommand) {
  EXPECT_THAT(ErrorOf({"make", "box", "--name", "n", "--count", "abc"}),
              HasSubstr("--count 'abc' is not an integer; see 'esbctl make "
                        "--help'"));
  EXPECT_THAT(ErrorOf({"make", "box", "--name", "n", "--depth", "1.5"}),
              HasSubstr("--depth '1.5' is not an integer"));
  EXPECT_THAT(ErrorOf({"make", "box", "--name", "n", "--no-such-flag"}),
              HasSubstr("unknown flag --no-such-flag for 'esbctl make'; see "
                        "'esbctl make --help'"));
  EXPECT_THAT(ErrorOf({"make", "box", "--name", "n", "--other", "1"}),
              HasSubstr("'esbctl make' does not take --other (a flag of "
                        "list)"));
  EXPECT_THAT(ErrorOf({"make", "box", "--name", "n", "--count"}),
              HasSubstr("--count needs a value"));
  EXPECT_THAT(ErrorOf({"make", "box", "--name", "--count", "1"}),
              HasSubstr("--name needs a value"));
  EXPECT_THAT(ErrorOf({"make", "box", "--name="}),
              HasSubstr("--name needs a non-empty value"));
  EXPECT_THAT(ErrorOf({"make", "box", "--name", "a", "--name", "b"}),
              HasSubstr("--name is given twice"));
  EXPECT_THAT(ErrorOf({"make", "box", "--name", "a", "--loud=maybe"}),
              HasSubstr("--loud 'maybe' is not true or false"));
  EXPECT_THAT(ErrorOf({"make", "box"}),
              HasSubstr("'esbctl make' needs --name NAME"));
  EXPECT_THAT(ErrorOf({"make", "--name", "n"}),
              HasSubstr("'esbctl make' takes 1 argument (THING); got 0"));
  EXPECT_THAT(ErrorOf({"list", "extra"}),
              HasSubstr("'esbctl list' takes no arguments; got 'extra'"));
  EXPECT_THAT(ErrorOf({"frob"}), HasSubstr("unknown command 'frob'"));
  EXPECT_THAT(ErrorOf({"--loud", "list"}),
              HasSubstr("the command comes first"));
  EXPECT_THAT(ErrorOf({"help", "frob"}), HasSubstr("one of make, list"));
  EXPECT_THAT(ErrorOf({}), HasSubstr("no command"));
}

TEST(ParseCommandLineTest, AFailedValueLeavesTheFlagAlone) {
  EXPECT_NE(ErrorOf({"make", "box", "--name", "n", "--count", "9x"}), "parsed");
  EXPECT_EQ(absl::GetFlag(FLAGS_count), 3);
}

TEST(ParseCommandLineTest, AnUndefinedFlagInTheTableIsInternal) {
  const std::vector<CommandSpec> table = {
      {"bad", "", 0, "Lists a flag nobody defined.", {{"undefined_x", "N"}}}};
  std::vector<std::string> words = {"esbctl", "bad", "--undefined-x", "1"};
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  EXPECT_EQ(ParseCommandLine(table, argv).status().code(),
            absl::StatusCode::kInternal);
}

TEST(CommandHelpTest, ListsEveryFlagWithItsDefault) {
  const std::string help = CommandHelp(Table()[0]);
  EXPECT_THAT(help, HasSubstr("usage: esbctl make THING --name NAME [flags]"));
  EXPECT_THAT(help, HasSubstr("Makes a thing."));
  EXPECT_THAT(help, HasSubstr("--count N  "));
  EXPECT_THAT(help, HasSubstr("How many. (default: 3)"));
  EXPECT_THAT(help, HasSubstr("The thing's name. (required)"));
  EXPECT_THAT(help, HasSubstr("How deep. (default: as deep as it goes)"));
  EXPECT_THAT(help, HasSubstr("-o DIR"));
  EXPECT_THAT(help, HasSubstr("Louder.\n"));
  EXPECT_THAT(help, HasSubstr("--help"));
  EXPECT_THAT(help, Not(HasSubstr("--other")));
}

TEST(GeneralHelpTest, ListsEveryCommandOnce) {
  const std::string help = GeneralHelp(Table());
  EXPECT_THAT(help, HasSubstr("esbctl make THING"));
  EXPECT_THAT(help, HasSubstr("esbctl list "));
  EXPECT_EQ(help.find("usage:"), help.rfind("usage:"));
  EXPECT_EQ(help.rfind("esbctl:", 0), 0u);
  EXPECT_EQ(help.find("esbctl: esbctl"), std::string::npos);
}

TEST(FlagSpellingTest, DashesAndOneLetterFlags) {
  EXPECT_EQ(FlagSpelling("act_bits"), "--act-bits");
  EXPECT_EQ(FlagSpelling("o"), "-o");
}

}  // namespace
}  // namespace esb::client
