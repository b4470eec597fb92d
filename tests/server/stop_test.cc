// A server stopping with work in flight whose task bodies ignore cancellation, against an
// in-process Server: what answers those reads must outlive them.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <thread>

#include "server_fixture.h"
#include "turbine/server/export.h"

namespace {

std::atomic<bool> stubborn_started{false};
std::atomic<bool> stubborn_returned{false};

// StubbornImpl spins for `micros` without looking at its cancellation, as a body reading a
// large file in one go does.
turbine::Task<int64_t> StubbornImpl(int64_t micros) {
  stubborn_started = true;
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(micros);
  while (std::chrono::steady_clock::now() < until) {
  }
  stubborn_returned = true;
  co_return micros;
}
const turbine::Function<StubbornImpl> stubborn{"test.stubborn", 1,
                                               "spins for `micros`, deaf to cancellation"};
const turbine::server::Export export_stubborn{stubborn, {"micros"}};

// A watch ended by the stop cancels its read, but the read runs the body on its worker and
// answers when the body returns, into the service. The stop must wait for that answer
// before it destroys the service (before, it did not: the answer touched freed memory,
// which AddressSanitizer reports). Seen from here: the stop returns only after the body.
TEST(ServerStop, WaitsForAWatchReadWhoseBodyIgnoresCancellation) {
  turbine::testing::TempDir dir;
  turbine::server::ServerOptions options;
  options.shutdown_grace = std::chrono::milliseconds(50);
  turbine::testing::LiveServer live(dir.str(), options);
  ASSERT_TRUE(live.status.ok()) << live.status;
  grpc::ClientContext context;
  auto watch = live.stub->Watch(
      &context, turbine::testing::Request("test.stubborn", {turbine::testing::Int(1'500'000)}));
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!stubborn_started && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(stubborn_started);
  live.server->Shutdown();
  std::future<void> stopped = std::async(std::launch::async, [&] { live.server->Wait(); });
  if (stopped.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
    std::fprintf(stderr, "the server's stop hangs: a watch's read was never counted as ended\n");
    std::abort();  // rather than wait for ctest's timeout
  }
  EXPECT_TRUE(stubborn_returned) << "the server stopped while a watch's read was in flight";
  context.TryCancel();
  watch->Finish();
}

}  // namespace
