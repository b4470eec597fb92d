// Engine::ReadAsync: the read servers use. A clean value is answered inline; anything else
// is finished on a worker, so the calling thread never runs a task body.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "turbine/cancel.h"
#include "turbine/dependency_graph.h"
#include "turbine/engine.h"
#include "turbine/why.h"

namespace {

using turbine::Engine;
using turbine::Input;
using turbine::Task;
using turbine::Vc;

std::atomic<std::thread::id> body_thread;

Task<int64_t> ScaledImpl(int64_t factor) {
  body_thread = std::this_thread::get_id();
  co_return factor * (co_await Input<int64_t>("async.x"));
}
inline const turbine::Function<ScaledImpl> scaled{"test.async.scaled", 1};

Task<int64_t> FailingImpl() {
  turbine::Fail("no luck");
  co_return 0;
}
inline const turbine::Function<FailingImpl> failing{"test.async.failing", 1};

Task<int64_t> FibImpl(int64_t n);
inline const turbine::Function<FibImpl> fib{"test.async.fib", 1};
Task<int64_t> FibImpl(int64_t n) {
  if (n < 2) co_return n;
  Vc<int64_t> a = fib(n - 1);
  Vc<int64_t> b = fib(n - 2);
  const int64_t first = co_await a;
  const int64_t second = co_await b;
  co_return first + second;
}

// ReadAndWait starts a ReadAsync and waits for its result; `inline_answer` says whether
// `done` ran on the calling thread.
Engine::AsyncRead ReadAndWait(Engine& engine, turbine::RawVc vc, bool* inline_answer) {
  std::promise<Engine::AsyncRead> answer;
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<bool> on_caller{false};
  engine.ReadAsync(vc, [&](Engine::AsyncRead result) {
    on_caller = std::this_thread::get_id() == caller;
    answer.set_value(std::move(result));
  });
  Engine::AsyncRead result = answer.get_future().get();
  *inline_answer = on_caller;
  return result;
}

// ReadAsync, Describe and Why take the Vc a task function returns, as Read does (before,
// only a RawVc: `vc.raw()`, which nothing told).
TEST(ReadAsync, DescribeAndWhyTakeTheVcATaskFunctionReturns) {
  Engine engine(turbine::EngineOptions{.worker_threads = 2});
  Engine::Scope scope(engine);
  const Vc<int64_t> vc = fib(10);
  std::promise<Engine::AsyncRead> answer;
  turbine::CancelToken token;
  engine.ReadAsync(vc, token, [&](Engine::AsyncRead read) { answer.set_value(std::move(read)); });
  Engine::AsyncRead read = answer.get_future().get();
  ASSERT_TRUE(read.status.ok()) << read.status;
  EXPECT_EQ(*static_cast<const int64_t*>(read.value.get()), 55);
  absl::StatusOr<turbine::DependencyGraph> graph = engine.Describe(vc, {.max_depth = 1});
  ASSERT_TRUE(graph.ok()) << graph.status();
  EXPECT_FALSE(graph->nodes.empty());
  absl::StatusOr<turbine::WhyReport> why = engine.Why(vc);
  ASSERT_TRUE(why.ok()) << why.status();
  EXPECT_FALSE(why->steps.empty());
}

TEST(ReadAsync, ComputesOnAWorkerThenAnswersInline) {
  Engine engine(turbine::EngineOptions{.worker_threads = 2});
  Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInput("async.x", int64_t{7}).ok());

  bool inline_answer = true;
  Engine::AsyncRead first = ReadAndWait(engine, scaled(3).raw(), &inline_answer);
  ASSERT_TRUE(first.status.ok()) << first.status;
  EXPECT_EQ(*static_cast<const int64_t*>(first.value.get()), 21);
  EXPECT_EQ(first.type, &turbine::ValueTypeOf<int64_t>());
  EXPECT_FALSE(first.immediate);
  EXPECT_TRUE(first.executed);
  EXPECT_FALSE(inline_answer);
  EXPECT_NE(body_thread.load(), std::this_thread::get_id()) << "the body ran on the caller";

  Engine::AsyncRead second = ReadAndWait(engine, scaled(3).raw(), &inline_answer);
  EXPECT_EQ(*static_cast<const int64_t*>(second.value.get()), 21);
  EXPECT_TRUE(second.immediate);
  EXPECT_FALSE(second.executed);
  EXPECT_TRUE(inline_answer);
}

TEST(ReadAsync, AnInputChangeIsExecutedOffTheCallingThread) {
  Engine engine(turbine::EngineOptions{.worker_threads = 2});
  Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInput("async.x", int64_t{2}).ok());
  ASSERT_EQ(*engine.Read(scaled(5)), 10);

  ASSERT_TRUE(engine.SetInput("async.x", int64_t{4}).ok());
  bool inline_answer = true;
  Engine::AsyncRead changed = ReadAndWait(engine, scaled(5).raw(), &inline_answer);
  EXPECT_EQ(*static_cast<const int64_t*>(changed.value.get()), 20);
  EXPECT_TRUE(changed.executed);
  EXPECT_FALSE(inline_answer);
  EXPECT_NE(body_thread.load(), std::this_thread::get_id());
}

TEST(ReadAsync, ADeepGraphIsComputedOnTheWorkers) {
  Engine engine(turbine::EngineOptions{.worker_threads = 2});
  Engine::Scope scope(engine);
  bool inline_answer = true;
  Engine::AsyncRead result = ReadAndWait(engine, fib(60).raw(), &inline_answer);
  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_EQ(*static_cast<const int64_t*>(result.value.get()), 1548008755920);
  EXPECT_TRUE(result.executed);
}

TEST(ReadAsync, AFunctionErrorIsTheResultsStatus) {
  Engine engine(turbine::EngineOptions{.worker_threads = 1});
  Engine::Scope scope(engine);
  bool inline_answer = false;
  Engine::AsyncRead result = ReadAndWait(engine, failing().raw(), &inline_answer);
  EXPECT_EQ(result.status.code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(result.status.message(), "no luck");
  EXPECT_EQ(result.value, nullptr);
}

// Crunch runs about n / 10 ms, looking at its cancellation every 16 steps.
Task<int64_t> CrunchImpl(int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (i % 16 == 0) turbine::ThrowIfCancelled();
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  co_return n;
}
inline const turbine::Function<CrunchImpl> crunch{"test.async.crunch", 1};

Task<int64_t> CrunchPlusOneImpl(int64_t n) { co_return (co_await crunch(n)) + 1; }
inline const turbine::Function<CrunchPlusOneImpl> crunch_plus_one{"test.async.crunch_plus_one",
                                                                  1};

// Before: now and then (2 runs in 15) the destructor never returned. An execution the stop
// cancelled had a reader parked on it, so it was started again, cancelled again, and so on.
TEST(ReadAsync, DestroyingTheEngineEndsReadsInFlightCancelled) {
  for (int round = 0; round < 8; ++round) {
    auto engine = std::make_unique<Engine>(turbine::EngineOptions{.worker_threads = 2});
    std::atomic<int> answered{0};
    std::atomic<int> cancelled{0};
    {
      Engine::Scope scope(*engine);
      for (int i = 0; i < 6; ++i) {
        engine->ReadAsync(crunch_plus_one(50'000 + 8 * round + i).raw(),
                          [&](Engine::AsyncRead read) {
                            if (read.status.code() == absl::StatusCode::kCancelled) ++cancelled;
                            ++answered;
                          });
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    engine.reset();
    EXPECT_EQ(answered.load(), 6) << "round " << round;
    EXPECT_EQ(cancelled.load(), 6) << "round " << round;
  }
}

}  // namespace
