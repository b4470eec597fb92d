// Tasks whose identity is long (a call with a large argument): keyed on disk by a digest
// of the identity, kept in the value and compared on lookup (format.h says why).
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "old_format_records.h"
#include "open_store.h"
#include "persisted_engine.h"
#include "records.h"
#include "temp_dir.h"
#include "turbine/engine.h"
#include "turbine/storage/format.h"
#include "turbine/storage/rocks_backing_store.h"
#include "turbine/storage/store.h"

namespace {

using turbine::StoredTask;
using turbine::Task;
using turbine::storage::kLongestKeyedIdentity;
using turbine::storage::OpenReport;
using turbine::storage::RocksBackingStore;
using turbine::storage::Store;
using turbine::storage::StoreOptions;
using turbine::storage::Table;
using turbine::testing::FormatVersion;
using turbine::testing::Longest;
using turbine::testing::ManifestBytes;
using turbine::testing::OpenStore;

Task<std::string> EndsImpl(std::string text) {
  co_return text.substr(0, 1) + text.substr(text.size() - 1) + std::to_string(text.size());
}
inline const turbine::Function<EndsImpl> ends{"test.long.ends", 1};

StoredTask Record(uint64_t id, uint64_t hash, std::string identity, std::string result) {
  StoredTask task;
  task.id = id;
  task.hash = hash;
  task.identity = std::move(identity);
  task.result = std::move(result);
  return task;
}

// Two long arguments that differ in their last byte only, under one hash on disk: each is
// its own task after a restart, from disk, and no key on disk holds either.
TEST(LongIdentity, TasksWithLargeArgumentsComeBackFromDiskUnderShortKeys) {
  turbine::testing::TempDir dir;
  const std::string a = std::string(64 << 10, 'x') + "a";
  const std::string b = std::string(64 << 10, 'x') + "b";
  {
    turbine::testing::PersistedEngine<turbine::testing::CollidingStore> d(dir.str());
    ASSERT_EQ(*d.engine.Read(ends(a)), "xa65537");
    ASSERT_EQ(*d.engine.Read(ends(b)), "xb65537");
    ASSERT_EQ(*d.engine.Read(ends("short")), "st5");
  }
  {
    turbine::testing::PersistedEngine<turbine::testing::CollidingStore> d(dir.str());
    EXPECT_EQ(*d.engine.Read(ends(b)), "xb65537");
    EXPECT_EQ(*d.engine.Read(ends(a)), "xa65537");
    EXPECT_EQ(*d.engine.Read(ends("short")), "st5");
    EXPECT_EQ(d.engine.Stats().executions, 0u);
  }
  std::unique_ptr<Store> store = OpenStore(dir.str());
  ASSERT_NE(store, nullptr);
  EXPECT_LE(Longest(*store, Table::kTasks, /*values=*/false), 8 + kLongestKeyedIdentity);
  EXPECT_LE(Longest(*store, Table::kTaskIds, /*values=*/true), 8 + kLongestKeyedIdentity);
  EXPECT_GT(Longest(*store, Table::kTasks, /*values=*/true), a.size());  // the identity
  EXPECT_EQ(FormatVersion(*store), std::to_string(turbine::storage::kFormatVersion));
}

// Every flush of a table file records the file's first and last key in the MANIFEST, and
// RocksDB starts a new one only past 1 GB: with keys of a megabyte, 200 calls grew it to
// 100 MB. With digested keys, 40 flushes of 1 MiB identities leave it small.
TEST(LongIdentity, FlushesOfLargeIdentitiesLeaveTheManifestSmall) {
  turbine::testing::TempDir dir;
  {
    std::unique_ptr<Store> store = OpenStore(dir.str());
    ASSERT_NE(store, nullptr);
    RocksBackingStore backing(store.get());
    for (uint64_t i = 1; i <= 40; ++i) {
      const std::vector<StoredTask> tasks = {
          Record(i, i, std::string(1 << 20, static_cast<char>('a' + i % 26)) + std::to_string(i),
                 "result")};
      ASSERT_TRUE(backing.WriteSnapshot(tasks, i + 1, 1).ok());
      ASSERT_TRUE(store->Settle(0).ok());
    }
    absl::StatusOr<std::optional<StoredTask>> found =
        backing.FindTask(7, std::string(1 << 20, 'h') + "7");
    ASSERT_TRUE(found.ok()) << found.status();
    ASSERT_TRUE(found->has_value());
    EXPECT_EQ((*found)->id, 7u);
  }
  EXPECT_LT(ManifestBytes(dir.path()), uint64_t{1} << 20);
}

// A record whose identity does not match its digest is damage, reported as such by both
// ways of reading a task; a lookup of another identity under the same digest finds nothing.
TEST(LongIdentity, AnIdentityThatDoesNotMatchItsDigestIsDamage) {
  turbine::testing::TempDir dir;
  std::unique_ptr<Store> store = OpenStore(dir.str());
  ASSERT_NE(store, nullptr);
  RocksBackingStore backing(store.get());
  const std::string identity(4096, 'i');
  ASSERT_TRUE(backing.WriteSnapshot({Record(5, 9, identity, "r")}, 6, 1).ok());
  std::string key;
  std::string value;
  ASSERT_TRUE(store
                  ->ForEach(Table::kTasks,
                            [&](std::string_view k, std::string_view v) {
                              key = k;
                              value = v;
                            })
                  .ok());
  ASSERT_EQ(key.size(), turbine::storage::TaskKey::kDigestedSize);
  value[100] = 'j';  // in the identity, past the id and its size
  ASSERT_TRUE(store->Put(Table::kTasks, key, value).ok());
  EXPECT_EQ(backing.FindTask(9, identity).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(backing.ReadTask(5).status().code(), absl::StatusCode::kDataLoss);
  value.resize(20);  // the size names bytes past the end
  ASSERT_TRUE(store->Put(Table::kTasks, key, value).ok());
  EXPECT_EQ(backing.ReadTask(5).status().code(), absl::StatusCode::kDataLoss);
}

// A store of format version 2 keeps its tasks: at open, the one whose identity is too long
// to be a key moves to its digest key (and the id index with it), and the store says
// version 3. Before, such a task was no longer found by identity, and once written again
// under its new key the id index still named the old record.
TEST(LongIdentity, AVersion2StoreKeepsItsTasksAndItsLongKeysMove) {
  turbine::testing::TempDir dir;
  const std::string long_identity(2000, 'l');
  {
    std::unique_ptr<Store> store = OpenStore(dir.str());
    ASSERT_NE(store, nullptr);
    RocksBackingStore backing(store.get());
    ASSERT_TRUE(backing.WriteSnapshot({Record(1, 1, "short", "r1")}, 3, 1).ok());
    ASSERT_TRUE(turbine::testing::PutVersion2Task(*store, 2, 2, long_identity, "r2"));
  }
  OpenReport report;
  std::unique_ptr<Store> store = OpenStore(dir.str(), &report);
  ASSERT_NE(store, nullptr);
  EXPECT_FALSE(report.created);
  EXPECT_TRUE(report.moved_aside.empty());
  EXPECT_EQ(FormatVersion(*store), std::to_string(turbine::storage::kFormatVersion));
  EXPECT_LE(Longest(*store, Table::kTasks, /*values=*/false), 8 + kLongestKeyedIdentity);
  EXPECT_LE(Longest(*store, Table::kTaskIds, /*values=*/true), 8 + kLongestKeyedIdentity);
  RocksBackingStore backing(store.get());
  absl::StatusOr<std::optional<StoredTask>> found = backing.FindTask(1, "short");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->result, "r1");
  found = backing.FindTask(2, long_identity);
  ASSERT_TRUE(found.ok() && found->has_value()) << found.status();
  EXPECT_EQ((*found)->id, 2u);
  EXPECT_EQ((*found)->result, "r2");
  absl::StatusOr<std::optional<StoredTask>> by_id = backing.ReadTask(2);
  ASSERT_TRUE(by_id.ok() && by_id->has_value()) << by_id.status();
  EXPECT_EQ((*by_id)->identity, long_identity);
}

}  // namespace
