// Admission under the memory limit (evict.cc) on a real RocksDB directory: while the
// process is over its limit and more new results wait for a snapshot than it can hold, a
// call from outside the engine waits for snapshots to catch up; calls made by task bodies
// never wait (their callers run, and would hold what they hold for longer); and snapshots
// are written in chunks, each a store write of its own.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "persisted_engine.h"
#include "temp_dir.h"
#include "turbine/engine.h"
#include "turbine/storage/rocks_backing_store.h"

namespace {

using turbine::Task;
using turbine::Vc;

// GatedStore holds every snapshot write until the test opens its gate, as a disk that
// cannot keep up would; it records the size of each write that passes.
class GatedStore : public turbine::storage::RocksBackingStore {
 public:
  using RocksBackingStore::RocksBackingStore;
  absl::Status WriteSnapshot(const std::vector<turbine::StoredTask>& tasks, uint64_t next_id,
                             uint64_t next_stamp) override {
    {
      std::unique_lock lock(mu_);
      waiting_ = true;
      changed_.notify_all();
      changed_.wait(lock, [&] { return open_; });
      sizes_.push_back(tasks.size());
    }
    return RocksBackingStore::WriteSnapshot(tasks, next_id, next_stamp);
  }
  void Open() {
    std::lock_guard lock(mu_);
    open_ = true;
    changed_.notify_all();
  }
  // AwaitWriter waits until a snapshot is held at the gate.
  bool AwaitWriter() {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, std::chrono::seconds(30), [&] { return waiting_; });
  }
  std::vector<size_t> Sizes() {
    std::lock_guard lock(mu_);
    return sizes_;
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  bool open_ = false;
  bool waiting_ = false;
  std::vector<size_t> sizes_;
};

Task<int64_t> SquareImpl(int64_t n) { co_return n * n; }
inline const turbine::Function<SquareImpl> square{"test.admission.square", 1};

// Fan(from, count) calls `count` new squares from its body: a burst no admission holds.
Task<int64_t> FanImpl(int64_t from, int64_t count) {
  int64_t sum = 0;
  for (int64_t i = 0; i < count; ++i) sum += co_await square(from + i);
  co_return sum;
}
inline const turbine::Function<FanImpl> fan{"test.admission.fan", 1};

// OpenAtEnd opens the gate when the test ends, however it ends: the engine's last snapshot
// must pass it.
struct OpenAtEnd {
  GatedStore& store;
  ~OpenAtEnd() { store.Open(); }
};

int64_t SumOfSquares(int64_t from, int64_t count) {
  int64_t sum = 0;
  for (int64_t i = 0; i < count; ++i) sum += (from + i) * (from + i);
  return sum;
}

// Pointer(n) answers with a reference to Text(n), which runs after it: a snapshot meets
// the pointer first and must write the text with it.
Task<std::string> TextImpl(int64_t n) { co_return "text " + std::to_string(n); }
inline const turbine::Function<TextImpl> text{"test.admission.text", 1};
Task<Vc<std::string>> PointerImpl(int64_t n) { co_return text(n); }
inline const turbine::Function<PointerImpl> pointer{"test.admission.pointer", 1};

Task<int64_t> PointersImpl(int64_t count) {
  int64_t length = 0;
  for (int64_t i = 0; i < count; ++i) length += (co_await pointer(i)).size();
  co_return length;
}
inline const turbine::Function<PointersImpl> pointers{"test.admission.pointers", 1};

// Late's body says it started, then waits for the test before it calls anything.
std::promise<void> late_started;
std::promise<void> late_release;
std::shared_future<void> late_gate;

Task<int64_t> LateImpl(int64_t from) {
  late_started.set_value();
  late_gate.wait();
  co_return co_await fan(from, 50);
}
inline const turbine::Function<LateImpl> late{"test.admission.late", 1};

// Always over its 1 MiB limit; snapshots only when the evictor asks for one (the interval
// is an hour), so the test decides when the backlog forms.
turbine::EngineOptions Options() {
  return turbine::EngineOptions{
      .worker_threads = 2,
      .snapshot_interval = std::chrono::hours(1),
      .snapshot_idle_delay = {},
      .gc = {.interval = {}},
      .memory = {.limit_bytes = size_t{1} << 20,
                 .interval = std::chrono::milliseconds(10),
                 .usage = [] { return size_t{2} << 20; }}};
}

// ProbeUntilHeld calls new squares from another thread until one does not answer within
// 300 ms: admission holds it. Returns that call's future, or an invalid one.
std::future<int64_t> ProbeUntilHeld(turbine::Engine& engine, int64_t* probed) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int64_t n = 1'000'000 + attempt;
    std::future<int64_t> answer = std::async(std::launch::async, [&engine, n] {
      turbine::Engine::Scope scope(engine);
      absl::StatusOr<int64_t> value = engine.Read(square(n));
      return value.ok() ? *value : int64_t{-1};
    });
    if (answer.wait_for(std::chrono::milliseconds(300)) == std::future_status::timeout) {
      *probed = n;
      return answer;
    }
    EXPECT_EQ(answer.get(), n * n);
  }
  return {};
}

// HoldAdmission makes 3,000 new results (more than the 1,024 a 1 MiB limit lets wait for a
// snapshot) while the store holds the snapshot the evictor asks for, then probes until an
// outside call waits: that call's future, and the square it asked for in `probed`.
void HoldAdmission(turbine::testing::PersistedEngine<GatedStore>& daemon, int64_t* probed,
                   std::future<int64_t>* held) {
  ASSERT_EQ(*daemon.engine.Read(fan(0, 3000)), SumOfSquares(0, 3000));
  ASSERT_TRUE(daemon.backing().AwaitWriter());  // the evictor asked; the write is held
  *held = ProbeUntilHeld(daemon.engine, probed);
  ASSERT_TRUE(held->valid()) << "no outside call waited in 30 s of probing";
}

// ChunkedOptions: snapshots only by Flush(), in chunks of `chunk_tasks`.
turbine::EngineOptions ChunkedOptions(size_t chunk_tasks) {
  return turbine::EngineOptions{.worker_threads = 2,
                                .snapshot_interval = {},
                                .snapshot_chunk_tasks = chunk_tasks,
                                .gc = {.interval = {}}};
}

TEST(Admission, AnOutsideCallWaitsWhileNewResultsOutrunSnapshotsOverTheLimit) {
  turbine::testing::TempDir dir;
  turbine::testing::PersistedEngine<GatedStore> daemon(dir.str(), Options());
  OpenAtEnd open_at_end{daemon.backing()};
  int64_t probed = 0;
  std::future<int64_t> held;
  ASSERT_NO_FATAL_FAILURE(HoldAdmission(daemon, &probed, &held));
  daemon.backing().Open();
  EXPECT_EQ(held.get(), probed * probed);
  const turbine::EngineStats stats = daemon.engine.Stats();
  EXPECT_GE(stats.admission_waits, 1u);
  EXPECT_GE(stats.admission_wait_nanos, uint64_t{300'000'000});
}

// Over the limit, a few results waiting for a snapshot hold outside calls too, not only a
// backlog of more than the count it allows: a few large results are far below it. Before,
// an outside call went on however far over the limit such results took the daemon.
TEST(Admission, OverTheLimitAFewResultsWaitingForASnapshotHoldOutsideCalls) {
  turbine::testing::TempDir dir;
  turbine::testing::PersistedEngine<GatedStore> daemon(dir.str(), Options());
  OpenAtEnd open_at_end{daemon.backing()};
  ASSERT_EQ(*daemon.engine.Read(fan(0, 10)), SumOfSquares(0, 10));  // 11 results, not 1,024
  ASSERT_TRUE(daemon.backing().AwaitWriter());  // the evictor asked; the write is held
  int64_t probed = 0;
  std::future<int64_t> held = ProbeUntilHeld(daemon.engine, &probed);
  ASSERT_TRUE(held.valid()) << "no outside call waited";
  daemon.backing().Open();
  EXPECT_EQ(held.get(), probed * probed);
  EXPECT_GE(daemon.engine.Stats().admission_waits, 1u);
}

TEST(Admission, ATaskBodysCallsGoOnWhileOutsideCallsWait) {
  late_started = std::promise<void>();
  late_release = std::promise<void>();
  late_gate = late_release.get_future().share();
  turbine::testing::TempDir dir;
  turbine::testing::PersistedEngine<GatedStore> daemon(dir.str(), Options());
  OpenAtEnd open_at_end{daemon.backing()};
  // Called before admission closes; its body waits for the test.
  std::future<int64_t> late_answer = std::async(std::launch::async, [&] {
    turbine::Engine::Scope scope(daemon.engine);
    absl::StatusOr<int64_t> value = daemon.engine.Read(late(5'000));
    return value.ok() ? *value : int64_t{-1};
  });
  // Released however the test ends, before the future above is waited for.
  struct ReleaseLate {
    bool released = false;
    ~ReleaseLate() {
      if (!released) late_release.set_value();
    }
  } release_late;
  // Its call is made before the burst below can close admission.
  ASSERT_EQ(late_started.get_future().wait_for(std::chrono::seconds(30)),
            std::future_status::ready);
  int64_t probed = 0;
  std::future<int64_t> held;
  ASSERT_NO_FATAL_FAILURE(HoldAdmission(daemon, &probed, &held));
  const uint64_t waits_before = daemon.engine.Stats().admission_waits;

  // Its 51 new tasks are created while outside calls wait, and none of them waits.
  late_release.set_value();
  release_late.released = true;
  ASSERT_EQ(late_answer.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(late_answer.get(), SumOfSquares(5'000, 50));
  // The probe's own wait may have ended meanwhile (a call waits a second at most).
  EXPECT_LE(daemon.engine.Stats().admission_waits, waits_before + 1);
  daemon.backing().Open();
  EXPECT_EQ(held.get(), probed * probed);
}

TEST(Admission, ASnapshotIsWrittenInChunksAndComesBackWhole) {
  turbine::testing::TempDir dir;
  const turbine::EngineOptions options = ChunkedOptions(100);
  {
    turbine::testing::PersistedEngine<GatedStore> daemon(dir.str(), options);
    daemon.backing().Open();
    ASSERT_EQ(*daemon.engine.Read(fan(0, 950)), SumOfSquares(0, 950));
    ASSERT_TRUE(daemon.engine.Flush().ok());
    // 951 tasks (the fan and its 950 squares): 10 writes of at most 100.
    const std::vector<size_t> sizes = daemon.backing().Sizes();
    EXPECT_EQ(sizes.size(), 10u);
    size_t written = 0;
    for (size_t size : sizes) {
      EXPECT_LE(size, 100u);
      written += size;
    }
    EXPECT_EQ(written, 951u);
    EXPECT_EQ(daemon.engine.Stats().snapshots, 1u);  // one snapshot, however many writes
    EXPECT_EQ(daemon.engine.Stats().last_snapshot_tasks, 951u);
  }
  turbine::testing::PersistedEngine<GatedStore> restarted(dir.str(), options);
  restarted.backing().Open();
  ASSERT_EQ(*restarted.engine.Read(fan(0, 950)), SumOfSquares(0, 950));
  EXPECT_EQ(restarted.engine.Stats().executions, 0u);
}

// The engine's own calls never wait: SetInputs creates the task of each new key while it
// holds the lock a snapshot's chunk takes first, and waiting there would stall both.
TEST(Admission, SettingNewInputsNeverWaits) {
  turbine::testing::TempDir dir;
  turbine::testing::PersistedEngine<GatedStore> daemon(dir.str(), Options());
  OpenAtEnd open_at_end{daemon.backing()};
  int64_t probed = 0;
  std::future<int64_t> held;
  ASSERT_NO_FATAL_FAILURE(HoldAdmission(daemon, &probed, &held));
  const uint64_t waits_before = daemon.engine.Stats().admission_waits;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(daemon.engine.SetInput("admission.new" + std::to_string(i), int64_t{i}).ok());
  }
  // The probe's own wait may have ended meanwhile (a call waits a second at most).
  EXPECT_LE(daemon.engine.Stats().admission_waits, waits_before + 1);
  daemon.backing().Open();
  EXPECT_EQ(held.get(), probed * probed);
}

// Without periodic snapshots, under a memory limit the evictor still has its snapshots
// written (2d3c56a): they drain the backlog, and then nothing waits. (This said "nothing
// waits" at once, from before that change; a slow machine, ThreadSanitizer's, saw a call
// wait for the evictor's snapshot.)
TEST(Admission, WithoutPeriodicSnapshotsTheEvictorsSnapshotsDrainTheBacklog) {
  turbine::testing::TempDir dir;
  turbine::EngineOptions options = Options();
  options.snapshot_interval = {};
  turbine::testing::PersistedEngine<GatedStore> daemon(dir.str(), options);
  daemon.backing().Open();
  ASSERT_EQ(*daemon.engine.Read(fan(0, 3000)), SumOfSquares(0, 3000));
  // The evictor, every 10 ms, sees 3,001 results waiting and the limit passed.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (daemon.engine.Stats().snapshot_tasks < 3001 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GE(daemon.engine.Stats().snapshot_tasks, 3001u) << "no snapshot drained the backlog";
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // an evictor tick reopens
  const uint64_t waits = daemon.engine.Stats().admission_waits;
  for (int64_t n = 1'000'000; n < 1'000'003; ++n) EXPECT_EQ(*daemon.engine.Read(square(n)), n * n);
  EXPECT_EQ(daemon.engine.Stats().admission_waits, waits);
}

// A record goes with the tasks it refers to, and each task is written once per snapshot,
// even when the one referred to was queued in a later chunk.
TEST(Admission, ChunksWriteEachTaskOnceAndReferredTasksFirst) {
  turbine::testing::TempDir dir;
  const turbine::EngineOptions options = ChunkedOptions(7);
  {
    turbine::testing::PersistedEngine<GatedStore> daemon(dir.str(), options);
    daemon.backing().Open();
    // "text 0" to "text 9" are 6 characters long, "text 10" to "text 59" 7.
    ASSERT_EQ(*daemon.engine.Read(pointers(60)), 10 * 6 + 50 * 7);
    ASSERT_TRUE(daemon.engine.Flush().ok());
    size_t written = 0;
    for (size_t size : daemon.backing().Sizes()) written += size;
    EXPECT_EQ(written, 121u);  // 60 pointers, 60 texts, the root
    EXPECT_EQ(daemon.engine.Stats().last_snapshot_tasks, 121u);
  }
  turbine::testing::PersistedEngine<GatedStore> restarted(dir.str(), options);
  restarted.backing().Open();
  for (int64_t i = 0; i < 60; ++i) {
    EXPECT_EQ(*restarted.engine.Read(pointer(i)), "text " + std::to_string(i));
  }
  EXPECT_EQ(restarted.engine.Stats().executions, 0u);
}

}  // namespace
