// Whole-task eviction (Engine::EvictTasks, evict.cc) on a real RocksDB directory: an
// evicted task comes back from the store without executing, a change still reaches every
// reader whose path to it went through tasks not in memory, a task read by one in memory
// stays, and readers racing the evictor never see a freed record or a stale value.
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

TEST_F(TaskEviction, AnEvictedTaskComesBackFromTheStoreWithoutExecuting) {
  for (int64_t n = 0; n < 5; ++n) ASSERT_EQ(*daemon.engine.Read(root(n)), Expected(1, n));
  ASSERT_EQ(Runs(), 15);
  ASSERT_TRUE(daemon.engine.Flush().ok());
  const int64_t tasks_before = Stats().tasks;
  EXPECT_GT(daemon.engine.EvictTasks(SIZE_MAX), 0u);
  // Roots first, then what only they read: all three levels go (the input stays).
  EXPECT_EQ(Stats().evicted_tasks, 15u);
  EXPECT_EQ(Stats().tasks, tasks_before - 15);

  for (int64_t n = 0; n < 5; ++n) EXPECT_EQ(*daemon.engine.Read(root(n)), Expected(1, n));
  EXPECT_EQ(Runs(), 15) << "an evicted task executed again";
  EXPECT_EQ(Stats().reloaded_tasks, 5u);  // the roots: trusted, nothing below was needed
}

// An input leaves memory whole like any stored task once nothing in memory reads it (its
// value is in the inputs table), comes back with its value and id, and a change of it
// while it is out reaches its readers. Inputs used to stay in memory for good.
TEST_F(TaskEviction, AnInputLeavesMemoryWholeAndComesBackWithItsValue) {
  KeepXInMemory();
  y_reader_runs = 0;
  ASSERT_TRUE(daemon.engine.SetInput("whole.y", int64_t{5}).ok());
  const turbine::TaskId input = Input<int64_t>("whole.y").raw().task;
  ASSERT_EQ(*daemon.engine.Read(y_reader()), 6);
  ASSERT_TRUE(daemon.engine.Flush().ok());
  const int64_t tasks_before = Stats().tasks;
  daemon.engine.EvictTasks(SIZE_MAX);  // the reader, first
  daemon.engine.EvictTasks(SIZE_MAX);  // then what it read
  EXPECT_EQ(Stats().tasks, tasks_before - 2) << "the input stayed in memory";
  ASSERT_TRUE(daemon.engine.SetInput("whole.y", int64_t{7}).ok());  // while both are out
  EXPECT_EQ(Input<int64_t>("whole.y").raw().task, input);
  EXPECT_EQ(*daemon.engine.Read(Input<int64_t>("whole.y")), 7);
  EXPECT_EQ(*daemon.engine.Read(y_reader()), 8);
  EXPECT_EQ(y_reader_runs, 2);
  EXPECT_EQ(Stats().reloaded_tasks, 2u);
  EXPECT_EQ(Stats().evicted_tasks_away, 0u);
}

// HookedStore runs `before_write_inputs` (once, if set) before it writes a batch of inputs:
// in the middle of SetInputs, which has found the input's task and not yet applied the
// value.
struct HookedStore : turbine::storage::RocksBackingStore {
  using RocksBackingStore::RocksBackingStore;
  absl::Status WriteInputs(const std::vector<std::pair<std::string, turbine::StoredInput>>& inputs,
                           uint64_t next_stamp) override {
    if (std::function<void()> hook = std::exchange(before_write_inputs, nullptr)) hook();
    return RocksBackingStore::WriteInputs(inputs, next_stamp);
  }
  std::function<void()> before_write_inputs;
};

// An input never leaves memory while a set of it is being applied: the set would go to the
// departing record, and a load of the key meanwhile would bring back the old value, which
// the daemon then kept answering (and readers linked to it stayed clean on it).
TEST(TaskEvictionInputs, AnInputIsNotEvictedWhileASetOfItIsApplied) {
  turbine::testing::TempDir dir;
  turbine::testing::PersistedEngine<HookedStore> daemon{dir.str(), Options()};
  ASSERT_TRUE(daemon.engine.SetInput("racing", int64_t{1}).ok());
  ASSERT_TRUE(daemon.engine.Flush().ok());
  std::thread evictor;
  std::thread loader;
  daemon.backing().before_write_inputs = [&] {
    evictor = std::thread([&] { daemon.engine.EvictTasks(SIZE_MAX); });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // it took what it may
    loader = std::thread([&] {
      turbine::Engine::Scope scope(daemon.engine);
      (void)daemon.engine.Read(Input<int64_t>("racing"));
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // and the key was read
  };
  ASSERT_TRUE(daemon.engine.SetInput("racing", int64_t{2}).ok());
  evictor.join();
  loader.join();
  EXPECT_EQ(*daemon.engine.Read(Input<int64_t>("racing")), 2) << "the set was lost in memory";
}

// A task whose large value (a candidate for the value evictor) later became an error has
// no value to evict: it leaves whole like any other. It stayed in memory for good.
TEST_F(TaskEviction, ATaskWhoseLargeValueBecameAnErrorLeavesWhole) {
  KeepXInMemory();
  ASSERT_TRUE(daemon.engine.SetInput("whole.mode", int64_t{0}).ok());
  ASSERT_EQ(daemon.engine.Read(sometimes(1))->size(), size_t{64} << 10);
  ASSERT_TRUE(daemon.engine.Flush().ok());  // stored large: a value candidate
  ASSERT_TRUE(daemon.engine.SetInput("whole.mode", int64_t{1}).ok());
  ASSERT_FALSE(daemon.engine.Read(sometimes(1)).ok());
  ASSERT_TRUE(daemon.engine.Flush().ok());  // stored as the error
  const int64_t tasks_before = Stats().tasks;
  daemon.engine.EvictTasks(SIZE_MAX);
  // Sometimes(1) leaves ("whole.mode", which only it read, may follow at a later call).
  EXPECT_EQ(Stats().tasks, tasks_before - 1) << "it stayed in memory";
  absl::StatusOr<std::string> again = daemon.engine.Read(sometimes(1));
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("no value now"), std::string::npos) << again.status();
}

// One call looks at a bounded stretch of the tasks in memory (snapshots wait meanwhile), and
// the next goes on from there: a table larger than the stretch leaves over several calls.
TEST_F(TaskEviction, ALargeTableLeavesMemoryAStretchAtATime) {
  KeepXInMemory();
  constexpr int64_t kLeaves = 70'000;  // more than one stretch (65,536)
  for (int64_t n = 0; n < kLeaves; ++n) ASSERT_EQ(*daemon.engine.Read(leaf(n)), 10 + n);
  ASSERT_TRUE(daemon.engine.Flush().ok());
  daemon.engine.EvictTasks(SIZE_MAX);
  const uint64_t after_one = Stats().evicted_tasks;
  EXPECT_LT(after_one, static_cast<uint64_t>(kLeaves)) << "one call went over the whole table";
  int calls = 1;
  for (; calls < 10 && Stats().evicted_tasks < static_cast<uint64_t>(kLeaves); ++calls) {
    daemon.engine.EvictTasks(SIZE_MAX);
  }
  EXPECT_EQ(Stats().evicted_tasks, static_cast<uint64_t>(kLeaves)) << "after " << calls;
  for (int64_t n = 0; n < kLeaves; n += 6'999) EXPECT_EQ(*daemon.engine.Read(leaf(n)), 10 + n);
  EXPECT_EQ(leaf_runs, kLeaves) << "an evicted task executed again";
}

// Stats counts the cells of the tasks in memory, whichever way they came: computed, restored
// from the store, or gone with a task evicted whole (memory_cell_bytes follows the count).
TEST(TaskEvictionCounts, CellsOfRestoredAndEvictedTasksAreCounted) {
  turbine::testing::TempDir dir;
  {
    turbine::testing::PersistedEngine<> d(dir.str(), Options());
    for (int64_t n = 0; n < 10; ++n) ASSERT_EQ(*d.engine.Read(cell_of(n)), n * 3);
    EXPECT_EQ(d.engine.Stats().cells, 10u);
    ASSERT_TRUE(d.engine.Flush().ok());
    d.engine.EvictTasks(SIZE_MAX);
    d.engine.EvictTasks(SIZE_MAX);
    ASSERT_EQ(d.engine.Stats().evicted_tasks, 10u);
    EXPECT_EQ(d.engine.Stats().cells, 0u) << "evicted tasks' cells still counted";
  }
  turbine::testing::PersistedEngine<> d(dir.str(), Options());
  for (int64_t n = 0; n < 10; ++n) ASSERT_EQ(*d.engine.Read(cell_of(n)), n * 3);
  ASSERT_EQ(d.engine.Stats().restored_tasks, 10u);
  EXPECT_EQ(d.engine.Stats().cells, 10u) << "restored tasks' cells not counted";
  EXPECT_GT(d.engine.Stats().cell_bytes, 0u);
}

// A GC pass may take minutes: what leaves memory meanwhile is freed meanwhile, not when the
// pass ends (it used to hold a section, reclaim.h, for the whole pass).
TEST_F(TaskEviction, RecordsEvictedDuringAGcPassAreFreedBeforeItEnds) {
  ASSERT_EQ(*daemon.engine.Read(root(1)), Expected(1, 1));
  ASSERT_TRUE(daemon.engine.Flush().ok());
  size_t evicted = 0;
  bool freed = false;
  turbine::GcOptions gc;
  gc.stop = [&] {  // asked between the pass's batches, on the pass's thread
    if (evicted > 0) return false;
    evicted = daemon.engine.EvictTasks(SIZE_MAX);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (Stats().evicted_unfreed_bytes > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    freed = Stats().evicted_unfreed_bytes == 0;
    return false;
  };
  ASSERT_TRUE(daemon.engine.CollectGarbage(gc).ok());
  EXPECT_GT(evicted, 0u);
  EXPECT_TRUE(freed) << Stats().evicted_unfreed_bytes << " bytes of records not freed";
}

// A task loaded back is evicted again like any other: the store learns its last use as it
// leaves (a record read from the store does not carry it).
// A pass that evicts whole tasks is a trace event, as one that evicts values is; it was
// not: 200,000 tasks left memory and the trace of the daemon's life showed none of it.
TEST_F(TaskEviction, AnEvictionOfWholeTasksIsATraceEvent) {
  ASSERT_EQ(*daemon.engine.Read(root(3)), Expected(1, 3));
  ASSERT_TRUE(daemon.engine.Flush().ok());
  ASSERT_TRUE(daemon.engine.StartTrace());
  daemon.engine.EvictTasks(SIZE_MAX);
  const turbine::Trace trace = daemon.engine.StopTrace();
  const auto eviction = std::find_if(trace.events.begin(), trace.events.end(), [](const auto& e) {
    return e.kind == turbine::TraceEvent::Kind::kEviction;
  });
  ASSERT_NE(eviction, trace.events.end());
  EXPECT_EQ(eviction->reason.rfind("evicted " + std::to_string(Stats().evicted_tasks) +
                                       " whole tasks, about ",
                                   0),
            0u)
      << eviction->reason;
}

// The record of a recent execution names the task's arguments after the task left memory
// (the status page's list showed them empty): its stored record says, and nothing is loaded.
TEST_F(TaskEviction, RecentExecutionsNameTheArgumentsOfTasksThatLeft) {
  ASSERT_EQ(*daemon.engine.Read(root(6)), Expected(1, 6));
  ASSERT_TRUE(daemon.engine.Flush().ok());
  for (int i = 0; i < 4; ++i) daemon.engine.EvictTasks(SIZE_MAX);
  ASSERT_EQ(Stats().tasks, 0) << "something stayed in memory";
  const std::vector<turbine::ExecutionRecord> recent = daemon.engine.RecentExecutions(3);
  ASSERT_EQ(recent.size(), 3u);
  for (const turbine::ExecutionRecord& record : recent) {
    EXPECT_EQ(record.args, "6") << record.function;
  }
  EXPECT_EQ(Stats().tasks, 0) << "describing them loaded them";
}

TEST_F(TaskEviction, ATaskLoadedBackCanBeEvictedAgain) {
  KeepXInMemory();
  ASSERT_EQ(*daemon.engine.Read(root(2)), Expected(1, 2));
  ASSERT_TRUE(daemon.engine.Flush().ok());
  daemon.engine.EvictTasks(SIZE_MAX);
  ASSERT_EQ(Stats().evicted_tasks, 3u);
  ASSERT_EQ(*daemon.engine.Read(root(2)), Expected(1, 2));
  ASSERT_EQ(Stats().reloaded_tasks, 1u);
  ASSERT_TRUE(daemon.engine.Flush().ok());
  daemon.engine.EvictTasks(SIZE_MAX);
  EXPECT_EQ(Stats().evicted_tasks, 4u);
  EXPECT_EQ(*daemon.engine.Read(root(2)), Expected(1, 2));
  EXPECT_EQ(Runs(), 3);
}

// A call only described (`turbine graph` or `why` of a call never made: Engine::NotStarting)
// makes a task that does not run. It used to be neither run nor stored, so it stayed in
// memory for good, and describing many distinct calls grew the daemon past its limit. Now a
// snapshot writes its identity alone and it leaves like any stored task; its key and its id
// (which the description gave out) bring it back, and it runs when read.
TEST_F(TaskEviction, ATaskOnlyDescribedLeavesMemoryAndComesBackByKeyOrId) {
  KeepXInMemory();
  const int64_t tasks_before = Stats().tasks;
  std::vector<turbine::RawVc> described;
  {
    turbine::Engine::NotStarting not_starting;
    for (int64_t n = 100; n < 110; ++n) described.push_back(root(n).raw());
  }
  ASSERT_EQ(Stats().tasks, tasks_before + 10);
  ASSERT_TRUE(daemon.engine.Flush().ok());
  daemon.engine.EvictTasks(SIZE_MAX);
  EXPECT_EQ(Stats().tasks, tasks_before) << "a task only described stayed in memory";
  EXPECT_EQ(Runs(), 0);
  // By id, as `turbine why ID` or an argument `@ID` names it.
  EXPECT_EQ(*daemon.engine.Read(turbine::Vc<int64_t>(described[0])), Expected(1, 100));
  EXPECT_EQ(Runs(), 3);
  // By key: the same task, under the same id, run now.
  const Vc<int64_t> again = root(109);
  EXPECT_EQ(again.raw(), described[9]);
  EXPECT_EQ(*daemon.engine.Read(again), Expected(1, 109));
  EXPECT_EQ(Runs(), 6);
}

// After a restart, the identity written for a described task is found by its key: a task
// that never ran, which the call starts and reports as new, not as restored.
TEST(TaskEvictionDescribed, ADescribedTaskFoundAfterARestartStartsAsNew) {
  turbine::testing::TempDir dir;
  turbine::RawVc described;
  {
    turbine::testing::PersistedEngine<> first{dir.str(), Options()};
    ASSERT_TRUE(first.engine.SetInput("whole.x", int64_t{1}).ok());
    turbine::Engine::NotStarting not_starting;
    described = root(300).raw();
    ASSERT_TRUE(first.engine.Flush().ok());
  }
  root_runs = 0;
  turbine::testing::PersistedEngine<> second{dir.str(), Options()};
  std::tuple<int64_t> args{300};
  turbine::CallSource source = turbine::CallSource::kMemory;
  const absl::StatusOr<turbine::RawVc> called =
      second.engine.Call(root.handle(), turbine::RawVc{}, args, &source);
  ASSERT_TRUE(called.ok()) << called.status();
  EXPECT_EQ(*called, described) << "the described task's id was not kept";
  EXPECT_EQ(source, turbine::CallSource::kCreated);
  EXPECT_EQ(*second.engine.Read(Vc<int64_t>(*called)), Expected(1, 300));
  EXPECT_EQ(root_runs, 1);
}

// Outside(n) depends on the world outside the engine (as fs.read does).
Task<int64_t> OutsideImpl(int64_t n) { co_return n * 7; }
inline const turbine::Function<OutsideImpl> outside{
    "test.whole.outside", 1, "a value of the world", {.session_dependent = true}};

// A session-dependent task only described leaves too: it observed nothing (such tasks with
// a result stay, for the doubt about what they observed).
TEST_F(TaskEviction, ASessionDependentTaskOnlyDescribedLeavesToo) {
  KeepXInMemory();
  const int64_t tasks_before = Stats().tasks;
  {
    turbine::Engine::NotStarting not_starting;
    for (int64_t n = 0; n < 5; ++n) outside(n);
  }
  ASSERT_EQ(Stats().tasks, tasks_before + 5);
  ASSERT_TRUE(daemon.engine.Flush().ok());
  daemon.engine.EvictTasks(SIZE_MAX);
  EXPECT_EQ(Stats().tasks, tasks_before);
  EXPECT_EQ(*daemon.engine.Read(outside(3)), 21);
}


// A task whose argument names a described task that left memory reads it through the store:
// the reference does not lead into nothing.
TEST_F(TaskEviction, AnArgumentNamingADescribedTaskThatLeftStillReadsIt) {
  Vc<int64_t> described;
  {
    turbine::Engine::NotStarting not_starting;
    described = root(200);
  }
  ASSERT_TRUE(daemon.engine.Flush().ok());
  daemon.engine.EvictTasks(SIZE_MAX);
  ASSERT_EQ(Runs(), 0);
  EXPECT_EQ(*daemon.engine.Read(plus_one(described)), Expected(1, 200) + 1);
}

// `why` of a task loaded back after it left memory: what it did in this process before is
// not in the store, so it must not say it did not execute here, nor that what it read
// executed for nothing (an early cutoff). It said both: black-box finding.
TEST_F(TaskEviction, WhyOfATaskLoadedBackClaimsNothingAboutItsPastHere) {
  ASSERT_EQ(*daemon.engine.Read(root(400)), Expected(1, 400));
  ASSERT_TRUE(daemon.engine.SetInput("whole.x", int64_t{2}).ok());
  ASSERT_EQ(*daemon.engine.Read(root(400)), Expected(2, 400));  // root executed twice here
  ASSERT_EQ(root_runs, 2);
  ASSERT_TRUE(daemon.engine.Flush().ok());
  // The root alone leaves (the hand reaches it first; what it read stays, read by nothing).
  ASSERT_GT(daemon.engine.EvictTasks(1), 0u);
  ASSERT_EQ(Stats().evicted_tasks, 1u);
  ASSERT_EQ(*daemon.engine.Read(root(400)), Expected(2, 400));
  ASSERT_EQ(root_runs, 2);
  absl::StatusOr<turbine::WhyReport> why = daemon.engine.Why(root(400).raw());
  ASSERT_TRUE(why.ok()) << why.status();
  ASSERT_FALSE(why->steps.empty());
  EXPECT_NE(why->steps[0].text.find("it had left memory"), std::string::npos)
      << why->steps[0].text;
  for (const turbine::WhyStep& step : why->steps) {
    EXPECT_NE(step.kind, turbine::WhyStep::Kind::kCutoff) << step.text;
  }
}

// A task loaded back after an input it read changed is dirty, not verified: `why` must not
// say it was (before: "restored from the store and verified ... [dirty now]").
TEST_F(TaskEviction, WhyOfATaskLoadedButNotYetVerifiedDoesNotSayVerified) {
  ASSERT_EQ(*daemon.engine.Read(root(401)), Expected(1, 401));
  ASSERT_TRUE(daemon.engine.Flush().ok());
  ASSERT_GT(daemon.engine.EvictTasks(1), 0u);
  ASSERT_EQ(Stats().evicted_tasks, 1u);
  ASSERT_TRUE(daemon.engine.SetInput("whole.x", int64_t{3}).ok());
  absl::StatusOr<turbine::WhyReport> why = daemon.engine.Why(root(401).raw());
  ASSERT_TRUE(why.ok()) << why.status();
  ASSERT_FALSE(why->steps.empty());
  EXPECT_EQ(why->steps[0].kind, turbine::WhyStep::Kind::kRestored);
  EXPECT_TRUE(why->steps[0].dirty);
  EXPECT_EQ(why->steps[0].text.find("verified"), std::string::npos) << why->steps[0].text;
  EXPECT_NE(why->steps[0].text.find("not executed since it was loaded"), std::string::npos)
      << why->steps[0].text;
  EXPECT_EQ(*daemon.engine.Read(root(401)), Expected(3, 401));
}

// A store that lives for months gives out ids in the billions (they are never reused):
// tasks with such ids leave memory and come back like any other. The evictor's hand moves
// over the tasks in memory, not over every id below them (which took 2^32 steps here).
TEST(TaskEvictionFarIds, TasksWithIdsPastTwoToThe32ndLeaveAndComeBack) {
  turbine::testing::TempDir dir;
  constexpr uint64_t kFarId = (uint64_t{1} << 32) + 11;
  {
    turbine::testing::PersistedEngine<> first(dir.str(), Options());
    ASSERT_TRUE(first.engine.SetInput("whole.x", int64_t{1}).ok());
    ASSERT_TRUE(first.engine.Flush().ok());
    ASSERT_TRUE(first.owner->backing_store().WriteSnapshot({}, kFarId, uint64_t{1} << 40).ok());
  }
  turbine::testing::PersistedEngine<> daemon(dir.str(), Options());
  leaf_runs = mid_runs = root_runs = 0;
  for (int64_t n = 0; n < 5; ++n) ASSERT_EQ(*daemon.engine.Read(root(n)), Expected(1, n));
  EXPECT_GE(root(0).raw().task, kFarId);
  ASSERT_TRUE(daemon.engine.Flush().ok());
  EXPECT_GT(daemon.engine.EvictTasks(SIZE_MAX), 0u);
  EXPECT_EQ(daemon.engine.Stats().evicted_tasks, 15u);
  for (int64_t n = 0; n < 5; ++n) EXPECT_EQ(*daemon.engine.Read(root(n)), Expected(1, n));
  EXPECT_EQ(leaf_runs + mid_runs + root_runs, 15) << "an evicted task executed again";
  EXPECT_EQ(daemon.engine.Stats().reloaded_tasks, 5u);
}


TEST_F(TaskEviction, AChangeReachesReadersThroughTasksNotInMemory) {
  for (int64_t n = 0; n < 3; ++n) ASSERT_EQ(*daemon.engine.Read(root(n)), Expected(1, n));
  ASSERT_TRUE(daemon.engine.Flush().ok());
  ASSERT_EQ(daemon.engine.EvictTasks(SIZE_MAX) > 0, true);
  // Root 0 comes back (trusted, linked to nothing); its mid and leaf stay on disk.
  ASSERT_EQ(*daemon.engine.Read(root(0)), Expected(1, 0));
  ASSERT_EQ(Runs(), 9);

  ASSERT_TRUE(daemon.engine.SetInput("whole.x", int64_t{4}).ok());
  for (int64_t n = 0; n < 3; ++n) EXPECT_EQ(*daemon.engine.Read(root(n)), Expected(4, n));
  EXPECT_EQ(Runs(), 18);  // every task of the three chains once: all read x
}

// A task that a task in memory reads stays in memory: the reader's edge is in its record,
// and a change reaching it must go on to that reader.
TEST_F(TaskEviction, ATaskReadByATaskInMemoryStays) {
  ASSERT_EQ(*daemon.engine.Read(mid(7)), Expected(1, 7) / 2);
  ASSERT_TRUE(daemon.engine.Flush().ok());
  // The root is computed after the snapshot: not stored yet, so it stays, and with it
  // the mid it reads and the leaf the mid reads.
  ASSERT_EQ(*daemon.engine.Read(root(7)), Expected(1, 7));
  daemon.engine.EvictTasks(SIZE_MAX);
  EXPECT_EQ(Stats().evicted_tasks, 0u);

  ASSERT_TRUE(daemon.engine.SetInput("whole.x", int64_t{2}).ok());
  EXPECT_EQ(*daemon.engine.Read(root(7)), Expected(2, 7)) << "a change did not reach the root";
}

TEST_F(TaskEviction, ATaskReachedThroughAReferenceComesBackWithoutExecuting) {
  KeepXInMemory();
  ASSERT_EQ(*daemon.engine.Read(pointer(3)), "text 3");
  ASSERT_TRUE(daemon.engine.Flush().ok());
  daemon.engine.EvictTasks(SIZE_MAX);
  EXPECT_EQ(Stats().evicted_tasks, 2u);
  EXPECT_EQ(*daemon.engine.Read(pointer(3)), "text 3");
  EXPECT_EQ(text_runs.load(), 1);
  EXPECT_EQ(Stats().reloaded_tasks, 2u);
}

// Readers on several threads race an evictor that takes everything it may, over and over,
// while the input changes: every answer is one that some value of the input gives, the
// last ones are the current value's, and no freed record is touched (the address
// sanitizer build checks that part).
// Parity reads "whole.p"; while `parity_gate` is set, its body waits until it is cleared.
std::atomic<bool> parity_gate{false};
std::atomic<bool> parity_waiting{false};
std::atomic<int> parity_runs{0};
Task<int64_t> ParityImpl() {
  parity_runs.fetch_add(1);
  const int64_t p = co_await Input<int64_t>("whole.p");
  while (parity_gate.load()) {
    parity_waiting = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  co_return p % 2;
}
inline const turbine::Function<ParityImpl> parity{"test.whole.parity", 1};
Task<Vc<int64_t>> ParityRefImpl() { co_return parity(); }
inline const turbine::Function<ParityRefImpl> parity_ref{"test.whole.parity_ref", 1};

TEST_F(TaskEviction, ATaskLoadedBackDuringAReadIsNotReportedAsExecuted) {
  // The read of parity_ref follows its reference to parity, which another caller is
  // running (and which comes out the same: cut off); nothing runs for this read. Meanwhile
  // parity_ref, which executed once before, leaves memory.
  parity_runs = 0;
  ASSERT_TRUE(daemon.engine.SetInput("whole.p", int64_t{2}).ok());
  ASSERT_EQ(*daemon.engine.Read(parity_ref()), 0);
  ASSERT_TRUE(daemon.engine.Flush().ok());
  ASSERT_TRUE(daemon.engine.SetInput("whole.p", int64_t{4}).ok());
  parity_gate = true;
  parity_waiting = false;
  std::thread other([&] {
    turbine::Engine::Scope scope(daemon.engine);
    EXPECT_EQ(*daemon.engine.Read(parity()), 0);
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!parity_waiting && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::promise<turbine::Engine::AsyncRead> answer;
  daemon.engine.ReadAsync(parity_ref().raw(), [&](turbine::Engine::AsyncRead result) {
    answer.set_value(std::move(result));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // it parks on parity
  const uint64_t evicted_before = Stats().evicted_tasks;
  daemon.engine.EvictTasks(size_t{1} << 30);
  EXPECT_GT(Stats().evicted_tasks, evicted_before);  // parity_ref, and others
  parity_gate = false;
  turbine::Engine::AsyncRead result = answer.get_future().get();
  other.join();
  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_EQ(*static_cast<const int64_t*>(result.value.get()), 0);
  EXPECT_FALSE(result.executed);
  EXPECT_EQ(parity_runs.load(), 2);  // once for the other caller
}

TEST_F(TaskEviction, ReadersRacingTheEvictorSeeCorrectValues) {
  constexpr int64_t kTasks = 64;
  for (int64_t n = 0; n < kTasks; ++n) ASSERT_EQ(*daemon.engine.Read(root(n)), Expected(1, n));
  std::atomic<bool> stop{false};
  std::atomic<int64_t> wrong{0};
  std::atomic<int64_t> reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&, t] {
      turbine::Engine::Scope scope(daemon.engine);
      for (int64_t i = t; !stop.load(); ++i) {
        const int64_t n = i % kTasks;
        absl::StatusOr<int64_t> value = daemon.engine.Read(root(n));
        reads.fetch_add(1);
        // x only takes the values 1 to 4.
        bool possible = false;
        for (int64_t x = 1; x <= 4; ++x) possible |= value.ok() && *value == Expected(x, n);
        if (!possible) wrong.fetch_add(1);
      }
    });
  }
  std::thread evictor([&] {
    while (!stop.load()) {
      EXPECT_TRUE(daemon.engine.Flush().ok());
      daemon.engine.EvictTasks(SIZE_MAX);
    }
  });
  for (int64_t round = 0; round < 40; ++round) {
    ASSERT_TRUE(daemon.engine.SetInput("whole.x", int64_t{1 + round % 4}).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (Stats().reloaded_tasks < 200 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop = true;
  for (std::thread& reader : readers) reader.join();
  evictor.join();
  EXPECT_EQ(wrong.load(), 0) << "of " << reads.load() << " reads";
  EXPECT_GE(Stats().evicted_tasks, 200u);
  EXPECT_GE(Stats().reloaded_tasks, 200u);
  for (int64_t n = 0; n < kTasks; ++n) {
    EXPECT_EQ(*daemon.engine.Read(root(n)), Expected(4, n)) << "root " << n;  // 39 % 4 + 1
  }
}

}  // namespace
