// The `turbine` CLI and the C++ client library against a real turbined process.
#include <absl/strings/match.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <string>
#include <thread>

#include "../storage/temp_dir.h"
#include "cli_runner.h"
#include "daemon_process.h"
#include "turbine/client/client.h"
#include "turbine/client/values.h"

namespace {

using turbine::testing::CliResult;
using turbine::testing::DaemonProcess;
using turbine::testing::RunCli;
using turbine::testing::TempDir;

TEST(CliAgainstDaemon, CallsSetsAndReportsErrorsByExitCode) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str()})) << daemon.log();
  const std::string cli = "--data-dir " + dir.str() + " ";

  CliResult fib = RunCli(cli + "call demo.fib 20");
  EXPECT_EQ(fib.exit_code, 0);
  EXPECT_EQ(fib.out, "6765\n");
  CliResult json = RunCli(cli + "--json call demo.fib 20");
  EXPECT_EQ(json.exit_code, 0);
  EXPECT_NE(json.out.find("\"source\":\"memory\""), std::string::npos) << json.out;

  EXPECT_EQ(RunCli(cli + "set color '\"blue\"' size 3").exit_code, 0);
  EXPECT_EQ(RunCli(cli + "call input.get color").out, "\"blue\"\n");
  EXPECT_EQ(RunCli(cli + "call input.get size").out, "3\n");
  // --raw: a string as a line of text, bytes as they are, anything else as JSON.
  EXPECT_EQ(RunCli(cli + "call --raw input.get color").out, "blue\n");
  EXPECT_EQ(RunCli(cli + "set blob '{\"$bytes\":\"YQpi\"}'").exit_code, 0);
  EXPECT_EQ(RunCli(cli + "call --raw input.get blob").out, "a\nb");
  EXPECT_EQ(RunCli(cli + "call --raw input.get size").out, "3\n");

  EXPECT_EQ(RunCli(cli + "call demo.fib -- -1 2>/dev/null").exit_code, 1) << "function error";
  EXPECT_EQ(RunCli(cli + "call no.such 2>/dev/null").exit_code, 4) << "NOT_FOUND";
  EXPECT_EQ(RunCli(cli + "call demo.fib '[1' 2>/dev/null").exit_code, 2) << "usage";
  EXPECT_EQ(RunCli(cli + "ping").out, "SERVING\n");

  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
  EXPECT_EQ(RunCli(cli + "call demo.fib 20 2>/dev/null").exit_code, 3) << "daemon gone";
}

// What is deployed can be asked. Before: "--version: argument was not expected" (exit 2),
// and the daemon's log did not say which build started.
TEST(CliAgainstDaemon, BothProgramsSayTheirVersion) {
  const CliResult both = RunCli(std::string("--version && ") + TURBINED_PATH + " --version");
  EXPECT_EQ(both.exit_code, 0);
  EXPECT_EQ(both.out,
            std::string("turbine ") + TURBINE_VERSION + "\nturbined " + TURBINE_VERSION + "\n");
  TempDir dir;
  DaemonProcess started;
  ASSERT_TRUE(started.Start({"--data-dir", dir.str()})) << started.log();
  EXPECT_TRUE(
      absl::StrContains(started.log(), std::string("turbined ") + TURBINE_VERSION + " (pid "))
      << started.log();
  EXPECT_EQ(started.Stop(SIGTERM), 0) << started.log();
}

// A daemon killed while it runs a call: the CLI says the connection was lost. Before: "cannot
// reach turbined ... (is it running? ...)" and then gRPC's bare "Socket closed".
TEST(CliAgainstDaemon, ADaemonThatDiesDuringACallIsSaidToHaveGone) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str()})) << daemon.log();
  auto client = turbine::client::Client::Connect(
      turbine::client::ConnectOptions{.address = daemon.address()});
  ASSERT_TRUE(client.ok()) << client.status();
  // The call's task is made when the call arrives (calls are counted when answered).
  const auto tasks = [&] {
    absl::StatusOr<turbine::v1::StatsReply> stats = (*client)->Stats();
    return stats.ok() ? stats->tasks() : 0;
  };
  const uint64_t before = tasks();
  CliResult cut;
  std::thread cli(
      [&] { cut = RunCli("--data-dir " + dir.str() + " call demo.busy 1 10000000 2>&1"); });
  // Killed once the call is in: before that, the CLI would rightly say it cannot reach it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (tasks() == before && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GT(tasks(), before) << "the call never arrived";
  daemon.Stop(SIGKILL);
  cli.join();
  EXPECT_EQ(cut.exit_code, 3) << cut.out;
  EXPECT_TRUE(absl::StrContains(cut.out, "turbine: the connection to turbined at unix:"))
      << cut.out;
  EXPECT_TRUE(absl::StrContains(cut.out, "was lost before it answered")) << cut.out;
  EXPECT_FALSE(absl::StrContains(cut.out, "cannot reach")) << cut.out;
}

// Functions name themselves in their errors, and the CLI says the name once. Before:
// "turbine: demo.fib: demo.fib: n must be >= 0, got -5".
// A bare word that is not UTF-8 cannot be a protocol string: it goes as bytes. Before, the
// request failed (INVALID_ARGUMENT) and `why --max-steps 0` asked for the default.
TEST(CliAgainstDaemon, AWordThatIsNotUtf8IsSentAsBytes) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str()})) << daemon.log();
  const std::string cli = "--data-dir " + dir.str() + " ";
  ASSERT_EQ(RunCli(cli + "set raw \"$(printf 'a\\377b')\"").exit_code, 0);
  CliResult read = RunCli(cli + "--json call input.get raw");
  EXPECT_EQ(read.exit_code, 0);
  EXPECT_NE(read.out.find("{\"$bytes\":\"Yf9i\"}"), std::string::npos) << read.out;
  EXPECT_EQ(RunCli(cli + "why input.get raw --max-steps 0 2>/dev/null").exit_code, 2);
  // Before: "Value 0 not in range 0.000000 to" the largest double, 300 digits.
  const CliResult zero = RunCli(cli + "why input.get raw --max-steps 0 2>&1");
  EXPECT_NE(zero.out.find("'0' is not a whole number from 1 to 4294967295"), std::string::npos)
      << zero.out;
  EXPECT_EQ(RunCli(cli + "why input.get raw --max-steps 1 >/dev/null").exit_code, 0);
}

TEST(CliAgainstDaemon, AFunctionErrorNamesTheFunctionOnce) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data"})) << daemon.log();
  const std::string cli = "--data-dir " + dir.str() + "/data ";
  const std::string missing = dir.str() + "/missing";

  CliResult fib = RunCli(cli + "call demo.fib -5 2>&1");
  EXPECT_EQ(fib.exit_code, 1);
  EXPECT_EQ(fib.out, "turbine: demo.fib: n must be >= 0, got -5\n");
  CliResult read = RunCli(cli + "call fs.read " + missing + " 2>&1");
  EXPECT_EQ(read.exit_code, 1);
  EXPECT_EQ(read.out, "turbine: fs.read: " + missing + ": No such file or directory\n");
  // The name of a function that failed below the one called stays: it says where.
  CliResult lines = RunCli(cli + "call text.lines " + missing + " 2>&1");
  EXPECT_EQ(lines.exit_code, 1);
  EXPECT_EQ(lines.out,
            "turbine: text.lines: fs.read: " + missing + ": No such file or directory\n");
  // The JSON form carries the message as the function raised it.
  CliResult json = RunCli(cli + "--json call demo.fib -5");
  EXPECT_NE(json.out.find(R"("error":"demo.fib: n must be >= 0, got -5")"), std::string::npos)
      << json.out;
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

TEST(CliAgainstDaemon, UnsetDeletesInputsDurably) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str()})) << daemon.log();
  const std::string cli = "--data-dir " + dir.str() + " ";
  ASSERT_EQ(RunCli(cli + "set color '\"blue\"' size 3").exit_code, 0);
  ASSERT_EQ(RunCli(cli + "call input.get color").out, "\"blue\"\n");

  CliResult unset = RunCli(cli + "unset color never.set");
  EXPECT_EQ(unset.exit_code, 0);
  EXPECT_EQ(unset.out, "1 input deleted\n");  // never.set was not set: nothing to delete
  // The reader re-executes (it was invalidated) and sees the input as never set.
  CliResult read = RunCli(cli + "--json call input.get color 2>/dev/null");
  EXPECT_EQ(read.exit_code, 1) << read.out;
  EXPECT_NE(read.out.find("input 'color' is not set"), std::string::npos) << read.out;
  EXPECT_EQ(RunCli(cli + "--json unset color").out, "{\"deleted\":0}\n");
  EXPECT_EQ(RunCli(cli + "unset 2>/dev/null").exit_code, 2) << "no key: usage";
  // A key that is not UTF-8 is a usage error, said before anything is sent. Before, the
  // daemon refused the request (exit 4) after protobuf printed an error line of its own.
  for (const char* command : {"set \"$(printf '\\377')\" 1", "unset \"$(printf '\\377')\""}) {
    CliResult bad = RunCli(cli + command + " 2>&1");
    EXPECT_EQ(bad.exit_code, 2) << command << ": " << bad.out;
    EXPECT_NE(bad.out.find("an input key is text (UTF-8)"), std::string::npos) << bad.out;
    EXPECT_EQ(bad.out.find("libprotobuf"), std::string::npos) << bad.out;
  }

  // Durable: a daemon killed without a snapshot still has it deleted, and `size` kept.
  EXPECT_EQ(daemon.Stop(SIGKILL), 128 + SIGKILL);
  DaemonProcess restarted;
  ASSERT_TRUE(restarted.Start({"--data-dir", dir.str()})) << restarted.log();
  EXPECT_EQ(RunCli(cli + "call input.get color 2>/dev/null").exit_code, 1);
  EXPECT_EQ(RunCli(cli + "call input.get size").out, "3\n");
  EXPECT_EQ(restarted.Stop(SIGTERM), 0) << restarted.log();
}

// A data directory whose socket path does not fit a unix socket address is a usage error
// that says so. Before: "UNKNOWN: Failed to create secure client channel", exit 4 (the
// daemon's refusal), though no daemon was reached and no TLS was asked for.
TEST(ClientAgainstDaemon, ASocketPathTooLongForAUnixAddressIsAUsageError) {
  const std::string data_dir = "/tmp/" + std::string(110, 'l');
  const CliResult run = RunCli("--data-dir " + data_dir + " ping 2>&1");
  EXPECT_EQ(run.exit_code, 2) << run.out;
  EXPECT_NE(run.out.find("more than a unix socket address holds (107)"), std::string::npos)
      << run.out;
  EXPECT_EQ(run.out.find("secure"), std::string::npos) << run.out;
}

// ExpectAnswersOfOne reads `count` replies from `stream`, each the integer 1.
void ExpectAnswersOfOne(turbine::client::CallStream& stream, int count) {
  for (int answered = 0; answered < count; ++answered) {
    std::optional<turbine::client::CallResult> result = stream.Next();
    ASSERT_TRUE(result.has_value()) << "the stream ended after " << answered << " answers";
    ASSERT_TRUE(result->value.ok()) << result->value.status();
    EXPECT_EQ(result->value->int_value(), 1);
  }
}

// A CallStream's batches fit a daemon with a small --max-message-bytes. Before, a batch took
// up to 1 MiB of calls: 4,000 calls of a 50-byte key failed the whole stream.
TEST(ClientAgainstDaemon, ACallStreamOfSmallCallsFitsASmallMessageLimit) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str(), "--max-message-bytes", "65536"}))
      << daemon.log();
  using namespace turbine::client;
  auto client = Client::Connect(ConnectOptions{.address = daemon.address()});
  ASSERT_TRUE(client.ok()) << client.status();
  const std::string key(50, 'k');
  ASSERT_TRUE((*client)->SetInputs({{key, Int(1)}}).ok());
  absl::StatusOr<std::unique_ptr<CallStream>> stream = (*client)->OpenCallStream();
  ASSERT_TRUE(stream.ok()) << stream.status();
  constexpr int kCalls = 4000;
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_TRUE((*stream)->Send(MakeCallRequest("input.get", {Str(key)})).ok());
  }
  ASSERT_NO_FATAL_FAILURE(ExpectAnswersOfOne(**stream, kCalls));
  EXPECT_TRUE((*stream)->Close().ok());
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

// The client's own limit: batches shrink under it, and a call larger than it is refused
// alone. Before, batches of 64 KiB and the large call each failed the whole stream with
// "Sent message larger than max".
TEST(ClientAgainstDaemon, ACallStreamKeepsToItsClientsOwnMessageLimit) {
  TempDir dir;
  DaemonProcess daemon;
  // Its replies are batched under the daemon's limit, which must not be above the client's.
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str(), "--max-message-bytes", "4K"})) << daemon.log();
  using namespace turbine::client;
  auto client =
      Client::Connect(ConnectOptions{.address = daemon.address(), .max_message_bytes = 4096});
  ASSERT_TRUE(client.ok()) << client.status();
  const std::string key(50, 'k');
  ASSERT_TRUE((*client)->SetInputs({{key, Int(1)}}).ok());
  absl::StatusOr<std::unique_ptr<CallStream>> stream = (*client)->OpenCallStream();
  ASSERT_TRUE(stream.ok()) << stream.status();
  constexpr int kCalls = 2000;
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_TRUE((*stream)->Send(MakeCallRequest("input.get", {Str(key)})).ok());
    if (i == kCalls / 2) {
      absl::StatusOr<uint64_t> large =
          (*stream)->Send(MakeCallRequest("input.get", {Str(std::string(5000, 'x'))}));
      EXPECT_EQ(large.status().code(), absl::StatusCode::kResourceExhausted) << large.status();
      EXPECT_TRUE(absl::StrContains(large.status().message(),
                                    "more than this client sends in a message "
                                    "(ConnectOptions.max_message_bytes 4096)"))
          << large.status();
    }
  }
  ASSERT_NO_FATAL_FAILURE(ExpectAnswersOfOne(**stream, kCalls));
  EXPECT_TRUE((*stream)->Close().ok());
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

// The daemon's own answers are not held to a tiny --max-message-bytes: under 1 KiB (the
// least it takes), `turbine functions` (1.6 KB) failed with gRPC's "Sent message larger
// than max". (Results still are: one too large is its call's error, with its ref.)
TEST(ClientAgainstDaemon, TheSmallestMessageLimitStillAnswersTheDaemonsOwnQueries) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str(), "--max-message-bytes", "1K"})) << daemon.log();
  const CliResult functions = RunCli("--data-dir " + dir.str() + " functions");
  EXPECT_EQ(functions.exit_code, 0);
  EXPECT_NE(functions.out.find("fs.read"), std::string::npos) << functions.out;
  EXPECT_GT(functions.out.size(), size_t{1024});
  EXPECT_EQ(RunCli("--data-dir " + dir.str() + " stats").exit_code, 0);
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

TEST(ClientAgainstDaemon, CallSetInputsAndWatch) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str()})) << daemon.log();
  using namespace turbine::client;
  auto client = Client::Connect(ConnectOptions{.address = daemon.address()});
  ASSERT_TRUE(client.ok()) << client.status();

  absl::StatusOr<CallResult> fib = (*client)->Call("demo.fib", {Int(25)});
  ASSERT_TRUE(fib.ok()) << fib.status();
  ASSERT_TRUE(fib->value.ok());
  EXPECT_EQ(fib->value->int_value(), 75025);
  EXPECT_EQ(fib->source, turbine::v1::SOURCE_EXECUTED);

  ASSERT_TRUE((*client)->SetInputs({{"level", Int(1)}}).ok());
  std::vector<int64_t> seen;
  std::atomic<bool> finished{false};
  Cancellation cancel;
  std::thread watcher([&] {
    (void)(*client)->Watch(MakeCallRequest("input.get", {Str("level")}),
                           [&](const CallResult& result) {
                             seen.push_back(result.value.ok() ? result.value->int_value() : -1);
                             finished = seen.size() == 2;  // the first value, then one change
                             return !finished;
                           },
                           &cancel);
  });
  // Set until the watcher has seen the change (the watch may start after the first set).
  for (int64_t level = 2; !finished && level < 1000; ++level) {
    ASSERT_TRUE((*client)->SetInputs({{"level", Int(level)}}).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  cancel.Cancel();  // only matters if the change never arrived (then seen.size() < 2)
  watcher.join();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_LT(seen[0], seen[1]) << "the watch reported a newer value after SetInputs";
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

}  // namespace
