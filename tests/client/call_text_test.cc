// turbine::render's reading of a call typed as text (the status page's search box): the
// words a shell would give `turbine call`.
#include "turbine/render/call_text.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace turbine::render {
namespace {

std::vector<std::string> Words(std::string_view line) {
  absl::StatusOr<std::vector<std::string>> words = SplitCallWords(line);
  EXPECT_TRUE(words.ok()) << line << ": " << words.status();
  return words.ok() ? *words : std::vector<std::string>{};
}

TEST(CallText, SplitsAtSpacesButNotInsideJsonOrShellQuotes) {
  EXPECT_EQ(Words("  tree.summary   /src  "), (std::vector<std::string>{"tree.summary", "/src"}));
  EXPECT_EQ(Words(R"(f [1, 2] {"a b": [3, {"c": 4}]} "x y" 7)"),
            (std::vector<std::string>{"f", "[1, 2]", R"({"a b": [3, {"c": 4}]})", "x y", "7"}));
  // "..." is the shell's too: quotes gone, \" and \\ escaped, other backslashes kept.
  EXPECT_EQ(Words(R"(f "a \" ] b" "c\\d\n")"),
            (std::vector<std::string>{"f", R"(a " ] b)", R"(c\d\n)"}));
  // Outside quotes a backslash escapes one character, as in a shell.
  EXPECT_EQ(Words(R"(f a\ b x\"y)"), (std::vector<std::string>{"f", "a b", R"(x"y)"}));
  // '...' is the shell's: its text as is, quotes gone, so a command line pastes unchanged.
  EXPECT_EQ(Words(R"(sheet.eval '{"a": "=1"}' 'two words')"),
            (std::vector<std::string>{"sheet.eval", R"({"a": "=1"})", "two words"}));
  EXPECT_EQ(Words(""), std::vector<std::string>{});
}

TEST(CallText, AQuotedNumberIsTheNumberAsTheShellGivesIt) {
  absl::StatusOr<v1::CallRequest> call = ParseCallText(R"(demo.fib "3" '"text"')");
  ASSERT_TRUE(call.ok()) << call.status();
  ASSERT_EQ(call->args_size(), 2);
  EXPECT_EQ(call->args(0).int_value(), 3) << "the shell hands `turbine call` the word 3";
  EXPECT_EQ(call->args(1).string_value(), "text");
}

TEST(CallText, TakesTheOptionsOfTurbineCall) {
  // A method's receiver, before or after the function, in both of CLI11's forms.
  for (const char* line : {"Path.parent --this 12", "--this 12 Path.parent",
                           "Path.parent --this=12", "Path.parent --this '{\"$ref\":\"12\"}'"}) {
    absl::StatusOr<v1::CallRequest> call = ParseCallText(line);
    ASSERT_TRUE(call.ok()) << line << ": " << call.status();
    EXPECT_EQ(call->function(), "Path.parent") << line;
    EXPECT_EQ(call->args_size(), 0) << line << ": --this and its value are not arguments";
    EXPECT_TRUE(call->has_this_ref()) << line;
    EXPECT_EQ(call->this_ref().task(), 12u) << line;
  }
  absl::StatusOr<v1::CallRequest> cell = ParseCallText("Asset.content --this 7/File/0");
  ASSERT_TRUE(cell.ok()) << cell.status();
  EXPECT_EQ(cell->this_ref().cell_type(), "File");

  // --raw changes only how the CLI prints; after `--` every word is an argument.
  absl::StatusOr<v1::CallRequest> raw = ParseCallText("--raw fs.read /etc/hostname -- --this");
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ(raw->function(), "fs.read");
  ASSERT_EQ(raw->args_size(), 2);
  EXPECT_EQ(raw->args(1).string_value(), "--this");
  EXPECT_FALSE(raw->has_this_ref());

  EXPECT_EQ(ParseCallText("f --this").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseCallText("f --this [1]").status().code(), absl::StatusCode::kInvalidArgument);
  // CLI11 refuses a second --this.
  EXPECT_EQ(ParseCallText("f --this 1 --this 2").status().code(),
            absl::StatusCode::kInvalidArgument);
  const absl::Status unknown = ParseCallText("f --nope 1").status();
  EXPECT_EQ(unknown.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.message().find("--nope"), absl::string_view::npos) << unknown;
}

// The CLI's own options, which it takes after the command too (`turbine call demo.fib 20
// --json`), change only how it talks to the daemon and prints: left out, with their values.
TEST(CallText, TheCliOwnOptionsAreLeftOut) {
  absl::StatusOr<v1::CallRequest> call =
      ParseCallText("demo.fib --json 20 --timeout-ms 5000 --wait --connect=unix:/x --data-dir /d");
  ASSERT_TRUE(call.ok()) << call.status();
  EXPECT_EQ(call->function(), "demo.fib");
  ASSERT_EQ(call->args_size(), 1);
  EXPECT_EQ(call->args(0).int_value(), 20);
}

// A line continued with a backslash is one line, as in a shell; a bracket inside a word
// groups nothing (only a word that starts with one is JSON).
TEST(CallText, ShellLineContinuationsAndBracketsInsideWords) {
  EXPECT_EQ(Words("tree.summary \\\n /src"), (std::vector<std::string>{"tree.summary", "/src"}));
  EXPECT_EQ(Words("f \"a\\\nb\""), (std::vector<std::string>{"f", "ab"}));
  EXPECT_EQ(Words("f x\\"), (std::vector<std::string>{"f", "x"}));
  EXPECT_EQ(Words("fs.read /tmp/a[1 a[b c]"),
            (std::vector<std::string>{"fs.read", "/tmp/a[1", "a[b", "c]"}));
}

TEST(CallText, UnclosedQuotesAndBracketsAreErrors) {
  for (const char* line : {"f [1", R"(f {"a": 1)", R"(f "x)", "f 'x", R"(f ["]")"}) {
    absl::StatusOr<std::vector<std::string>> words = SplitCallWords(line);
    EXPECT_EQ(words.status().code(), absl::StatusCode::kInvalidArgument) << line;
  }
}

TEST(CallText, ReadsACallAsTheCliDoes) {
  absl::StatusOr<v1::CallRequest> call = ParseCallText(R"(demo.busy key 250 [1, "a"])");
  ASSERT_TRUE(call.ok()) << call.status();
  EXPECT_EQ(call->function(), "demo.busy");
  ASSERT_EQ(call->args_size(), 3);
  EXPECT_EQ(call->args(0).string_value(), "key") << "a bare word is a string";
  EXPECT_EQ(call->args(1).int_value(), 250);
  ASSERT_EQ(call->args(2).list_value().items_size(), 2);
  EXPECT_EQ(call->args(2).list_value().items(1).string_value(), "a");

  EXPECT_EQ(ParseCallText("   ").status().code(), absl::StatusCode::kInvalidArgument);
  const absl::Status bad = ParseCallText("f 1 {bad}").status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("argument 2 ({bad})"), absl::string_view::npos) << bad;
}

}  // namespace
}  // namespace turbine::render
