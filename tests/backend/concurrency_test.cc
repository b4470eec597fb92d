// Concurrency: shared executions, parallel independent tasks, deep recursion.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <latch>
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
