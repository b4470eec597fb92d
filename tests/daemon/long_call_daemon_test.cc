// Long calls with the real turbined and the real CLI: --timeout-ms bounds a call's silence,
// not its length. A call that keeps finishing tasks goes on past it; one stuck in a single
// long task body is given up; on a terminal, a live line shows the progress.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "../storage/temp_dir.h"
#include "cli_runner.h"
#include "daemon_process.h"
#include "turbine/client/call_stream.h"
#include "turbine/client/client.h"
#include "turbine/client/values.h"
#include "turbine/v1/turbine.grpc.pb.h"

namespace {

using turbine::testing::CliResult;
using turbine::testing::DaemonProcess;
using turbine::testing::RunCli;
using turbine::testing::TempDir;

// RunOnTerminal runs the CLI with a pseudo-terminal for its output (util-linux `script`),
// so that it behaves as for a person; returns what the terminal showed.
std::string RunOnTerminal(const std::string& args) {
  const std::string command = std::string("script -qec '") + TURBINE_CLI_PATH + " " + args +
                              "' /dev/null";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return "";
  std::string out;
  std::array<char, 4096> buffer;
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) out.append(buffer.data(), n);
  ::pclose(pipe);
  return out;
}

// RawStub calls the daemon through the protocol itself, for what the client library keeps
// from its callers (a watch's and a stream's own status).
std::unique_ptr<turbine::v1::Turbine::Stub> RawStub(DaemonProcess& daemon) {
  return turbine::v1::Turbine::NewStub(
      grpc::CreateChannel(daemon.address(), grpc::InsecureChannelCredentials()));
}

class LongCall : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(daemon.Start({"--data-dir", dir.str()})) << daemon.log();
  }
  void TearDown() override { EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log(); }

  TempDir dir;
  DaemonProcess daemon;
  const std::string cli = "--data-dir " + dir.str() + " --timeout-ms 1500 ";
};

TEST_F(LongCall, ACallThatKeepsFinishingTasksGoesOnPastTheDeadline) {
  // 25 tasks of 200 ms: 5 s, more than three times the 1.5 s deadline.
  const auto start = std::chrono::steady_clock::now();
  CliResult steps = RunCli(cli + "call demo.steps 25 200000");
  EXPECT_EQ(steps.exit_code, 0) << steps.out;
  EXPECT_EQ(steps.out, "300\n");  // 0 + 1 + ... + 24
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

// A --timeout-ms shorter than the CLI's poll interval (500 ms) still bounds silence only.
// Before: the first reading of the count was only a baseline, taken after the first wait, so
// such a call that outlasted one poll gave up ("no progress for 400 ms") however busy.
TEST_F(LongCall, AShortTimeoutStillLetsACallThatKeepsFinishingTasksEnd) {
  // 50 tasks of 20 ms: a second, a task finished every 20 ms.
  CliResult steps =
      RunCli("--data-dir " + dir.str() + " --timeout-ms 400 call demo.steps 50 20000");
  EXPECT_EQ(steps.exit_code, 0) << steps.out;
  EXPECT_EQ(steps.out, "1225\n");  // 0 + 1 + ... + 49
}

TEST_F(LongCall, ACallStuckInOneLongTaskIsGivenUpAfterTheDeadline) {
  // One body of 8 s: nothing finishes for longer than the deadline.
  const auto start = std::chrono::steady_clock::now();
  CliResult stuck = RunCli(cli + "call demo.busy 1 8000000");
  EXPECT_EQ(stuck.exit_code, 4) << stuck.out;  // kRpcError: DEADLINE_EXCEEDED
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(6));
}

TEST_F(LongCall, OnATerminalALiveLineShowsTheProgress) {
  const std::string shown = RunOnTerminal(cli + "call demo.steps 12 200000");
  EXPECT_NE(shown.find("tasks finished by the daemon"), std::string::npos) << shown;
  EXPECT_NE(shown.find("66"), std::string::npos) << shown;  // the answer, 0 + ... + 11
  // Without a terminal, no line: the output is the answer alone.
  EXPECT_EQ(RunCli(cli + "call demo.steps 12 200000").out, "66\n");
}

// A call the daemon accepted and then cut short because it stops (after its 5 s of grace)
// says so. Before: "cannot reach turbined ... (is it running?)", as if it never answered.
TEST(LongCallStop, ACallCutByTheDaemonStoppingSaysItIsShuttingDown) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str()})) << daemon.log();
  const std::string cli = "--data-dir " + dir.str() + " ";
  CliResult cut;
  // 100 tasks of 200 ms: 20 s, far past the stop's grace.
  std::thread call([&] { cut = RunCli(cli + "call demo.steps 100 200000 2>&1"); });
  // The call is accepted once the daemon has finished one of its tasks.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  auto executions = [&] {
    const nlohmann::json stats = nlohmann::json::parse(RunCli(cli + "--json stats").out, nullptr,
                                                       /*allow_exceptions=*/false);
    return stats.is_object() && stats["executions"].is_number() ? stats["executions"].get<int>()
                                                                 : 0;
  };
  while (executions() == 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
  call.join();
  EXPECT_EQ(cut.exit_code, 3) << cut.out;
  EXPECT_NE(cut.out.find("is shutting down; the request did not complete"), std::string::npos)
      << cut.out;
  EXPECT_EQ(cut.out.find("cannot reach"), std::string::npos) << cut.out;
}

// Call streams still open when the stop's grace ends are told the daemon stops, whether a
// call on them is still running or none is. Before, gRPC cancelled them: UNAVAILABLE
// "Cancelling all calls", on the Python client too.
TEST(LongCallStop, CallStreamsCutByTheDaemonStoppingSayItIsShuttingDown) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str()})) << daemon.log();
  using namespace turbine::client;
  auto client = Client::Connect(ConnectOptions{.address = daemon.address()});
  ASSERT_TRUE(client.ok()) << client.status();
  auto idle = (*client)->OpenCallStream();
  auto busy = (*client)->OpenCallStream();
  ASSERT_TRUE(idle.ok() && busy.ok());
  ASSERT_TRUE((*idle)->Send(MakeCallRequest("demo.fib", {Int(10)})).ok());
  std::optional<CallResult> answered = (*idle)->Next();
  ASSERT_TRUE(answered.has_value() && answered->value.ok());
  EXPECT_EQ(answered->value->int_value(), 55);
  // 100 tasks of 200 ms: 20 s, far past the stop's grace. Accepted once a task finished.
  ASSERT_TRUE((*busy)->Send(MakeCallRequest("demo.steps", {Int(100), Int(200000)})).ok());
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while ((*client)->Stats().value_or(turbine::v1::StatsReply()).executions() < 2 &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
  for (auto* stream : {idle->get(), busy->get()}) {
    const absl::Status closed = stream->Close();
    EXPECT_EQ(closed.code(), absl::StatusCode::kUnavailable) << closed;
    EXPECT_NE(closed.message().find("shutting down"), std::string::npos) << closed;
  }
}

// A watch open when the daemon stops is told so, as calls and call streams are. Before,
// gRPC cancelled it: UNAVAILABLE "Cancelling all calls".
TEST(LongCallStop, AWatchEndedByTheDaemonStoppingSaysItIsShuttingDown) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str()})) << daemon.log();
  auto stub = RawStub(daemon);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto watch = stub->Watch(&context, turbine::client::MakeCallRequest("demo.fib", {turbine::client::Int(10)}));
  turbine::v1::CallReply reply;
  ASSERT_TRUE(watch->Read(&reply));
  EXPECT_EQ(reply.value().int_value(), 55);
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
  EXPECT_FALSE(watch->Read(&reply));
  const grpc::Status ended = watch->Finish();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::UNAVAILABLE) << ended.error_message();
  EXPECT_NE(ended.error_message().find("shutting down"), std::string::npos)
      << ended.error_message();
}

// A CallBatches stream open when the stop began, some of whose calls the stop refused (each
// answered UNAVAILABLE in its reply), ends UNAVAILABLE "turbined is shutting down" even
// when the calls it had running finish within the grace: a client that reads only the
// stream's status (Python's call_many) learns that the daemon stopped. Before, the stream
// ended OK once every call had its reply.
TEST(LongCallStop, AStreamSomeOfWhoseCallsTheStopRefusedEndsUnavailable) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str()})) << daemon.log();
  auto stub = RawStub(daemon);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto stream = stub->CallBatches(&context);
  const auto batch_of = [](uint64_t id, turbine::v1::CallRequest request) {
    turbine::v1::CallBatch batch;
    request.set_id(id);
    *batch.add_calls() = std::move(request);
    return batch;
  };
  using turbine::client::Int;
  using turbine::client::MakeCallRequest;
  // 1.5 s: well within the stop's 5 s grace.
  ASSERT_TRUE(stream->Write(batch_of(1, MakeCallRequest("demo.busy", {Int(7), Int(1'500'000)}))));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  daemon.Signal(SIGTERM);
  ASSERT_TRUE(daemon.WaitForLog("finishing in-flight calls")) << daemon.log();
  // Quick calls until one is refused: the log line comes just before the stop begins.
  std::optional<turbine::v1::CallReply> busy;
  bool refused = false;
  for (uint64_t id = 2; id < 200 && !refused; ++id) {
    ASSERT_TRUE(stream->Write(batch_of(id, MakeCallRequest("demo.fib", {Int(10)}))));
    bool answered = false;
    turbine::v1::ReplyBatch replies;
    while (!answered && stream->Read(&replies)) {
      for (const turbine::v1::CallReply& reply : replies.replies()) {
        if (reply.id() == 1) busy = reply;
        if (reply.id() != id) continue;
        answered = true;
        refused = reply.has_error() &&
                  reply.error().code() == static_cast<int>(grpc::StatusCode::UNAVAILABLE);
      }
    }
    ASSERT_TRUE(answered) << "the stream ended before call " << id << " was answered";
    if (!refused) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(refused) << "no call was refused while the daemon stopped";
  stream->WritesDone();
  turbine::v1::ReplyBatch replies;
  while (stream->Read(&replies)) {
    for (const turbine::v1::CallReply& reply : replies.replies()) {
      if (reply.id() == 1) busy = reply;
    }
  }
  ASSERT_TRUE(busy.has_value()) << "the running call got no reply";
  EXPECT_TRUE(busy->has_value()) << busy->DebugString();  // it finished within the grace
  const grpc::Status ended = stream->Finish();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::UNAVAILABLE) << ended.error_message();
  EXPECT_NE(ended.error_message().find("shutting down"), std::string::npos)
      << ended.error_message();
  EXPECT_EQ(daemon.Reap(), 0) << daemon.log();
}

}  // namespace
