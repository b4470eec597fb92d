// Concurrency: shared executions, parallel independent tasks, deep recursion.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "counting.h"
#include "turbine/engine.h"

namespace {

using turbine::Task;
using turbine::testing::Executions;

Task<int64_t> SlowSquareImpl(int64_t n) {
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  co_return n * n;
}
inline const turbine::Function<SlowSquareImpl> slow_square{"test.conc.slow_square", 1};

Task<int64_t> InputOfImpl(int64_t i) {
  co_return co_await turbine::Input<int64_t>("batch." + std::to_string(i));
}
inline const turbine::Function<InputOfImpl> input_of{"test.conc.input_of", 1};

// AllInputs(n) reads InputOf(0) ... InputOf(n - 1): each one input of a batch, through a
// task of its own.
Task<std::vector<int64_t>> AllInputsImpl(int64_t n) {
  std::vector<int64_t> values;
  for (int64_t i = 0; i < n; ++i) values.push_back(co_await input_of(i));
  co_return values;
}
inline const turbine::Function<AllInputsImpl> all_inputs{"test.conc.all_inputs", 1};

// A batch of SetInputs is atomic for reads that run while it is applied, too. Before, a
// read could see some inputs of a batch changed and others not (1 to 3% of the reads here
// saw [v, v, v, v - 1, v - 1]): the tasks that read the new ones executed after their
// inputs changed, the others were clean from before and not yet marked dirty.
TEST(Concurrency, AReadDuringABatchOfInputsSeesAllOfItOrNone) {
  turbine::Engine engine(turbine::EngineOptions{.worker_threads = 1});
  constexpr int kInputs = 5;
  auto set_all = [&](int64_t value) {
    std::vector<turbine::InputValue> batch;
    for (int i = 0; i < kInputs; ++i) {
      batch.push_back(turbine::InputValue::Of("batch." + std::to_string(i), value));
    }
    return engine.SetInputs(std::move(batch));
  };
  ASSERT_TRUE(set_all(0).ok());
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::atomic<int> torn{0};
  std::thread reader([&] {
    turbine::Engine::Scope scope(engine);
    while (!done.load()) {
      absl::StatusOr<std::vector<int64_t>> values = engine.Read(all_inputs(kInputs));
      ASSERT_TRUE(values.ok()) << values.status();
      ++reads;
      if (std::ranges::min(*values) != std::ranges::max(*values)) ++torn;
    }
  });
  for (int64_t value = 1; value <= 3000; ++value) {
    ASSERT_TRUE(set_all(value).ok());
    if (value % 100 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  done = true;
  reader.join();
  EXPECT_GT(reads.load(), 1000);
  EXPECT_EQ(torn.load(), 0) << "of " << reads.load() << " reads";
}

TEST(Concurrency, CallersOfOneTaskShareOneExecution) {
  turbine::Engine engine;
  constexpr int kThreads = 8;
  std::latch start(kThreads);
  std::vector<int64_t> results(kThreads, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      turbine::Engine::Scope scope(engine);
      start.arrive_and_wait();
      results[i] = engine.Read(slow_square(12)).value_or(-1);
    });
  }
  for (std::thread& t : threads) t.join();
  for (int64_t r : results) EXPECT_EQ(r, 144);
  EXPECT_EQ(Executions(engine, "test.conc.slow_square"), 1u);
}

// Two tasks that can only both return true if they run at the same time: each waits
// (bounded) for the other to start.
std::atomic<int> rendezvous_started{0};

Task<bool> RendezvousImpl(int64_t) {
  rendezvous_started.fetch_add(1);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (rendezvous_started.load() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  co_return rendezvous_started.load() >= 2;
}
inline const turbine::Function<RendezvousImpl> rendezvous{"test.conc.rendezvous", 1};

Task<int64_t> BothImpl() {
  auto a = rendezvous(1), b = rendezvous(2);  // created first, awaited after: both run
  const bool met_a = co_await a;
  const bool met_b = co_await b;
  co_return (met_a ? 1 : 0) + (met_b ? 1 : 0);
}
inline const turbine::Function<BothImpl> both{"test.conc.both", 1};

TEST(Concurrency, IndependentTasksRunInParallel) {
  turbine::Engine engine(turbine::EngineOptions{.worker_threads = 2});
  turbine::Engine::Scope scope(engine);
  rendezvous_started = 0;
  EXPECT_EQ(*engine.Read(both()), 2);
}

// A chain 20,000 calls deep: awaiting holds no thread and no native stack per level.
Task<int64_t> ChainImpl(int64_t n);
inline const turbine::Function<ChainImpl> chain{"test.conc.chain", 1};
Task<int64_t> ChainImpl(int64_t n) {
  if (n == 0) co_return 0;
  co_return 1 + co_await chain(n - 1);
}

constexpr int64_t kModulus = 1'000'000'007;
Task<int64_t> FibModImpl(int64_t n);
inline const turbine::Function<FibModImpl> fib_mod{"test.conc.fib_mod", 1};
Task<int64_t> FibModImpl(int64_t n) {
  if (n < 2) co_return n;
  auto a = fib_mod(n - 1), b = fib_mod(n - 2);
  co_return ((co_await a) + (co_await b)) % kModulus;
}

TEST(Concurrency, DeepRecursionNeedsNoThreadPerLevel) {
  turbine::Engine engine(turbine::EngineOptions{.worker_threads = 2});
  turbine::Engine::Scope scope(engine);
  EXPECT_EQ(*engine.Read(chain(20000)), 20000);

  int64_t a = 0, b = 1;  // iterative reference
  for (int i = 0; i < 20000; ++i) {
    const int64_t next = (a + b) % kModulus;
    a = b;
    b = next;
  }
  EXPECT_EQ(*engine.Read(fib_mod(20000)), a);
  EXPECT_EQ(Executions(engine, "test.conc.fib_mod"), 20001u);
}

}  // namespace

namespace {

// A hint queued when a task was created must not run the task again once it has become
// dirty: dirty tasks run when somebody reads them, not before.
std::atomic<bool> release_blocker{false};
std::atomic<int> child_runs{0};

Task<int64_t> BlockerImpl() {
  while (!release_blocker.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  co_return 0;
}
inline const turbine::Function<BlockerImpl> blocker{"test.conc.blocker", 1};

Task<int64_t> ChildImpl() {
  child_runs.fetch_add(1);
  co_return co_await turbine::Input<int64_t>("x");
}
inline const turbine::Function<ChildImpl> child{"test.conc.child", 1};

Task<int64_t> ParentImpl() { co_return co_await child(); }
inline const turbine::Function<ParentImpl> parent{"test.conc.parent", 1};

TEST(Concurrency, ALeftoverHintDoesNotRunADirtyTaskNobodyReads) {
  turbine::Engine engine(turbine::EngineOptions{.worker_threads = 1});
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInput("x", int64_t{1}).ok());
  // Keep the only worker busy, so the hint queued for child() stays in the queue while
  // this thread runs parent and child inline.
  turbine::Vc<int64_t> busy = blocker();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_EQ(*engine.Read(parent()), 1);
  ASSERT_EQ(child_runs.load(), 1);
  ASSERT_TRUE(engine.SetInput("x", int64_t{2}).ok());  // child and parent are dirty; nobody reads them
  release_blocker.store(true);       // the worker now pops child's old hint
  ASSERT_EQ(*engine.Read(busy), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(child_runs.load(), 1) << "child executed with no reader";
  EXPECT_EQ(*engine.Read(parent()), 2);
  EXPECT_EQ(child_runs.load(), 2);
}

}  // namespace
