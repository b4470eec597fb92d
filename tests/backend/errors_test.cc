// Errors: a failing function's error is its cached output; readers see it; it heals.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

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

// A task function that is a plain function: it checks its argument, then returns another
// coroutine's task. Its check runs before any coroutine does.
Task<int64_t> DoubledImpl(int64_t n) { co_return n * 2; }
int64_t checked_calls = 0;
Task<int64_t> CheckedThenDoubledImpl(int64_t n) {
  ++checked_calls;
  if (n < 0) turbine::Fail("n must be >= 0", absl::StatusCode::kInvalidArgument);
  if (n > 100) throw std::out_of_range("n must be at most 100");
  return DoubledImpl(n);
}
inline const turbine::Function<CheckedThenDoubledImpl> checked_then_doubled{
    "test.err.checked_then_doubled", 1};
Task<int64_t> ReadsCheckedImpl(int64_t n) { co_return co_await checked_then_doubled(n) + 1; }
inline const turbine::Function<ReadsCheckedImpl> reads_checked{"test.err.reads_checked", 1};

std::atomic<bool> service_down{true};

Task<int64_t> FlakyImpl() {
  if (service_down.load()) turbine::Fail("the service is down", absl::StatusCode::kUnavailable);
  co_return 7;
}
inline const turbine::Function<FlakyImpl> flaky{"test.err.flaky", 1};

Task<int64_t> FlakyPlusOneImpl() { co_return (co_await flaky()) + 1; }
inline const turbine::Function<FlakyPlusOneImpl> flaky_plus_one{"test.err.flaky_plus_one", 1};

Task<int64_t> CatchFlakyImpl() {
  try {
    co_return co_await flaky();
  } catch (const turbine::TaskError& error) {
    co_return -1;
  }
}
inline const turbine::Function<CatchFlakyImpl> catch_flaky{"test.err.catch_flaky", 1};

// ReadWithin reads `vc` until it succeeds or `limit` passes; the last result.
template <class T>
absl::StatusOr<int64_t> ReadWithin(turbine::Engine& engine, const T& vc,
                                   std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  absl::StatusOr<int64_t> result = engine.Read(vc);
  while (!result.ok() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    result = engine.Read(vc);
  }
  return result;
}

// UNAVAILABLE and RESOURCE_EXHAUSTED may go away by themselves: such a failure is retried a
// second after it happened, with no input changed, and so are the tasks that read it.
TEST(Errors, ATransientFailureIsNotKept) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  service_down = true;
  absl::StatusOr<int64_t> result = engine.Read(flaky_plus_one());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(*engine.Read(catch_flaky()), -1);  // a reader that handles it keeps a value

  service_down = false;
  result = ReadWithin(engine, flaky_plus_one(), std::chrono::seconds(10));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*result, 8);
  EXPECT_EQ(*engine.Read(catch_flaky()), 7);  // dirty once the failure was retried
  EXPECT_EQ(Executions(engine, "test.err.flaky"), 2u);
}

Task<int64_t> FlakyWithInputImpl() {
  const int64_t x = co_await Input<int64_t>("x");
  if (service_down.load()) turbine::Fail("the service is down", absl::StatusCode::kUnavailable);
  co_return x;
}
inline const turbine::Function<FlakyWithInputImpl> flaky_with_input{"test.err.flaky_with_input",
                                                                     1};

// A task that failed transiently and then succeeded for another reason (an input changed)
// before its retry came is not executed once more by the retry.
TEST(Errors, ARetryOfATaskThatSucceededMeanwhileIsDropped) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  service_down = true;
  ASSERT_TRUE(engine.SetInput("x", int64_t{1}).ok());
  ASSERT_FALSE(engine.Read(flaky_with_input()).ok());
  service_down = false;
  ASSERT_TRUE(engine.SetInput("x", int64_t{2}).ok());
  ASSERT_EQ(*engine.Read(flaky_with_input()), 2);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // past the retry's delay
  EXPECT_EQ(*engine.Read(flaky_with_input()), 2);
  EXPECT_EQ(Executions(engine, "test.err.flaky_with_input"), 2u);
}

// Any other failure is a result like a value: nothing retries it.
TEST(Errors, AFailureThatIsNotTransientIsNotRetried) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInput("divisor", int64_t{0}).ok());
  ASSERT_FALSE(engine.Read(plus_one()).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // past a retry's delay
  ASSERT_FALSE(engine.Read(plus_one()).ok());
  EXPECT_EQ(Executions(engine, "test.err.divide"), 1u);
}

Task<int64_t> FailsWithCodeImpl(int64_t code) {
  turbine::Fail("code " + std::to_string(code), static_cast<absl::StatusCode>(code));
  co_return 0;
}
inline const turbine::Function<FailsWithCodeImpl> fails_with_code{"test.err.with_code", 1};

// An error cannot be OK: Fail(message, kOk) (as in Fail(s.message(), s.code()) of an OK
// status) fails with kUnknown, and so does a number that is no status code. Before, the
// OK one reached Engine::Read's absl::StatusOr, which aborts on an OK status.
TEST(Errors, AFailureWithTheOkCodeOrNoStatusCodeIsUnknown) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  for (int64_t code : {0, 17, -1}) {
    absl::StatusOr<int64_t> read = engine.Read(fails_with_code(code));
    ASSERT_FALSE(read.ok()) << code;
    EXPECT_EQ(read.status().code(), absl::StatusCode::kUnknown) << code;
    EXPECT_EQ(read.status().message(), "code " + std::to_string(code));
  }
  absl::StatusOr<int64_t> chosen = engine.Read(fails_with_code(5));
  EXPECT_EQ(chosen.status().code(), absl::StatusCode::kNotFound);  // a real code is kept
}

Task<int64_t> MakesACellImpl() {
  (void)turbine::Cell(std::string("kept"));
  co_return 1;
}
inline const turbine::Function<MakesACellImpl> makes_a_cell{"test.err.makes_a_cell", 1};

// CellMissing (servers refuse a reference to a cell its task lacks): a cell the finished
// task made is there, another index or type is not; the output's value read as a cell is
// there when it is a value of that type, and so is a failed task's (a read of it gives
// the task's own error, which is not the reference's fault).
TEST(Errors, AFailedTasksOutputReadAsACellIsNotAMissingCell) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  const turbine::RawVc made = makes_a_cell().raw();
  ASSERT_TRUE(engine.Read(makes_a_cell()).ok());
  const turbine::ValueTypeId text = turbine::ValueTypeOf<std::string>().id;
  const turbine::ValueTypeId number = turbine::ValueTypeOf<int64_t>().id;
  EXPECT_FALSE(engine.CellMissing(turbine::RawVc::Cell(made.task, text, 0)));
  EXPECT_TRUE(engine.CellMissing(turbine::RawVc::Cell(made.task, text, 1)));
  EXPECT_TRUE(engine.CellMissing(turbine::RawVc::Cell(made.task, number, 0)));
  EXPECT_FALSE(
      engine.CellMissing(turbine::RawVc::Cell(made.task, number, turbine::kOutputCellIndex)));
  EXPECT_TRUE(engine.CellMissing(turbine::RawVc::Cell(made.task, text, turbine::kOutputCellIndex)));

  const turbine::RawVc failed = fails_with_code(5).raw();
  ASSERT_FALSE(engine.Read(fails_with_code(5)).ok());
  EXPECT_FALSE(
      engine.CellMissing(turbine::RawVc::Cell(failed.task, number, turbine::kOutputCellIndex)));
  EXPECT_FALSE(engine.CellMissing(made));  // an output, not a cell
}

const std::string kMessageWithNul("key 'a\0b' is not set", 20);

Task<int64_t> FailsWithNulImpl() {
  turbine::Fail(kMessageWithNul);
  co_return 0;
}
inline const turbine::Function<FailsWithNulImpl> fails_with_nul{"test.err.nul", 1};

Task<int64_t> ReadsFailsWithNulImpl() { co_return co_await fails_with_nul(); }
inline const turbine::Function<ReadsFailsWithNulImpl> reads_fails_with_nul{"test.err.nul_reader",
                                                                           1};

// A message holding a NUL byte (a key or a path may) is kept whole, by the task and by its
// readers. Before, what() ended it there: "key 'a".
TEST(Errors, AMessageWithANulByteIsKeptWhole) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  ASSERT_EQ(kMessageWithNul.size(), 20u);
  EXPECT_EQ(engine.Read(fails_with_nul()).status().message(), kMessageWithNul);
  EXPECT_EQ(engine.Read(reads_fails_with_nul()).status().message(), kMessageWithNul);
}

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

// Before: what a plain task function threw escaped the engine, and std::terminate ended
// the process (a daemon serving such a function, with it).
TEST(Errors, APlainTaskFunctionThatThrowsFailsItsTask) {
  turbine::Engine engine({.worker_threads = 2});
  turbine::Engine::Scope scope(engine);
  absl::StatusOr<int64_t> negative = engine.Read(checked_then_doubled(-1));
  ASSERT_FALSE(negative.ok());
  EXPECT_EQ(negative.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(negative.status().message(), "n must be >= 0");
  absl::StatusOr<int64_t> large = engine.Read(reads_checked(101));
  ASSERT_FALSE(large.ok());
  EXPECT_EQ(large.status().code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(large.status().message(), "n must be at most 100");
  EXPECT_EQ(*engine.Read(checked_then_doubled(4)), 8);
  EXPECT_EQ(*engine.Read(reads_checked(4)), 9);
  // The failure is the task's cached output, as a coroutine's is.
  const int64_t calls = checked_calls;
  EXPECT_FALSE(engine.Read(checked_then_doubled(-1)).ok());
  EXPECT_EQ(checked_calls, calls);
}

}  // namespace
