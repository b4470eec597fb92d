// The `turbine` binary as a user runs it: output, exit codes, hints.
#include <absl/strings/str_cat.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_process.h"
#include "fake_turbine.h"

namespace turbine::testing {
namespace {

using nlohmann::json;

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(CliUnreachableTest, NoDaemonExits3WithAHintHowToStartOne) {
  TempDir dir;
  CliRun run = RunCli({"--data-dir", dir.path(), "ping"});
  EXPECT_EQ(run.exit_code, 3) << run.err;
  EXPECT_TRUE(Contains(run.err, "turbine: cannot reach turbined at unix:" + dir.path() +
                                    "/turbined.sock (is it running? start it with: "
                                    "turbined --data-dir " + dir.path() + ")"))
      << run.err;
  EXPECT_EQ(run.out, "");
}

TEST(CliUnreachableTest, EveryDaemonCommandExits3) {
  TempDir dir;
  for (std::vector<std::string> command :
       {std::vector<std::string>{"call", "demo.fib", "30"}, {"set", "k", "1"}, {"stats"},
        {"functions"}, {"flush"}, {"shutdown"}, {"watch", "demo.fib", "1"}}) {
    command.insert(command.begin(), {"--data-dir", dir.path()});
    CliRun run = RunCli(command);
    EXPECT_EQ(run.exit_code, 3) << command[2] << ": " << run.err;
  }
}

// A data dir the CLI cannot make absolute is a usage error. Before, it aborted (exit 134,
// an uncaught std::filesystem_error): an empty --data-dir, or a relative one (the default
// too) in a working directory that was removed.
TEST(CliUsageTest, ADataDirWithNoAbsoluteFormIsAUsageError) {
  CliRun empty = RunCli({"--data-dir", "", "ping"});
  EXPECT_EQ(empty.exit_code, 2) << empty.err;
  EXPECT_TRUE(Contains(empty.err, "turbine: the data directory must be named")) << empty.err;
  TempDir dir;
  const std::filesystem::path before = std::filesystem::current_path();
  const std::string gone = dir.path() + "/gone";
  std::filesystem::create_directory(gone);
  std::filesystem::current_path(gone);
  std::filesystem::remove(gone);
  const CliRun relative = RunCli({"--data-dir", "rel", "ping"});
  const CliRun by_default = RunCli({"ping"});
  std::filesystem::current_path(before);
  for (const CliRun* run : {&relative, &by_default}) {
    EXPECT_EQ(run->exit_code, 2) << run->err;
    EXPECT_TRUE(Contains(run->err, "turbine: cannot use data directory ")) << run->err;
    EXPECT_TRUE(Contains(run->err, "the working directory it is relative to")) << run->err;
  }
}

// `trace` says it is tracing only once the daemon answers: before, "tracing for 1 s..."
// came first, then "cannot reach turbined".
TEST(CliUnreachableTest, TraceSaysNothingOfTracingWithoutADaemon) {
  TempDir dir;
  CliRun run = RunCli(
      {"--data-dir", dir.path(), "trace", "--seconds", "1", "-o", dir.path() + "/trace.json"});
  EXPECT_EQ(run.exit_code, 3) << run.err;
  EXPECT_TRUE(Contains(run.err, "cannot reach turbined")) << run.err;
  EXPECT_FALSE(Contains(run.err, "tracing for")) << run.err;
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/trace.json"));  // not left behind
}

// --wait waits for a daemon up to --timeout-ms, then gives up as an unreachable daemon.
// Before: `watch` waited forever, and `gc` exited 4, saying the pass may still be running.
TEST(CliUnreachableTest, WaitGivesUpAfterTheTimeoutWithExit3) {
  TempDir dir;
  for (const std::vector<std::string>& command : std::vector<std::vector<std::string>>{
           {"watch", "input.get", "x"}, {"gc"}, {"call", "input.get", "x"}, {"stats"}}) {
    std::vector<std::string> args = {"--data-dir", dir.path(), "--wait", "--timeout-ms", "1000"};
    args.insert(args.end(), command.begin(), command.end());
    CliProcess cli(args);
    const std::optional<CliRun> run = cli.WaitUpTo(std::chrono::seconds(30));
    if (!run.has_value()) {
      ADD_FAILURE() << command[0] << " still waits for the daemon";
      continue;
    }
    EXPECT_EQ(run->exit_code, 3) << command[0] << ": " << run->err;
    EXPECT_TRUE(Contains(run->err, "cannot reach turbined")) << command[0] << ": " << run->err;
  }
}

TEST(CliUnreachableTest, AnExplicitAddressGetsAListenHint) {
  TempDir dir;
  std::string address = "unix:" + dir.path() + "/other.sock";
  CliRun run = RunCli({"--connect", address, "stats"});
  EXPECT_EQ(run.exit_code, 3) << run.err;
  EXPECT_TRUE(Contains(run.err, "start it with: turbined --listen " + address)) << run.err;
}

// A data dir's own socket, given as an address, is that data dir's daemon: the hint says
// --data-dir, which starts it there (--listen would start one with its store elsewhere).
TEST(CliUnreachableTest, ADataDirsSocketGetsADataDirHint) {
  TempDir dir;
  CliRun run = RunCli({"--connect", "unix:" + dir.path() + "/turbined.sock", "stats"});
  EXPECT_EQ(run.exit_code, 3) << run.err;
  EXPECT_TRUE(Contains(run.err, "start it with: turbined --data-dir " + dir.path() + ")"))
      << run.err;
}

TEST(CliUsageTest, UsageErrorsExit2BeforeAnyConnection) {
  TempDir dir;
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {},                               // no command
           {"frobnicate"},                   // unknown command
           {"call"},                         // no function
           {"set", "lonely-key"},            // odd number of set words
           {"set", "a", "1", "b"},           //
           {"call", "f", "[1,"},             // broken JSON
           {"call", "f", R"({"$ref":5})"},   // bad JSON structure
           {"call", "f", "--this", "path"},  // not a reference
           {"--timeout-ms", "0", "ping"},    // out of range
           // gRPC would take the port modulo 65536: another daemon's, 47450 here
           {"--connect", "127.0.0.1:112986", "ping"},
           {"--connect", "[::1]:65536", "ping"},
           // and a negative port modulo 65536 too, and digits before junk as the digits
           {"--connect", "127.0.0.1:-18433", "ping"},
           {"--connect", "127.0.0.1:47103junk", "ping"},
           {"--connect", "localhost:", "ping"},
           // gRPC would ask DNS for "127.0.0.1:47103/x", and for a host named ""
           {"--connect", "127.0.0.1:47103/x", "ping"},
           {"--connect", ":47103", "ping"},
           {"--connect", "unix:", "ping"},  // it said "empty address list", exit 3
           {"--token-file", dir.path() + "/missing", "ping"},
           {"--token-file", "/dev/zero", "ping"},            // read until memory ran out
           {"set", "big", "9223372036854775808"},            // an input's integers are int64
           {"call", std::string("demo.\xff") + "fib", "1"},  // a function name is text
           // refused before tracing, not after: it was only found out at the end
           {"trace", "--seconds", "1", "-o", dir.path() + "/no/such/dir/trace.json"},
       }) {
    std::vector<std::string> full = {"--data-dir", dir.path()};
    full.insert(full.end(), args.begin(), args.end());
    CliRun run = RunCli(full);
    EXPECT_EQ(run.exit_code, 2) << (args.empty() ? "" : args[0]) << ": " << run.err;
    EXPECT_FALSE(Contains(run.err, "cannot reach")) << run.err;
    EXPECT_TRUE(run.err.starts_with("turbine: ")) << run.err;
  }
  // Errors CLI11 finds are said so too. Before: "Could not convert: --depth = -1", "--seconds:
  // Value 0 not in range 1 to 3600", bare.
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"graph", "--depth", "-1", "demo.fib", "3"},
                                             {"trace", "--seconds", "0"},
                                             {"ping", "extra"}}) {
    std::vector<std::string> full = {"--data-dir", dir.path()};
    full.insert(full.end(), args.begin(), args.end());
    CliRun run = RunCli(full);
    EXPECT_EQ(run.exit_code, 2) << args[0] << ": " << run.err;
    EXPECT_TRUE(run.err.starts_with("turbine: ")) << run.err;
    EXPECT_TRUE(Contains(run.err, "(turbine " + args[0] + " --help says more)")) << run.err;
  }
  // A number that is no whole number is said to be one. Before: "Value abc not in range 1 to
  // 3600"; and 010 was taken as 8 (CLI11 reads a leading zero as octal).
  for (const char* seconds : {"abc", "1.5", "0", "3601", "010"}) {
    CliRun run = RunCli({"--data-dir", dir.path(), "trace", "--seconds", seconds});
    EXPECT_EQ(run.exit_code, 2) << run.err;
    EXPECT_TRUE(Contains(
        run.err, absl::StrCat("--seconds: '", seconds, "' is not a whole number from 1 to 3600")))
        << run.err;
  }
  // A global option's error points to the program's help, where it is listed.
  CliRun global = RunCli({"--data-dir", dir.path(), "--timeout-ms", "0", "ping"});
  EXPECT_EQ(global.exit_code, 2) << global.err;
  EXPECT_TRUE(Contains(global.err, "(turbine --help says more)")) << global.err;
}

// Before: "token file DIR is empty", which sent the user looking at a file's content.
TEST(CliUsageTest, ATokenFileThatIsADirectoryIsSaidToBeOne) {
  TempDir dir;
  CliRun run = RunCli({"--data-dir", dir.path(), "--token-file", dir.path(), "ping"});
  EXPECT_EQ(run.exit_code, 2) << run.err;
  EXPECT_TRUE(Contains(run.err, "token file " + dir.path() + " is a directory")) << run.err;
}

// Before: "A subcommand is required", whatever the word that was meant as one.
TEST(CliUsageTest, AnUnknownCommandIsNamedWithTheCommandsThereAre) {
  TempDir dir;
  CliRun run = RunCli({"--data-dir", dir.path(), "bogus", "x"});
  EXPECT_EQ(run.exit_code, 2) << run.err;
  EXPECT_TRUE(Contains(run.err, "turbine: unknown command 'bogus'; the commands are call, "))
      << run.err;
  EXPECT_TRUE(Contains(run.err, "watch, stats, functions, flush, gc, shutdown, ping")) << run.err;
  EXPECT_TRUE(Contains(run.err, "turbine --help")) << run.err;

  CliRun option = RunCli({"--bogus"});
  EXPECT_EQ(option.exit_code, 2) << option.err;
  EXPECT_TRUE(Contains(option.err, "unknown option --bogus, and no command")) << option.err;
  CliRun nothing = RunCli({});
  EXPECT_EQ(nothing.exit_code, 2) << nothing.err;
  EXPECT_TRUE(Contains(nothing.err, "turbine: a command is required; the commands are call"))
      << nothing.err;
}

// Before: "keys is required" (CLI11 checks the command's arguments before it reports an
// option nobody knows).
TEST(CliUsageTest, AnUnknownOptionOfACommandIsNamedBeforeAMissingArgument) {
  TempDir dir;
  for (const char* command : {"unset", "set", "call"}) {
    CliRun run = RunCli({"--data-dir", dir.path(), command, "--bogus"});
    EXPECT_EQ(run.exit_code, 2) << command << ": " << run.err;
    EXPECT_TRUE(Contains(run.err, std::string("turbine: unknown option --bogus for '") + command +
                                      "'"))
        << run.err;
  }
  // A missing argument is said as the CLI's other errors are (before: CLI11's bare
  // "keys is required" and "Run with --help").
  CliRun missing = RunCli({"--data-dir", dir.path(), "unset"});
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
  EXPECT_TRUE(Contains(missing.err, "turbine: unset: keys is required (turbine unset --help"))
      << missing.err;
  // Before the command, it is not the command's.
  CliRun global = RunCli({"--data-dir", dir.path(), "--bogus", "unset"});
  EXPECT_EQ(global.exit_code, 2) << global.err;
  EXPECT_TRUE(Contains(global.err, "turbine: unknown option --bogus (turbine --help")) << global.err;
  // `--` ends the options; it is none itself.
  CliRun dashes = RunCli({"--data-dir", dir.path(), "unset", "--"});
  EXPECT_EQ(dashes.exit_code, 2) << dashes.err;
  EXPECT_FALSE(Contains(dashes.err, "unknown option")) << dashes.err;
  // A negative number is an argument, not an option: the call goes on to the daemon.
  CliRun negative = RunCli({"--data-dir", dir.path(), "call", "-5"});
  EXPECT_EQ(negative.exit_code, 3) << negative.err;
  EXPECT_TRUE(Contains(negative.err, "cannot reach turbined")) << negative.err;
}

// Before: a token file wrapped over two lines (`base64 > token` wraps at 76 characters)
// made the CLI abort with SIGABRT, inside gRPC, on its first call.
TEST(CliUsageTest, ATokenFileOverTwoLinesIsAUsageError) {
  TempDir dir;
  const std::string token_file = dir.path() + "/token";
  std::ofstream(token_file) << std::string(76, 'A') << "\n" << std::string(12, 'B') << "==\n";
  CliRun run = RunCli({"--data-dir", dir.path(), "--token-file", token_file, "ping"});
  EXPECT_EQ(run.exit_code, 2) << run.err;
  EXPECT_TRUE(Contains(run.err, "the token holds a line break at byte 77 of 91")) << run.err;
  EXPECT_TRUE(Contains(run.err, "one line of printable ASCII")) << run.err;
}

TEST(CliUsageTest, HelpExits0AndDocumentsTheExitCodes) {
  CliRun run = RunCli({"--help"});
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_TRUE(Contains(run.out, "3  cannot reach the daemon")) << run.out;
  EXPECT_TRUE(Contains(run.out, "4  the daemon refused the request")) << run.out;
}

class CliTest : public ::testing::Test {
 protected:
  CliRun Run(std::vector<std::string> args, const std::vector<std::string>& env = {}) {
    args.insert(args.begin(), {"--connect", daemon_.address()});
    return RunCli(args, env);
  }

  TempDir dir_;
  FakeTurbine daemon_{dir_.path()};
};

TEST_F(CliTest, CallPrintsTheValueAsOneLineOfJson) {
  CliRun run = Run({"call", "echo", "30", R"("text")", "bare", "[1,2]", R"({"$ref":"12"})"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, R"([30,"text","bare",[1,2],{"$ref":"12"}])"
                     "\n");
}

TEST_F(CliTest, NegativeNumbersAreArgumentsNotOptions) {
  CliRun run = Run({"call", "echo", "-5", "-1.5"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "[-5,-1.5]\n");
}

TEST_F(CliTest, CallWithJsonPrintsRefSourceAndTime) {
  CliRun run = Run({"call", "echo", "1", "--json"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  json reply = json::parse(run.out);
  EXPECT_EQ(reply["value"], json::parse("[1]"));
  EXPECT_EQ(reply["ref"], json::parse(R"({"$ref":"7"})"));
  EXPECT_EQ(reply["source"], "memory");
  EXPECT_EQ(reply["micros"], 5);
}

TEST_F(CliTest, ThisTakesAnIdOrAJsonRef) {
  EXPECT_EQ(Run({"call", "this", "--this", "12"}).out, R"({"$ref":"12"})"
                                                       "\n");
  EXPECT_EQ(Run({"call", "this", "--this", R"({"$ref":"12/Path/3"})"}).out,
            R"({"$ref":"12/Path/3"})"
            "\n");
}

TEST_F(CliTest, AFunctionErrorExits1WithTheMessageOnStderr) {
  CliRun run = Run({"call", "fail"});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(run.out, "");
  EXPECT_TRUE(Contains(run.err, "boom")) << run.err;

  CliRun as_json = Run({"--json", "call", "fail"});
  EXPECT_EQ(as_json.exit_code, 1);
  json reply = json::parse(as_json.out);
  EXPECT_EQ(reply["error"], "boom");
  EXPECT_EQ(reply["code"], "UNKNOWN");
  EXPECT_EQ(reply["source"], "memory");
  EXPECT_FALSE(reply.contains("value"));
}

TEST_F(CliTest, ARefusedRequestExits4WithItsCode) {
  CliRun run = Run({"call", "nope"});
  EXPECT_EQ(run.exit_code, 4);
  EXPECT_EQ(run.err, "turbine: NOT_FOUND: unknown function nope\n");
}

// An UNAVAILABLE the daemon answered itself is not "cannot reach": the daemon is up, and
// the hint how to start it was wrong. Exit code 4, as for any request it refused.
TEST_F(CliTest, AnUnavailableTheDaemonAnsweredIsNotCannotReach) {
  CliRun run = Run({"set", "unwritable", "1"});
  EXPECT_EQ(run.exit_code, 4) << run.err;
  EXPECT_TRUE(Contains(run.err, "answered UNAVAILABLE: the inputs were not set: the store "
                                "cannot write"))
      << run.err;
  EXPECT_FALSE(Contains(run.err, "cannot reach")) << run.err;
}

TEST_F(CliTest, SetSendsAllPairsAtOnce) {
  CliRun run = Run({"set", "a", "1", "b", R"("x")", "c", "word"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "3 inputs changed\n");
  std::vector<v1::InputEntry> sent = daemon_.last_inputs();
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[0].value().int_value(), 1);
  EXPECT_EQ(sent[1].value().string_value(), "x");
  EXPECT_EQ(sent[2].value().string_value(), "word");
  EXPECT_EQ(json::parse(Run({"--json", "set", "a", "1"}).out), json::parse(R"({"changed":1})"));
}

TEST_F(CliTest, FunctionsListsSignatures) {
  CliRun run = Run({"functions"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "demo.fib(i64 n) -> i64  Fibonacci number\n");
  json listed = json::parse(Run({"--json", "functions"}).out);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0]["params"][0]["type"], "i64");
}

TEST_F(CliTest, StatsPrintsEveryFigure) {
  CliRun run = Run({"stats"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_TRUE(Contains(run.out, "tasks              3\n")) << run.out;
  EXPECT_TRUE(Contains(run.out, "hits_memory        11\n")) << run.out;
  EXPECT_TRUE(Contains(run.out, "  demo.fib v1  calls 2")) << run.out;
  json stats = json::parse(Run({"--json", "stats"}).out);
  EXPECT_EQ(stats["tasks"], 3);  // a number, not protobuf-JSON's string
  EXPECT_EQ(stats["functions"][0]["calls"], 2);
}

TEST_F(CliTest, FlushShutdownAndPing) {
  EXPECT_EQ(Run({"flush"}).out, "4 tasks written\n");
  EXPECT_EQ(Run({"ping"}).out, "SERVING\n");
  CliRun shutdown = Run({"shutdown"});
  EXPECT_EQ(shutdown.exit_code, 0) << shutdown.err;
  EXPECT_TRUE(daemon_.shutdown_requested());
}

TEST_F(CliTest, PingOfADaemonNotServingYetExits3) {
  daemon_.SetServing(false);
  CliRun run = Run({"ping"});
  EXPECT_EQ(run.exit_code, 3);
  EXPECT_TRUE(Contains(run.err, "NOT_SERVING")) << run.err;
  // One line that says what is so: it was reached (before, a second line said it could not
  // be, and asked whether it was running).
  EXPECT_FALSE(Contains(run.err, "cannot reach")) << run.err;
  EXPECT_TRUE(Contains(run.err, "shutting down")) << run.err;
}

TEST_F(CliTest, WatchPrintsALinePerValueUntilTheStreamEnds) {
  CliRun run = Run({"watch", "finite"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "1\n2\n");
}

TEST_F(CliTest, InterruptingWatchExits0) {
  CliProcess watch({"--connect", daemon_.address(), "watch", "forever"});
  ASSERT_TRUE(watch.WaitForOutput("3\n"));
  watch.Signal(SIGINT);
  CliRun run = watch.Wait();
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "1\n2\n3\n");
}

class CliTokenTest : public ::testing::Test {
 protected:
  CliTokenTest() { std::ofstream(token_file_) << "s3cret\n"; }

  TempDir dir_;
  FakeTurbine daemon_{dir_.path(), "s3cret"};
  std::string token_file_ = dir_.path() + "/token";
};

TEST_F(CliTokenTest, TheTokenComesFromTheFlagOrTheEnvironment) {
  EXPECT_EQ(RunCli({"--connect", daemon_.address(), "--token-file", token_file_, "stats"})
                .exit_code,
            0);
  EXPECT_EQ(RunCli({"--connect", daemon_.address(), "stats"},
                   {"TURBINE_TOKEN_FILE=" + token_file_})
                .exit_code,
            0);
  CliRun without = RunCli({"--connect", daemon_.address(), "stats"});
  EXPECT_EQ(without.exit_code, 4);
  EXPECT_TRUE(Contains(without.err, "UNAUTHENTICATED")) << without.err;
}

}  // namespace
}  // namespace turbine::testing
