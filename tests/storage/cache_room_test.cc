// Cached results on a small disk, for real (a tmpfs; needs root, skipped otherwise). However
// many results are offered, the store takes them only while it keeps the room it needs to
// write its memtables into table files and to rewrite its largest table, and it writes its
// memtables out when they are what keeps results out: once the cache is refused, inputs,
// deletions and a full compaction (what garbage collection gives space back with) still
// succeed, and RocksDB's log no longer holds most of the disk.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "persisted_engine.h"
#include "small_disk.h"
#include "turbine/engine.h"
#include "turbine/storage/rocks_backing_store.h"
#include "turbine/storage/store.h"

namespace {

using turbine::StoredInput;
using turbine::Task;
using turbine::storage::RocksBackingStore;
using turbine::storage::Store;
using turbine::storage::StoreOptions;
using turbine::storage::Table;
using turbine::testing::LogBytes;
using turbine::testing::SmallDisk;

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kDiskBytes = 64 * kMiB;

// Result is a cached result's bytes: 256 KiB that do not compress, different for each n.
std::string Result(int n) { return turbine::testing::Incompressible(n, 256 << 10); }

TEST(CacheRoom, CachedResultsLeaveRoomToFlushAndCompact) {
  SmallDisk disk(kDiskBytes);
  if (!disk.mounted()) GTEST_SKIP() << disk.why_not();
  const std::filesystem::path data = disk.path() / "data";
  // The memtables a daemon on a large machine gives the store: far more than this disk.
  absl::StatusOr<std::unique_ptr<Store>> opened =
      Store::Open(StoreOptions{.data_dir = data.string(), .write_buffer_bytes = 256 * kMiB});
  ASSERT_TRUE(opened.ok()) << opened.status();
  Store& store = **opened;

  int cached = 0;
  for (int n = 0; n < 400; ++n) {  // 100 MiB offered
    const std::string result = Result(n);
    if (!store.RoomForCache(result.size()).ok()) break;
    const absl::Status put = store.Put(Table::kTasks, "task" + std::to_string(n), result);
    ASSERT_TRUE(put.ok()) << "result " << n << ": " << put;
    ++cached;
  }
  EXPECT_GE(cached, 40) << "the cache took under 10 MiB of a 64 MiB disk";
  EXPECT_LT(cached, 400) << "the cache was never refused";
  EXPECT_LE(LogBytes(data), kDiskBytes / 4) << "the memtables were not written out";

  // The room kept: an input, its deletion, and a compaction of every table.
  RocksBackingStore backing(&store);
  const absl::Status input =
      backing.WriteInputs({{"k", StoredInput{"bytes", std::string(kMiB, 'i'), 1}}}, 2);
  EXPECT_TRUE(input.ok()) << input;
  const absl::Status deleted = backing.DeleteInputs({"k"}, 3);
  EXPECT_TRUE(deleted.ok()) << deleted;
  const absl::Status compacted = store.CompactAll();
  EXPECT_TRUE(compacted.ok()) << compacted;
}

// Large(n): 512 KiB that do not compress, a result of its own for each n.
Task<std::string> LargeImpl(int64_t n) {
  co_return Result(static_cast<int>(n)) + Result(-1 - static_cast<int>(n));
}
const turbine::Function<LargeImpl> large{"test.cache_room.large", 1};

// A backlog of 18 MiB of results on a 32 MiB disk: what fits is written, in chunks of a few
// MiB. Before, a snapshot took up to 16,384 tasks at once whatever their size: one chunk of
// 18 MiB, for which the store wants twice that free (the log, then a table file), refused
// at every try, so nothing was ever written.
TEST(CacheRoom, ABacklogOfLargeResultsIsWrittenInChunksThatFit) {
  SmallDisk disk(32 * kMiB);
  if (!disk.mounted()) GTEST_SKIP() << disk.why_not();
  turbine::testing::PersistedEngine<> d((disk.path() / "data").string(),
                                        /*snapshot_interval=*/std::chrono::milliseconds(0));
  for (int64_t n = 0; n < 36; ++n) ASSERT_EQ(d.engine.Read(large(n))->size(), 512u << 10);
  const absl::Status flushed = d.engine.Flush();
  EXPECT_TRUE(flushed.ok() || flushed.code() == absl::StatusCode::kResourceExhausted) << flushed;
  EXPECT_GE(d.engine.Stats().snapshot_tasks, 8u) << "under 4 MiB written: " << flushed;
}

}  // namespace
