// Engine::Why and Engine::RecentExecutions: the reason of each execution, followed down to
// the input that changed, an invalidation, and the early cutoffs on the way.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <mutex>
#include <string>
#include <thread>

#include "turbine/engine.h"

namespace {

using turbine::ExecutionReason;
using turbine::Input;
using turbine::Task;
using turbine::WhyStep;

Task<int64_t> DoubleImpl(std::string key) { co_return (co_await Input<int64_t>(key)) * 2; }
inline const turbine::Function<DoubleImpl> doubled{"test.why.double", 1};

Task<int64_t> TopImpl(std::string key) { co_return (co_await doubled(key)) + 1; }
inline const turbine::Function<TopImpl> top{"test.why.top", 1};

Task<int64_t> ParityImpl(std::string key) { co_return (co_await Input<int64_t>(key)) % 2; }
inline const turbine::Function<ParityImpl> parity{"test.why.parity", 1};

Task<std::string> LabelImpl(std::string key) {
  const int64_t remainder = co_await parity(key);  // bound first: the GCC 12 caveat (README)
  co_return remainder == 0 ? "even" : "odd";
}
inline const turbine::Function<LabelImpl> label{"test.why.label", 1};

std::mutex world_mu;
int64_t world_value = 0;
turbine::Invalidator world_watcher;

Task<int64_t> ObserveImpl() {
  std::lock_guard lock(world_mu);
  world_watcher = turbine::CurrentInvalidator();
  co_return world_value;
}
inline const turbine::Function<ObserveImpl> observe{
    "test.why.observe", 1, "the world", {.session_dependent = true}};

Task<int64_t> ObserverImpl() { co_return (co_await observe()) * 10; }
inline const turbine::Function<ObserverImpl> observer{"test.why.observer", 1};

std::string Digest(int64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx",
                static_cast<unsigned long long>(turbine::ValueTypeOf<int64_t>().hash(&value, 0)));
  return text;
}

std::string Id(turbine::TaskId id) { return "@" + std::to_string(id); }

// Link(n) is 1 + Link(n - 1), down to an input: a change of the input makes every link
// execute, each because of the one below it.
Task<int64_t> LinkImpl(int64_t n);
inline const turbine::Function<LinkImpl> link{"test.why.link", 1};
Task<int64_t> LinkImpl(int64_t n) {
  if (n == 0) co_return co_await Input<int64_t>("why.chain");
  const int64_t below = co_await link(n - 1);
  co_return below + 1;
}

TEST(Why, AFirstExecutionIsItsOwnReason) {
  turbine::Engine engine({.worker_threads = 1});
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInput("why.a", int64_t{1}).ok());
  ASSERT_EQ(*engine.Read(top("why.a")), 3);
  absl::StatusOr<turbine::WhyReport> why = engine.Why(top("why.a").raw());
  ASSERT_TRUE(why.ok()) << why.status();
  ASSERT_EQ(why->steps.size(), 1u);
  const WhyStep& step = why->steps[0];
  EXPECT_EQ(step.kind, WhyStep::Kind::kExecuted);
  EXPECT_EQ(step.reason, ExecutionReason::kFirst);
  EXPECT_EQ(step.function, "test.why.top");
  EXPECT_EQ(step.args, R"("why.a")");
  EXPECT_EQ(step.executions, 1u);
  EXPECT_GT(step.end_unix_micros, 0);
  EXPECT_TRUE(step.output_changed);
  EXPECT_EQ(step.output_after, Digest(3));
  EXPECT_EQ(step.text, "executed: first execution; output (none) -> " + Digest(3));
}

// A task whose first execution is running says so, not that nothing has read it.
std::atomic<bool> slow_started{false};
std::atomic<bool> slow_release{false};
Task<int64_t> SlowImpl() {
  slow_started = true;
  while (!slow_release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  co_return 7;
}
inline const turbine::Function<SlowImpl> slow{"test.why.slow", 1};

TEST(Why, ATaskRunningItsFirstExecutionSaysSo) {
  turbine::Engine engine({.worker_threads = 1});
  turbine::Engine::Scope scope(engine);
  std::promise<turbine::Engine::AsyncRead> answer;
  engine.ReadAsync(slow().raw(),
                   [&answer](turbine::Engine::AsyncRead read) { answer.set_value(std::move(read)); });
  while (!slow_started.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  absl::StatusOr<turbine::WhyReport> why = engine.Why(slow().raw());
  slow_release = true;
  ASSERT_TRUE(answer.get_future().get().status.ok());
  ASSERT_TRUE(why.ok()) << why.status();
  ASSERT_FALSE(why->steps.empty());
  EXPECT_EQ(why->steps[0].text, "not executed yet: its first execution is running now");
}

// An unset input reads "(not set)", as one never set does, not as the digest of the error
// its readers get.
TEST(Why, AnUnsetInputSaysNotSet) {
  turbine::Engine engine({.worker_threads = 1});
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInput("why.unset", int64_t{2}).ok());
  ASSERT_TRUE(engine.DeleteInputs({"why.unset"}).ok());
  absl::StatusOr<turbine::WhyReport> why = engine.Why(Input<int64_t>("why.unset").raw());
  ASSERT_TRUE(why.ok()) << why.status();
  ASSERT_EQ(why->steps.size(), 1u);
  EXPECT_EQ(why->steps[0].output_before, Digest(2));
  EXPECT_EQ(why->steps[0].output_after, "(not set)");
  EXPECT_EQ(why->steps[0].text, "input \"why.unset\" changed: " + Digest(2) + " -> (not set)");
}

TEST(Why, AnInputChangeIsFollowedThroughTwoLevels) {
  turbine::Engine engine({.worker_threads = 1});
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInput("why.b", int64_t{1}).ok());
  ASSERT_EQ(*engine.Read(top("why.b")), 3);
  ASSERT_TRUE(engine.SetInput("why.b", int64_t{5}).ok());
  ASSERT_EQ(*engine.Read(top("why.b")), 11);

  absl::StatusOr<turbine::WhyReport> why = engine.Why(top("why.b").raw());
  ASSERT_TRUE(why.ok()) << why.status();
  ASSERT_EQ(why->steps.size(), 3u);
  const turbine::TaskId mid = doubled("why.b").raw().task;
  const turbine::TaskId input = Input<int64_t>("why.b").raw().task;
  EXPECT_EQ(why->root, top("why.b").raw().task);

  const WhyStep& first = why->steps[0];
  EXPECT_EQ(first.depth, 0u);
  EXPECT_EQ(first.reason, ExecutionReason::kDependencyChanged);
  EXPECT_EQ(first.cause, mid);
  EXPECT_EQ(first.executions, 2u);
  EXPECT_EQ(first.output_before, Digest(3));
  EXPECT_EQ(first.output_after, Digest(11));
  EXPECT_EQ(first.text, "executed: dependency changed (test.why.double(\"why.b\") " + Id(mid) +
                            "); output " + Digest(3) + " -> " + Digest(11));

  const WhyStep& second = why->steps[1];
  EXPECT_EQ(second.depth, 1u);
  EXPECT_EQ(second.task, mid);
  EXPECT_EQ(second.reason, ExecutionReason::kDependencyChanged);
  EXPECT_EQ(second.cause, input);

  const WhyStep& root_cause = why->steps[2];
  EXPECT_EQ(root_cause.depth, 2u);
  EXPECT_EQ(root_cause.kind, WhyStep::Kind::kInput);
  EXPECT_EQ(root_cause.task, input);
  EXPECT_EQ(root_cause.function, "turbine.input");
  EXPECT_EQ(root_cause.output_before, Digest(1));
  EXPECT_EQ(root_cause.output_after, Digest(5));
  EXPECT_EQ(root_cause.text, "input \"why.b\" changed: " + Digest(1) + " -> " + Digest(5));
}

TEST(Why, AnEarlyCutoffSaysTheReaderDidNotReExecute) {
  turbine::Engine engine({.worker_threads = 1});
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInput("why.c", int64_t{1}).ok());
  ASSERT_EQ(*engine.Read(label("why.c")), "odd");
  ASSERT_TRUE(engine.SetInput("why.c", int64_t{3}).ok());  // still odd
  ASSERT_EQ(*engine.Read(label("why.c")), "odd");

  absl::StatusOr<turbine::WhyReport> why = engine.Why(label("why.c").raw());
  ASSERT_TRUE(why.ok()) << why.status();
  ASSERT_EQ(why->steps.size(), 3u);
  EXPECT_EQ(why->steps[0].kind, WhyStep::Kind::kExecuted);
  EXPECT_EQ(why->steps[0].reason, ExecutionReason::kFirst);
  EXPECT_EQ(why->steps[0].executions, 1u) << "the reader did not execute again";

  const WhyStep& cutoff = why->steps[1];
  EXPECT_EQ(cutoff.kind, WhyStep::Kind::kCutoff);
  EXPECT_EQ(cutoff.task, parity("why.c").raw().task);
  EXPECT_EQ(cutoff.reason, ExecutionReason::kDependencyChanged);
  EXPECT_EQ(cutoff.executions, 2u);
  EXPECT_FALSE(cutoff.output_changed);
  EXPECT_NE(cutoff.text.find("early cutoff, the reader did NOT re-execute"), std::string::npos)
      << cutoff.text;

  EXPECT_EQ(why->steps[2].kind, WhyStep::Kind::kInput);
  EXPECT_EQ(why->steps[2].output_before, Digest(1));
  EXPECT_EQ(why->steps[2].output_after, Digest(3));
}

Task<int64_t> WhyPingImpl(int64_t n);
Task<int64_t> WhyPongImpl(int64_t n);
inline const turbine::Function<WhyPingImpl> why_ping{"test.why.ping", 1};
inline const turbine::Function<WhyPongImpl> why_pong{"test.why.pong", 1};
Task<int64_t> WhyPingImpl(int64_t n) { co_return 1 + co_await why_pong(n); }
Task<int64_t> WhyPongImpl(int64_t n) { co_return 1 + co_await why_ping(n); }

// On a cycle the reader runs inside the task it reads and ends first. Before, `why` took
// that task for an early cutoff: "re-executed after its reader last executed (first
// execution) and came out equal", its output changed and executed once.
TEST(Why, ATaskOnACycleIsNoEarlyCutoffOfItsReader) {
  turbine::Engine engine({.worker_threads = 1});
  turbine::Engine::Scope scope(engine);
  ASSERT_FALSE(engine.Read(why_ping(1)).ok());
  absl::StatusOr<turbine::WhyReport> why = engine.Why(why_pong(1).raw());
  ASSERT_TRUE(why.ok()) << why.status();
  for (const WhyStep& step : why->steps) {
    EXPECT_NE(step.kind, WhyStep::Kind::kCutoff) << step.text;
  }
}

// A task whose output is a reference to its own cell (fs.read of a racy file) keeps the
// same reference when it executes again; what its readers get is the cell, so that is
// what `why` compares.
Task<turbine::Vc<int64_t>> OwnCellImpl(std::string key) {
  const int64_t value = co_await Input<int64_t>(key);
  co_return turbine::Cell(value);
}
inline const turbine::Function<OwnCellImpl> own_cell{"test.why.own_cell", 1};

TEST(Why, AnOutputThatIsItsOwnCellChangesWithTheCell) {
  turbine::Engine engine({.worker_threads = 1});
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInput("why.own", int64_t{1}).ok());
  ASSERT_EQ(*engine.Read(own_cell("why.own")), 1);
  ASSERT_TRUE(engine.SetInput("why.own", int64_t{2}).ok());
  ASSERT_EQ(*engine.Read(own_cell("why.own")), 2);

  absl::StatusOr<turbine::WhyReport> why = engine.Why(own_cell("why.own").raw());
  ASSERT_TRUE(why.ok()) << why.status();
  ASSERT_FALSE(why->steps.empty());
  const WhyStep& step = why->steps[0];
  EXPECT_EQ(step.executions, 2u);
  EXPECT_TRUE(step.output_changed) << step.text;
  EXPECT_EQ(step.output_before, Digest(1));
  EXPECT_EQ(step.output_after, Digest(2));
  EXPECT_NE(step.text.find("output " + Digest(1) + " -> " + Digest(2)), std::string::npos)
      << step.text;
  const std::vector<turbine::ExecutionRecord> recent = engine.RecentExecutions(1);
  ASSERT_EQ(recent.size(), 1u);
  EXPECT_TRUE(recent[0].output_changed);

  // The same value again: the cell, and so the output, did not change.
  ASSERT_TRUE(engine.SetInput("why.own", int64_t{3}).ok());
  ASSERT_TRUE(engine.SetInput("why.own", int64_t{2}).ok());
  ASSERT_EQ(*engine.Read(own_cell("why.own")), 2);
  why = engine.Why(own_cell("why.own").raw());
  ASSERT_TRUE(why.ok()) << why.status();
  EXPECT_FALSE(why->steps[0].output_changed) << why->steps[0].text;
}

// From a reference to another task to one of its own cells: the after is the cell's
// value, not a reference to the task itself.
Task<turbine::Vc<int64_t>> SwitchImpl(std::string key) {
  const int64_t value = co_await Input<int64_t>(key);
  if (value < 10) co_return doubled(key);
  co_return turbine::Cell(value);
}
inline const turbine::Function<SwitchImpl> switched{"test.why.switched", 1};

TEST(Why, AnOutputThatBecomesItsOwnCellShowsTheCellsValue) {
  turbine::Engine engine({.worker_threads = 1});
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInput("why.switch", int64_t{1}).ok());
  ASSERT_EQ(*engine.Read(switched("why.switch")), 2);
  ASSERT_TRUE(engine.SetInput("why.switch", int64_t{20}).ok());
  ASSERT_EQ(*engine.Read(switched("why.switch")), 20);
  absl::StatusOr<turbine::WhyReport> why = engine.Why(switched("why.switch").raw());
  ASSERT_TRUE(why.ok()) << why.status();
  const WhyStep& step = why->steps[0];
  EXPECT_TRUE(step.output_changed);
  EXPECT_EQ(step.output_before.rfind("ref test.why.double(", 0), 0u) << step.output_before;
  EXPECT_EQ(step.output_after, Digest(20));
}

TEST(Why, AnInvalidationIsARootCause) {
  turbine::Engine engine({.worker_threads = 1});
  turbine::Engine::Scope scope(engine);
  {
    std::lock_guard lock(world_mu);
    world_value = 4;
  }
  ASSERT_EQ(*engine.Read(observer()), 40);
  turbine::Invalidator watcher;
  {
    std::lock_guard lock(world_mu);
    world_value = 7;
    watcher = world_watcher;
  }
  watcher.Invalidate();
  ASSERT_EQ(*engine.Read(observer()), 70);

  absl::StatusOr<turbine::WhyReport> why = engine.Why(observer().raw());
  ASSERT_TRUE(why.ok()) << why.status();
  ASSERT_EQ(why->steps.size(), 2u);
  EXPECT_EQ(why->steps[0].reason, ExecutionReason::kDependencyChanged);
  EXPECT_EQ(why->steps[0].cause, observe().raw().task);
  EXPECT_EQ(why->steps[1].reason, ExecutionReason::kInvalidated);
  EXPECT_EQ(why->steps[1].output_before, Digest(4));
  EXPECT_EQ(why->steps[1].output_after, Digest(7));
}

TEST(Why, ADirtyTaskAndOneNeverRunSayWhatTheyAre) {
  turbine::Engine engine({.worker_threads = 1});
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInput("why.d", int64_t{1}).ok());
  ASSERT_EQ(*engine.Read(top("why.d")), 3);
  ASSERT_TRUE(engine.SetInput("why.d", int64_t{2}).ok());
  absl::StatusOr<turbine::WhyReport> dirty = engine.Why(top("why.d").raw());
  ASSERT_TRUE(dirty.ok());
  EXPECT_TRUE(dirty->steps[0].dirty);
  EXPECT_NE(dirty->steps[0].text.find("dirty now"), std::string::npos);

  absl::StatusOr<turbine::WhyReport> fresh = engine.Why(top("why.never").raw());
  ASSERT_TRUE(fresh.ok());
  ASSERT_EQ(fresh->steps.size(), 1u);
  EXPECT_EQ(fresh->steps[0].kind, WhyStep::Kind::kNotRun);

  EXPECT_EQ(engine.Why(turbine::RawVc::Output(1'000'000)).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(Why, RecentExecutionsListTheNewestFirstWithReasons) {
  turbine::Engine engine({.worker_threads = 1});
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInput("why.e", int64_t{1}).ok());
  ASSERT_EQ(*engine.Read(label("why.e")), "odd");
  ASSERT_TRUE(engine.SetInput("why.e", int64_t{3}).ok());
  ASSERT_EQ(*engine.Read(label("why.e")), "odd");

  const std::vector<turbine::ExecutionRecord> recent = engine.RecentExecutions(10);
  ASSERT_EQ(recent.size(), 3u);  // label, parity, then parity again
  EXPECT_EQ(recent[0].function, "test.why.parity");
  EXPECT_EQ(recent[0].args, R"("why.e")");
  EXPECT_EQ(recent[0].reason, ExecutionReason::kDependencyChanged);
  EXPECT_EQ(recent[0].cause, Input<int64_t>("why.e").raw().task);
  EXPECT_EQ(recent[0].reason_text, "dependency changed: turbine.input(\"why.e\") " +
                                       Id(Input<int64_t>("why.e").raw().task));
  EXPECT_FALSE(recent[0].output_changed) << "1 % 2 == 3 % 2";
  EXPECT_EQ(recent[1].function, "test.why.label");
  EXPECT_EQ(recent[1].reason, ExecutionReason::kFirst);
  EXPECT_TRUE(recent[1].output_changed);
  EXPECT_EQ(recent[2].function, "test.why.parity");
  EXPECT_GT(recent[0].sequence, recent[1].sequence);
  EXPECT_GT(recent[1].sequence, recent[2].sequence);
  for (const turbine::ExecutionRecord& record : recent) {
    EXPECT_GT(record.duration_nanos, 0);
    EXPECT_GT(record.end_unix_micros, 0);
  }
  EXPECT_EQ(engine.RecentExecutions(1).size(), 1u);
}

// A chain of causes as long as a sheet of 20,000 cells in a row is walked to its end: the
// walk used to recurse once per step, and such a chain overflowed the thread's stack.
TEST(Why, AChainOfTwentyThousandCausesIsWalkedToTheInput) {
  constexpr int64_t kLinks = 20'000;
  turbine::Engine engine({.worker_threads = 1});
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInput("why.chain", int64_t{0}).ok());
  ASSERT_EQ(*engine.Read(link(kLinks)), kLinks);
  ASSERT_TRUE(engine.SetInput("why.chain", int64_t{1}).ok());
  ASSERT_EQ(*engine.Read(link(kLinks)), kLinks + 1);

  absl::StatusOr<turbine::WhyReport> why =
      engine.Why(link(kLinks).raw(), {.max_steps = 2 * kLinks});
  ASSERT_TRUE(why.ok()) << why.status();
  EXPECT_FALSE(why->truncated);
  ASSERT_EQ(why->steps.size(), static_cast<size_t>(kLinks + 2));  // the links and the input
  EXPECT_EQ(why->steps[kLinks].task, link(0).raw().task);
  EXPECT_EQ(why->steps[kLinks].depth, static_cast<uint32_t>(kLinks));
  EXPECT_EQ(why->steps.back().kind, WhyStep::Kind::kInput);
  EXPECT_EQ(why->steps.back().depth, static_cast<uint32_t>(kLinks + 1));

  // Cut at max_steps, and says so.
  absl::StatusOr<turbine::WhyReport> cut = engine.Why(link(kLinks).raw(), {.max_steps = 100});
  ASSERT_TRUE(cut.ok());
  EXPECT_TRUE(cut->truncated);
  EXPECT_EQ(cut->steps.size(), 100u);
}

// An input whose change has left the ring of recent input changes is not said to have
// never changed: the ring let older changes go.
TEST(Why, AnInputChangeOlderThanTheRingIsNotSaidNeverToHaveHappened) {
  turbine::Engine engine({.worker_threads = 1});
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInput("why.old", int64_t{1}).ok());
  ASSERT_EQ(*engine.Read(doubled("why.old")), 2);
  absl::StatusOr<turbine::WhyReport> fresh = engine.Why(doubled("why.old").raw());
  ASSERT_TRUE(fresh.ok());
  ASSERT_EQ(fresh->steps.size(), 1u);  // a first execution: no cause to follow

  ASSERT_TRUE(engine.SetInput("why.old", int64_t{2}).ok());
  ASSERT_EQ(*engine.Read(doubled("why.old")), 4);
  for (size_t i = 0; i <= turbine::kRecentInputChanges; ++i) {
    ASSERT_TRUE(engine.SetInput("why.other." + std::to_string(i), int64_t{1}).ok());
  }
  absl::StatusOr<turbine::WhyReport> why = engine.Why(doubled("why.old").raw());
  ASSERT_TRUE(why.ok()) << why.status();
  ASSERT_EQ(why->steps.size(), 2u);
  EXPECT_EQ(why->steps[0].reason, ExecutionReason::kDependencyChanged);
  const WhyStep& input = why->steps[1];
  EXPECT_EQ(input.kind, WhyStep::Kind::kInput);
  EXPECT_EQ(input.text.find("since the engine started"), std::string::npos) << input.text;
  EXPECT_NE(input.text.find("older ones are no longer recorded"), std::string::npos)
      << input.text;
}

TEST(Why, TheRingOfRecentExecutionsIsBounded) {
  turbine::Engine engine({.worker_threads = 1});
  turbine::Engine::Scope scope(engine);
  for (int64_t i = 0; i < static_cast<int64_t>(turbine::kRecentExecutions) + 10; ++i) {
    ASSERT_TRUE(engine.SetInput("why.f", i).ok());
    ASSERT_EQ(*engine.Read(doubled("why.f")), 2 * i);
  }
  const std::vector<turbine::ExecutionRecord> recent =
      engine.RecentExecutions(turbine::kRecentExecutions * 2);
  EXPECT_EQ(recent.size(), turbine::kRecentExecutions);
  EXPECT_EQ(recent.front().sequence, turbine::kRecentExecutions + 10);
  // The task's reason outlives the ring: its last execution is still explained.
  absl::StatusOr<turbine::WhyReport> why = engine.Why(doubled("why.f").raw());
  ASSERT_TRUE(why.ok());
  EXPECT_EQ(why->steps[0].reason, ExecutionReason::kDependencyChanged);
}

}  // namespace
