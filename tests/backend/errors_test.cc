// Errors: a failing function's error is its cached output; readers see it; it heals.
#include <gtest/gtest.h>

#include <stdexcept>

#include "counting.h"
#include "turbine/engine.h"

namespace {

using turbine::Input;
using turbine::Task;
using turbine::testing::Executions;

Task<int64_t> CheckedDivideImpl() {
  const int64_t divisor = co_await Input<int64_t>("divisor");
  if (divisor == 0) turbine::Fail("division by zero");
  co_return 100 / divisor;
}
inline const turbine::Function<CheckedDivideImpl> checked_divide{"test.err.divide", 1};

Task<int64_t> PlusOneImpl() { co_return (co_await checked_divide()) + 1; }
inline const turbine::Function<PlusOneImpl> plus_one{"test.err.plus_one", 1};

Task<int64_t> RecoverImpl() {
  try {
    co_return co_await plus_one();
  } catch (const turbine::TaskError& error) {
    co_return -1;  // a reader may handle the error itself
  }
}
inline const turbine::Function<RecoverImpl> recover{"test.err.recover", 1};

Task<int64_t> ThrowsStdImpl(int64_t n) {
  if (n > 0) throw std::out_of_range("n must not be positive");
  co_return n;
}
inline const turbine::Function<ThrowsStdImpl> throws_std{"test.err.throws_std", 1};

TEST(Errors, PropagateToReadersAndAreCached) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInput("divisor", int64_t{0}).ok());
  absl::StatusOr<int64_t> result = engine.Read(plus_one());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(result.status().message(), "division by zero");

  // Cached like a value: reading again executes nothing.
  EXPECT_FALSE(engine.Read(plus_one()).ok());
  EXPECT_EQ(Executions(engine, "test.err.divide"), 1u);
  EXPECT_EQ(Executions(engine, "test.err.plus_one"), 1u);
}

TEST(Errors, HealWhenTheInputIsFixed) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInput("divisor", int64_t{0}).ok());
  ASSERT_FALSE(engine.Read(plus_one()).ok());
  ASSERT_TRUE(engine.SetInput("divisor", int64_t{4}).ok());
  EXPECT_EQ(*engine.Read(plus_one()), 26);
  ASSERT_TRUE(engine.SetInput("divisor", int64_t{0}).ok());
  EXPECT_FALSE(engine.Read(plus_one()).ok());
}

TEST(Errors, AReaderCanCatchThem) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInput("divisor", int64_t{0}).ok());
  EXPECT_EQ(*engine.Read(recover()), -1);
  ASSERT_TRUE(engine.SetInput("divisor", int64_t{5}).ok());
  EXPECT_EQ(*engine.Read(recover()), 21);
}

TEST(Errors, AnyExceptionBecomesTheErrorMessage) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  absl::StatusOr<int64_t> result = engine.Read(throws_std(1));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().message(), "n must not be positive");
  EXPECT_EQ(*engine.Read(throws_std(-1)), -1);
}

}  // namespace
