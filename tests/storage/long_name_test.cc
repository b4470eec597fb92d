// Inputs whose name is long: keyed on disk by the name's first 1 KiB and a digest of the
// whole, the name kept in the value and compared on read (format.h says why); so are their
// entries in the log of input changes.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <optional>
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

using turbine::Input;
using turbine::InputChangeLog;
using turbine::StoredInput;
using turbine::Task;
using turbine::storage::kInputChangePrefix;
using turbine::storage::kLongestKeyedName;
using turbine::storage::NameKey;
using turbine::storage::RocksBackingStore;
using turbine::storage::Store;
using turbine::storage::Table;
using turbine::testing::FormatVersion;
using turbine::testing::Hashes;
using turbine::testing::LoggedHashes;
using turbine::testing::Longest;
using turbine::testing::ManifestBytes;
using turbine::testing::OpenStore;

// The longest key a log entry of a change may have.
constexpr size_t kLongestLogKey = sizeof(kInputChangePrefix) - 1 + 8 + NameKey::kDigestedSize;

// Two long names alike in their first 64 KiB, then differing.
const std::string kNameA = std::string(64 << 10, 'n') + "a";
const std::string kNameB = std::string(64 << 10, 'n') + "b";

Task<int64_t> DoubledImpl(std::string name) {
  const int64_t value = co_await Input<int64_t>(name);  // bound first: GCC 12
  co_return 2 * value;
}
inline const turbine::Function<DoubledImpl> doubled{"test.long_name.doubled", 1};

std::optional<StoredInput> Read(RocksBackingStore& backing, const std::string& name) {
  absl::StatusOr<std::optional<StoredInput>> input = backing.ReadInput(name);
  EXPECT_TRUE(input.ok()) << input.status();
  return input.ok() ? *input : std::nullopt;
}

// Every flush of a table file records the file's first and last key in the MANIFEST, which
// RocksDB starts afresh only past 1 GB. With each name its key, 100 inputs of 1 MB names
// made an 84 MB MANIFEST, and a garbage collection pass, pruning the log of changes, a
// 375 MB one. Forty 1 MiB names, set, flushed, unset, pruned and flushed, leave it small.
TEST(LongName, FlushesOfLongNamesLeaveTheManifestSmall) {
  turbine::testing::TempDir dir;
  {
    std::unique_ptr<Store> store = OpenStore(dir.str());
    ASSERT_NE(store, nullptr);
    RocksBackingStore backing(store.get());
    ASSERT_TRUE(backing.ReadInputChanges(4).ok());
    std::vector<std::string> names;
    for (uint64_t i = 1; i <= 40; ++i) {
      names.push_back(std::string(1 << 20, static_cast<char>('a' + i % 26)) + std::to_string(i));
      ASSERT_TRUE(backing.WriteInputs({{names.back(), StoredInput{"int64", "x", i}}}, i + 1).ok());
      ASSERT_TRUE(store->Settle(0).ok());
    }
    std::optional<StoredInput> found = Read(backing, names[6]);
    ASSERT_TRUE(found.has_value());
    EXPECT_EQ(found->stamp, 7u);
    EXPECT_LE(Longest(*store, Table::kInputs, /*values=*/false), NameKey::kDigestedSize);
    EXPECT_LE(Longest(*store, Table::kMeta, /*values=*/false), kLongestLogKey);
    ASSERT_TRUE(backing.DeleteInputs(names, 42).ok());
    ASSERT_TRUE(backing.ReadInputChanges(4).ok());  // prunes the log
    ASSERT_TRUE(store->Settle(0).ok());
    EXPECT_FALSE(Read(backing, names[6]).has_value());
  }
  EXPECT_LT(ManifestBytes(dir.path()), uint64_t{1} << 20);
}

// Two inputs whose names differ only past their first 64 KiB are two inputs, read by their
// tasks, after a restart too; unsetting one leaves the other. No key on disk holds either
// name, and a change of one while the daemon is down reaches the results that read it: the
// log gives back the hash of the whole name, from which a restart tells what a change may
// reach.
TEST(LongName, InputsWithLongNamesComeBackAfterARestartAndTheirChangesReachTheirReaders) {
  turbine::testing::TempDir dir;
  {
    turbine::testing::PersistedEngine<> d(dir.str());
    ASSERT_TRUE(d.engine.SetInput(kNameA, int64_t{1}).ok());
    ASSERT_TRUE(d.engine.SetInput(kNameB, int64_t{2}).ok());
    ASSERT_TRUE(d.engine.SetInput("short", int64_t{3}).ok());
    ASSERT_EQ(*d.engine.Read(doubled(kNameA)), 2);
    ASSERT_EQ(*d.engine.Read(doubled(kNameB)), 4);
    ASSERT_EQ(*d.engine.Read(doubled("short")), 6);
  }
  {
    turbine::testing::PersistedEngine<> d(dir.str());  // sets one input, then stops
    ASSERT_TRUE(d.engine.SetInput(kNameB, int64_t{20}).ok());
  }
  {
    turbine::testing::PersistedEngine<> d(dir.str());
    EXPECT_EQ(*d.engine.Read(doubled(kNameA)), 2);
    EXPECT_EQ(*d.engine.Read(doubled(kNameB)), 40);
    EXPECT_EQ(*d.engine.Read(doubled("short")), 6);
    EXPECT_EQ(d.engine.Stats().executions, 1u);  // kNameB's reader only
    ASSERT_TRUE(d.engine.DeleteInputs({kNameA}).ok());
  }
  std::unique_ptr<Store> store = OpenStore(dir.str());
  ASSERT_NE(store, nullptr);
  RocksBackingStore backing(store.get());
  EXPECT_FALSE(Read(backing, kNameA).has_value());
  std::optional<StoredInput> b = Read(backing, kNameB);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->type_name, "i64");
  EXPECT_LE(Longest(*store, Table::kInputs, /*values=*/false), NameKey::kDigestedSize);
  EXPECT_LE(Longest(*store, Table::kMeta, /*values=*/false), kLongestLogKey);
  absl::StatusOr<InputChangeLog> log = backing.ReadInputChanges(100);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(LoggedHashes(*log), Hashes({kNameA, kNameB, "short", kNameB, kNameA}));
  EXPECT_EQ(log->changes[2].key, "short");  // a short name is logged whole
}

// A value under a long name's key that holds another name, or a name its length does not
// fit, is damage: DATA_LOSS, as for any damaged input, never another input's value.
TEST(LongName, AValueHoldingAnotherNameIsDamage) {
  turbine::testing::TempDir dir;
  std::unique_ptr<Store> store = OpenStore(dir.str());
  ASSERT_NE(store, nullptr);
  RocksBackingStore backing(store.get());
  ASSERT_TRUE(backing.WriteInputs({{kNameA, StoredInput{"int64", "x", 2}}}, 3).ok());
  const NameKey key(kNameA);
  std::string value;
  ASSERT_TRUE(*store->Get(Table::kInputs, key.key(), &value));
  value[8 + 100] = 'm';  // in the name, past its length
  ASSERT_TRUE(store->Put(Table::kInputs, key.key(), value).ok());
  EXPECT_EQ(backing.ReadInput(kNameA).status().code(), absl::StatusCode::kDataLoss);
  value.resize(20);  // the length names bytes past the end
  ASSERT_TRUE(store->Put(Table::kInputs, key.key(), value).ok());
  EXPECT_EQ(backing.ReadInput(kNameA).status().code(), absl::StatusCode::kDataLoss);
}

// A log entry whose input cannot be told (a value neither empty nor a hash) could be a
// change of any input: the log then vouches only for the changes after it, and a restart
// verifies every result older than it.
TEST(LongName, ADamagedLogEntryRaisesSince) {
  turbine::testing::TempDir dir;
  std::unique_ptr<Store> store = OpenStore(dir.str());
  ASSERT_NE(store, nullptr);
  RocksBackingStore backing(store.get());
  ASSERT_TRUE(backing.ReadInputChanges(100).ok());
  ASSERT_TRUE(backing.WriteInputs({{kNameA, StoredInput{"int64", "x", 5}}}, 6).ok());
  ASSERT_TRUE(backing.WriteInputs({{"short", StoredInput{"int64", "x", 7}}}, 8).ok());
  std::string entry_key;
  std::string entry_value;
  ASSERT_TRUE(store
                  ->ForEach(Table::kMeta,
                            [&](std::string_view k, std::string_view v) {
                              if (k.size() > kLongestKeyedName) {
                                entry_key = k;
                                entry_value = v;
                              }
                            })
                  .ok());
  ASSERT_EQ(entry_key.size(), kLongestLogKey);
  ASSERT_EQ(entry_value.size(), 8u);
  entry_value.pop_back();
  ASSERT_TRUE(store->Put(Table::kMeta, entry_key, entry_value).ok());
  absl::StatusOr<InputChangeLog> log = backing.ReadInputChanges(100);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(log->since, 5u);
  ASSERT_EQ(log->changes.size(), 1u);
  EXPECT_EQ(log->changes[0].key, "short");
}

// A store of format version 3 keeps its inputs: at open, those whose name is too long to be
// a key move to their digest key, and the store says version 4. Before, such an input was
// no longer found by its name. Its log entries stay as they are, and read as they did.
TEST(LongName, AVersion3StoreKeepsItsInputsAndTheirLongKeysMove) {
  turbine::testing::TempDir dir;
  // As long as a digest key, so that the upgrade must not take it for one.
  const std::string as_long(NameKey::kDigestedSize, 'q');
  {
    std::unique_ptr<Store> store = OpenStore(dir.str());
    ASSERT_NE(store, nullptr);
    RocksBackingStore backing(store.get());
    ASSERT_TRUE(backing.ReadInputChanges(100).ok());
    ASSERT_TRUE(backing.WriteInputs({{"short", StoredInput{"int64", "x", 2}}}, 3).ok());
    ASSERT_TRUE(turbine::testing::PutVersion3Input(*store, kNameA, 3));
    ASSERT_TRUE(turbine::testing::PutVersion3Input(*store, as_long, 4));
  }
  std::unique_ptr<Store> store = OpenStore(dir.str());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(FormatVersion(*store), std::to_string(turbine::storage::kFormatVersion));
  EXPECT_FALSE(store->UpgradePending());
  EXPECT_LE(Longest(*store, Table::kInputs, /*values=*/false), NameKey::kDigestedSize);
  RocksBackingStore backing(store.get());
  for (const std::string& name : {std::string("short"), kNameA, as_long}) {
    std::optional<StoredInput> input = Read(backing, name);
    ASSERT_TRUE(input.has_value()) << name.size();
    EXPECT_EQ(input->bytes, "x");
  }
  absl::StatusOr<InputChangeLog> log = backing.ReadInputChanges(100);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(log->since, 0u);
  std::vector<std::string> logged;
  for (const turbine::InputChange& change : log->changes) logged.push_back(change.key);
  EXPECT_EQ(logged, (std::vector<std::string>{"short", kNameA, as_long}));  // whole, as logged
}

// An upgrade cut short (by a crash, or a failed write between its batches) leaves a store
// that says 4 and that its names are moving. It runs again at the next open, and takes
// what it moved already for what it is, though its key has the size of a whole name the
// upgrade must move.
TEST(LongName, AnUpgradeCutShortRunsAgainAndKeepsWhatItMoved) {
  turbine::testing::TempDir dir;
  {
    std::unique_ptr<Store> store = OpenStore(dir.str());
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(turbine::testing::PutVersion3Input(*store, kNameB, 3));
    ASSERT_TRUE(store->Put(Table::kMeta, turbine::storage::kFormatVersionKey, "4").ok());
    ASSERT_TRUE(store->Put(Table::kMeta, turbine::storage::kMovingInputNamesKey, "").ok());
    // kNameA as the upgrade writes it, in a store that still says 3.
    const NameKey key(kNameA);
    std::string record;
    turbine::storage::EncodeInputRecord(StoredInput{"i64", "moved", 2}, &record);
    ASSERT_TRUE(
        store->Put(Table::kInputs, key.key(), turbine::storage::NamedValue(key, kNameA, record))
            .ok());
  }
  std::unique_ptr<Store> store = OpenStore(dir.str());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(FormatVersion(*store), std::to_string(turbine::storage::kFormatVersion));
  RocksBackingStore backing(store.get());
  std::optional<StoredInput> a = Read(backing, kNameA);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->bytes, "moved");
  std::optional<StoredInput> b = Read(backing, kNameB);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->bytes, "x");
  EXPECT_LE(Longest(*store, Table::kInputs, /*values=*/false), NameKey::kDigestedSize);
  std::string unused;
  EXPECT_FALSE(*store->Get(Table::kMeta, turbine::storage::kMovingInputNamesKey, &unused));
}

// A version 2 store goes through both steps: its long identities, then its long names.
TEST(LongName, AVersion2StoreWithLongNamesIsUpgradedThroughBothSteps) {
  turbine::testing::TempDir dir;
  const std::string identity(2000, 'i');
  {
    std::unique_ptr<Store> store = OpenStore(dir.str());
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(turbine::testing::PutVersion3Input(*store, kNameA, 3));
    ASSERT_TRUE(turbine::testing::PutVersion2Task(*store, 2, 9, identity, "r"));
  }
  std::unique_ptr<Store> store = OpenStore(dir.str());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(FormatVersion(*store), std::to_string(turbine::storage::kFormatVersion));
  EXPECT_FALSE(store->UpgradePending());
  RocksBackingStore backing(store.get());
  EXPECT_TRUE(Read(backing, kNameA).has_value());
  absl::StatusOr<std::optional<turbine::StoredTask>> task = backing.FindTask(9, identity);
  ASSERT_TRUE(task.ok() && task->has_value()) << task.status();
  EXPECT_EQ((*task)->result, "r");
  EXPECT_LE(Longest(*store, Table::kInputs, /*values=*/false), NameKey::kDigestedSize);
  EXPECT_LE(Longest(*store, Table::kTasks, /*values=*/false),
            8 + turbine::storage::kLongestKeyedIdentity);
}

}  // namespace
