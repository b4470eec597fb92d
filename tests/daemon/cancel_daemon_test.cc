// Calls nobody waits for any more stop running, in the real turbined: a client whose
// deadline passed, and every call still open when the daemon shuts down.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <thread>
#include <vector>

#include "../server/requests.h"
#include "../storage/temp_dir.h"
#include "daemon_process.h"
#include "turbine/v1/turbine.grpc.pb.h"

namespace {

using turbine::testing::DaemonProcess;
using turbine::testing::Int;
using turbine::testing::Request;
using turbine::testing::TempDir;
namespace v1 = turbine::v1;

constexpr int64_t kTenSeconds = 10'000'000;  // demo.busy's longest spin, in microseconds

std::unique_ptr<v1::Turbine::Stub> Connect(const std::string& address) {
  return v1::Turbine::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

grpc::Status CallWithDeadline(v1::Turbine::Stub& stub, const v1::CallRequest& request,
                              std::chrono::milliseconds deadline, v1::CallReply* reply) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + deadline);
  return stub.Call(&context, request, reply);
}

// BusyCalls tells how many calls of demo.busy the engine has seen (Stats).
uint64_t BusyCalls(v1::Turbine::Stub& stub) {
  v1::StatsReply stats;
  grpc::ClientContext context;
  if (!stub.Stats(&context, v1::StatsRequest(), &stats).ok()) return 0;
  for (const v1::FunctionStats& function : stats.functions()) {
    if (function.name() == "demo.busy") return function.calls();
  }
  return 0;
}

// Four ten-second calls cancelled by their deadline on two workers: their executions stop,
// so the next call that must execute is answered at once instead of after them. The 5 s
// deadline of that call is a liveness bound, not a measurement (before cancellation it
// waited some 18 s).
TEST(Cancellation, CallsWhoseDeadlinePassedStopRunning) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str(), "--workers", "2"})) << daemon.log();
  auto stub = Connect(daemon.address());
  std::vector<std::thread> callers;
  std::vector<grpc::StatusCode> codes(4, grpc::StatusCode::OK);
  for (int i = 0; i < 4; ++i) {
    callers.emplace_back([&, i] {
      v1::CallReply reply;
      codes[i] = CallWithDeadline(*stub, Request("demo.busy", {Int(i), Int(kTenSeconds)}),
                                  std::chrono::milliseconds(500), &reply)
                     .error_code();
    });
  }
  for (std::thread& caller : callers) caller.join();
  for (grpc::StatusCode code : codes) EXPECT_EQ(code, grpc::StatusCode::DEADLINE_EXCEEDED);

  v1::CallReply reply;
  const grpc::Status next = CallWithDeadline(*stub, Request("demo.busy", {Int(100), Int(1000)}),
                                             std::chrono::seconds(5), &reply);
  ASSERT_TRUE(next.ok()) << next.error_code() << ": " << next.error_message();
  EXPECT_EQ(reply.value().int_value(), 100);
  EXPECT_EQ(reply.source(), v1::SOURCE_EXECUTED);

  // A cancelled execution is not cached as an error: the task runs again (and is cancelled
  // again by this deadline) rather than answering with a stored failure.
  const grpc::Status again =
      CallWithDeadline(*stub, Request("demo.busy", {Int(0), Int(kTenSeconds)}),
                       std::chrono::milliseconds(500), &reply);
  EXPECT_EQ(again.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << again.error_message();
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

// SIGTERM with a ten-second call in flight: the call gets the 5 s grace period, is then
// cancelled, and the daemon exits cleanly well before the call would have ended.
TEST(Cancellation, SigtermWithALongCallInFlightExitsAfterTheGrace) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str(), "--workers", "2"})) << daemon.log();
  auto stub = Connect(daemon.address());
  grpc::Status long_call;
  std::thread caller([&] {
    v1::CallReply reply;
    long_call = CallWithDeadline(*stub, Request("demo.busy", {Int(7), Int(kTenSeconds)}),
                                 std::chrono::seconds(60), &reply);
  });
  // The engine has seen the call once its task exists: it is running or about to.
  while (BusyCalls(*stub) == 0) std::this_thread::yield();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
  const auto took = std::chrono::steady_clock::now() - start;
  caller.join();
  EXPECT_FALSE(long_call.ok());
  // README: accepted calls get 5 s; the margin is for a loaded machine. The call alone
  // would have taken 10 s.
  EXPECT_LT(took, std::chrono::seconds(5) + std::chrono::seconds(3));
}

}  // namespace
