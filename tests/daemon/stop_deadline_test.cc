// A stop is bounded: when something keeps it from ending (here a body that never looks at
// its cancellation; in the field, a store whose writes never return after a full disk),
// turbined exits anyway, as a SIGKILL would, keeping every acknowledged input. Before, it
// stayed alive for good and ignored further signals.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "../server/requests.h"
#include "../storage/temp_dir.h"
#include "cli_runner.h"
#include "daemon_process.h"
#include "turbine/v1/turbine.grpc.pb.h"

namespace {

using turbine::testing::DaemonProcess;
using turbine::testing::Int;
using turbine::testing::Request;
using turbine::testing::Str;
using turbine::testing::TempDir;
namespace v1 = turbine::v1;

std::unique_ptr<v1::Turbine::Stub> Connect(const std::string& address) {
  return v1::Turbine::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

// StartStuck starts turbined_stuck with one worker (and `stop_timeout`), sets an input, and
// starts a call whose body sleeps `seconds` on that worker (the call's thread is returned;
// it ends when the daemon does).
std::thread StartStuck(DaemonProcess& daemon, const TempDir& dir, int seconds,
                       const std::string& stop_timeout = "60s") {
  daemon.UseBinary(TURBINED_STUCK_PATH);
  EXPECT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data", "--workers", "1",
                            "--stop-timeout", stop_timeout}))
      << daemon.log();
  auto stub = Connect(daemon.address());
  v1::SetInputsRequest set;
  auto* entry = set.add_inputs();
  entry->set_key("kept");
  entry->mutable_value()->set_int_value(7);
  v1::SetInputsReply set_reply;
  grpc::ClientContext set_context;
  EXPECT_TRUE(stub->SetInputs(&set_context, set, &set_reply).ok());
  std::thread call([address = daemon.address(), seconds] {
    auto stub = Connect(address);
    v1::CallReply reply;
    grpc::ClientContext context;
    (void)stub->Call(&context, Request("test.stuck", {Int(seconds)}), &reply);
  });
  // The call is the daemon's once its task exists (the input's is the first): a stop then
  // waits for it. Under load it came later than a fixed second, after the stop had begun,
  // and was refused.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (;;) {
    v1::StatsReply stats;
    grpc::ClientContext stats_context;
    if (stub->Stats(&stats_context, v1::StatsRequest(), &stats).ok() && stats.tasks() >= 2) break;
    if (std::chrono::steady_clock::now() > until) {
      ADD_FAILURE() << "the daemon never received the call";
      break;
    }
    daemon.PumpLog(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(daemon.PumpLog(std::chrono::milliseconds(200)));  // the body starts meanwhile
  return call;
}

// The acknowledged input survived the cut.
void ExpectInputKept(const TempDir& dir) {
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data"})) << daemon.log();
  auto stub = Connect(daemon.address());
  v1::CallReply reply;
  grpc::ClientContext context;
  ASSERT_TRUE(stub->Call(&context, Request("input.get", {Str("kept")}), &reply)
                  .ok());
  EXPECT_EQ(reply.value().int_value(), 7);
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

TEST(StopDeadline, ASecondSignalEndsAStopThatCannotEnd) {
  TempDir dir;
  DaemonProcess daemon;
  std::thread call = StartStuck(daemon, dir, 300);
  daemon.Signal(SIGTERM);
  // Past the calls' 5 s of grace: the stop waits for the body, which never ends.
  EXPECT_TRUE(daemon.PumpLog(std::chrono::seconds(7))) << "exited before the second signal";
  daemon.Signal(SIGTERM);
  EXPECT_EQ(daemon.ReapWithin(std::chrono::seconds(5)), 4) << daemon.log();
  EXPECT_NE(daemon.log().find("received while stopping"), std::string::npos)
      << daemon.log();
  daemon.Stop(SIGKILL);  // if it is still there, the call's thread ends with it
  call.join();
  ExpectInputKept(dir);
}

// A request that comes during a stop is refused, and the refusal tells a client's retry
// policy not to send it again (on this daemon as it stops, or on the next one), as every
// request a stop ends does. Before, the unary refusals lacked it: the Python client sent
// each three more times, 0.4 s in all. (Every unary RPC refuses through RefuseForStop.)
TEST(StopDeadline, ARequestRefusedDuringTheStopIsNotToBeRetried) {
  TempDir dir;
  DaemonProcess daemon;
  std::thread call = StartStuck(daemon, dir, 300);
  daemon.Signal(SIGTERM);
  ASSERT_TRUE(daemon.WaitForLog("received: finishing")) << daemon.log();
  auto stub = Connect(daemon.address());
  const auto tasks = [&] {
    v1::StatsReply stats;
    grpc::ClientContext stats_context;
    EXPECT_TRUE(stub->Stats(&stats_context, v1::StatsRequest(), &stats).ok());
    return stats.tasks();
  };
  const uint64_t tasks_before = tasks();
  grpc::ClientContext context;
  v1::CallReply reply;
  const grpc::Status status = stub->Call(&context, Request("demo.fib", {Int(10)}), &reply);
  // Refused whole: no task made, nothing started. Before, the refused call's task was made
  // and its execution left running for nobody.
  EXPECT_EQ(tasks(), tasks_before);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << daemon.log();
  EXPECT_EQ(status.error_message(), "turbined is shutting down");
  const auto& trailers = context.GetServerTrailingMetadata();
  const auto pushback = trailers.find("grpc-retry-pushback-ms");
  ASSERT_NE(pushback, trailers.end());
  EXPECT_EQ(std::string(pushback->second.data(), pushback->second.size()), "-1");
  daemon.Stop(SIGKILL);
  call.join();
}

// The same signal twice at once, as `timeout` sends it (to the process, then to its process
// group): one stop, which writes its last snapshot and exits 0. Before, the second one cut
// the stop short (exit code 4, the socket left behind).
TEST(StopDeadline, TheSameSignalTwiceAtOnceIsOneStop) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data"})) << daemon.log();
  // Sent back to back, the two would merge while pending (a signal is not queued twice):
  // the second comes once the first was taken, as from `timeout` on another core.
  const auto first = std::chrono::steady_clock::now();
  daemon.Signal(SIGTERM);
  ASSERT_TRUE(daemon.WaitForLog("received: finishing")) << daemon.log();
  daemon.Signal(SIGTERM);
  ASSERT_LT(std::chrono::steady_clock::now() - first, std::chrono::milliseconds(1000))
      << "the machine took a second to pass a log line on: no longer 'at once'";
  EXPECT_EQ(daemon.ReapWithin(std::chrono::seconds(20)), 0) << daemon.log();
  EXPECT_NE(daemon.log().find("received again at once"), std::string::npos) << daemon.log();
  EXPECT_EQ(daemon.log().find("received while stopping"), std::string::npos) << daemon.log();
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "data" / "turbined.sock")) << daemon.log();
}

TEST(StopDeadline, ASignalEndsAStopTheShutdownRpcBegan) {
  TempDir dir;
  DaemonProcess daemon;
  std::thread call = StartStuck(daemon, dir, 300);
  auto stub = Connect(daemon.address());
  v1::ShutdownReply reply;
  grpc::ClientContext context;
  ASSERT_TRUE(stub->Shutdown(&context, v1::ShutdownRequest(), &reply).ok());
  EXPECT_TRUE(daemon.PumpLog(std::chrono::seconds(2))) << "exited before the signal";
  daemon.Signal(SIGTERM);
  EXPECT_EQ(daemon.ReapWithin(std::chrono::seconds(5)), 4) << daemon.log();
  EXPECT_NE(daemon.log().find("received while stopping"), std::string::npos) << daemon.log();
  daemon.Stop(SIGKILL);  // if it is still there, the call's thread ends with it
  call.join();
  ExpectInputKept(dir);
}

TEST(StopDeadline, AStopThatCannotEndIsCutShortAfterTheStopTimeout) {
  TempDir dir;
  DaemonProcess daemon;
  std::thread call = StartStuck(daemon, dir, 300, "8s");
  const auto stop = std::chrono::steady_clock::now();
  daemon.Signal(SIGTERM);
  EXPECT_EQ(daemon.ReapWithin(std::chrono::seconds(60)), 4) << daemon.log();
  const auto took = std::chrono::steady_clock::now() - stop;
  EXPECT_GE(took, std::chrono::seconds(7));
  EXPECT_LT(took, std::chrono::seconds(30));
  EXPECT_NE(daemon.log().find("the stop did not end within 8 s"), std::string::npos)
      << daemon.log();
  daemon.Stop(SIGKILL);  // if it is still there, the call's thread ends with it
  call.join();
  ExpectInputKept(dir);
}

// A stop right after a large answer ends at once. gRPC writes an answer the socket cannot
// take at once with the help of a poller thread that waits up to 10 s at a time, and
// gRPC's own clean-up, which ran when the server was destroyed, waited for that thread:
// the stop took up to 10 s longer, here cut short by the 3 s --stop-timeout (exit code 4).
TEST(StopDeadline, AStopRightAfterALargeAnswerEndsAtOnce) {
  TempDir dir;
  const std::string file = dir.str() + "/large";
  constexpr size_t kBytes = size_t{3} << 20;
  {
    std::string bytes(kBytes, '\0');
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 131) >> 7);
    std::ofstream(file, std::ios::binary) << bytes;
  }
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data", "--stop-timeout", "3s"}))
      << daemon.log();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  auto stub = v1::Turbine::NewStub(
      grpc::CreateCustomChannel(daemon.address(), grpc::InsecureChannelCredentials(), args));
  // Read at once, the answers grow the flow-control windows past what the socket holds.
  for (int read = 0; read < 3; ++read) {
    v1::CallReply reply;
    grpc::ClientContext context;
    ASSERT_TRUE(stub->Call(&context, Request("fs.read", {Str(file)}), &reply).ok());
  }
  // Then the client takes nothing from the socket for a while: the answer fills it.
  grpc::CompletionQueue queue;
  grpc::ClientContext context;
  v1::CallReply reply;
  grpc::Status status;
  auto call = stub->AsyncCall(&context, Request("fs.read", {Str(file)}), &queue);
  call->Finish(&reply, &status, nullptr);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  void* tag = nullptr;
  bool ok = false;
  ASSERT_TRUE(queue.Next(&tag, &ok));
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(reply.value().bytes_value().size(), kBytes);
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
  queue.Shutdown();
  while (queue.Next(&tag, &ok)) {
  }
}

// `turbine shutdown` returns once the daemon has let go of its data directory, so one
// started on it right after runs. The Shutdown RPC answers when the stop begins: here the
// stop waits two seconds for a body that ignores its cancellation, and before, the next
// daemon exited 3 ("another turbined ... is serving"), as the README's own restart
// (`turbine shutdown && turbined ...`) did about half the time.
TEST(StopDeadline, TurbineShutdownReturnsOnceTheDaemonHasLetGoOfItsDataDir) {
  TempDir dir;
  DaemonProcess daemon;
  std::thread call = StartStuck(daemon, dir, 2);
  const turbine::testing::CliResult shutdown =
      turbine::testing::RunCli("--data-dir " + dir.str() + "/data shutdown");
  EXPECT_EQ(shutdown.exit_code, 0);
  EXPECT_EQ(shutdown.out, "turbined is shutting down\n");
  DaemonProcess next;
  EXPECT_TRUE(next.Start({"--data-dir", dir.str() + "/data"})) << next.log();
  EXPECT_EQ(daemon.ReapWithin(std::chrono::seconds(10)), 0) << daemon.log();
  EXPECT_EQ(next.Stop(SIGTERM), 0) << next.log();
  call.join();
}

}  // namespace
