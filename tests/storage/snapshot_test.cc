// Snapshots happen in the background; a store that fails (a full disk) costs durability,
// never service.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "persisted_engine.h"
#include "temp_dir.h"
#include "turbine/engine.h"
#include "turbine/storage/rocks_backing_store.h"
#include "turbine/storage/store.h"

namespace {

using turbine::Task;
using turbine::storage::RocksBackingStore;
using turbine::storage::Store;
using turbine::storage::StoreOptions;

Task<int64_t> SquareSumImpl(int64_t n);
inline const turbine::Function<SquareSumImpl> square_sum{"test.snapshot.square_sum", 1};
Task<int64_t> SquareSumImpl(int64_t n) {
  if (n == 0) co_return 0;
  co_return n * n + co_await square_sum(n - 1);
}

TEST(Snapshots, HappenInTheBackgroundSoAKilledProcessRestartsWarm) {
  turbine::testing::TempDir dir;
  int acks[2];
  ASSERT_EQ(::pipe(acks), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(acks[0]);
    auto store = std::move(*Store::Open(StoreOptions{.data_dir = dir.str()}));
    RocksBackingStore backing(store.get());
    turbine::Engine engine(turbine::EngineOptions{
        .backing_store = &backing, .snapshot_interval = std::chrono::milliseconds(20)});
    turbine::Engine::Scope scope(engine);
    if (*engine.Read(square_sum(100)) != 338350) ::_exit(3);
    // Every task written, not just a snapshot seen: one already running when the read
    // finished may have missed the last tasks (square_sum(0) to square_sum(100): 101).
    while (engine.Stats().snapshot_tasks < 101) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    const char ok = 1;
    if (::write(acks[1], &ok, 1) != 1) ::_exit(4);
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));  // killed here, no Flush
  }
  ::close(acks[1]);
  char ok = 0;
  ASSERT_EQ(::read(acks[0], &ok, 1), 1) << "the child never saw a background snapshot";
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ::close(acks[0]);

  auto store = std::move(*Store::Open(StoreOptions{.data_dir = dir.str()}));
  RocksBackingStore backing(store.get());
  turbine::Engine engine(turbine::EngineOptions{.backing_store = &backing});
  turbine::Engine::Scope scope(engine);
  EXPECT_EQ(*engine.Read(square_sum(100)), 338350);
  EXPECT_EQ(engine.Stats().executions, 0u);
}

// FullDisk fails every write, as RocksDB does when the disk is full.
class FullDisk : public RocksBackingStore {
 public:
  using RocksBackingStore::RocksBackingStore;
  absl::Status WriteInputs(const std::vector<std::pair<std::string, turbine::StoredInput>>&,
                           uint64_t) override {
    return absl::ResourceExhaustedError("No space left on device");
  }
  absl::Status WriteSnapshot(const std::vector<turbine::StoredTask>&, uint64_t,
                             uint64_t) override {
    return absl::ResourceExhaustedError("No space left on device");
  }
};

// CountingStore counts the snapshots that reach the store.
class CountingStore : public RocksBackingStore {
 public:
  using RocksBackingStore::RocksBackingStore;
  absl::Status WriteSnapshot(const std::vector<turbine::StoredTask>& tasks, uint64_t next_id,
                             uint64_t next_stamp) override {
    ++writes;
    return RocksBackingStore::WriteSnapshot(tasks, next_id, next_stamp);
  }
  int writes = 0;
};

TEST(Snapshots, AFlushWithNothingNewWritesNothing) {
  turbine::testing::TempDir dir;
  auto store = std::move(*Store::Open(StoreOptions{.data_dir = dir.str()}));
  CountingStore backing(store.get());
  {
    turbine::Engine engine(turbine::EngineOptions{.backing_store = &backing});
    turbine::Engine::Scope scope(engine);
    ASSERT_EQ(*engine.Read(square_sum(5)), 55);
    ASSERT_TRUE(engine.Flush().ok());
    EXPECT_EQ(backing.writes, 1);
    ASSERT_EQ(*engine.Read(square_sum(5)), 55);  // a cache hit changes nothing
    ASSERT_TRUE(engine.Flush().ok());
    EXPECT_EQ(backing.writes, 1);
    EXPECT_EQ(engine.Stats().snapshots, 1u);
  }  // nor does shutting down
  EXPECT_EQ(backing.writes, 1);
}

Task<int64_t> TwiceImpl() { co_return 2 * co_await turbine::Input<int64_t>("snap.x"); }
inline const turbine::Function<TwiceImpl> twice{"test.snapshot.twice", 1};

TEST(Snapshots, AFullDiskIsAClearErrorAndTheEngineKeepsServing) {
  turbine::testing::TempDir dir;
  auto store = std::move(*Store::Open(StoreOptions{.data_dir = dir.str()}));
  FullDisk backing(store.get());
  turbine::Engine engine(turbine::EngineOptions{.backing_store = &backing});
  turbine::Engine::Scope scope(engine);

  absl::Status set = engine.SetInput("snap.x", int64_t{21});
  EXPECT_EQ(set.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(set.message().find("not set"), std::string::npos) << set;
  // Not durable, so not applied: it would be gone after a restart.
  absl::StatusOr<int64_t> unset = engine.Read(twice());
  ASSERT_FALSE(unset.ok());
  EXPECT_NE(unset.status().message().find("is not set"), std::string::npos) << unset.status();

  absl::Status flushed = engine.Flush();
  EXPECT_EQ(flushed.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(*engine.Read(square_sum(10)), 385);
}

TEST(Snapshots, HappenSoonAfterTheEngineGoesIdle) {
  turbine::testing::TempDir dir;
  {
    auto store = std::move(*Store::Open(StoreOptions{.data_dir = dir.str()}));
    RocksBackingStore backing(store.get());
    // The interval alone would not snapshot within the test; going idle must.
    turbine::Engine engine(turbine::EngineOptions{
        .backing_store = &backing,
        .snapshot_interval = std::chrono::hours(1),
        .snapshot_idle_delay = std::chrono::milliseconds(20)});
    turbine::Engine::Scope scope(engine);
    ASSERT_EQ(*engine.Read(square_sum(30)), 9455);
    // Waits for an event, not for a duration: generous, so a loaded machine cannot fail it.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (engine.Stats().idle_snapshots == 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    const turbine::EngineStats stats = engine.Stats();
    ASSERT_EQ(stats.idle_snapshots, 1u);
    EXPECT_EQ(stats.snapshots, 1u);
    EXPECT_EQ(stats.last_snapshot_tasks, 31u);

    // Nothing changed since: an idle engine does not write empty snapshots.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_EQ(engine.Stats().snapshots, 1u);
  }
}

Task<std::string> BlobImpl(int64_t n);
inline const turbine::Function<BlobImpl> blob{"test.snapshot.blob", 1};
Task<std::string> BlobImpl(int64_t n) {
  // Incompressible enough that the memtables hold about what the results weigh.
  std::string out(128 << 10, '\0');
  uint64_t x = static_cast<uint64_t>(n) * 0x9e3779b97f4a7c15ULL + 1;
  for (char& c : out) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    c = static_cast<char>(x);
  }
  co_return out;
}

uint64_t LogBytes(const std::filesystem::path& dir) {
  // RocksDB deletes a log while this lists them: one gone meanwhile counts nothing.
  uint64_t bytes = 0;
  std::error_code error;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir, error)) {
    if (entry.path().extension() != ".log") continue;
    const uint64_t size = entry.file_size(error);
    if (!error) bytes += size;
  }
  return bytes;
}

// An engine that stays idle has the store write its memtables into table files, so that a
// crash (or a kill) then leaves little log to replay at the next start.
TEST(Snapshots, AnEngineIdleForTheSettleDelayLeavesLittleLogToReplay) {
  turbine::testing::TempDir dir;
  auto store = std::move(*Store::Open(StoreOptions{.data_dir = dir.str()}));
  RocksBackingStore backing(store.get());
  turbine::Engine engine(turbine::EngineOptions{
      .backing_store = &backing,
      .snapshot_interval = std::chrono::milliseconds(20),
      .snapshot_idle_delay = std::chrono::milliseconds(20),
      .settle_delay = std::chrono::milliseconds(200)});
  turbine::Engine::Scope scope(engine);
  for (int64_t n = 0; n < 64; ++n) ASSERT_EQ(engine.Read(blob(n))->size(), size_t{128} << 10);
  // All 64 results (8 MiB) written by a snapshot: the log holds them now.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (engine.Stats().snapshot_tasks < 64 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(engine.Stats().snapshot_tasks, 64u);
  // Then, idle: the settle. Waits for the event; generous, so a loaded machine cannot fail it.
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (LogBytes(dir.path()) >= (uint64_t{1} << 20) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_LT(LogBytes(dir.path()), uint64_t{1} << 20);
}

}  // namespace

Task<int64_t> ParityImpl() { co_return (co_await turbine::Input<int64_t>("snap.p")) % 2; }
inline const turbine::Function<ParityImpl> parity{"test.snapshot.parity", 1};
Task<int64_t> AfterParityImpl() { co_return 100 + co_await parity(); }
inline const turbine::Function<AfterParityImpl> after_parity{"test.snapshot.after_parity", 1};

uint64_t ExecutionsOf(const turbine::Engine& engine, const std::string& function) {
  for (const turbine::FunctionStats& fn : engine.Stats().functions) {
    if (fn.name == function) return fn.executions;
  }
  return 0;
}

// A snapshot skips a task that is dirty at that moment. If the task then becomes clean
// without executing (what it read came out equal), its new result must still be written:
// otherwise the older record on disk fails verification after a restart and the task
// executes although nothing changed.
TEST(Snapshots, AResultDirtyDuringASnapshotIsWrittenOnceItIsCleanAgain) {
  turbine::testing::TempDir dir;
  {
    turbine::testing::PersistedEngine<> d(dir.str(), std::chrono::milliseconds(0));
    ASSERT_TRUE(d.engine.SetInput("snap.p", int64_t{1}).ok());
    ASSERT_EQ(*d.engine.Read(after_parity()), 101);
    ASSERT_TRUE(d.engine.Flush().ok());
    ASSERT_TRUE(d.engine.SetInput("snap.p", int64_t{2}).ok());
    ASSERT_EQ(*d.engine.Read(after_parity()), 100);  // both execute: new results to write
    ASSERT_TRUE(d.engine.SetInput("snap.p", int64_t{4}).ok());  // both dirty
    ASSERT_TRUE(d.engine.Flush().ok());                          // skips them
    ASSERT_EQ(*d.engine.Read(after_parity()), 100);  // parity executes, equal: cut off
    EXPECT_EQ(ExecutionsOf(d.engine, "test.snapshot.after_parity"), 2u);
  }
  turbine::testing::PersistedEngine<> d(dir.str(), std::chrono::milliseconds(0));
  EXPECT_EQ(*d.engine.Read(after_parity()), 100);
  EXPECT_EQ(d.engine.Stats().executions, 0u) << "nothing changed since the last session";
}
