// Memoization: a second call of the same task executes nothing.
#include <gtest/gtest.h>

#include <atomic>

#include "turbine/engine.h"

namespace {

std::atomic<int> fib_runs{0};

turbine::Task<int64_t> FibImpl(int64_t n);
inline const turbine::Function<FibImpl> fib{"test.memo.fib", 1};

turbine::Task<int64_t> FibImpl(int64_t n) {
  fib_runs.fetch_add(1);
  if (n < 2) co_return n;
  auto a = fib(n - 1), b = fib(n - 2);
  co_return (co_await a) + (co_await b);
}

TEST(Memoization, FibComputesOncePerArgument) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  fib_runs = 0;
  EXPECT_EQ(*engine.Read(fib(30)), 832040);
  EXPECT_EQ(fib_runs.load(), 31);
  EXPECT_EQ(*engine.Read(fib(30)), 832040);
  EXPECT_EQ(*engine.Read(fib(20)), 6765);
  EXPECT_EQ(fib_runs.load(), 31);
}

}  // namespace

namespace {

// Task hashes must not depend on process-local ids: the backing store keys tasks by them.
TEST(TaskHashing, AVcHashesByItsCellTypeNameNotItsProcessLocalId) {
  const turbine::ValueType& type = turbine::ValueTypeOf<int64_t>();
  const turbine::RawVc cell = turbine::RawVc::Cell(7, type.id, 2);
  uint64_t expected = turbine::HashScalar(uint64_t{7}, 99);
  expected = turbine::HashScalar(uint32_t{2}, expected);
  expected = turbine::HashScalar(turbine::HashValue(std::string("i64"), 0), expected);
  EXPECT_EQ(turbine::HashValue(cell, 99), expected);
  EXPECT_NE(turbine::HashValue(cell, 99), turbine::HashValue(turbine::RawVc::Output(7), 99));
}

}  // namespace
