// Whole-task eviction meets garbage collection, on a real RocksDB directory: a reference
// or a Vc that leads to a task a pass removed makes its holder execute again (once), and a
// task a pass removed leaves the set of tasks evicted whole.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "persisted_engine.h"
#include "task_eviction_fixture.h"
#include "temp_dir.h"
#include "turbine/engine.h"
#include "turbine/gc.h"
#include "turbine/trace.h"
#include "turbine/why.h"

namespace {

using namespace turbine::testing::eviction;  // NOLINT: the fixture's tasks and counters

// PointIntoNothing leaves Pointer(7) in memory, never written, referring to a Text(7) that
// is in neither memory nor the store.
void PointIntoNothing(turbine::testing::PersistedEngine<>& daemon) {
  ASSERT_EQ(*daemon.engine.Read(text(7)), "text 7");
  const turbine::TaskId text_id = text(7).raw().task;
  ASSERT_TRUE(daemon.engine.Flush().ok());
  daemon.engine.EvictTasks(SIZE_MAX);
  ASSERT_EQ(*daemon.engine.Read(pointer(7)), "text 7");  // Text(7) comes back from disk
  daemon.engine.EvictTasks(SIZE_MAX);  // Text(7) leaves again; Pointer(7) is not stored
  ASSERT_TRUE(daemon.owner->backing_store().DeleteTasks({text_id}).ok());
}

// The end state of a race with a GC pass (docs/ARCHITECTURE.md, "Garbage collection"): a
// result in memory, never written, refers to a task that is in neither memory nor the
// store. Reading through it executes the referrer again, as a missing dependency would,
// instead of failing with "no task with id".
TEST_F(TaskEviction, AReferenceIntoNothingMakesTheReferrerExecuteAgain) {
  ASSERT_NO_FATAL_FAILURE(PointIntoNothing(daemon));
  const int texts = text_runs;
  absl::StatusOr<std::string> read = daemon.engine.Read(pointer(7));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, "text 7");
  EXPECT_EQ(text_runs, texts + 1);
}

// The same inside a task body: the reader runs once, the referrer executes again, and a
// watch (a change listener) hears nothing, since no value changed.
TEST_F(TaskEviction, ATaskReadingThroughAReferenceIntoNothingRunsOnce) {
  ASSERT_NO_FATAL_FAILURE(PointIntoNothing(daemon));
  std::atomic<int> heard{0};
  const uint64_t listener = daemon.engine.AddChangeListener([&] { heard.fetch_add(1); });
  const int lengths = length_runs;
  const int texts = text_runs;
  absl::StatusOr<int64_t> read = daemon.engine.Read(length(7));
  daemon.engine.RemoveChangeListener(listener);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, 6);
  EXPECT_EQ(length_runs, lengths + 1);
  EXPECT_EQ(text_runs, texts + 1);
  EXPECT_EQ(heard.load(), 0);
  // Settled: read again, nothing executes.
  ASSERT_EQ(*daemon.engine.Read(length(7)), 6);
  EXPECT_EQ(length_runs, lengths + 1);
}

// A reader that already depends on the referrer: the heal marks it stale while it runs,
// and it still runs once (its new read of the referrer is current).
TEST_F(TaskEviction, AReaderOfTheReferrerReadingIntoNothingRunsOnce) {
  ASSERT_EQ(*daemon.engine.Read(moving_length(7)), 8);  // "text 107"
  ASSERT_TRUE(daemon.engine.SetInput("whole.x", int64_t{2}).ok());
  ASSERT_EQ(*daemon.engine.Read(moving(7)), "text 207");  // MovingLength(7) stays dirty
  const turbine::TaskId text_id = text(207).raw().task;
  ASSERT_TRUE(daemon.engine.Flush().ok());
  daemon.engine.EvictTasks(SIZE_MAX);  // Text(207) leaves: no reader of it is in memory
  ASSERT_GT(daemon.engine.Stats().evicted_tasks, 0u);
  ASSERT_TRUE(daemon.owner->backing_store().DeleteTasks({text_id}).ok());
  const int runs = moving_length_runs;
  const int texts = text_runs;
  absl::StatusOr<int64_t> read = daemon.engine.Read(moving_length(7));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, 8);
  EXPECT_EQ(moving_length_runs, runs + 1);
  EXPECT_EQ(text_runs, texts + 1);  // Text(207) again, by a new task
  ASSERT_EQ(*daemon.engine.Read(moving_length(7)), 8);
  EXPECT_EQ(moving_length_runs, runs + 1);
}

// HeldLength(n) gets Text(n), runs `between_get_and_read` (once) and then reads it; a body
// that catches the read's error answers -1.
std::function<void()> between_get_and_read;
std::atomic<int> held_length_runs{0};
Task<int64_t> HeldLengthImpl(int64_t n) {
  held_length_runs.fetch_add(1);
  const Vc<std::string> got = text(n);
  if (between_get_and_read) std::exchange(between_get_and_read, nullptr)();
  try {
    co_return static_cast<int64_t>((co_await got).size());
  } catch (const turbine::TaskError&) {
    co_return -1;
  }
}
inline const turbine::Function<HeldLengthImpl> held_length{"test.whole.held_length", 1};

// A body holds a Vc from a hit while the task it names leaves memory and a pass removes its
// record: the read finds nothing. It reads as a change: the body runs again, and the same
// call makes a new Text. Before, the body's answer made of the error ("no task with id")
// was kept as clean, linked to nothing, for good.
TEST_F(TaskEviction, ABodyHoldingAVcWhoseTaskWasCollectedRunsAgain) {
  ASSERT_EQ(*daemon.engine.Read(text(9)), "text 9");
  const turbine::TaskId text_id = text(9).raw().task;
  ASSERT_TRUE(daemon.engine.Flush().ok());
  between_get_and_read = [&] {
    daemon.engine.EvictTasks(SIZE_MAX);  // Text(9) leaves: nothing in memory reads it
    ASSERT_TRUE(daemon.owner->backing_store().DeleteTasks({text_id}).ok());
  };
  const int runs = held_length_runs;
  const int texts = text_runs;
  absl::StatusOr<int64_t> read = daemon.engine.Read(held_length(9));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, 6);
  EXPECT_EQ(held_length_runs, runs + 2);
  EXPECT_EQ(text_runs, texts + 1);  // a new Text(9)
  EXPECT_NE(text(9).raw().task, text_id);
  // Settled, and linked: a change of Text(9)'s reader set is in memory again.
  ASSERT_EQ(*daemon.engine.Read(held_length(9)), 6);
  EXPECT_EQ(held_length_runs, runs + 2);
  absl::StatusOr<turbine::WhyReport> why = daemon.engine.Why(held_length(9).raw());
  ASSERT_TRUE(why.ok()) << why.status();
  ASSERT_FALSE(why->steps.empty());
  EXPECT_EQ(why->steps[0].reason, turbine::ExecutionReason::kGarbageCollected);
}

// A Vc that names nothing from the start runs its reader again once, not for ever: the
// error is the answer.
TEST_F(TaskEviction, AnArgumentNamingNothingFailsAfterOneMoreRun) {
  ASSERT_EQ(*daemon.engine.Read(text(10)), "text 10");
  const turbine::TaskId text_id = text(10).raw().task;
  ASSERT_TRUE(daemon.engine.Flush().ok());
  daemon.engine.EvictTasks(SIZE_MAX);
  ASSERT_TRUE(daemon.owner->backing_store().DeleteTasks({text_id}).ok());
  const Vc<int64_t> nothing{turbine::RawVc::Output(text_id)};
  const int runs = plus_one_runs;
  absl::StatusOr<int64_t> read = daemon.engine.Read(plus_one(nothing));
  ASSERT_FALSE(read.ok());
  EXPECT_NE(read.status().message().find("no task with id"), std::string::npos) << read.status();
  EXPECT_EQ(plus_one_runs, runs + 2);
}

// The engine keeps a bit per task evicted whole, to count those loaded back. A task a GC
// pass removes never comes back by its id: its bit goes with it, or the set would only grow
// in a daemon that evicts and collects for months.
TEST_F(TaskEviction, TasksRemovedByAPassLeaveTheEvictedSet) {
  for (int64_t n = 0; n < 20; ++n) {
    ASSERT_EQ(*daemon.engine.Read(text(n)), "text " + std::to_string(n));
  }
  ASSERT_TRUE(daemon.engine.Flush().ok());
  daemon.engine.EvictTasks(SIZE_MAX);
  const uint64_t evicted = daemon.engine.Stats().evicted_tasks_away;
  ASSERT_GE(evicted, 20u);
  ASSERT_EQ(*daemon.engine.Read(text(0)), "text 0");  // loaded back: it leaves the set
  const uint64_t away = daemon.engine.Stats().evicted_tasks_away;
  EXPECT_EQ(away, evicted - 1);
  absl::StatusOr<turbine::GcReport> report = daemon.engine.CollectGarbage(
      turbine::GcOptions{.also_collect = [](turbine::TaskId) { return true; }});
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_GE(report->removed_tasks, 20u);
  // The 19 Texts still away are gone from the store, and from the set (inputs stay).
  EXPECT_LE(daemon.engine.Stats().evicted_tasks_away, away - 19);
}

}  // namespace
