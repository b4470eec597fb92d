// Invalidation: an input change re-executes exactly what it affects, and no more.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "counting.h"
#include "turbine/engine.h"

namespace {

using turbine::Input;
using turbine::Task;
using turbine::Vc;
using turbine::testing::Executions;

Task<int64_t> LeftImpl() { co_return (co_await Input<int64_t>("left")) * 10; }
inline const turbine::Function<LeftImpl> left{"test.inv.left", 1};

Task<int64_t> RightImpl() { co_return (co_await Input<int64_t>("right")) * 100; }
inline const turbine::Function<RightImpl> right{"test.inv.right", 1};

Task<int64_t> SumImpl() { co_return (co_await left()) + (co_await right()); }
inline const turbine::Function<SumImpl> sum{"test.inv.sum", 1};

TEST(Invalidation, ReExecutesExactlyTheAffectedTasks) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInputs({turbine::InputValue::Of("left", int64_t{1}),
                    turbine::InputValue::Of("right", int64_t{2})}).ok());
  EXPECT_EQ(*engine.Read(sum()), 210);

  ASSERT_TRUE(engine.SetInput("left", int64_t{3}).ok());
  EXPECT_EQ(*engine.Read(sum()), 230);
  EXPECT_EQ(Executions(engine, "test.inv.left"), 2u);
  EXPECT_EQ(Executions(engine, "test.inv.right"), 1u);  // not downstream of "left"
  EXPECT_EQ(Executions(engine, "test.inv.sum"), 2u);
}

TEST(Invalidation, SettingAnEqualValueExecutesNothing) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInputs({turbine::InputValue::Of("left", int64_t{1}),
                    turbine::InputValue::Of("right", int64_t{2})}).ok());
  ASSERT_EQ(*engine.Read(sum()), 210);
  const uint64_t executions = engine.Stats().executions;
  ASSERT_TRUE(engine.SetInput("left", int64_t{1}).ok());
  EXPECT_EQ(*engine.Read(sum()), 210);
  EXPECT_EQ(engine.Stats().executions, executions);
}

TEST(Invalidation, NothingRunsUntilSomebodyReads) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInputs({turbine::InputValue::Of("left", int64_t{1}),
                    turbine::InputValue::Of("right", int64_t{2})}).ok());
  ASSERT_EQ(*engine.Read(sum()), 210);
  ASSERT_TRUE(engine.SetInput("left", int64_t{5}).ok());
  EXPECT_EQ(Executions(engine, "test.inv.left"), 1u);  // dirty, not yet recomputed
  EXPECT_EQ(*engine.Read(sum()), 250);
  EXPECT_EQ(Executions(engine, "test.inv.left"), 2u);
}

// Early cutoff: Parity re-executes when x changes, but its result (x % 2) stays the same,
// so Describe, which reads only Parity, does not run again.
Task<int64_t> ParityImpl() { co_return (co_await Input<int64_t>("x")) % 2; }
inline const turbine::Function<ParityImpl> parity{"test.inv.parity", 1};

Task<std::string> DescribeImpl() {
  const int64_t bit = co_await parity();
  co_return bit == 0 ? std::string("even") : std::string("odd");
}
inline const turbine::Function<DescribeImpl> describe{"test.inv.describe", 1};

TEST(EarlyCutoff, AnEqualResultStopsPropagation) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInput("x", int64_t{2}).ok());
  EXPECT_EQ(*engine.Read(describe()), "even");
  ASSERT_TRUE(engine.SetInput("x", int64_t{4}).ok());
  EXPECT_EQ(*engine.Read(describe()), "even");
  EXPECT_EQ(Executions(engine, "test.inv.parity"), 2u);
  EXPECT_EQ(Executions(engine, "test.inv.describe"), 1u);
  ASSERT_TRUE(engine.SetInput("x", int64_t{5}).ok());
  EXPECT_EQ(*engine.Read(describe()), "odd");
  EXPECT_EQ(Executions(engine, "test.inv.describe"), 2u);
}

// A dependency that a re-execution no longer reads stops invalidating the reader.
Task<int64_t> PickImpl() {
  const int64_t which = co_await Input<int64_t>("which");
  if (which == 0) co_return co_await Input<int64_t>("a");
  co_return co_await Input<int64_t>("b");
}
inline const turbine::Function<PickImpl> pick{"test.inv.pick", 1};

TEST(Invalidation, RemovedDependenciesStopInvalidating) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInputs({turbine::InputValue::Of("which", int64_t{0}),
                    turbine::InputValue::Of("a", int64_t{10}),
                    turbine::InputValue::Of("b", int64_t{20})}).ok());
  EXPECT_EQ(*engine.Read(pick()), 10);
  ASSERT_TRUE(engine.SetInput("which", int64_t{1}).ok());
  EXPECT_EQ(*engine.Read(pick()), 20);
  EXPECT_EQ(Executions(engine, "test.inv.pick"), 2u);

  ASSERT_TRUE(engine.SetInput("a", int64_t{11}).ok());  // no longer read
  EXPECT_EQ(*engine.Read(pick()), 20);
  EXPECT_EQ(Executions(engine, "test.inv.pick"), 2u);
  ASSERT_TRUE(engine.SetInput("b", int64_t{21}).ok());
  EXPECT_EQ(*engine.Read(pick()), 21);
  EXPECT_EQ(Executions(engine, "test.inv.pick"), 3u);
}

// Cells: one task produces several cells; a reader of one cell is not invalidated when
// only another cell changes.
Task<std::vector<turbine::ResolvedVc<int64_t>>> SplitImpl() {
  std::vector<int64_t> pair = co_await Input<std::vector<int64_t>>("pair");
  std::vector<turbine::ResolvedVc<int64_t>> cells;
  for (int64_t v : pair) cells.push_back(turbine::Cell(v));
  co_return cells;
}
inline const turbine::Function<SplitImpl> split{"test.inv.split", 1};

Task<int64_t> FirstImpl() { co_return co_await (co_await split())[0]; }
inline const turbine::Function<FirstImpl> first{"test.inv.first", 1};

Task<int64_t> SecondImpl() { co_return co_await (co_await split())[1]; }
inline const turbine::Function<SecondImpl> second{"test.inv.second", 1};

TEST(Cells, AReaderOfOneCellIgnoresChangesToAnother) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInput("pair", std::vector<int64_t>{1, 2}).ok());
  EXPECT_EQ(*engine.Read(first()), 1);
  EXPECT_EQ(*engine.Read(second()), 2);

  ASSERT_TRUE(engine.SetInput("pair", std::vector<int64_t>{1, 3}).ok());
  EXPECT_EQ(*engine.Read(first()), 1);
  EXPECT_EQ(*engine.Read(second()), 3);
  EXPECT_EQ(Executions(engine, "test.inv.split"), 2u);
  EXPECT_EQ(Executions(engine, "test.inv.first"), 1u);  // its cell kept its value
  EXPECT_EQ(Executions(engine, "test.inv.second"), 2u);
}

// ResolvedVc parameters: the engine resolves the caller's Vc before the lookup, so the
// task is keyed by the cell, whichever way the caller named it.
Task<int64_t> BaseImpl(int64_t n) { co_return n * n; }
inline const turbine::Function<BaseImpl> base{"test.inv.base", 1};

Task<int64_t> ForwardImpl(int64_t n) { co_return co_await base(n); }
inline const turbine::Function<ForwardImpl> forward{"test.inv.forward", 1};

Task<int64_t> DoubleImpl(turbine::ResolvedVc<int64_t> v) { co_return 2 * co_await v; }
inline const turbine::Function<DoubleImpl> doubled{"test.inv.double", 1};

Task<int64_t> DoubleViaResolvedImpl(int64_t n) {
  turbine::ResolvedVc<int64_t> cell = co_await base(n).Resolve();
  co_return co_await doubled(cell);
}
inline const turbine::Function<DoubleViaResolvedImpl> double_via_resolved{
    "test.inv.double_via_resolved", 1};

TEST(ResolvedVcArguments, AreResolvedBeforeTheLookup) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  EXPECT_EQ(*engine.Read(doubled(base(3))), 18);
  EXPECT_EQ(*engine.Read(double_via_resolved(3)), 18);
  EXPECT_EQ(Executions(engine, "test.inv.double"), 1u);  // one task: one cell
  EXPECT_EQ(*engine.Read(doubled(base(4))), 32);
  EXPECT_EQ(Executions(engine, "test.inv.double"), 2u);
}

Task<int64_t> UnsetImpl() { co_return co_await Input<int64_t>("never-set-yet"); }
inline const turbine::Function<UnsetImpl> unset{"test.inv.unset", 1};

TEST(Inputs, AKeyGivenTwiceInOneBatchTakesItsLastValueAndCountsOnce) {
  using turbine::InputValue;
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  size_t changed = 0;
  ASSERT_TRUE(engine.SetInputs({InputValue::Of("twice", int64_t{1}), InputValue::Of("twice", int64_t{2}),
                                InputValue::Of("other", int64_t{3})},
                               &changed)
                  .ok());
  EXPECT_EQ(changed, 2u);
  EXPECT_EQ(*engine.Read(Input<int64_t>("twice")), 2);
  // Back to the value it has, by way of another: nothing changed.
  ASSERT_TRUE(engine.SetInputs({InputValue::Of("twice", int64_t{5}), InputValue::Of("twice", int64_t{2})},
                               &changed)
                  .ok());
  EXPECT_EQ(changed, 0u);
  ASSERT_TRUE(engine.DeleteInputs({"twice", "twice", "never-set"}, &changed).ok());
  EXPECT_EQ(changed, 1u);
  EXPECT_FALSE(engine.Read(Input<int64_t>("twice")).ok());
}

TEST(Inputs, ReadingAnUnsetInputIsAnErrorUntilItIsSet) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  absl::StatusOr<int64_t> missing = engine.Read(unset());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("never-set-yet"), std::string::npos);
  ASSERT_TRUE(engine.SetInput("never-set-yet", int64_t{7}).ok());
  EXPECT_EQ(*engine.Read(unset()), 7);
}

TEST(Inputs, ReadingAsTheWrongTypeIsAnError) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInput("never-set-yet", std::string("text")).ok());
  absl::StatusOr<int64_t> wrong = engine.Read(unset());
  ASSERT_FALSE(wrong.ok());
  // Before: "value has type 'string', expected 'i64'", not saying which input.
  EXPECT_NE(wrong.status().message().find("input 'never-set-yet' holds a value of type 'string'"),
            std::string::npos)
      << wrong.status();
}

// A double result that comes out bit-for-bit the same (a NaN) stops the change; one that
// only compares equal (-0.0 after 0.0) does not: SameValue, value_type.h.
Task<std::vector<double>> ScaledImpl() {
  const int64_t mode = co_await Input<int64_t>("mode");
  if (mode < 2) co_return std::vector<double>{std::numeric_limits<double>::quiet_NaN()};
  co_return std::vector<double>{mode == 2 ? 0.0 : -0.0};
}
inline const turbine::Function<ScaledImpl> scaled{"test.inv.scaled", 1};

Task<int64_t> ScaledReaderImpl() { co_return static_cast<int64_t>((co_await scaled()).size()); }
inline const turbine::Function<ScaledReaderImpl> scaled_reader{"test.inv.scaled_reader", 1};

Task<double> ArgumentImpl(double x) { co_return x; }
inline const turbine::Function<ArgumentImpl> argument{"test.inv.argument", 1};

turbine::Engine* engine_for_bumper = nullptr;

// Bumper sets the input it reads, from inside its body.
Task<int64_t> BumperImpl() {
  const int64_t n = co_await Input<int64_t>("bumped");
  const absl::Status set = engine_for_bumper->SetInput("bumped", n + 1);
  if (!set.ok()) turbine::Fail(std::string(set.message()), set.code());
  co_return n;
}
inline const turbine::Function<BumperImpl> bumper{"test.inv.bumper", 1};

// Before: accepted, and the body invalidated itself as it ran, so the read never returned
// (500,000 executions in 6 s).
// ReadOfABumper sets the input `key` to 1 in `engine` (current on this thread) and reads
// the result of `call`, a body that sets `key` from inside: the read's status.
absl::Status ReadOfABumper(turbine::Engine& engine, const std::string& key,
                           const std::function<turbine::Vc<int64_t>()>& call) {
  engine_for_bumper = &engine;
  EXPECT_TRUE(engine.SetInput(key, int64_t{1}).ok());
  return engine.Read(call()).status();
}

TEST(Inputs, SettingAnInputInsideABodyIsRefused) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  const absl::Status read = ReadOfABumper(engine, "bumped", [] { return bumper(); });
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.code(), absl::StatusCode::kFailedPrecondition) << read;
  EXPECT_NE(read.message().find("called inside a task body"), std::string::npos) << read;
  EXPECT_EQ(Executions(engine, "test.inv.bumper"), 1u);
}

// ScopedBumper does what Bumper does, from inside a Scope of its own engine opened in its
// body.
Task<int64_t> ScopedBumperImpl() {
  const int64_t n = co_await Input<int64_t>("scoped_bumped");
  absl::Status set;
  {
    turbine::Engine::Scope scope(*engine_for_bumper);
    set = engine_for_bumper->SetInput("scoped_bumped", n + 1);
  }
  if (!set.ok()) turbine::Fail(std::string(set.message()), set.code());
  co_return n;
}
inline const turbine::Function<ScopedBumperImpl> scoped_bumper{"test.inv.scoped_bumper", 1};

// A Scope of the body's own engine does not make the body's thread look outside it. Before,
// the scope cleared the body's context: the input was set and the read never returned.
TEST(Inputs, AScopeOpenedInsideABodyStillRefusesSettingAnInput) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  const absl::Status read =
      ReadOfABumper(engine, "scoped_bumped", [] { return scoped_bumper(); });
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.code(), absl::StatusCode::kFailedPrecondition) << read;
  EXPECT_EQ(Executions(engine, "test.inv.scoped_bumper"), 1u);
}

turbine::Engine* other_engine = nullptr;

// SetsOther sets an input of another engine from inside its body.
Task<int64_t> SetsOtherImpl() {
  const absl::Status set = other_engine->SetInput("elsewhere", int64_t{5});
  if (!set.ok()) turbine::Fail(std::string(set.message()), set.code());
  co_return 1;
}
inline const turbine::Function<SetsOtherImpl> sets_other{"test.inv.sets_other", 1};

// What the refusal is for is a body's own engine: another engine's inputs are not what the
// body's result follows from.
TEST(Inputs, ABodySetsAnotherEnginesInputs) {
  turbine::Engine engine;
  turbine::Engine other;
  other_engine = &other;
  turbine::Engine::Scope scope(engine);
  absl::StatusOr<int64_t> read = engine.Read(sets_other());
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, 1);
}

TEST(Invalidation, DoublesCompareByTheirBits) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInput("mode", int64_t{0}).ok());
  ASSERT_EQ(*engine.Read(scaled_reader()), 1);
  ASSERT_TRUE(engine.SetInput("mode", int64_t{1}).ok());  // NaN again: unchanged
  ASSERT_EQ(*engine.Read(scaled_reader()), 1);
  EXPECT_EQ(Executions(engine, "test.inv.scaled"), 2u);
  EXPECT_EQ(Executions(engine, "test.inv.scaled_reader"), 1u);
  ASSERT_TRUE(engine.SetInput("mode", int64_t{2}).ok());  // 0.0: changed
  ASSERT_EQ(*engine.Read(scaled_reader()), 1);
  ASSERT_TRUE(engine.SetInput("mode", int64_t{3}).ok());  // -0.0: changed again
  ASSERT_EQ(*engine.Read(scaled_reader()), 1);
  EXPECT_EQ(Executions(engine, "test.inv.scaled_reader"), 3u);

  // A NaN argument names one task, not a new one per call; -0.0 and 0.0 name two.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  (void)engine.Read(argument(nan));
  (void)engine.Read(argument(nan));
  EXPECT_EQ(Executions(engine, "test.inv.argument"), 1u);
  EXPECT_FALSE(std::signbit(*engine.Read(argument(0.0))));
  EXPECT_TRUE(std::signbit(*engine.Read(argument(-0.0))));
  EXPECT_EQ(Executions(engine, "test.inv.argument"), 3u);
}

}  // namespace
