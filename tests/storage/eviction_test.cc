// Value eviction (MemoryOptions, evict.cc), on a real RocksDB directory: an evicted value
// comes back from the store without executing, a change still reaches the readers of an
// evicted task, and a value the store no longer has is computed again, correctly.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "persisted_engine.h"
#include "temp_dir.h"
#include "turbine/engine.h"
#include "turbine/observe.h"
#include "turbine/trace.h"
#include "turbine/why.h"

namespace {

using turbine::Input;
using turbine::Task;

std::atomic<int> big_runs{0};
std::atomic<int> top_runs{0};

// Big(n) is a 64 KiB result read from an input: large enough to be a candidate under the
// default MemoryOptions::large_value_bytes. It depends on the input's parity only, so a
// change to the other value of the same parity is cut off at Big.
Task<std::string> BigImpl(int64_t n) {
  big_runs.fetch_add(1);
  const int64_t x = co_await Input<int64_t>("evict.x");
  co_return std::string(64 << 10, static_cast<char>('a' + (x % 2))) + std::to_string(n);
}
inline const turbine::Function<BigImpl> big{"test.evict.big", 1};

// Top(n) reads Big(n): it stays in memory, clean, while Big's value is evicted.
Task<int64_t> TopImpl(int64_t n) {
  top_runs.fetch_add(1);
  const std::string value = co_await big(n);
  co_return static_cast<int64_t>(value[0]) * 1000 + static_cast<int64_t>(value.size());
}
inline const turbine::Function<TopImpl> top{"test.evict.top", 1};

std::atomic<int> own_runs{0};

// Own(n) is Big's value held in a cell of its own task, which returns a reference to it, as
// fs.read does with a file changed within the last second.
Task<turbine::Vc<std::string>> OwnImpl(int64_t n) {
  own_runs.fetch_add(1);
  const int64_t x = co_await Input<int64_t>("evict.x");
  co_return turbine::Cell(std::string(64 << 10, static_cast<char>('a' + (x % 2))) +
                          std::to_string(n));
}
inline const turbine::Function<OwnImpl> own{"test.evict.own", 1};

// OwnTop(n) reads Own(n) through that reference.
Task<int64_t> OwnTopImpl(int64_t n) {
  const std::string value = co_await own(n);
  co_return static_cast<int64_t>(value[0]) * 1000 + static_cast<int64_t>(value.size());
}
inline const turbine::Function<OwnTopImpl> own_top{"test.evict.own_top", 1};

int64_t Expected(int64_t x, int64_t n) {
  return ('a' + x % 2) * 1000 + (64 << 10) + static_cast<int64_t>(std::to_string(n).size());
}

// An engine whose evictor never runs on its own (the heap is never over the limit): the
// test evicts with Engine::Evict, at the moment it chooses.
turbine::EngineOptions Options() {
  return turbine::EngineOptions{
      .worker_threads = 2,
      .gc = {.interval = {}},
      .memory = {.limit_bytes = size_t{1} << 40, .usage = [] { return size_t{0}; }}};
}

class Eviction : public ::testing::Test {
 protected:
  void SetUp() override {
    big_runs = 0;
    top_runs = 0;
    ASSERT_TRUE(daemon.engine.SetInput("evict.x", int64_t{0}).ok());
  }
  // Written, then evicted: everything the store holds.
  size_t FlushAndEvict() {
    EXPECT_TRUE(daemon.engine.Flush().ok());
    return daemon.engine.Evict(SIZE_MAX);
  }
  absl::StatusOr<int64_t> ReadTop(int64_t n) { return daemon.engine.Read(top(n)); }

  turbine::testing::TempDir dir;
  turbine::testing::PersistedEngine<> daemon{dir.str(), Options()};
};

TEST_F(Eviction, AnEvictedValueComesBackFromTheStoreWithoutExecuting) {
  ASSERT_EQ(*daemon.engine.Read(big(1)), std::string(64 << 10, 'a') + "1");
  const int runs = big_runs.load();
  // The first pass finds it read since the last one and spares it; Evict goes round twice.
  EXPECT_GE(FlushAndEvict(), size_t{64} << 10);
  EXPECT_EQ(daemon.engine.Stats().evicted_values, 1u);

  std::promise<turbine::Engine::AsyncRead> answer;
  daemon.engine.ReadAsync(big(1).raw(),
                          [&](turbine::Engine::AsyncRead read) { answer.set_value(read); });
  turbine::Engine::AsyncRead read = answer.get_future().get();
  ASSERT_TRUE(read.status.ok()) << read.status;
  EXPECT_EQ(*static_cast<const std::string*>(read.value.get()), std::string(64 << 10, 'a') + "1");
  EXPECT_TRUE(read.reloaded);
  EXPECT_FALSE(read.executed);
  EXPECT_EQ(big_runs.load(), runs);
  EXPECT_EQ(daemon.engine.Stats().reloaded_values, 1u);

  // In memory again: the next read is a plain hit.
  std::promise<turbine::Engine::AsyncRead> again;
  daemon.engine.ReadAsync(big(1).raw(),
                          [&](turbine::Engine::AsyncRead read) { again.set_value(read); });
  EXPECT_TRUE(again.get_future().get().immediate);
}

// Before, only an output's value could leave memory: one held in the task's own cell stayed.
TEST_F(Eviction, AValueInACellOfItsOwnTaskLeavesMemoryAndComesBack) {
  ASSERT_EQ(*daemon.engine.Read(own_top(4)), Expected(0, 4));
  const int runs = own_runs.load();
  EXPECT_GE(FlushAndEvict(), size_t{64} << 10);
  EXPECT_EQ(daemon.engine.Stats().evicted_values, 1u);

  // Read through the reference: loaded back, nothing executes.
  EXPECT_EQ(*daemon.engine.Read(own(4)), std::string(64 << 10, 'a') + "4");
  EXPECT_EQ(own_runs.load(), runs);
  EXPECT_EQ(daemon.engine.Stats().reloaded_values, 1u);

  // Evicted again, a change still reaches its reader, and the new value is read.
  EXPECT_GE(FlushAndEvict(), size_t{64} << 10);
  ASSERT_TRUE(daemon.engine.SetInput("evict.x", int64_t{1}).ok());
  EXPECT_EQ(*daemon.engine.Read(own_top(4)), Expected(1, 4));
  EXPECT_EQ(*daemon.engine.Read(own(4)), std::string(64 << 10, 'b') + "4");
  EXPECT_EQ(own_runs.load(), runs + 1);
}

TEST_F(Eviction, ReadersVerifyAgainstAnEvictedTaskWithoutLoadingItsValue) {
  ASSERT_EQ(*ReadTop(2), Expected(0, 2));
  FlushAndEvict();
  ASSERT_EQ(daemon.engine.Stats().evicted_values, 1u);
  // x 0 -> 2: Big re-executes (its value is loaded back first, for the comparison), comes
  // out the same, and Top verifies without executing.
  ASSERT_TRUE(daemon.engine.SetInput("evict.x", int64_t{2}).ok());
  const int tops = top_runs.load();
  EXPECT_EQ(*ReadTop(2), Expected(2, 2));
  EXPECT_EQ(top_runs.load(), tops) << "the early cutoff at an evicted task was lost";
}

TEST_F(Eviction, AChangeReachesTheReadersOfAnEvictedTask) {
  ASSERT_EQ(*ReadTop(3), Expected(0, 3));
  FlushAndEvict();
  ASSERT_EQ(daemon.engine.Stats().evicted_values, 1u);
  // Top is clean and in memory; its only way to the input goes through the evicted Big.
  ASSERT_TRUE(daemon.engine.SetInput("evict.x", int64_t{1}).ok());
  EXPECT_EQ(*ReadTop(3), Expected(1, 3));
  ASSERT_TRUE(daemon.engine.SetInput("evict.x", int64_t{4}).ok());
  FlushAndEvict();
  EXPECT_EQ(*ReadTop(3), Expected(4, 3));
}

TEST_F(Eviction, AValueTheStoreNoLongerHasIsComputedAgain) {
  ASSERT_EQ(*ReadTop(4), Expected(0, 4));
  FlushAndEvict();
  const turbine::TaskId big_task = big(4).raw().task;
  // A collection removes Big's record: the value it would load is gone.
  absl::StatusOr<turbine::GcReport> report = daemon.engine.CollectGarbage(
      {.also_collect = [big_task](turbine::TaskId id) { return id == big_task; }});
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->removed_tasks, 1u);
  const int runs = big_runs.load();
  EXPECT_EQ(*daemon.engine.Read(big(4)), std::string(64 << 10, 'a') + "4");
  EXPECT_EQ(big_runs.load(), runs + 1);
  EXPECT_EQ(daemon.engine.Stats().reload_failures, 1u);
  const std::vector<turbine::ExecutionRecord> recent = daemon.engine.RecentExecutions(1);
  ASSERT_EQ(recent.size(), 1u);
  EXPECT_EQ(recent[0].task, big_task);
  EXPECT_EQ(recent[0].reason, turbine::ExecutionReason::kGarbageCollected);
  EXPECT_EQ(*ReadTop(4), Expected(0, 4));
  ASSERT_TRUE(daemon.engine.SetInput("evict.x", int64_t{1}).ok());
  EXPECT_EQ(*ReadTop(4), Expected(1, 4));
}

TEST_F(Eviction, AnEvictionPassIsATraceEvent) {
  ASSERT_TRUE(daemon.engine.Read(big(6)).ok());
  ASSERT_TRUE(daemon.engine.StartTrace());
  FlushAndEvict();
  const turbine::Trace trace = daemon.engine.StopTrace();
  const auto eviction = std::find_if(trace.events.begin(), trace.events.end(), [](const auto& e) {
    return e.kind == turbine::TraceEvent::Kind::kEviction;
  });
  ASSERT_NE(eviction, trace.events.end());
  EXPECT_EQ(eviction->reason.rfind("evicted 1 values, ", 0), 0u) << eviction->reason;
}

TEST_F(Eviction, SmallResultsAndUnwrittenOnesStayInMemory) {
  ASSERT_EQ(*ReadTop(5), Expected(0, 5));
  // Not yet written: the store could not give the value back.
  EXPECT_EQ(daemon.engine.Evict(SIZE_MAX), 0u);
  FlushAndEvict();
  // Top's result is a few bytes: not a candidate. Big's is.
  EXPECT_EQ(daemon.engine.Stats().evicted_values, 1u);
}

// EvictsEveryBigValueInTheBackground reads eight large results under a limit the process
// is always over, waits for the background evictor to take all eight values out of memory,
// and reads them back from the store without executing. Returns the engine's stats then.
turbine::EngineStats EvictsEveryBigValueInTheBackground(
    std::chrono::milliseconds snapshot_interval) {
  big_runs = 0;
  turbine::testing::TempDir dir;
  turbine::testing::PersistedEngine<> daemon(
      dir.str(), turbine::EngineOptions{.worker_threads = 2,
                                        .snapshot_interval = snapshot_interval,
                                        .gc = {.interval = {}},
                                        .memory = {.limit_bytes = 1,
                                                   .interval = std::chrono::milliseconds(1),
                                                   .usage = [] { return size_t{2}; }}});
  EXPECT_TRUE(daemon.engine.SetInput("evict.x", int64_t{0}).ok());
  for (int64_t n = 0; n < 8; ++n) EXPECT_TRUE(daemon.engine.Read(big(n)).ok());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (daemon.engine.Stats().evicted_values < 8 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const turbine::EngineStats stats = daemon.engine.Stats();
  EXPECT_EQ(stats.evicted_values, 8u);
  for (int64_t n = 0; n < 8; ++n) {
    EXPECT_EQ(*daemon.engine.Read(big(n)), std::string(64 << 10, 'a') + std::to_string(n));
  }
  EXPECT_EQ(big_runs.load(), 8);
  return stats;
}

// The background evictor: over the limit, it evicts by itself.
TEST(EvictionInTheBackground, OverTheLimitLargeValuesLeaveMemory) {
  EXPECT_GT(EvictsEveryBigValueInTheBackground(std::chrono::milliseconds(10)).heap_bytes, 0u);
}

// Without background snapshots (interval 0) a limit still makes room: the evictor has the
// snapshots it needs written. Before, nothing was ever written, so nothing could leave and
// the daemon stayed far over its limit (4x in a black-box run) without a word.
TEST(EvictionInTheBackground, WithoutPeriodicSnapshotsTheLimitStillMakesRoom) {
  EXPECT_GT(EvictsEveryBigValueInTheBackground(std::chrono::milliseconds(0)).snapshots, 0u);
}

// ResidentBytes is this process's resident set.
size_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  size_t pages = 0;
  size_t resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

// Memory freed by something else than eviction (a burst of calls that ended) stayed with
// the allocator: a daemon flooded with calls stayed at 2.9 GB under a 512 MiB limit, its
// heap back at 39 MB, because a few blocks still in use kept the freed pages around them
// from going back by themselves. Over the limit with the heap well under the resident set,
// the evictor now trims.
TEST(EvictionInTheBackground, FreedMemoryTheAllocatorKeepsGoesBackOverTheLimit) {
  turbine::testing::TempDir dir;
  turbine::testing::PersistedEngine<> daemon(
      dir.str(), turbine::EngineOptions{.worker_threads = 2,
                                        .snapshot_interval = std::chrono::milliseconds(10),
                                        .gc = {.interval = {}},
                                        .memory = {.limit_bytes = size_t{96} << 20,
                                                   .interval = std::chrono::milliseconds(10)}});
  // 256 MiB in 4 KiB blocks on four threads, then all but one block in 64 freed: the ones
  // kept hold the pages between them.
  std::vector<std::unique_ptr<char[]>> kept;
  std::mutex kept_mu;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      std::vector<std::unique_ptr<char[]>> blocks;
      for (int i = 0; i < (64 << 20) / 4096; ++i) {
        blocks.emplace_back(new char[4096]);
        std::fill_n(blocks.back().get(), 4096, static_cast<char>(i));
      }
      std::lock_guard lock(kept_mu);
      for (size_t i = 0; i < blocks.size(); i += 64) kept.push_back(std::move(blocks[i]));
    });
  }
  for (std::thread& thread : threads) thread.join();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (ResidentBytes() > (size_t{128} << 20) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_LE(ResidentBytes(), size_t{128} << 20) << "kept " << kept.size() << " blocks";
}

}  // namespace

// CapturedLog keeps what an engine logs, for a test to look in.
struct CapturedLog {
  std::mutex mu;
  std::string text;
  bool Contains(std::string_view part) {
    std::lock_guard lock(mu);
    return text.find(part) != std::string::npos;
  }
};

// StuckFromTheStart is an engine over its memory limit from the start (a limit of a byte,
// a resident set of 1 GiB), its evictor looking every 10 ms, logging into `log`.
turbine::EngineOptions StuckFromTheStart(CapturedLog& log) {
  return turbine::EngineOptions{.worker_threads = 2,
                                .logger =
                                    [&log](turbine::LogLevel, std::string_view message) {
                                      std::lock_guard lock(log.mu);
                                      log.text.append(message).append("\n");
                                    },
                                .gc = {.interval = {}},
                                .memory = {.limit_bytes = 1,
                                           .interval = std::chrono::milliseconds(10),
                                           .usage = [] { return size_t{1} << 30; }}};
}

// ObservedSubject(key) observes `key` in a world that never changes (a file, as fs.* would).
void WatchNothing(const std::string&, const turbine::Invalidator&) {}
std::optional<uint64_t> LookUnchanged(const std::string&, const turbine::Invalidator&) { return 1; }
const turbine::ObservationKind unchanging_kind{"test.evict.unchanging", WatchNothing,
                                               LookUnchanged};
Task<int64_t> ObservedSubjectImpl(std::string key) {
  turbine::Observe("test.evict.unchanging", key, 1);
  co_return 1;
}
inline const turbine::Function<ObservedSubjectImpl> observed_subject{
    "test.evict.observed_subject", 1, "", {.session_dependent = true}};

// Over the limit with nothing left that may leave memory, the warning counts what the
// engine keeps of the observations its results follow from, which no eviction gives back
// (a black-box run: 37 MB for 60,000 files, no task in memory). Before, it blamed only
// what was running, read, or the process itself.
TEST(EvictionInTheBackground, StuckWithObservationsTheWarningCountsThem) {
  turbine::testing::TempDir dir;
  CapturedLog captured;
  turbine::testing::PersistedEngine<> daemon(dir.str(), StuckFromTheStart(captured));
  auto logged = [&](std::string_view part) { return captured.Contains(part); };
  const std::string& log = captured.text;
  for (int n = 0; n < 3; ++n) {
    ASSERT_EQ(*daemon.engine.Read(observed_subject("subject " + std::to_string(n))), 1);
  }
  ASSERT_TRUE(daemon.engine.Flush().ok());
  for (int tries = 0; tries < 1000 && !logged("stays over the limit"); ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(logged("stays over the limit")) << log;
  EXPECT_TRUE(logged("of the 3 files and directories its results observed")) << log;
}

// Over the limit with nothing that may leave while a garbage collection pass runs: the
// warning names the pass's graph of the store, which no eviction gives back, also when it
// was said before the pass began (here the engine is over its limit from the start).
// Before, it blamed only what was running, read, or the process itself.
TEST(EvictionInTheBackground, StuckDuringAGcPassTheWarningNamesThePass) {
  turbine::testing::TempDir dir;
  CapturedLog captured;
  turbine::testing::PersistedEngine<> daemon(dir.str(), StuckFromTheStart(captured));
  auto logged = [&](std::string_view part) { return captured.Contains(part); };
  const std::string& log = captured.text;
  ASSERT_TRUE(daemon.engine.SetInput("evict.x", int64_t{1}).ok());
  ASSERT_TRUE(daemon.engine.Flush().ok());
  // Said first with no pass running (over the limit from the start)...
  for (int tries = 0; tries < 1000 && !logged("stays over the limit"); ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(logged("stays over the limit")) << log;
  // The figures as they are: before, "(1024 MiB) stays over the limit (0 MiB)".
  EXPECT_TRUE(logged("(1024.0 MiB) stays over the limit (1 byte)")) << log;
  EXPECT_FALSE(logged("pass running now")) << log;
  EXPECT_FALSE(logged("files and directories")) << log;  // none observed
  // ... then again once a pass runs.
  turbine::GcOptions gc;
  gc.stop = [&] {  // the pass waits here, running, until the evictor has spoken
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!logged("pass running now") && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  };
  EXPECT_TRUE(daemon.engine.CollectGarbage(gc).ok());
  EXPECT_TRUE(logged("stays over the limit")) << log;
  EXPECT_TRUE(logged("the garbage collection pass running now holds its graph of the store"))
      << log;
}

// Over the limit with nothing that may leave, the evictor looks at the usual interval, not
// at the pressed one (a tenth of it): each look walks the task table in vain. Before, an
// idle daemon over its limit looked 50 times a second for as long as it idled.
TEST(EvictionInTheBackground, StuckOverTheLimitTheEvictorLooksAtTheUsualInterval) {
  turbine::testing::TempDir dir;
  std::atomic<int> looks{0};
  turbine::testing::PersistedEngine<> daemon(
      dir.str(),
      turbine::EngineOptions{
          .worker_threads = 2,
          .gc = {.interval = {}},
          .memory = {.limit_bytes = 1, .interval = std::chrono::milliseconds(200), .usage = [&] {
                       ++looks;
                       return size_t{1} << 30;
                     }}});
  ASSERT_TRUE(daemon.engine.SetInput("evict.x", int64_t{1}).ok());
  ASSERT_TRUE(daemon.engine.Flush().ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // stuck by now
  const int before = looks.load();
  const auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const int looked = looks.load() - before;
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  // One look per 200 ms, or per 20 ms when pressed; at most one per 100 ms passes.
  EXPECT_LE(looked, elapsed.count() / 100) << looked << " looks in " << elapsed.count() << " ms";
}

// Without a logger, what the engine did (kInfo: the check at open) stays off the program's
// stderr, which is for what went wrong. Before, every open printed "turbine: checked 0
// observations (0 changed) in 0.0 ms" into a program that had asked for nothing.
TEST(EngineLog, WithoutALoggerWhatTheEngineDidStaysOffStderr) {
  turbine::testing::TempDir dir;
  ::testing::internal::CaptureStderr();
  {
    turbine::testing::PersistedEngine<> engine(dir.str());
    ASSERT_TRUE(engine.engine.SetInput("log.x", int64_t{1}).ok());
  }
  const std::string printed = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(printed.find("checked"), std::string::npos) << printed;
}
