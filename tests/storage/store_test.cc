// The backing store opens on a real directory, keeps what it is given, and never refuses
// service because of the cache's state: unusable databases are moved aside.
#include "turbine/storage/store.h"

#include <gtest/gtest.h>
#include <rocksdb/sst_file_reader.h>
#include <rocksdb/table_properties.h>
#include <rocksdb/write_batch.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>

#include "open_store.h"
#include "temp_dir.h"
#include "turbine/storage/format.h"

namespace {

namespace fs = std::filesystem;
using turbine::storage::OpenReport;
using turbine::storage::Store;
using turbine::storage::StoreOptions;
using turbine::storage::Table;
using turbine::testing::OpenStore;

using turbine::testing::TempDir;

int CountBroken(const fs::path& dir) {
  int count = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    count += entry.path().filename().string().starts_with("db.broken-") ? 1 : 0;
  }
  return count;
}

TEST(Store, CreatesADatabaseWithItsFormatVersion) {
  TempDir dir;
  OpenReport report;
  auto store = OpenStore(dir.str(), &report);
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(report.created);
  EXPECT_TRUE(report.moved_aside.empty());
  std::string version;
  ASSERT_TRUE(*store->Get(Table::kMeta, turbine::storage::kFormatVersionKey, &version));
  EXPECT_EQ(version, std::to_string(turbine::storage::kFormatVersion));
  EXPECT_TRUE(fs::exists(dir.path() / "db" / "CURRENT"));
}

TEST(Store, KeepsWhatItWasGivenAcrossReopens) {
  TempDir dir;
  {
    auto store = OpenStore(dir.str());
    ASSERT_TRUE(store->Put(Table::kInputs, "answer", "42").ok());
    rocksdb::WriteBatch batch;  // one snapshot spans tables atomically
    batch.Put(store->handle(Table::kTasks), "t1", "task");
    batch.Put(store->handle(Table::kTaskIds), "1", "t1");
    ASSERT_TRUE(store->Write(batch, /*sync=*/true).ok());
  }
  OpenReport report;
  auto store = OpenStore(dir.str(), &report);
  EXPECT_FALSE(report.created);
  std::string value;
  ASSERT_TRUE(*store->Get(Table::kInputs, "answer", &value));
  EXPECT_EQ(value, "42");
  ASSERT_TRUE(*store->Get(Table::kTasks, "t1", &value));
  EXPECT_EQ(value, "task");
  ASSERT_TRUE(*store->Get(Table::kTaskIds, "1", &value));
  EXPECT_EQ(value, "t1");
  EXPECT_FALSE(*store->Get(Table::kTasks, "t2", &value));  // absent is not an error
}

TEST(Store, AnotherFormatVersionIsMovedAsideAndTheCacheStartsEmpty) {
  TempDir dir;
  {
    auto store = OpenStore(dir.str());
    ASSERT_TRUE(store->Put(Table::kMeta, turbine::storage::kFormatVersionKey, "999").ok());
    ASSERT_TRUE(store->Put(Table::kInputs, "old", "data").ok());
  }
  OpenReport report;
  auto store = OpenStore(dir.str(), &report);
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(report.created);
  EXPECT_NE(report.reason.find("999"), std::string::npos) << report.reason;
  EXPECT_TRUE(fs::exists(report.moved_aside));
  EXPECT_EQ(CountBroken(dir.path()), 1);
  std::string value;
  EXPECT_FALSE(*store->Get(Table::kInputs, "old", &value));
}

TEST(Store, ACorruptDatabaseIsMovedAside) {
  TempDir dir;
  { auto store = OpenStore(dir.str()); }
  // CURRENT names the manifest; garbage there is what a torn copy or a bad disk leaves.
  std::ofstream(dir.path() / "db" / "CURRENT", std::ios::trunc) << "garbage-not-a-manifest\n";
  OpenReport report;
  auto store = OpenStore(dir.str(), &report);
  ASSERT_NE(store, nullptr);
  EXPECT_FALSE(report.moved_aside.empty());
  EXPECT_EQ(CountBroken(dir.path()), 1);
  EXPECT_TRUE(store->Put(Table::kInputs, "fresh", "1").ok());
}

TEST(Store, ADatabaseInUseIsAnErrorAndIsNotTouched) {
  TempDir dir;
  auto first = OpenStore(dir.str());
  ASSERT_TRUE(first->Put(Table::kInputs, "k", "v").ok());
  absl::StatusOr<std::unique_ptr<Store>> second = Store::Open(StoreOptions{.data_dir = dir.str()});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  // Before: "in use by another process", of a second open in this one.
  EXPECT_NE(second.status().message().find("in use by this process already"), std::string::npos)
      << second.status();
  EXPECT_EQ(CountBroken(dir.path()), 0);
  std::string value;
  EXPECT_TRUE(*first->Get(Table::kInputs, "k", &value));
}

// DbFiles counts the database's files whose names start with `prefix` and end with
// `suffix`, and their bytes.
struct FileTally {
  int count = 0;
  uint64_t bytes = 0;
};
FileTally DbFiles(const TempDir& dir, std::string_view prefix, std::string_view suffix) {
  FileTally tally;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path() / "db")) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(prefix) && name.ends_with(suffix)) {
      ++tally.count;
      tally.bytes += entry.file_size();
    }
  }
  return tally;
}

// RocksDB's manifest gains a record at every flush and compaction; it starts a new one
// only past max_manifest_file_size (1 GB by default) or at an open. Here every record is
// large (each file's first and last keys are 16 KiB): 250 flushes wrote 15.9 MB of
// manifest before; the store now keeps it near 4 MiB while it runs.
TEST(Store, ItsManifestDoesNotGrowWithEveryFlush) {
  TempDir dir;
  std::unique_ptr<Store> store = OpenStore(dir.str());
  for (int i = 0; i < 250; ++i) {
    const std::string first(16 << 10, static_cast<char>('a' + i % 26));
    ASSERT_TRUE(store->Put(Table::kTaskUse, first + std::to_string(i), "v").ok());
    ASSERT_TRUE(store->Put(Table::kTaskUse, first + "~" + std::to_string(i), "v").ok());
    ASSERT_TRUE(store->Settle(0).ok());
  }
  EXPECT_LT(DbFiles(dir, "MANIFEST-", "").bytes, uint64_t{5} << 20);
  std::string value;
  EXPECT_TRUE(*store->Get(Table::kTaskUse, std::string(16 << 10, 'a') + "0", &value));
}

// Keys that only grow (task ids), flushed often (under a memory limit, every second): each
// file lies past all the others, and RocksDB moves it down whole, never merging. Before, a
// file per flush stayed for good (and a descriptor with it); runs of small files are now
// merged (Store::MergeSmallFiles, which an engine's snapshot thread calls).
TEST(Store, SmallFilesOfGrowingKeysAreMerged) {
  TempDir dir;
  std::unique_ptr<Store> store = OpenStore(dir.str());
  for (int i = 0; i < 100; ++i) {
    char key[16];
    std::snprintf(key, sizeof(key), "%08d", i);
    ASSERT_TRUE(store->Put(Table::kTaskIds, key, "identity").ok());
    ASSERT_TRUE(store->Settle(0).ok());
    store->MergeSmallFiles();  // as the snapshot thread does after each tick
  }
  // A file per flush before: 100. Now level 0's few, and in level 1 the run not merged yet
  // (merging waits for 16 flushes) beside what earlier merges made.
  EXPECT_LE(DbFiles(dir, "", ".sst").count, 40);
  std::string value;
  for (const char* key : {"00000000", "00000050", "00000099"}) {
    EXPECT_TRUE(*store->Get(Table::kTaskIds, key, &value)) << key;
    EXPECT_EQ(value, "identity");
  }
}

TEST(Store, AnUnusableDirectoryIsAClearError) {
  TempDir dir;
  std::ofstream(dir.path() / "a-file") << "not a directory";
  absl::StatusOr<std::unique_ptr<Store>> store =
      Store::Open(StoreOptions{.data_dir = (dir.path() / "a-file" / "data").string()});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(store.status().message().find("a-file"), std::string::npos);
}

// CompactAll deletes what was deleted, in every table: afterwards the tombstones and the
// records they stand for are gone from the files, and a store stopped from compacting
// says so instead of going on.
TEST(Store, CompactAllLeavesNoDeletedRecordsAndStopsWhenTold) {
  TempDir dir;
  auto store = OpenStore(dir.str());
  std::mt19937_64 random(7);
  for (int round = 0; round < 4; ++round) {  // several files on several levels
    rocksdb::WriteBatch batch;
    for (int n = 0; n < 64; ++n) {
      std::string value(4 << 10, '\0');
      for (char& c : value) c = static_cast<char>(random());
      batch.Put(store->handle(Table::kTasks), "t" + std::to_string(round * 64 + n), value);
    }
    ASSERT_TRUE(store->Write(batch, /*sync=*/true).ok());
    ASSERT_TRUE(store->Settle(0).ok());  // a table file per round
  }
  rocksdb::WriteBatch deletes;
  for (int n = 0; n < 4 * 64; n += 2) {
    deletes.Delete(store->handle(Table::kTasks), "t" + std::to_string(n));
  }
  ASSERT_TRUE(store->Write(deletes, /*sync=*/true).ok());
  const uint64_t before = store->DiskBytes();
  ASSERT_TRUE(store->CompactAll().ok());
  ASSERT_EQ(store->TableFiles(Table::kTasks).size(), 1u);
  // Half the records left: the file holds about half the bytes written.
  EXPECT_LT(store->DiskBytes(), before * 3 / 4);
  uint64_t entries = 0;
  uint64_t deletions = 0;
  for (const std::string& file : store->TableFiles(Table::kTasks)) {
    rocksdb::SstFileReader reader{rocksdb::Options()};
    ASSERT_TRUE(reader.Open(file).ok());
    entries += reader.GetTableProperties()->num_entries;
    deletions += reader.GetTableProperties()->num_deletions;
  }
  EXPECT_EQ(entries, 2u * 64u);
  EXPECT_EQ(deletions, 0u);
  // Stopped: every later compaction fails at once instead of doing the work.
  rocksdb::WriteBatch more;
  more.Delete(store->handle(Table::kTasks), "t1");
  ASSERT_TRUE(store->Write(more, /*sync=*/true).ok());
  store->StopCompacting();
  EXPECT_FALSE(store->CompactAll().ok());
}

// A compaction writes its output while its inputs are still on disk. A table file that is
// not (or no longer) part of the database must not count: a disk-limit GC pass measuring
// the store during a compaction saw it twice its size and collected nearly everything.
TEST(Store, DiskBytesDoesNotCountTableFilesACompactionIsWritingOrReplaced) {
  TempDir dir;
  auto store = OpenStore(dir.str());
  // Values that do not compress, so the table file is about as large as what it holds.
  std::mt19937_64 random(42);
  rocksdb::WriteBatch batch;
  for (int n = 0; n < 64; ++n) {
    std::string value(16 << 10, '\0');
    for (char& c : value) c = static_cast<char>(random());
    batch.Put(store->handle(Table::kTasks), "t" + std::to_string(n), value);
  }
  ASSERT_TRUE(store->Write(batch, /*sync=*/true).ok());
  ASSERT_TRUE(store->CompactAll().ok());
  const std::vector<std::string> files = store->TableFiles(Table::kTasks);
  ASSERT_EQ(files.size(), 1u);
  const uint64_t live = fs::file_size(files.front());
  ASSERT_GT(live, uint64_t{1} << 20);
  const uint64_t settled = store->DiskBytes();
  ASSERT_GE(settled, live);
  // What a running compaction leaves beside the live file: its output, as large. It must
  // not count (it would add a whole `live`); a few KiB of log written meanwhile may.
  const fs::path output = fs::path(files.front()).parent_path() / "999999.sst";
  fs::copy_file(files.front(), output);
  EXPECT_LT(store->DiskBytes(), settled + (uint64_t{64} << 10));
  // And files of any other kind still count, as du counts them.
  std::ofstream(fs::path(files.front()).parent_path() / "LOG.old.1") << std::string(256 << 10, 'y');
  EXPECT_GE(store->DiskBytes(), settled + (uint64_t{256} << 10));
}

// A clean close leaves what was written in table files, not in the log: the stopped
// daemon's store is its size, and the next open has nothing to replay.
TEST(Store, AClosedStoreKeepsItsWritesInTableFilesNotInItsLog) {
  TempDir dir;
  auto store = OpenStore(dir.str());
  ASSERT_NE(store, nullptr);
  rocksdb::WriteBatch batch;
  for (int n = 0; n < 256; ++n) {
    batch.Put(store->handle(Table::kTasks), "t" + std::to_string(n), std::string(4 << 10, 'x'));
  }
  ASSERT_TRUE(store->Write(batch, /*sync=*/true).ok());
  store.reset();
  uint64_t log_bytes = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir.path())) {
    if (entry.path().extension() == ".log") log_bytes += entry.file_size();
  }
  EXPECT_LT(log_bytes, uint64_t{4} << 10);  // the batch alone is 1 MiB
  store = OpenStore(dir.str());
  ASSERT_NE(store, nullptr);
  std::string value;
  absl::StatusOr<bool> found = store->Get(Table::kTasks, "t255", &value);
  ASSERT_TRUE(found.ok() && *found);
  EXPECT_EQ(value, std::string(4 << 10, 'x'));
}

// The files a flush writes for tasks and task ids are ZSTD-compressed like the last level,
// not LZ4 like the levels between: the store a stopped daemon leaves is all flushed files,
// and it stayed 1.6 times its compacted size (83 against 52 bytes per small task).
TEST(Store, FlushedTaskTablesAreCompressedLikeTheLastLevel) {
  TempDir dir;
  auto store = OpenStore(dir.str());
  ASSERT_NE(store, nullptr);
  rocksdb::WriteBatch batch;
  for (int n = 0; n < 1000; ++n) {
    batch.Put(store->handle(Table::kTasks), "t" + std::to_string(n), std::string(100, 'x'));
    batch.Put(store->handle(Table::kTaskIds), "i" + std::to_string(n), std::to_string(n));
  }
  ASSERT_TRUE(store->Write(batch, /*sync=*/true).ok());
  store.reset();  // the close flushes
  store = OpenStore(dir.str());
  ASSERT_NE(store, nullptr);
  for (Table table : {Table::kTasks, Table::kTaskIds}) {
    const std::vector<std::string> files = store->TableFiles(table);
    ASSERT_EQ(files.size(), 1u);
    rocksdb::SstFileReader reader{rocksdb::Options()};
    ASSERT_TRUE(reader.Open(files.front()).ok());
    EXPECT_EQ(reader.GetTableProperties()->compression_name, "ZSTD") << files.front();
  }
}

// A log file goes only once every table with data in it has flushed it. A table written
// little at every change (meta, as each input change rewrites the stamp counter) never has
// the largest memtable, so it never flushed: a daemon whose inputs kept changing held
// gigabytes of log for under a megabyte of data, until RocksDB's own bound (four times all
// the memtables: 2.6 GB in the report). The logs stay within the memtables' budget (at
// least 32 MiB), and a file more.
TEST(Store, ALogHeldByATableWrittenLittleIsBounded) {
  TempDir dir;
  absl::StatusOr<std::unique_ptr<Store>> store =
      Store::Open(StoreOptions{.data_dir = dir.str(), .write_buffer_bytes = 4 << 20});
  ASSERT_TRUE(store.ok()) << store.status();
  const std::string value(100 << 10, 'v');
  for (int i = 0; i < 1000; ++i) {
    rocksdb::WriteBatch batch;
    batch.Put((*store)->handle(Table::kInputs), "churning", value + std::to_string(i));
    batch.Put((*store)->handle(Table::kMeta), "counter", std::to_string(i));
    ASSERT_TRUE((*store)->Write(batch, /*sync=*/false).ok());
  }
  // The store is open: a flush may delete a log between the listing and its size (a clean
  // clone's run threw "cannot get file size"); a log gone holds nothing.
  uint64_t log_bytes = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir.path() / "db")) {
    std::error_code gone;
    const uintmax_t bytes = entry.file_size(gone);
    if (entry.path().extension() == ".log" && !gone) log_bytes += bytes;
  }
  EXPECT_LT(log_bytes, uint64_t{48} << 20);  // 100 MB written
}

}  // namespace
