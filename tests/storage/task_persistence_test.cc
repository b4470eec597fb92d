// Persisted tasks: a restarted engine answers from disk without re-executing, verifies what
// it restores against the inputs of this session, and finds tasks by exact identity.
#include <gtest/gtest.h>
#include <malloc.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "persisted_engine.h"
#include "temp_dir.h"
#include "turbine/engine.h"
#include "turbine/storage/rocks_backing_store.h"
#include "turbine/storage/store.h"

namespace {

using turbine::Input;
using turbine::Task;
using turbine::storage::RocksBackingStore;
using turbine::storage::Store;
using turbine::storage::StoreOptions;

Task<int64_t> FibImpl(int64_t n);
inline const turbine::Function<FibImpl> fib{"test.tasks.fib", 1};
Task<int64_t> FibImpl(int64_t n) {
  if (n < 2) co_return n;
  auto a = fib(n - 1), b = fib(n - 2);
  co_return (co_await a) + (co_await b);
}

Task<int64_t> LeftImpl() { co_return (co_await Input<int64_t>("left")) * 10; }
inline const turbine::Function<LeftImpl> left{"test.tasks.left", 1};
Task<int64_t> RightImpl() { co_return (co_await Input<int64_t>("right")) * 100; }
inline const turbine::Function<RightImpl> right{"test.tasks.right", 1};
Task<int64_t> SumImpl() { co_return (co_await left()) + (co_await right()); }
inline const turbine::Function<SumImpl> sum{"test.tasks.sum", 1};

// Two versions of one function: the version is part of the identity.
// Reads "ignored" and drops its value: a change of it makes this execute, never change.
Task<int64_t> ScaledImpl() {
  (void)co_await Input<int64_t>("ignored");
  co_return (co_await Input<int64_t>("left")) * 2;
}
inline const turbine::Function<ScaledImpl> scaled{"test.tasks.scaled", 1};
Task<int64_t> ScaledPlusOneImpl() { co_return (co_await scaled()) + 1; }
inline const turbine::Function<ScaledPlusOneImpl> scaled_plus_one{"test.tasks.scaled_plus_one", 1};

Task<std::string> LabelV1Impl(int64_t n) { co_return "v1:" + std::to_string(n); }
inline const turbine::Function<LabelV1Impl> label_v1{"test.tasks.label", 1};
Task<std::string> LabelV2Impl(int64_t n) { co_return "v2:" + std::to_string(n); }
inline const turbine::Function<LabelV2Impl> label_v2{"test.tasks.label", 2};

uint64_t Executions(const turbine::Engine& engine, const std::string& function,
                    uint32_t version = 1) {
  for (const turbine::FunctionStats& fn : engine.Stats().functions) {
    if (fn.name == function && fn.version == version) return fn.executions;
  }
  return 0;
}

template <class Backing = RocksBackingStore>
using Daemon = turbine::testing::PersistedEngine<Backing>;

// Part(i) reads the input "parts"; Whole() reads Part(0..15).
Task<int64_t> PartImpl(int64_t i) { co_return (co_await Input<int64_t>("parts")) + i; }
inline const turbine::Function<PartImpl> part{"test.tasks.part", 1};
Task<int64_t> WholeImpl() {
  int64_t total = 0;
  for (int64_t i = 0; i < 16; ++i) total += co_await part(i);
  co_return total;
}
inline const turbine::Function<WholeImpl> whole{"test.tasks.whole", 1};

// ReadCountingStore verifies every restored result that read an input (VerifyingStore) and
// counts the reads of tasks by id: one at a time, and in batches.
struct ReadCountingStore : turbine::testing::VerifyingStore {
  using VerifyingStore::VerifyingStore;
  static inline int single_reads = 0;
  static inline std::vector<size_t> batches;
  absl::StatusOr<std::optional<turbine::StoredTask>> ReadTask(uint64_t id) override {
    ++single_reads;
    return VerifyingStore::ReadTask(id);
  }
  std::vector<absl::StatusOr<std::optional<turbine::StoredTask>>> ReadTasks(
      const std::vector<uint64_t>& ids) override {
    batches.push_back(ids.size());
    return VerifyingStore::ReadTasks(ids);
  }
};

// StoreSum is a session that sets left = 1 and right = 2 and computes sum (210), stored
// when it ends.
void StoreSum(const std::string& dir) {
  Daemon d(dir);
  ASSERT_TRUE(d.engine
                  .SetInputs({turbine::InputValue::Of("left", int64_t{1}),
                              turbine::InputValue::Of("right", int64_t{2})})
                  .ok());
  ASSERT_EQ(*d.engine.Read(sum()), 210);
}

TEST(TaskPersistence, ARestartAnswersFromDiskWithoutExecuting) {
  turbine::testing::TempDir dir;
  {
    Daemon d(dir.str());
    ASSERT_EQ(*d.engine.Read(fib(40)), 102334155);
    ASSERT_TRUE(d.engine.Flush().ok());
    const turbine::EngineStats stats = d.engine.Stats();
    EXPECT_EQ(stats.snapshots, 1u);
    EXPECT_EQ(stats.last_snapshot_tasks, 41u);  // fib(0..40)
    EXPECT_GT(stats.snapshot_nanos, 0u);
    const turbine::storage::StoreUsage usage = d.owner->store().Usage();
    EXPECT_GE(usage.tasks, 41u);
    EXPECT_GT(usage.table_file_bytes + usage.memtable_bytes, 0u);
  }
  Daemon d(dir.str());
  EXPECT_EQ(*d.engine.Read(fib(40)), 102334155);
  EXPECT_EQ(d.engine.Stats().executions, 0u);
  EXPECT_GT(d.engine.Stats().restored_tasks, 0u);
  // Lazily: a hit on fib(40) verified its cone, nothing else was loaded.
  EXPECT_LE(d.engine.Stats().restored_tasks, 41u);
}

// Ids are reserved in the store in blocks (a crash must not give out again an id a client
// holds); a clean close releases what it did not use, so the next process goes on from
// the last id given out, written in a record or not.
TEST(TaskPersistence, ACleanRestartGoesOnFromTheLastIdGivenOut) {
  turbine::testing::TempDir dir;
  turbine::TaskId last = turbine::kNoTask;
  {
    Daemon d(dir.str());
    ASSERT_EQ(*d.engine.Read(fib(10)), 55);
    last = fib(10).raw().task;
  }
  Daemon d(dir.str());
  ASSERT_EQ(*d.engine.Read(fib(11)), 89);
  EXPECT_GT(fib(11).raw().task, last);
  EXPECT_LT(fib(11).raw().task, last + 100);
}

// A store whose reservations of task ids fail, as on a full disk.
struct NoReservationStore : RocksBackingStore {
  using RocksBackingStore::RocksBackingStore;
  absl::Status ReserveTaskIds(uint64_t) override {
    return absl::ResourceExhaustedError("the disk is full");
  }
};

// While no reservation can be written, new tasks take ids far past the last one written,
// so that after a crash the next process, which goes on from that reservation, does not
// give them again to other tasks (a client holding one would read another task's value).
// Before, they came just past the reservation, where the next process starts.
TEST(TaskPersistence, IdsGivenOutWithoutAReservationAreNotGivenAgainAfterACrash) {
  turbine::testing::TempDir dir;
  {
    Daemon d(dir.str());
    ASSERT_EQ(*d.engine.Read(fib(3)), 2);
  }
  constexpr int kLast = 20;
  std::array<turbine::TaskId, kLast + 1> given{};
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipe_fds[0]);
    // No snapshot: nothing of this session reaches the store before the crash.
    turbine::testing::PersistedEngine<NoReservationStore> d(
        dir.str(), turbine::EngineOptions{.worker_threads = 2,
                                          .snapshot_interval = std::chrono::milliseconds(0),
                                          .gc = {.interval = {}}});
    if (*d.engine.Read(fib(kLast)) != 6765) ::_exit(3);
    for (int i = 0; i <= kLast; ++i) given[i] = fib(i).raw().task;
    if (::write(pipe_fds[1], given.data(), sizeof(given)) != sizeof(given)) ::_exit(4);
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));  // killed here
  }
  ::close(pipe_fds[1]);
  const ssize_t got = ::read(pipe_fds[0], given.data(), sizeof(given));
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ::close(pipe_fds[0]);
  ASSERT_EQ(got, static_cast<ssize_t>(sizeof(given))) << "the child did not get to its ids";

  Daemon d(dir.str());
  ASSERT_EQ(*d.engine.Read(fib(kLast)), 6765);
  for (int i = 4; i <= kLast; ++i) {  // fib(0..3) are the stored ones, the same tasks
    for (int j = 4; j <= kLast; ++j) {
      EXPECT_NE(fib(i).raw().task, given[j])
          << "fib(" << i << ") took the id fib(" << j << ") had before the crash";
    }
  }
}

// A call answered from disk found its task already made: a cache hit, as one answered from
// memory is. Only a call that makes its task is a miss.
TEST(TaskPersistence, ACallAnsweredFromDiskCountsAsACacheHit) {
  turbine::testing::TempDir dir;
  const auto fib_stats = [](const turbine::Engine& engine) {
    for (const turbine::FunctionStats& fn : engine.Stats().functions) {
      if (fn.name == "test.tasks.fib") return fn;
    }
    return turbine::FunctionStats{};
  };
  {
    Daemon d(dir.str());
    ASSERT_EQ(*d.engine.Read(fib(10)), 55);
    const turbine::FunctionStats fresh = fib_stats(d.engine);
    EXPECT_EQ(fresh.calls - fresh.cache_hits, 11u);  // fib(0..10) made once each
  }
  Daemon d(dir.str());
  ASSERT_EQ(*d.engine.Read(fib(10)), 55);
  ASSERT_EQ(d.engine.Stats().executions, 0u);
  const turbine::FunctionStats restored = fib_stats(d.engine);
  EXPECT_GE(restored.calls, 1u);
  EXPECT_EQ(restored.cache_hits, restored.calls);
}

// A restored task's verification reads the dependencies that are only on disk in one
// batch, not one (two point reads) at a time.
TEST(TaskPersistence, AVerificationReadsTheDependenciesOnDiskInOneBatch) {
  turbine::testing::TempDir dir;
  std::vector<turbine::TaskId> part_ids;
  {
    Daemon d(dir.str());
    ASSERT_TRUE(d.engine.SetInputs({turbine::InputValue::Of("parts", int64_t{100})}).ok());
    ASSERT_EQ(*d.engine.Read(whole()), 1600 + 120);
    for (int64_t i = 0; i < 16; ++i) part_ids.push_back(part(i).raw().task);
  }
  ReadCountingStore::single_reads = 0;
  ReadCountingStore::batches.clear();
  Daemon<ReadCountingStore> d(dir.str());
  EXPECT_EQ(*d.engine.Read(whole()), 1600 + 120);
  EXPECT_EQ(d.engine.Stats().executions, 0u);
  // whole's 16 parts in one batch; the input they all read, by the first part's own read.
  EXPECT_EQ(ReadCountingStore::batches, std::vector<size_t>{16});
  EXPECT_EQ(ReadCountingStore::single_reads, 1);

  // A batch answers as the single reads do, in order, a task never stored included.
  std::vector<uint64_t> ids(part_ids.begin(), part_ids.end());
  std::sort(ids.begin(), ids.end());
  ids.push_back(ids.back() + 1000);
  const std::vector<absl::StatusOr<std::optional<turbine::StoredTask>>> batch =
      d.backing().ReadTasks(ids);
  ASSERT_EQ(batch.size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    absl::StatusOr<std::optional<turbine::StoredTask>> single = d.backing().ReadTask(ids[i]);
    ASSERT_TRUE(batch[i].ok() && single.ok()) << i;
    ASSERT_EQ(batch[i]->has_value(), single->has_value()) << i;
    if (!single->has_value()) continue;
    EXPECT_EQ((*batch[i])->id, ids[i]);
    EXPECT_EQ((*batch[i])->identity, (*single)->identity);
    EXPECT_EQ((*batch[i])->result, (*single)->result);
  }
  EXPECT_FALSE(batch.back()->has_value());
}

// Past the evictor's low water (90% of the memory limit), what a batch loaded could leave
// memory again before the verification reads it: the dependencies are read one at a time.
TEST(TaskPersistence, PastTheEvictorsLowWaterDependenciesAreReadOneAtATime) {
  turbine::testing::TempDir dir;
  {
    Daemon d(dir.str());
    ASSERT_TRUE(d.engine.SetInputs({turbine::InputValue::Of("parts", int64_t{100})}).ok());
    ASSERT_EQ(*d.engine.Read(whole()), 1600 + 120);
  }
  ReadCountingStore::single_reads = 0;
  ReadCountingStore::batches.clear();
  // 950 of 1,000 bytes in use: past the low water, under the limit (nothing is evicted).
  Daemon<ReadCountingStore> d(
      dir.str(), turbine::EngineOptions{.worker_threads = 2,
                                        .gc = {.interval = {}},
                                        .memory = {.limit_bytes = 1000,
                                                   .interval = std::chrono::milliseconds(10),
                                                   .usage = [] { return size_t{950}; }}});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (d.engine.Stats().resident_bytes != 950 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(d.engine.Stats().resident_bytes, 950u);
  EXPECT_EQ(*d.engine.Read(whole()), 1600 + 120);
  EXPECT_EQ(d.engine.Stats().executions, 0u);
  EXPECT_TRUE(ReadCountingStore::batches.empty());
  EXPECT_EQ(ReadCountingStore::single_reads, 17);  // the 16 parts and their input
}

// Task ids are never reused, so a store that lives for months reaches ids far past what
// one process ever holds at once: a task table sized by the id (it held ids below 2^28 and
// the engine aborted past them) would end such a daemon, restart after restart.
TEST(TaskPersistence, TaskIdsPastTwoToThe28thAreServedAndSurviveARestart) {
  turbine::testing::TempDir dir;
  constexpr uint64_t kFarId = (uint64_t{1} << 28) + 7;
  {
    Daemon d(dir.str());
    ASSERT_EQ(*d.engine.Read(fib(10)), 55);
    ASSERT_TRUE(d.engine.Flush().ok());
    // As a store that has allocated 2^28 ids over its life leaves the counter.
    ASSERT_TRUE(d.owner->backing_store().WriteSnapshot({}, kFarId, uint64_t{1} << 32).ok());
  }
  {
    Daemon d(dir.str());
    ASSERT_EQ(*d.engine.Read(fib(12)), 144);  // fib(11) and fib(12) are new
    EXPECT_GE(fib(12).raw().task, kFarId);
    EXPECT_EQ(Executions(d.engine, "test.tasks.fib"), 2u);
  }
  Daemon d(dir.str());
  EXPECT_EQ(*d.engine.Read(fib(12)), 144);
  EXPECT_EQ(*d.engine.Read(fib(14)), 377);
  EXPECT_EQ(Executions(d.engine, "test.tasks.fib"), 2u);  // fib(13), fib(14)
}

// A counter at or past the last id the engine holds (2^44) leaves no id for a new task:
// the store does not open, with DATA_LOSS, instead of the engine aborting at that task.
// One below it opens.
TEST(TaskPersistence, ATaskIdCounterAtTheTablesEndIsRefusedAtOpen) {
  for (uint64_t counter : {(uint64_t{1} << 44) - 1, uint64_t{1} << 44, (uint64_t{1} << 44) + 1}) {
    turbine::testing::TempDir dir;
    {
      Daemon d(dir.str());
      ASSERT_EQ(*d.engine.Read(fib(10)), 55);
      ASSERT_TRUE(d.engine.Flush().ok());
      ASSERT_TRUE(d.owner->backing_store().WriteSnapshot({}, counter, uint64_t{1} << 32).ok());
    }
    auto opened = turbine::storage::PersistentEngine::Open(
        turbine::storage::StoreOptions{.data_dir = dir.str()},
        turbine::EngineOptions{.worker_threads = 1, .gc = {.interval = {}}});
    if (counter < (uint64_t{1} << 44)) {
      ASSERT_TRUE(opened.ok()) << opened.status();
      turbine::Engine::Scope scope((*opened)->engine());
      EXPECT_EQ(*(*opened)->engine().Read(fib(11)), 89);  // fib(11) takes the last id
      continue;
    }
    ASSERT_FALSE(opened.ok()) << counter;
    EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_NE(opened.status().message().find("task id counter"), std::string::npos)
        << opened.status();
  }
}

TEST(TaskPersistence, ATrustedResultThatAChangeReachedCanLeaveMemoryUnread) {
  turbine::testing::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(StoreSum(dir.str()));
  Daemon d(dir.str());
  ASSERT_EQ(*d.engine.Read(sum()), 210);
  ASSERT_EQ(d.engine.Stats().trusted_restored_tasks, 1u);
  ASSERT_TRUE(d.engine.SetInput("right", int64_t{3}).ok());  // sum is dirty, never verified
  ASSERT_TRUE(d.engine.Flush().ok());
  d.engine.EvictTasks(SIZE_MAX);
  // Sum: the store holds it exactly; and "right", which nothing in memory reads.
  EXPECT_EQ(d.engine.Stats().evicted_tasks, 2u);
  EXPECT_EQ(*d.engine.Read(sum()), 310);
  EXPECT_EQ(Executions(d.engine, "test.tasks.sum"), 1u);
}

TEST(TaskPersistence, ShutdownWritesTheLastSnapshot) {
  turbine::testing::TempDir dir;
  {
    Daemon d(dir.str());
    ASSERT_EQ(*d.engine.Read(fib(20)), 6765);
  }  // no explicit Flush
  Daemon d(dir.str());
  EXPECT_EQ(*d.engine.Read(fib(20)), 6765);
  EXPECT_EQ(d.engine.Stats().executions, 0u);
}

TEST(TaskPersistence, AnInputChangeAfterARestartReExecutesExactlyTheAffectedTasks) {
  turbine::testing::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(StoreSum(dir.str()));
  Daemon d(dir.str());
  ASSERT_TRUE(d.engine.SetInput("left", int64_t{3}).ok());  // before anything is loaded
  EXPECT_EQ(*d.engine.Read(sum()), 230);
  EXPECT_EQ(Executions(d.engine, "test.tasks.left"), 1u);
  EXPECT_EQ(Executions(d.engine, "test.tasks.right"), 0u);  // restored, verified, not run
  EXPECT_EQ(Executions(d.engine, "test.tasks.sum"), 1u);

  // Once restored and verified, tasks take part in in-memory invalidation as usual.
  ASSERT_TRUE(d.engine.SetInput("right", int64_t{4}).ok());
  EXPECT_EQ(*d.engine.Read(sum()), 430);
  EXPECT_EQ(Executions(d.engine, "test.tasks.right"), 1u);
  EXPECT_EQ(Executions(d.engine, "test.tasks.left"), 1u);
}

TEST(TaskPersistence, AnInputChangedWhileTheTasksWereNotLoadedIsSeen) {
  turbine::testing::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(StoreSum(dir.str()));
  {
    Daemon d(dir.str());  // a session that only changes an input
    ASSERT_TRUE(d.engine.SetInput("right", int64_t{5}).ok());
  }
  Daemon d(dir.str());
  EXPECT_EQ(*d.engine.Read(sum()), 510);
  EXPECT_EQ(Executions(d.engine, "test.tasks.left"), 0u);
  EXPECT_EQ(Executions(d.engine, "test.tasks.right"), 1u);
}

TEST(TaskPersistence, TasksReExecutedAfterARestartAreRestoredAfterTheNext) {
  turbine::testing::TempDir dir;
  ASSERT_NO_FATAL_FAILURE(StoreSum(dir.str()));
  {
    // Restored tasks that execute again are written again: their new results replace the
    // old ones, and they stay reachable by id (sum reads left and right by id).
    Daemon d(dir.str());
    ASSERT_TRUE(d.engine.SetInput("left", int64_t{3}).ok());
    ASSERT_EQ(*d.engine.Read(sum()), 230);
    ASSERT_EQ(Executions(d.engine, "test.tasks.sum"), 1u);
  }
  // Nothing restored is trusted (trusted_restore_test.cc): sum is verified, which loads
  // left and right by id.
  Daemon<turbine::testing::VerifyingStore> d(dir.str());
  EXPECT_EQ(*d.engine.Read(sum()), 230);
  EXPECT_EQ(d.engine.Stats().executions, 0u);
  EXPECT_EQ(d.engine.Stats().restored_tasks, 3u);  // sum, left, right
  EXPECT_EQ(d.engine.Stats().trusted_restored_tasks, 0u);
}

TEST(TaskPersistence, AResultDirtiedBeforeTheStopIsStillStoredForVerification) {
  turbine::testing::TempDir dir;
  constexpr std::chrono::milliseconds kOnlyAtStop{0};  // no background snapshots
  {
    Daemon d(dir.str(), kOnlyAtStop);
    ASSERT_TRUE(d.engine
                    .SetInputs({turbine::InputValue::Of("left", int64_t{1}),
                                turbine::InputValue::Of("ignored", int64_t{0})})
                    .ok());
    ASSERT_EQ(*d.engine.Read(scaled_plus_one()), 3);
  }
  {
    // New results, then a change that makes them dirty, then the stop: the snapshot at the
    // stop finds them dirty.
    Daemon d(dir.str(), kOnlyAtStop);
    ASSERT_TRUE(d.engine.SetInput("left", int64_t{2}).ok());
    ASSERT_EQ(*d.engine.Read(scaled_plus_one()), 5);
    ASSERT_TRUE(d.engine.SetInput("ignored", int64_t{1}).ok());
  }
  Daemon d(dir.str());
  EXPECT_EQ(*d.engine.Read(scaled_plus_one()), 5);
  // Their last results were stored: scaled verifies against them and executes (it read
  // "ignored"), comes out unchanged, and its reader verifies. With the results of the
  // first session instead, the reader would execute too.
  EXPECT_EQ(Executions(d.engine, "test.tasks.scaled"), 1u);
  EXPECT_EQ(Executions(d.engine, "test.tasks.scaled_plus_one"), 0u);
}

TEST(TaskPersistence, LookupsAreExactEvenWhenEveryHashCollides) {
  turbine::testing::TempDir dir;
  {
    Daemon<turbine::testing::CollidingStore> d(dir.str());
    for (int64_t n = 0; n < 30; ++n)
      ASSERT_EQ(*d.engine.Read(label_v1(n)), "v1:" + std::to_string(n));
    ASSERT_EQ(*d.engine.Read(fib(25)), 75025);
  }
  Daemon<turbine::testing::CollidingStore> d(dir.str());
  for (int64_t n = 29; n >= 0; --n)
    EXPECT_EQ(*d.engine.Read(label_v1(n)), "v1:" + std::to_string(n));
  EXPECT_EQ(*d.engine.Read(fib(25)), 75025);
  EXPECT_EQ(d.engine.Stats().executions, 0u);
}

TEST(TaskPersistence, BumpingAFunctionsVersionMakesOldEntriesUnreachable) {
  turbine::testing::TempDir dir;
  {
    Daemon d(dir.str());
    ASSERT_EQ(*d.engine.Read(label_v1(7)), "v1:7");
  }
  Daemon d(dir.str());
  EXPECT_EQ(*d.engine.Read(label_v2(7)), "v2:7");
  EXPECT_EQ(Executions(d.engine, "test.tasks.label", 2), 1u);
  EXPECT_EQ(*d.engine.Read(label_v1(7)), "v1:7");  // still its own entry
  EXPECT_EQ(Executions(d.engine, "test.tasks.label", 1), 0u);
}

Task<int64_t> LookupImpl(std::string key) {
  turbine::Fail("no entry '" + key + "'", absl::StatusCode::kNotFound);
  co_return 0;  // a coroutine: the failure is the task's output, not the caller's exception
}
inline const turbine::Function<LookupImpl> lookup{"test.tasks.lookup", 1};

TEST(TaskPersistence, ARestoredErrorKeepsItsCode) {
  turbine::testing::TempDir dir;
  {
    Daemon d(dir.str());
    ASSERT_EQ(d.engine.Read(lookup("k")).status().code(), absl::StatusCode::kNotFound);
  }
  Daemon d(dir.str());
  absl::StatusOr<int64_t> restored = d.engine.Read(lookup("k"));
  EXPECT_EQ(restored.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(restored.status().message(), "no entry 'k'");
  EXPECT_EQ(Executions(d.engine, "test.tasks.lookup", 1), 0u) << "served from disk";
}

bool disk_unreadable = true;
Task<int64_t> ReadsADiskImpl() {
  if (disk_unreadable) turbine::Fail("input/output error", absl::StatusCode::kUnavailable);
  co_return 5;
}
inline const turbine::Function<ReadsADiskImpl> reads_a_disk{"test.tasks.reads_a_disk", 1};
Task<int64_t> FallsBackImpl() {
  try {
    co_return co_await reads_a_disk();
  } catch (const turbine::TaskError&) {
    co_return -1;
  }
}
inline const turbine::Function<FallsBackImpl> falls_back{"test.tasks.falls_back", 1};

// A transient failure stored before its retry ran is not served after a restart: the task
// executes again.
TEST(TaskPersistence, ARestoredTransientFailureExecutesAgain) {
  turbine::testing::TempDir dir;
  disk_unreadable = true;
  {
    Daemon d(dir.str());
    ASSERT_EQ(d.engine.Read(reads_a_disk()).status().code(), absl::StatusCode::kUnavailable);
  }
  disk_unreadable = false;
  Daemon d(dir.str());
  absl::StatusOr<int64_t> restored = d.engine.Read(reads_a_disk());
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(*restored, 5);
  EXPECT_EQ(Executions(d.engine, "test.tasks.reads_a_disk", 1), 1u);
}

// A reader that caught a transient failure made a value of it; stored before the retry
// reached it, it is verified after a restart, not trusted.
TEST(TaskPersistence, AReaderThatCaughtATransientFailureIsVerifiedAfterARestart) {
  turbine::testing::TempDir dir;
  disk_unreadable = true;
  {
    Daemon d(dir.str());
    ASSERT_EQ(*d.engine.Read(falls_back()), -1);
  }
  disk_unreadable = false;
  Daemon d(dir.str());
  absl::StatusOr<int64_t> restored = d.engine.Read(falls_back());
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(*restored, 5);
}

// FlakyInputs cannot read inputs while `unreadable` is set (an I/O error).
struct FlakyInputs : RocksBackingStore {
  using RocksBackingStore::RocksBackingStore;
  static inline std::atomic<bool> unreadable{false};
  absl::StatusOr<std::optional<turbine::StoredInput>> ReadInput(std::string_view key) override {
    if (unreadable) return absl::UnavailableError("input/output error");
    return RocksBackingStore::ReadInput(key);
  }
};
Task<int64_t> PriceOrZeroImpl() {
  try {
    co_return co_await Input<int64_t>("price");
  } catch (const turbine::TaskError&) {
    co_return 0;
  }
}
inline const turbine::Function<PriceOrZeroImpl> price_or_zero{"test.tasks.price_or_zero", 1};

// A reader that caught an input's transient read error made a value of it; stored before
// the input was read again, it is verified after a restart, not trusted.
TEST(TaskPersistence, AReaderThatCaughtAnUnreadableInputIsVerifiedAfterARestart) {
  turbine::testing::TempDir dir;
  {
    Daemon d(dir.str());
    ASSERT_TRUE(d.engine.SetInput("price", int64_t{10}).ok());
  }
  FlakyInputs::unreadable = true;
  {
    Daemon<FlakyInputs> d(dir.str());
    ASSERT_EQ(*d.engine.Read(price_or_zero()), 0);
  }
  FlakyInputs::unreadable = false;
  Daemon d(dir.str());
  absl::StatusOr<int64_t> restored = d.engine.Read(price_or_zero());
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(*restored, 10);
}

TEST(TaskPersistence, AStoreThatCannotBeOpenedIsAnErrorNotAMemoryOnlyEngine) {
  turbine::testing::TempDir dir;
  const std::string not_a_dir = dir.str() + "/file";
  std::FILE* file = std::fopen(not_a_dir.c_str(), "w");
  ASSERT_NE(file, nullptr);
  std::fclose(file);
  auto opened = turbine::storage::PersistentEngine::Open({.data_dir = not_a_dir}, {});
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.status().message().find(not_a_dir), std::string::npos) << opened.status();
}

// A lookup of a huge identity (a call with a 5 MB argument) leaves nothing on its thread.
// The buffer a thread reuses for keys kept the largest identity it ever looked up, for the
// life of the daemon: with the engine's own identity buffer, 40 MB of a daemon's heap after
// six such calls, with nothing in memory. (glibc's count: a sanitizer's allocator bypasses
// it.)
TEST(TaskLookup, AHugeIdentityLeavesNothingBehindOnItsThread) {
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  turbine::testing::TempDir dir;
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(StoreOptions{.data_dir = dir.str()});
  ASSERT_TRUE(store.ok()) << store.status();
  RocksBackingStore backing(store->get());
  const std::string identity(size_t{5} << 20, 'k');
  std::thread([&] {
    ASSERT_TRUE(backing.FindTask(1, "small").ok());  // the thread's buffers exist
    const auto heap = [] {
      const struct mallinfo2 info = mallinfo2();
      return info.uordblks + info.hblkhd;
    };
    const size_t before = heap();
    ASSERT_TRUE(backing.FindTask(2, identity).ok());
    EXPECT_LT(heap(), before + (size_t{1} << 20));
  }).join();
#endif
}

}  // namespace
