// What a garbage collection pass writes into the store's tables as it deletes tasks: no
// tombstone where there was nothing to delete.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "gc_fixture.h"
#include "persisted_engine.h"
#include "temp_dir.h"
#include "turbine/engine.h"
#include "turbine/storage/rocks_backing_store.h"
#include "turbine/storage/store.h"

namespace {

// StoreKeeping is the engine's backing store, keeping the Store it writes to for the test
// to look at its tables.
struct StoreKeeping : turbine::storage::RocksBackingStore {
  explicit StoreKeeping(turbine::storage::Store* store) : RocksBackingStore(store), store(store) {}
  turbine::storage::Store* const store;
};

// Deleting tasks that never had an observation writes no deletion into the observations
// table. Those tombstones stood over nothing: their table file overlapped no other, moved to
// the last level whole, and a pass's compaction sometimes left it there (1.2 MB after a
// pass that removed 150,000 tasks, of a store compacted to 90 KB otherwise).
TEST(GarbageCollection, RemovedTasksWithoutObservationsLeaveNoTombstonesThere) {
  turbine::testing::TempDir dir;
  turbine::testing::PersistedEngine<StoreKeeping> d(dir.str());
  ASSERT_TRUE(d.engine.SetInput("base", int64_t{0}).ok());
  std::vector<uint64_t> ids;
  for (int64_t n = 0; n < 100; ++n) {
    ASSERT_EQ(*d.engine.Read(turbine::testing::gc::leaf(n)), n);
    ids.push_back(turbine::testing::gc::leaf(n).raw().task);
  }
  ASSERT_TRUE(d.engine.Flush().ok());
  ASSERT_TRUE(d.backing().DeleteTasks(ids).ok());
  ASSERT_TRUE(d.backing().store->Settle(0).ok());  // what the memtables hold, into files
  EXPECT_TRUE(d.backing().store->TableFiles(turbine::storage::Table::kObservations).empty());
  EXPECT_FALSE(d.backing().store->TableFiles(turbine::storage::Table::kTaskIds).empty())
      << "the deletions of the other tables were written";
}

}  // namespace
