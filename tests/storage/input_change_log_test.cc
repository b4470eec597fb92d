// The store's log of input changes (format.h), on a real RocksDB directory: what a restart
// uses to tell which restored results an input change since their snapshot may reach. It
// must never claim more than it knows: after a write by a build that keeps no log, or
// once pruned, `since` says from where on it is complete.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "open_store.h"
#include "temp_dir.h"
#include "turbine/backing_store.h"
#include "turbine/storage/format.h"
#include "turbine/storage/rocks_backing_store.h"
#include "turbine/storage/store.h"

namespace {

using turbine::InputChangeLog;
using turbine::StoredInput;
using turbine::storage::RocksBackingStore;
using turbine::storage::Store;
using turbine::storage::StoreOptions;
using turbine::testing::OpenStore;

// SetAt writes input `key` as changed at `stamp`, as the engine does.
void SetAt(RocksBackingStore& backing, const std::string& key, uint64_t stamp) {
  ASSERT_TRUE(backing.WriteInputs({{key, StoredInput{"int64", "x", stamp}}}, stamp + 1).ok());
}

std::vector<std::pair<uint64_t, std::string>> Changes(const InputChangeLog& log) {
  std::vector<std::pair<uint64_t, std::string>> out;
  for (const turbine::InputChange& change : log.changes) out.emplace_back(change.stamp, change.key);
  return out;
}

using Expected = std::vector<std::pair<uint64_t, std::string>>;

// In stores older builds wrote, a snapshot's write carried the counter it read before an
// input set took a stamp, and could land after the set's: the counter on disk was then
// below the set's stamp. The next open must not hand that stamp out again.
TEST(InputChangeLog, TheNextStampIsAboveEveryLoggedChangeThoughALaterWriteLoweredTheCounter) {
  turbine::testing::TempDir dir;
  {
    std::unique_ptr<Store> store = OpenStore(dir.str());
    RocksBackingStore backing(store.get());
    ASSERT_TRUE(backing.ReadInputChanges(100).ok());
    SetAt(backing, "x", 101);  // the counter: 102
    // A write that read 100, through an instance that has not seen 102: as an older build,
    // which did not keep the counter from going back, wrote it.
    RocksBackingStore older(store.get());
    ASSERT_TRUE(older.LogInputChanges({}, {}, 101).ok());
  }
  std::unique_ptr<Store> store = OpenStore(dir.str());
  RocksBackingStore backing(store.get());
  absl::StatusOr<uint64_t> next = backing.NextStamp();
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(*next, 102u);
}

// The other way round: a set's write carries the counter it computed, and a snapshot that
// read a higher one (tasks executed meanwhile took stamps) may land first. The records the
// snapshot wrote hold stamps up to its counter; none of those may be handed out again, and
// no scan can find them: the counter on disk must not go back.
TEST(InputChangeLog, TheNextStampIsAboveEverySnapshotsCounterThoughALaterSetLoweredIt) {
  turbine::testing::TempDir dir;
  {
    std::unique_ptr<Store> store = OpenStore(dir.str());
    RocksBackingStore backing(store.get());
    ASSERT_TRUE(backing.ReadInputChanges(100).ok());
    ASSERT_TRUE(backing.WriteSnapshot({}, /*next_task_id=*/1, /*next_stamp=*/106).ok());
    SetAt(backing, "x", 100);  // computed before the stamps 101-105 were taken; the counter: 101
  }
  std::unique_ptr<Store> store = OpenStore(dir.str());
  RocksBackingStore backing(store.get());
  absl::StatusOr<uint64_t> next = backing.NextStamp();
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(*next, 106u);
  // And the log still vouches for itself: the claim it is complete through the counter
  // moved with it (a claim below the counter would read as a build that keeps no log).
  absl::StatusOr<InputChangeLog> log = backing.ReadInputChanges(100);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(log->since, 0u);
  EXPECT_EQ(Changes(*log), (Expected{{100, "x"}}));
}

TEST(InputChangeLog, ANewStoreLogsEverySetAndDeleteInStampOrder) {
  turbine::testing::TempDir dir;
  {
    std::unique_ptr<Store> store = OpenStore(dir.str());
    RocksBackingStore backing(store.get());
    ASSERT_TRUE(backing.ReadInputChanges(100).ok());  // as an engine does when it starts
    SetAt(backing, "b", 2);
    SetAt(backing, "a", 3);
    ASSERT_TRUE(backing.DeleteInputs({"b"}, 5).ok());
  }
  std::unique_ptr<Store> store = OpenStore(dir.str());
  RocksBackingStore backing(store.get());
  absl::StatusOr<InputChangeLog> log = backing.ReadInputChanges(100);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(log->since, 0u);
  EXPECT_EQ(Changes(*log), (Expected{{2, "b"}, {3, "a"}, {4, "b"}}));
}

TEST(InputChangeLog, OnlyTheNewestChangesAreKeptAndSinceMovesPastTheRest) {
  turbine::testing::TempDir dir;
  {
    std::unique_ptr<Store> store = OpenStore(dir.str());
    RocksBackingStore backing(store.get());
    ASSERT_TRUE(backing.ReadInputChanges(3).ok());
    // Pruned as it grows too: never much more than `keep` changes on disk.
    for (uint64_t stamp = 2; stamp < 12; ++stamp) SetAt(backing, "k" + std::to_string(stamp), stamp);
    size_t on_disk = 0;
    ASSERT_TRUE(store
                    ->ForEach(turbine::storage::Table::kMeta,
                              [&](std::string_view key, std::string_view) {
                                on_disk += key.starts_with(turbine::storage::kInputChangePrefix);
                              })
                    .ok());
    EXPECT_LE(on_disk, 6u);
  }
  std::unique_ptr<Store> store = OpenStore(dir.str());
  RocksBackingStore backing(store.get());
  absl::StatusOr<InputChangeLog> log = backing.ReadInputChanges(3);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(log->since, 8u);
  EXPECT_EQ(Changes(*log), (Expected{{9, "k9"}, {10, "k10"}, {11, "k11"}}));
  log = backing.ReadInputChanges(3);  // what was dropped stays dropped
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(log->since, 8u);
  EXPECT_EQ(log->changes.size(), 3u);
}

TEST(InputChangeLog, AfterAWriteThatDidNotKeepTheLogItVouchesForNothingBefore) {
  turbine::testing::TempDir dir;
  {
    std::unique_ptr<Store> store = OpenStore(dir.str());
    RocksBackingStore backing(store.get());
    ASSERT_TRUE(backing.ReadInputChanges(100).ok());
    SetAt(backing, "a", 2);
  }
  {
    // A writer that never read the log (as an older build, which keeps none) moves the
    // stamp counter without claiming the log complete.
    std::unique_ptr<Store> store = OpenStore(dir.str());
    RocksBackingStore backing(store.get());
    SetAt(backing, "b", 40);
  }
  std::unique_ptr<Store> store = OpenStore(dir.str());
  RocksBackingStore backing(store.get());
  absl::StatusOr<InputChangeLog> log = backing.ReadInputChanges(100);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(log->since, 40u);  // nothing up to the last stamp can be vouched for
  EXPECT_TRUE(log->changes.empty());
  // From here on it is complete again.
  SetAt(backing, "c", 41);
  store.reset();
  store = OpenStore(dir.str());
  RocksBackingStore reopened(store.get());
  log = reopened.ReadInputChanges(100);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(log->since, 40u);
  EXPECT_EQ(Changes(*log), (Expected{{41, "c"}}));
}

}  // namespace
