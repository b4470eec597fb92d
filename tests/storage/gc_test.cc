// Garbage collection of the store (turbine/gc.h), on a real RocksDB directory: what is
// garbage is removed and its space freed, and whatever is removed, every later answer is
// the one a fresh computation gives: a missing dependency is a change, and a task is never
// stored without the tasks it refers to.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gc_fixture.h"
#include "small_disk.h"
#include "persisted_engine.h"
#include "temp_dir.h"
#include "turbine/engine.h"
#include "turbine/storage/rocks_backing_store.h"

namespace {

using turbine::EngineOptions;
using turbine::GcOptions;
using turbine::GcReport;
using turbine::Input;
using turbine::Task;
using turbine::TaskId;
using turbine::Vc;
using turbine::testing::gc::Collect;
using turbine::testing::gc::Count;
using turbine::testing::gc::Daemon;
using turbine::testing::gc::Executions;
using turbine::testing::gc::forward;
using turbine::testing::gc::leaf;
using turbine::testing::gc::Only;
using turbine::testing::gc::Removed;
using turbine::testing::gc::StoreForward5;
using turbine::testing::gc::sum;

Task<Vc<int64_t>> OtherForwardImpl(int64_t n) { co_return leaf(n); }
inline const turbine::Function<OtherForwardImpl> other_forward{"test.gc.other_forward", 1};

// Holder(n) keeps Forward(n) inside its value, without reading it; HeldSum(n) reads
// through it.
Task<std::vector<Vc<int64_t>>> HolderImpl(int64_t n) {
  co_return std::vector<Vc<int64_t>>{forward(n)};
}
inline const turbine::Function<HolderImpl> holder{"test.gc.holder", 1};
Task<int64_t> HeldSumImpl(int64_t n) {
  int64_t total = 0;
  for (const Vc<int64_t>& held : co_await holder(n)) total += co_await held;
  co_return total;
}
inline const turbine::Function<HeldSumImpl> held_sum{"test.gc.held_sum", 1};

// Content(key, version) is kept only while something refers to it, like fs.content;
// Current(key) forwards to the version an input names, like fs.read; Length(key) reads it.
Task<std::string> ContentImpl(std::string key, int64_t version) {
  Count("content");
  co_return std::string(4096, static_cast<char>(key[0] + version % 26)) + std::to_string(version);
}
inline const turbine::Function<ContentImpl> content{
    "test.gc.content", 1, "", {.kept_while_referenced = true}};
Task<Vc<std::string>> CurrentImpl(std::string key) {
  co_return content(key, co_await Input<int64_t>("version:" + key));
}
inline const turbine::Function<CurrentImpl> current{"test.gc.current", 1};
Task<int64_t> LengthImpl(std::string key) {
  co_return static_cast<int64_t>((co_await current(key)).size());
}
inline const turbine::Function<LengthImpl> length{"test.gc.length", 1};

// Blob(n): a large value that does not compress, to fill the disk with.
Task<std::string> BlobImpl(int64_t n) {
  std::string bytes(64 << 10, '\0');
  uint64_t x = 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(n + 1);
  for (char& c : bytes) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    c = static_cast<char>(x);
  }
  co_return bytes;
}
inline const turbine::Function<BlobImpl> blob{"test.gc.blob", 1};

// Link(ring, i, size) refers to Link(ring, i + 1 mod size, size) inside its value without
// reading it: a ring of `size` tasks is a cycle of references. Walk(ring, size) reads the
// ring round once, which executes every link.
struct Link {
  int64_t i = 0;
  std::vector<Vc<Link>> next;
  bool operator==(const Link&) const = default;
  static constexpr std::string_view kTypeName = "test.gc.Link";
  static constexpr auto kFields =
      std::make_tuple(turbine::field("i", &Link::i), turbine::field("next", &Link::next));
};
Task<Link> LinkImpl(int64_t ring, int64_t i, int64_t size);
inline const turbine::Function<LinkImpl> ring_link{"test.gc.link", 1};
Task<Link> LinkImpl(int64_t ring, int64_t i, int64_t size) {
  co_return Link{i, {ring_link(ring, (i + 1) % size, size)}};
}
Task<int64_t> WalkImpl(int64_t ring, int64_t size) {
  int64_t total = 0;
  Link link = co_await ring_link(ring, 0, size);
  for (int64_t step = 0; step < size; ++step) {
    total += link.i;
    link = co_await link.next.at(0);
  }
  co_return total;
}
inline const turbine::Function<WalkImpl> walk{"test.gc.walk", 1};

// StoreLeaves is a first session: "base" 1 and Leaf(0) to Leaf(count - 1) stored; their ids
// by n in `ids`.
void StoreLeaves(const std::string& dir, int64_t count, std::vector<TaskId>* ids) {
  Daemon d(dir);
  ASSERT_TRUE(d.engine.SetInput("base", int64_t{1}).ok());
  for (int64_t n = 0; n < count; ++n) {
    ASSERT_EQ(*d.engine.Read(leaf(n)), n + 1);
    ids->push_back(leaf(n).raw().task);
  }
}

// The embedder's logger hears of every pass asked for, what it removed or not. Before, only
// of background passes that removed something.
TEST(GarbageCollection, APassAskedForIsLogged) {
  turbine::testing::TempDir dir;
  std::mutex log_mu;
  std::string log;
  turbine::testing::PersistedEngine<> d(
      dir.str(), turbine::EngineOptions{.worker_threads = 2,
                                        .logger =
                                            [&](turbine::LogLevel, std::string_view message) {
                                              std::lock_guard lock(log_mu);
                                              log.append(message).append("\n");
                                            },
                                        .gc = {.interval = {}}});
  ASSERT_TRUE(d.engine.SetInput("base", int64_t{100}).ok());
  ASSERT_EQ(*d.engine.Read(sum(1)), 203);
  ASSERT_TRUE(d.engine.CollectGarbage({}).ok());
  std::lock_guard lock(log_mu);
  EXPECT_NE(log.find("garbage collection removed 0 of "), std::string::npos) << log;
}

TEST(GarbageCollection, AMissingDependencyIsAChange) {
  // The engine already treated this right before garbage collection existed: verifying a
  // restored task whose dependency cannot be loaded re-executes it.
  turbine::testing::TempDir dir;
  TaskId leaf_id = 0;
  {
    Daemon d(dir.str());
    ASSERT_TRUE(d.engine.SetInput("base", int64_t{100}).ok());
    ASSERT_EQ(*d.engine.Read(sum(1)), 203);
    leaf_id = leaf(1).raw().task;
  }
  {
    Daemon d(dir.str());
    GcReport report = Collect(d.engine, Only({leaf_id}));
    EXPECT_EQ(report.removed_tasks, 1u);  // Sum(1) only read it: it stays
    EXPECT_EQ(report.requested, 1u);
  }
  {
    Daemon d(dir.str());
    const int sums = Executions("sum");
    // Trusted: nothing it read changed since its record was written, so what it read is not
    // even looked at (a collected dependency is no change in value), nor after a change
    // that cannot reach it.
    EXPECT_EQ(*d.engine.Read(sum(1)), 203);
    ASSERT_TRUE(d.engine.SetInput("unrelated", int64_t{1}).ok());
    EXPECT_EQ(*d.engine.Read(sum(1)), 203);
    EXPECT_EQ(Executions("sum"), sums);
    EXPECT_EQ(d.engine.Stats().trusted_restored_tasks, 1u);
  }
  // Verified, it finds its dependency gone, and re-executes.
  turbine::testing::PersistedEngine<turbine::testing::VerifyingStore> d(dir.str());
  const int sums = Executions("sum");
  const int leaves = Executions("leaf");
  EXPECT_EQ(*d.engine.Read(sum(1)), 203);
  EXPECT_EQ(d.engine.Stats().trusted_restored_tasks, 0u);
  EXPECT_EQ(Executions("sum"), sums + 1);     // its dependency is gone: it re-executed
  EXPECT_EQ(Executions("leaf"), leaves + 1);  // Leaf(1) again; Leaf(2) verified from disk
  EXPECT_EQ(*d.engine.Read(sum(1)), 203);
  ASSERT_TRUE(d.engine.SetInput("base", int64_t{0}).ok());
  EXPECT_EQ(*d.engine.Read(sum(1)), 3);  // and the new Leaf(1) is linked as before
}

TEST(GarbageCollection, ATaskThatRefersToARemovedTaskIsRemovedWithIt) {
  turbine::testing::TempDir dir;
  TaskId leaf_id = 0;
  TaskId forward_id = 0;
  {
    Daemon d(dir.str());
    ASSERT_TRUE(d.engine.SetInput("base", int64_t{10}).ok());
    ASSERT_EQ(*d.engine.Read(forward(5)), 15);
    leaf_id = leaf(5).raw().task;
    forward_id = forward(5).raw().task;
  }
  {
    Daemon d(dir.str());
    GcReport report = Collect(d.engine, Only({leaf_id}));
    EXPECT_TRUE(Removed(report, leaf_id));
    EXPECT_TRUE(Removed(report, forward_id));  // it names Leaf(5), which a reader follows
    EXPECT_EQ(report.dependent, 1u);
  }
  Daemon d(dir.str());
  absl::StatusOr<int64_t> read = d.engine.Read(forward(5));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, 15);
}

TEST(GarbageCollection, ATaskInMemoryThatRefersToARemovedTaskExecutesAgain) {
  turbine::testing::TempDir dir;
  TaskId leaf_id = 0;
  ASSERT_NO_FATAL_FAILURE(StoreForward5(dir.str(), &leaf_id));
  Daemon d(dir.str());
  // Forward(5) restored (not yet verified) and in memory; Leaf(5) only on disk.
  const turbine::Vc<int64_t> forwarded = forward(5);
  GcReport report = Collect(d.engine, Only({leaf_id}));
  ASSERT_TRUE(Removed(report, forwarded.raw().task));
  // Its reference leads nowhere now: it executes again instead of being followed.
  const int forwards = Executions("forward");
  absl::StatusOr<int64_t> read = d.engine.Read(forwarded);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, 15);
  EXPECT_EQ(Executions("forward"), forwards + 1);
}

TEST(GarbageCollection, ATaskThatMustExecuteIsNotStoredReferringToARemovedTask) {
  turbine::testing::TempDir dir;
  TaskId leaf_id = 0;
  ASSERT_NO_FATAL_FAILURE(StoreForward5(dir.str(), &leaf_id));
  {
    Daemon d(dir.str(), std::chrono::milliseconds(0));
    // Forward(5) in memory, Leaf(5) only on disk: collecting Leaf(5) leaves Forward(5)
    // dirty, to execute before it is read (its reference leads nowhere).
    const turbine::Vc<int64_t> forwarded = forward(5);
    ASSERT_TRUE(Removed(Collect(d.engine, Only({leaf_id})), forwarded.raw().task));
    // A new task holds Forward(5) without reading it: a snapshot must not store Forward(5)
    // as it is, still referring to the removed Leaf(5).
    ASSERT_TRUE(d.engine.Read(holder(5)).ok());
    ASSERT_TRUE(d.engine.Flush().ok());
  }
  Daemon d(dir.str());
  absl::StatusOr<int64_t> read = d.engine.Read(held_sum(5));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, 15);
}

TEST(GarbageCollection, ATaskRemovedWhileInMemoryIsStoredAgainWithWhatRefersToIt) {
  turbine::testing::TempDir dir;
  {
    Daemon d(dir.str(), std::chrono::milliseconds(0));
    ASSERT_TRUE(d.engine.SetInput("base", int64_t{1}).ok());
    ASSERT_EQ(*d.engine.Read(forward(3)), 4);
    ASSERT_TRUE(d.engine.Flush().ok());
    GcReport report = Collect(d.engine, Only({leaf(3).raw().task}));
    ASSERT_EQ(report.removed_tasks, 2u);
    // Both are still in memory. A new task refers to Leaf(3): its snapshot must store Leaf(3)
    // again, or the next session would find a reference to nothing.
    ASSERT_EQ(*d.engine.Read(other_forward(3)), 4);
  }
  Daemon d(dir.str());
  absl::StatusOr<int64_t> read = d.engine.Read(other_forward(3));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, 4);
}

// Wrap(n) refers to Forward(n), which refers to Leaf(n).
Task<Vc<int64_t>> WrapImpl(int64_t n) { co_return forward(n); }
inline const turbine::Function<WrapImpl> wrap{"test.gc.wrap", 1};

TEST(GarbageCollection, TasksReadFromTheStoreDuringAPassAreNeverTakenForStored) {
  // Passes remove everything while another thread loads the tasks they remove and stores
  // new tasks that refer to them. A task loaded from a record being deleted must count as
  // not stored, or a snapshot would store a reference to it without it.
  constexpr int kTasks = 300;
  turbine::testing::TempDir dir;
  {
    Daemon d(dir.str());
    ASSERT_TRUE(d.engine.SetInput("base", int64_t{1}).ok());
    for (int64_t n = 0; n < kTasks; ++n) ASSERT_EQ(*d.engine.Read(forward(n)), n + 1);
  }
  {
    Daemon d(dir.str(), std::chrono::milliseconds(5));
    std::atomic<bool> done{false};
    std::thread collector([&] {
      while (!done.load()) {
        ASSERT_TRUE(d.engine.CollectGarbage(GcOptions{.disk_limit = 1}).ok());
      }
    });
    {
      turbine::Engine::Scope scope(d.engine);
      for (int64_t n = 0; n < kTasks; ++n) ASSERT_EQ(*d.engine.Read(wrap(n)), n + 1);
    }
    done = true;
    collector.join();
  }
  Daemon d(dir.str());
  for (int64_t n = 0; n < kTasks; ++n) {
    absl::StatusOr<int64_t> read = d.engine.Read(wrap(n));
    ASSERT_TRUE(read.ok()) << read.status() << " wrap(" << n << ")";
    EXPECT_EQ(*read, n + 1);
  }
}

// HeldDeletes holds every deletion until the test releases it, and says when one waits.
class HeldDeletes : public turbine::storage::RocksBackingStore {
 public:
  using RocksBackingStore::RocksBackingStore;
  static inline std::mutex mu;
  static inline std::condition_variable changed;
  static inline bool waiting = false;
  static inline bool released = true;

  absl::Status DeleteTasks(const std::vector<uint64_t>& ids) override {
    {
      std::unique_lock lock(mu);
      waiting = true;
      changed.notify_all();
      changed.wait(lock, [] { return released; });
      waiting = false;
    }
    return RocksBackingStore::DeleteTasks(ids);
  }
};

TEST(GarbageCollection, ATaskReadFromARecordBeingDeletedIsNotStored) {
  turbine::testing::TempDir dir;
  std::set<TaskId> garbage;
  {
    Daemon d(dir.str());
    ASSERT_TRUE(d.engine.SetInput("base", int64_t{10}).ok());
    ASSERT_EQ(*d.engine.Read(forward(5)), 15);
    garbage = {forward(5).raw().task, leaf(5).raw().task};
  }
  {
    turbine::testing::PersistedEngine<HeldDeletes> d(dir.str(), std::chrono::milliseconds(0));
    HeldDeletes::released = false;
    std::thread collector([&] {
      absl::StatusOr<GcReport> report = d.engine.CollectGarbage(Only(garbage));
      EXPECT_TRUE(report.ok()) << report.status();
      EXPECT_EQ(report->removed_tasks, 2u);
    });
    {
      std::unique_lock lock(HeldDeletes::mu);
      HeldDeletes::changed.wait(lock, [] { return HeldDeletes::waiting; });
    }
    // Forward(5) and Leaf(5) are being deleted: their records are still there to read. A
    // new task refers to Forward(5): if it counted as stored, its snapshot would not take
    // it along, and the reference would lead nowhere once the deletion is done.
    {
      turbine::Engine::Scope scope(d.engine);
      ASSERT_EQ(*d.engine.Read(wrap(5)), 15);
    }
    {
      std::lock_guard lock(HeldDeletes::mu);
      HeldDeletes::released = true;
    }
    HeldDeletes::changed.notify_all();
    collector.join();
    ASSERT_TRUE(d.engine.Flush().ok());
  }
  Daemon d(dir.str());
  absl::StatusOr<int64_t> read = d.engine.Read(wrap(5));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, 15);
}

TEST(GarbageCollection, SupersededVersionsAreRemovedAndTheirSpaceFreed) {
  turbine::testing::TempDir dir;
  Daemon d(dir.str(), std::chrono::milliseconds(0));
  for (int64_t version = 1; version <= 15; ++version) {
    ASSERT_TRUE(d.engine.SetInput("version:doc", version).ok());
    ASSERT_EQ(*d.engine.Read(length("doc")),
              4096 + static_cast<int64_t>(std::to_string(version).size()));
    ASSERT_TRUE(d.engine.Flush().ok());
  }
  GcReport report = Collect(d.engine, GcOptions{});
  EXPECT_EQ(report.superseded, 14u);  // every version but the one Current("doc") names
  EXPECT_EQ(report.removed_tasks, 14u);
  EXPECT_LT(report.bytes_after, report.bytes_before);
  // Nothing else changed: the newest version answers from the store after a restart.
  EXPECT_EQ(Collect(d.engine, GcOptions{}).removed_tasks, 0u);
  const int contents = Executions("content");
  d.owner.reset();
  Daemon again(dir.str());
  EXPECT_EQ(*again.engine.Read(length("doc")), 4098);
  EXPECT_EQ(Executions("content"), contents);
}

// A version a pass removes while it is in memory leaves memory too: its value goes with
// its record, and a read of it executes it again. Before, it stayed there for good: the
// evictor takes only what the store holds as it is, and nothing would write it again.
TEST(GarbageCollection, AVersionRemovedWhileInMemoryLetsItsValueGo) {
  turbine::testing::TempDir dir;
  Daemon d(dir.str(), std::chrono::milliseconds(0));
  for (int64_t version = 1; version <= 3; ++version) {
    ASSERT_TRUE(d.engine.SetInput("version:mem", version).ok());
    ASSERT_EQ(*d.engine.Read(length("mem")), 4097);
    ASSERT_TRUE(d.engine.Flush().ok());
  }
  GcReport report = Collect(d.engine, GcOptions{});
  EXPECT_EQ(report.superseded, 2u);
  const int contents = Executions("content");
  // The current version kept its value: read from memory.
  EXPECT_EQ(*d.engine.Read(content("mem", 3)), std::string(4096, 'm' + 3) + "3");
  EXPECT_EQ(Executions("content"), contents);
  // A removed one had to execute: its value was no longer in memory.
  EXPECT_EQ(*d.engine.Read(content("mem", 1)), std::string(4096, 'm' + 1) + "1");
  EXPECT_EQ(Executions("content"), contents + 1);
  EXPECT_EQ(*d.engine.Read(length("mem")), 4097);
}

// A version superseded only because what linked to it was removed (picked here; over the
// disk limit in a daemon) is still what memory reads: it keeps its value there.
TEST(GarbageCollection, AVersionSupersededBecauseItsReferrerWentKeepsItsValueInMemory) {
  turbine::testing::TempDir dir;
  Daemon d(dir.str(), std::chrono::milliseconds(0));
  ASSERT_TRUE(d.engine.SetInput("version:kept", int64_t{1}).ok());
  ASSERT_EQ(*d.engine.Read(length("kept")), 4097);
  ASSERT_TRUE(d.engine.Flush().ok());
  GcReport report =
      Collect(d.engine, Only({current("kept").raw().task, length("kept").raw().task}));
  ASSERT_TRUE(Removed(report, content("kept", 1).raw().task));  // superseded with it
  const int contents = Executions("content");
  EXPECT_EQ(*d.engine.Read(content("kept", 1)), std::string(4096, 'k' + 1) + "1");
  EXPECT_EQ(*d.engine.Read(length("kept")), 4097);
  EXPECT_EQ(Executions("content"), contents);
}

TEST(GarbageCollection, TasksNotUsedWithinTheRetentionExpireWithWhatOnlyTheyUsed) {
  turbine::testing::TempDir dir;
  auto now = std::chrono::system_clock::now();
  const auto day = std::chrono::hours(24);
  auto on_day = [&](int n) {
    return EngineOptions{.worker_threads = 2,
                         .snapshot_interval = {},
                         .gc = {.retention = 30 * day, .interval = {}},
                         .clock = [t = now + n * day] { return t; }};
  };
  TaskId old_sum = 0, old_leaf = 0, recent_sum = 0, shared_leaf = 0;
  {
    Daemon d(dir.str(), on_day(0));
    ASSERT_TRUE(d.engine.SetInput("base", int64_t{0}).ok());
    ASSERT_EQ(*d.engine.Read(sum(10)), 21);  // Leaf(10), Leaf(11)
    ASSERT_EQ(*d.engine.Read(sum(11)), 23);  // Leaf(11), Leaf(12)
    old_sum = sum(10).raw().task;
    old_leaf = leaf(10).raw().task;
    recent_sum = sum(11).raw().task;
    shared_leaf = leaf(11).raw().task;
  }
  {
    Daemon d(dir.str(), on_day(20));  // Sum(11) called again; its leaves are used through it
    ASSERT_EQ(*d.engine.Read(sum(11)), 23);
  }
  Daemon d(dir.str(), on_day(35));
  absl::StatusOr<GcReport> report = d.engine.CollectGarbage();  // the engine's options
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->expired, 2u);
  EXPECT_EQ(report->removed_tasks, 2u);
  EXPECT_TRUE(Removed(*report, old_sum));                // last used 35 days ago
  EXPECT_TRUE(Removed(*report, old_leaf));               // read only by it
  EXPECT_FALSE(Removed(*report, recent_sum));            // used 15 days ago
  EXPECT_FALSE(Removed(*report, shared_leaf));           // read by both: in use through Sum(11)
  EXPECT_EQ(d.engine.Stats().tasks_by_last_use[2], 4u);  // Sum(11), its leaves, and "base"
  const int sums = Executions("sum");
  EXPECT_EQ(*d.engine.Read(sum(11)), 23);
  EXPECT_EQ(Executions("sum"), sums);
  EXPECT_EQ(*d.engine.Read(sum(10)), 21);
  EXPECT_EQ(Executions("sum"), sums + 1);
}

// seconds::max() is how an embedder says "forever": nothing expires (it used to overflow
// to a negative number of days, and everything did).
TEST(GarbageCollection, ARetentionOfSecondsMaxKeepsEverything) {
  turbine::testing::TempDir dir;
  auto now = std::chrono::system_clock::now();
  auto on_day = [&](int n) {
    return EngineOptions{.worker_threads = 2,
                         .snapshot_interval = {},
                         .gc = {.retention = std::chrono::seconds::max(), .interval = {}},
                         .clock = [t = now + n * std::chrono::hours(24)] { return t; }};
  };
  {
    Daemon d(dir.str(), on_day(0));
    ASSERT_TRUE(d.engine.SetInput("base", int64_t{0}).ok());
    ASSERT_EQ(*d.engine.Read(sum(10)), 21);
  }
  Daemon d(dir.str(), on_day(3000));
  absl::StatusOr<GcReport> report = d.engine.CollectGarbage();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->expired, 0u);
  EXPECT_EQ(report->removed_tasks, 0u);
}

TEST(GarbageCollection, OverTheDiskLimitTheLeastRecentlyUsedGoFirst) {
  turbine::testing::TempDir dir;
  auto now = std::chrono::system_clock::now();
  auto on_day = [&](int n) {
    return EngineOptions{.worker_threads = 2,
                         .snapshot_interval = {},
                         .gc = {.interval = {}},
                         .clock = [t = now + n * std::chrono::hours(24)] { return t; }};
  };
  std::vector<TaskId> ids;
  for (int day = 0; day < 4; ++day) {  // 8 blobs of 64 KiB a day, each day in a session
    Daemon d(dir.str(), on_day(day));
    for (int64_t n = day * 8; n < day * 8 + 8; ++n) {
      ASSERT_EQ(d.engine.Read(blob(n))->size(), size_t{64} << 10);
      ids.push_back(blob(n).raw().task);
    }
  }
  Daemon d(dir.str(), on_day(4));
  GcReport fill = Collect(d.engine, GcOptions{});
  ASSERT_EQ(fill.removed_tasks, 0u);
  ASSERT_GT(fill.bytes_after, size_t{32} * (64 << 10));
  const uint64_t limit = fill.bytes_after / 2;
  GcReport report = Collect(d.engine, GcOptions{.disk_limit = limit});
  EXPECT_LE(report.bytes_after, limit);
  EXPECT_GE(report.over_limit, 14u);
  EXPECT_LE(report.over_limit, 20u);  // about half
  // Oldest first: every blob of day 0 went before any of day 3.
  for (int k = 0; k < 8; ++k) EXPECT_TRUE(Removed(report, ids[k])) << k;
  for (int k = 24; k < 32; ++k) EXPECT_FALSE(Removed(report, ids[k])) << k;
  EXPECT_EQ(d.engine.Stats().gc_removed_tasks, report.removed_tasks);
  EXPECT_GT(d.engine.Stats().gc_removed_bytes, 0u);
}

// A store just written is measured compacted before the disk limit decides: its log and
// tables not compacted yet make it look several times its size. Before, a pass over a
// limit the store met once compacted removed tasks for room a compaction alone made (a
// user's 300,000 small tasks: 237,145 removed for a 40 MB limit they fit in at 19 MB).
TEST(GarbageCollection, AStoreJustWrittenIsCompactedBeforeTheDiskLimitDecides) {
  turbine::testing::TempDir dir;
  Daemon d(dir.str(), EngineOptions{.worker_threads = 2, .snapshot_interval = {},
                                    .gc = {.interval = {}}});
  ASSERT_TRUE(d.engine.SetInput("base", int64_t{0}).ok());
  for (int64_t n = 0; n < 20'000; ++n) ASSERT_EQ(*d.engine.Read(leaf(n)), n);
  ASSERT_TRUE(d.engine.Flush().ok());
  // The store as written: its log, and tables not compacted yet.
  const absl::StatusOr<uint64_t> written = d.owner->backing_store().DiskBytes();
  ASSERT_TRUE(written.ok()) << written.status();
  // Half the store as written: compacted, it is well under that (a sixth, measured).
  const uint64_t limit = *written / 2;
  const GcReport report = Collect(d.engine, GcOptions{.disk_limit = limit});
  EXPECT_EQ(report.removed_tasks, 0u) << report.bytes_before << " -> " << report.bytes_after;
  EXPECT_LE(report.bytes_after, limit);
  EXPECT_EQ(*d.engine.Read(leaf(7)), 7);
}

TEST(GarbageCollection, TasksOfFunctionsThisBuildDoesNotHaveAreRemoved) {
  turbine::testing::TempDir dir;
  {
    Daemon d(dir.str());
    ASSERT_TRUE(d.engine.SetInput("base", int64_t{0}).ok());
    ASSERT_EQ(*d.engine.Read(sum(1)), 3);
    // A task of "test.gc.sum" version 2, as a later build would store it: the identity is
    // (name, version, receiver, argument bytes), cereal's binary format.
    std::string identity;
    auto put_u64 = [&](uint64_t v) { identity.append(reinterpret_cast<const char*>(&v), 8); };
    const std::string name = "test.gc.sum";
    put_u64(name.size());
    identity += name;
    const uint32_t version = 2;
    identity.append(reinterpret_cast<const char*>(&version), 4);
    put_u64(0);                // receiver: task 0,
    put_u64(0);                // no type name,
    identity.append(4, '\0');  // index 0
    put_u64(8);                // the arguments: one int64
    put_u64(1);
    ASSERT_TRUE(
        d.owner->backing_store()
            .WriteSnapshot(
                {turbine::StoredTask{.id = 1000,
                                     .hash = 1,
                                     .identity = identity,
                                     .result = "",
                                     .last_used = 1,
                                     .observation = std::nullopt}},
                1001, 1000)
            .ok());
  }
  Daemon d(dir.str());
  GcReport report = Collect(d.engine, GcOptions{});
  EXPECT_EQ(report.unusable, 1u);
  EXPECT_EQ(report.removed_tasks, 1u);
  EXPECT_TRUE(Removed(report, 1000));
  EXPECT_EQ(*d.engine.Read(sum(1)), 3);
}

// A pass deletes in batches, and snapshots are written between them: deleting 300,000
// tasks takes seconds, and snapshots (and under a memory limit, the calls that wait for
// them) must not wait that long. What a snapshot writes meanwhile is kept, with what it
// refers to: here a new Forward(n) stored between two batches refers to Leaf(n), garbage
// to the pass and not deleted yet.
TEST(GarbageCollection, SnapshotsAreWrittenBetweenDeletionBatchesAndWhatTheyReferToIsKept) {
  constexpr int64_t kLeaves = 1000;  // 4 deletion batches
  turbine::testing::TempDir dir;
  std::vector<TaskId> leaf_ids;  // by n
  ASSERT_NO_FATAL_FAILURE(StoreLeaves(dir.str(), kLeaves, &leaf_ids));
  Daemon d(dir.str(), std::chrono::milliseconds(0));
  std::atomic<bool> decided{false};
  int batches = 0;
  int64_t kept = -1;            // the n whose Forward was stored between batches
  bool flushed_meanwhile = false;
  std::future<absl::Status> snapshot;  // outlives the pass, which it may have to wait for
  GcOptions options = Only(std::set<TaskId>(leaf_ids.begin(), leaf_ids.end()));
  options.also_collect = [&, only = options.also_collect](TaskId id) {
    decided = true;
    return only(id);
  };
  options.stop = [&] {
    if (!decided || ++batches != 2) return false;
    // One batch is deleted; find a leaf still stored, which a later batch deletes.
    for (int64_t n = 0; n < kLeaves && kept < 0; ++n) {
      absl::StatusOr<std::optional<turbine::StoredTask>> stored =
          d.owner->backing_store().ReadTask(leaf_ids[n]);
      if (stored.ok() && stored->has_value()) kept = n;
    }
    snapshot = std::async(std::launch::async, [&] {
      turbine::Engine::Scope scope(d.engine);
      EXPECT_EQ(*d.engine.Read(forward(kept)), kept + 1);
      return d.engine.Flush();
    });
    flushed_meanwhile = snapshot.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
    return false;
  };
  absl::StatusOr<GcReport> report = d.engine.CollectGarbage(options);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_GE(kept, 0) << "no leaf left for a later batch";
  ASSERT_TRUE(snapshot.valid());
  EXPECT_TRUE(snapshot.get().ok());
  EXPECT_TRUE(flushed_meanwhile) << "the snapshot waited for the whole deletion";
  EXPECT_EQ(report->removed_tasks, static_cast<uint64_t>(kLeaves - 1));
  EXPECT_FALSE(Removed(*report, leaf_ids[kept]));
  absl::StatusOr<std::optional<turbine::StoredTask>> stored =
      d.owner->backing_store().ReadTask(leaf_ids[kept]);
  ASSERT_TRUE(stored.ok());
  EXPECT_TRUE(stored->has_value()) << "Forward(" << kept << ") is stored referring to nothing";
}

// What Stats says of the pass running now, seen from the pass's `stop` hook (asked before
// each scan batch, before each deletion batch and before the reclaim): `turbine gc` shows
// it while it waits.
TEST(GarbageCollection, StatsShowThePassRunningNowAndNothingBetweenPasses) {
  constexpr int64_t kLeaves = 1000;  // 4 deletion batches
  turbine::testing::TempDir dir;
  std::vector<TaskId> leaf_ids;  // by n
  ASSERT_NO_FATAL_FAILURE(StoreLeaves(dir.str(), kLeaves, &leaf_ids));
  Daemon d(dir.str(), std::chrono::milliseconds(0));
  std::vector<turbine::EngineStats> seen;
  GcOptions options = Only(std::set<TaskId>(leaf_ids.begin(), leaf_ids.end()));
  options.stop = [&] {
    seen.push_back(d.engine.Stats());
    return false;
  };
  ASSERT_EQ(Collect(d.engine, options).removed_tasks, static_cast<uint64_t>(kLeaves));
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.front().gc_phase, turbine::GcPhase::kScanning);
  EXPECT_EQ(seen.front().gc_pass_removed_tasks, 0u);
  std::vector<uint64_t> removed_while_deleting;
  for (const turbine::EngineStats& stats : seen) {
    if (stats.gc_phase != turbine::GcPhase::kDeleting) continue;
    EXPECT_EQ(stats.gc_pass_scanned_tasks, static_cast<uint64_t>(kLeaves) + 1);  // and "base"
    EXPECT_EQ(stats.gc_pass_garbage_tasks, static_cast<uint64_t>(kLeaves));
    removed_while_deleting.push_back(stats.gc_pass_removed_tasks);
  }
  // A batch at a time: 256 more before each, all of them before the reclaim.
  EXPECT_EQ(removed_while_deleting, (std::vector<uint64_t>{0, 256, 512, 768, 1000}));
  const turbine::EngineStats after = d.engine.Stats();
  EXPECT_EQ(after.gc_phase, turbine::GcPhase::kIdle);
  EXPECT_EQ(after.gc_pass_scanned_tasks, 0u);
  EXPECT_EQ(after.gc_pass_removed_tasks, 0u);
  EXPECT_EQ(after.gc_pass_garbage_tasks, 0u);
  EXPECT_EQ(after.gc_removed_tasks, static_cast<uint64_t>(kLeaves));
}

// A cycle of references has no referrers-first order. Deleted across two batches, the
// records of its first batch's tasks would be gone while the rest of the ring, still
// stored, refers to them: a snapshot or an eviction between the batches then keeps a
// record that leads nowhere. So a cycle goes in one batch, and between batches every
// stored link's next link is stored.
TEST(GarbageCollection, ACycleOfReferencesIsNeverSplitAcrossDeletionBatches) {
  constexpr int64_t kRings = 200, kSize = 3;  // 600 links and 200 walks: 4 batches
  turbine::testing::TempDir dir;
  std::vector<std::vector<TaskId>> rings;
  std::set<TaskId> garbage;
  {
    Daemon d(dir.str());
    for (int64_t ring = 0; ring < kRings; ++ring) {
      ASSERT_EQ(*d.engine.Read(walk(ring, kSize)), 0 + 1 + 2);
      garbage.insert(walk(ring, kSize).raw().task);
      rings.emplace_back();
      for (int64_t i = 0; i < kSize; ++i) {
        rings.back().push_back(ring_link(ring, i, kSize).raw().task);
        garbage.insert(rings.back().back());
      }
    }
  }
  Daemon d(dir.str(), std::chrono::milliseconds(0));
  auto stored = [&](TaskId id) {
    absl::StatusOr<std::optional<turbine::StoredTask>> task =
        d.owner->backing_store().ReadTask(id);
    return task.ok() && task->has_value();
  };
  int checked = 0, broken = 0;
  GcOptions options = Only(garbage);
  options.stop = [&] {
    const turbine::EngineStats stats = d.engine.Stats();
    // Before each deletion batch (and once more before the reclaim, with all removed).
    if (stats.gc_phase != turbine::GcPhase::kDeleting ||
        stats.gc_pass_removed_tasks == garbage.size()) {
      return false;
    }
    ++checked;
    for (const std::vector<TaskId>& ring : rings) {
      for (size_t i = 0; i < ring.size(); ++i) {
        if (stored(ring[i]) && !stored(ring[(i + 1) % ring.size()])) ++broken;
      }
    }
    return false;
  };
  EXPECT_EQ(Collect(d.engine, options).removed_tasks, garbage.size());
  EXPECT_GE(checked, 2) << "the deletion took one batch: nothing was between batches";
  EXPECT_EQ(broken, 0) << "a stored link referred to a deleted one between batches";
  for (TaskId id : garbage) EXPECT_FALSE(stored(id));
}

// A pass that makes a task in memory execute again tells the change listeners with no
// engine lock held, as AddChangeListener promises. The listener here flushes, which takes
// the lock a pass deletes under: told under it, the listener deadlocked.
TEST(GarbageCollection, ChangeListenersHearOfAPassWithNoEngineLockHeld) {
  turbine::testing::TempDir dir;
  Daemon d(dir.str());
  ASSERT_TRUE(d.engine.SetInput("base", int64_t{10}).ok());
  ASSERT_EQ(*d.engine.Read(forward(6)), 16);
  const TaskId forward_id = forward(6).raw().task;
  const TaskId leaf_id = leaf(6).raw().task;
  ASSERT_TRUE(d.engine.Flush().ok());
  d.engine.EvictTasks(SIZE_MAX);
  // forward(6) back in memory, unread: leaf(6), which its result refers to, stays out.
  ASSERT_EQ(forward(6).raw().task, forward_id);
  std::atomic<bool> heard{false};
  std::atomic<bool> flushed{false};
  const uint64_t listener = d.engine.AddChangeListener([&] {
    if (heard.exchange(true)) return;
    flushed = d.engine.Flush().ok();
  });
  std::atomic<bool> done{false};
  std::thread watchdog([&] {
    for (int i = 0; i < 3000 && !done; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!done) {
      std::fprintf(stderr, "the pass did not end in 30 s: a listener deadlocked\n");
      std::_Exit(1);
    }
  });
  GcReport report = Collect(d.engine, Only({forward_id, leaf_id}));
  done = true;
  watchdog.join();
  d.engine.RemoveChangeListener(listener);
  EXPECT_EQ(report.removed_tasks, 2u);
  EXPECT_TRUE(heard);
  EXPECT_TRUE(flushed);
  EXPECT_EQ(*d.engine.Read(forward(6)), 16);
}

// A pass on a disk without room to compact the store removes its garbage all the same (the
// space comes back once compactions can run). Before, it failed whole (kResourceExhausted)
// and removed nothing, and its compaction's failed flush stopped every write.
TEST(GarbageCollection, APassOnADiskWithoutRoomToCompactStillRemovesGarbage) {
  turbine::testing::SmallDisk disk(size_t{32} << 20);
  if (!disk.mounted()) GTEST_SKIP() << disk.why_not();
  const std::string data = (disk.path() / "data").string();
  Daemon d(data);
  ASSERT_TRUE(d.engine.SetInput("base", int64_t{10}).ok());
  ASSERT_EQ(*d.engine.Read(forward(5)), 15);
  const TaskId leaf_id = leaf(5).raw().task;
  // 7 MiB of results that do not compress: a compaction would need that much free.
  for (int64_t n = 0; n < 112; ++n) ASSERT_TRUE(d.engine.Read(blob(n)).ok()) << n;
  ASSERT_TRUE(d.engine.Flush().ok());
  ASSERT_TRUE(disk.LeaveFree(size_t{2} << 20));

  absl::StatusOr<GcReport> report = d.engine.CollectGarbage(Only({leaf_id}));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(Removed(*report, leaf_id));
  EXPECT_TRUE(d.engine.SetInput("after", int64_t{1}).ok()) << "the pass stopped the writes";
  EXPECT_EQ(*d.engine.Read(forward(5)), 15);
}

// Down to the disk's reserve (5% of 32 MiB here), snapshots wait; an input, one naming a
// task no snapshot wrote included, and a garbage collection pass go on. Before, the
// backlog of results filled what a user had just freed, and then nothing could be deleted.
TEST(GarbageCollection, InTheDisksReserveSnapshotsWaitWhileInputsAndAPassGoOn) {
  turbine::testing::SmallDisk disk(size_t{32} << 20);
  if (!disk.mounted()) GTEST_SKIP() << disk.why_not();
  Daemon d((disk.path() / "data").string(), /*snapshot_interval=*/std::chrono::milliseconds(0));
  ASSERT_TRUE(d.engine.SetInput("base", int64_t{10}).ok());
  ASSERT_EQ(*d.engine.Read(forward(5)), 15);
  const TaskId leaf_id = leaf(5).raw().task;
  ASSERT_TRUE(d.engine.Flush().ok());
  ASSERT_TRUE(disk.LeaveFree(size_t{1} << 20));

  ASSERT_EQ(*d.engine.Read(sum(7)), 35);
  const absl::Status refused = d.engine.Flush();
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_NE(refused.message().find("kept for inputs and garbage collection"), std::string::npos)
      << refused;
  // forward(6) is in no snapshot: setting the input stores its identity first.
  ASSERT_EQ(*d.engine.Read(forward(6)), 16);
  const absl::Status set = d.engine.SetInput("held", std::vector<Vc<int64_t>>{forward(6)});
  EXPECT_TRUE(set.ok()) << set;
  absl::StatusOr<GcReport> report = d.engine.CollectGarbage(Only({leaf_id}));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(Removed(*report, leaf_id));

  disk.Free("ballast");
  EXPECT_TRUE(d.engine.Flush().ok());
  EXPECT_EQ(*d.engine.Read(sum(7)), 35);
}

}  // namespace
