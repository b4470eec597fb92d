// A full disk, for real: the store on a small tmpfs, filled by the test. A write that finds
// no space is RESOURCE_EXHAUSTED and changes nothing; reads go on; once space is freed the
// next write succeeds, without reopening. A store opened on a full disk opens read-only and
// becomes writable by itself once there is space. Needs root to mount (skipped otherwise).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "held_table_files.h"
#include "old_format_records.h"
#include "open_store.h"
#include "records.h"
#include "small_disk.h"
#include "temp_dir.h"
#include "turbine/storage/format.h"
#include "turbine/storage/rocks_backing_store.h"
#include "turbine/storage/store.h"

namespace {

using turbine::StoredInput;
using turbine::storage::OpenReport;
using turbine::storage::RocksBackingStore;
using turbine::storage::Store;
using turbine::storage::StoreOptions;
using turbine::testing::HeldTableFiles;
using turbine::testing::OpenStore;
using turbine::testing::SmallDisk;

constexpr size_t kDiskBytes = size_t{32} << 20;
constexpr size_t kBallastBytes = size_t{16} << 20;

// Value is an input's bytes: 256 KiB that do not compress, different for each n.
std::string Value(int n) { return turbine::testing::Incompressible(n, 256 << 10); }

absl::Status WriteInput(RocksBackingStore& backing, int n) {
  const uint64_t stamp = static_cast<uint64_t>(n) + 1;
  return backing.WriteInputs({{"k" + std::to_string(n), StoredInput{"bytes", Value(n), stamp}}},
                             stamp + 1);
}

// ExpectInput checks that input n reads back as written.
void ExpectInput(RocksBackingStore& backing, int n) {
  absl::StatusOr<std::optional<StoredInput>> read = backing.ReadInput("k" + std::to_string(n));
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_TRUE(read->has_value()) << "k" << n;
  EXPECT_TRUE((*read)->bytes == Value(n)) << "k" << n;
}

// FillWithInputs writes inputs 0, 1, ... until the disk refuses one; returns how many were
// acknowledged.
int FillWithInputs(RocksBackingStore& backing) {
  for (int n = 0; n < 400; ++n) {  // 100 MiB: more than the disk holds
    absl::Status written = WriteInput(backing, n);
    if (!written.ok()) {
      EXPECT_EQ(written.code(), absl::StatusCode::kResourceExhausted) << written;
      return n;
    }
  }
  ADD_FAILURE() << "the disk never filled";
  return 0;
}

TEST(FullDisk, AWriteIsResourceExhaustedAndTheNextOneAfterSpaceIsFreedSucceeds) {
  SmallDisk disk(kDiskBytes);
  if (!disk.mounted()) GTEST_SKIP() << disk.why_not();
  const std::string data = (disk.path() / "data").string();
  int acknowledged = 0;
  {
    std::unique_ptr<Store> store = OpenStore(data);
    ASSERT_NE(store, nullptr);
    RocksBackingStore backing(store.get());
    ASSERT_GT(disk.Fill("ballast", kBallastBytes), 0u);
    acknowledged = FillWithInputs(backing);
    ASSERT_GT(acknowledged, 0);

    // Full: reads answer, writes keep failing cleanly.
    for (int n = 0; n < acknowledged; ++n) ExpectInput(backing, n);
    EXPECT_EQ(WriteInput(backing, acknowledged).code(), absl::StatusCode::kResourceExhausted);
    // Nothing freed since that attempt failed: refused without trying again.
    absl::Status again = WriteInput(backing, acknowledged);
    EXPECT_EQ(again.code(), absl::StatusCode::kResourceExhausted);
    EXPECT_NE(again.message().find("writes resume once space is freed"), std::string::npos)
        << again;
    absl::StatusOr<std::optional<StoredInput>> refused =
        backing.ReadInput("k" + std::to_string(acknowledged));
    ASSERT_TRUE(refused.ok()) << refused.status();
    EXPECT_FALSE(refused->has_value());  // a refused write left nothing behind
    // A deletion is a write too: refused the same way, and the input is still there.
    absl::Status deleted = backing.DeleteInputs({"k0"}, acknowledged + 2);
    EXPECT_EQ(deleted.code(), absl::StatusCode::kResourceExhausted) << deleted;
    ExpectInput(backing, 0);

    disk.Free("ballast");
    absl::Status written = WriteInput(backing, acknowledged);
    ASSERT_TRUE(written.ok()) << written;  // the same store, not reopened
    EXPECT_TRUE(backing.WriteSnapshot({}, 5, acknowledged + 3).ok());
  }
  // Everything acknowledged is durable.
  std::unique_ptr<Store> store = OpenStore(data);
  ASSERT_NE(store, nullptr);
  RocksBackingStore backing(store.get());
  for (int n = 0; n <= acknowledged; ++n) ExpectInput(backing, n);
}

// A write that fails appending to the log, with every memtable empty (flushed just before,
// as an idle daemon settles its store): RocksDB 7.8's resume then has nothing to flush, so
// it keeps the log whose writer saw the error, and the next write to that log aborts the
// process (an assertion in RocksDB's WritableFileWriter, compiled into Debian's build). The
// store must never write to that log again.
TEST(FullDisk, AFailedLogAppendAfterASettleIsFollowedBySafeWrites) {
  SmallDisk disk(kDiskBytes);
  if (!disk.mounted()) GTEST_SKIP() << disk.why_not();
  const std::string data = (disk.path() / "data").string();
  {
    std::unique_ptr<Store> store = OpenStore(data);
    ASSERT_NE(store, nullptr);
    RocksBackingStore backing(store.get());
    ASSERT_TRUE(WriteInput(backing, 0).ok());
    ASSERT_TRUE(store->Settle(0).ok());  // the memtables are empty now
    disk.Fill("ballast");                // to the last byte
    const absl::Status full = WriteInput(backing, 1);
    EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted) << full;
    disk.Free("ballast");
    for (int n = 2; n < 6; ++n) {
      const absl::Status written = WriteInput(backing, n);
      ASSERT_TRUE(written.ok()) << n << ": " << written;
    }
    ExpectInput(backing, 0);
    for (int n = 2; n < 6; ++n) ExpectInput(backing, n);
  }
  std::unique_ptr<Store> store = OpenStore(data);
  ASSERT_NE(store, nullptr);
  RocksBackingStore backing(store.get());
  ExpectInput(backing, 0);
  for (int n = 2; n < 6; ++n) ExpectInput(backing, n);
}

// HoldInMemtablesWithLittleRoom writes inputs 0 to 27 (7 MiB, held in the memtables) and
// leaves 2 MiB free: too little to write them into table files.
void HoldInMemtablesWithLittleRoom(SmallDisk& disk, RocksBackingStore& backing) {
  for (int n = 0; n < 28; ++n) ASSERT_TRUE(WriteInput(backing, n).ok()) << n;
  ASSERT_TRUE(disk.LeaveFree(size_t{2} << 20));
}

// An idle engine settles the store (flushes its memtables). On a nearly full disk that
// flush would fail, and a failed flush stops every write until space is freed: the settle
// must not try without room for its files.
TEST(FullDisk, ASettleWithoutRoomForItsFilesLeavesWritesGoing) {
  SmallDisk disk(kDiskBytes);
  if (!disk.mounted()) GTEST_SKIP() << disk.why_not();
  const std::string data = (disk.path() / "data").string();
  std::unique_ptr<Store> store = OpenStore(data);
  ASSERT_NE(store, nullptr);
  RocksBackingStore backing(store.get());
  ASSERT_NO_FATAL_FAILURE(HoldInMemtablesWithLittleRoom(disk, backing));

  EXPECT_TRUE(backing.Settle(size_t{4} << 20).ok());
  EXPECT_TRUE(WriteInput(backing, 28).ok()) << "a settle stopped the writes";
  ExpectInput(backing, 28);
}

// A GC pass's compaction (Reclaim) on a disk without room for what it rewrites is refused
// before it starts. Before, its flush failed for lack of space, which stopped every write
// until the store resumed (and, seen on a full tmpfs, left RocksDB waiting in that resume
// for good).
TEST(FullDisk, AReclaimWithoutRoomForItsFilesLeavesWritesGoing) {
  SmallDisk disk(kDiskBytes);
  if (!disk.mounted()) GTEST_SKIP() << disk.why_not();
  const std::string data = (disk.path() / "data").string();
  std::unique_ptr<Store> store = OpenStore(data);
  ASSERT_NE(store, nullptr);
  RocksBackingStore backing(store.get());
  ASSERT_NO_FATAL_FAILURE(HoldInMemtablesWithLittleRoom(disk, backing));

  const absl::Status reclaimed = backing.Reclaim();
  EXPECT_EQ(reclaimed.code(), absl::StatusCode::kResourceExhausted) << reclaimed;
  EXPECT_TRUE(WriteInput(backing, 28).ok()) << "a reclaim stopped the writes";
  ExpectInput(backing, 28);
  ExpectInput(backing, 3);
  // With room again, it compacts.
  disk.Free("ballast");
  EXPECT_TRUE(backing.Reclaim().ok());
}

// OpenWithHeldTableFiles opens a store on `disk` whose table-file writes `files` can hold,
// and whose writes wait 300 ms for a resume.
absl::StatusOr<std::unique_ptr<Store>> OpenWithHeldTableFiles(
    const SmallDisk& disk, const std::shared_ptr<HeldTableFiles>& files) {
  return Store::Open(StoreOptions{.data_dir = (disk.path() / "data").string(),
                                  .resume_wait = std::chrono::milliseconds(300),
                                  .file_system = files});
}

// RocksDB (7.8) can wait in a resume for good: a flush it rolled back is never run again,
// and the resume waits for it (seen on a full tmpfs). Here the flush a resume starts is
// held instead. Before, the write that asked for the resume waited with it, and so did
// every later one, each up to its caller's deadline.
TEST(FullDisk, AWriteIsRefusedWhileAResumeDoesNotReturnAndGoesOnOnceItDoes) {
  SmallDisk disk(kDiskBytes);
  if (!disk.mounted()) GTEST_SKIP() << disk.why_not();
  auto files = std::make_shared<HeldTableFiles>();
  absl::StatusOr<std::unique_ptr<Store>> store = OpenWithHeldTableFiles(disk, files);
  ASSERT_TRUE(store.ok()) << store.status();
  RocksBackingStore backing(store->get());
  ASSERT_GT(disk.Fill("ballast", kBallastBytes), 0u);
  const int acknowledged = FillWithInputs(backing);
  ASSERT_GT(acknowledged, 0);
  disk.Free("ballast");

  files->Hold();
  const absl::Status refused = WriteInput(backing, acknowledged);
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable) << refused;
  EXPECT_NE(refused.message().find("recovering from a failed write"), std::string::npos)
      << refused;
  // The recovery's flush (a resume's, or a reopen's replay of the log) reaches the held
  // table file after the 300 ms the write waited when the machine is slow (ThreadSanitizer).
  for (int attempt = 0; attempt < 200 && !files->Waiting(); ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(files->Waiting()) << "the recovery's flush was not what held it";
  // While it does not return, writes are refused (without starting another), reads go on.
  const absl::Status again = WriteInput(backing, acknowledged);
  EXPECT_EQ(again.code(), absl::StatusCode::kUnavailable) << again;
  ExpectInput(backing, 0);

  files->Release();
  absl::Status written = refused;
  for (int attempt = 0; attempt < 100 && !written.ok(); ++attempt) {
    written = WriteInput(backing, acknowledged);
    if (!written.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(written.ok()) << written;
  for (int n = 0; n <= acknowledged; ++n) ExpectInput(backing, n);
}

// RocksDB does not resume from every write error: after a log file it could not create, it
// returns that error from every resume, cause fixed or not. The store then reads from a
// read-only open and opens the database for writing again at each write: once the cause
// is gone, writes succeed in the same store, and everything acknowledged is there. Reads
// go on throughout, on another thread, while the failed database is replaced and closed.
TEST(FullDisk, AWriteErrorRocksDbDoesNotResumeFromEndsOnceItsCauseIsGone) {
  turbine::testing::TempDir dir;
  auto files = std::make_shared<HeldTableFiles>();
  absl::StatusOr<std::unique_ptr<Store>> store =
      Store::Open(StoreOptions{.data_dir = dir.str(), .write_buffer_bytes = size_t{1} << 20,
                               .file_system = files});
  ASSERT_TRUE(store.ok()) << store.status();
  RocksBackingStore backing(store->get());
  int n = 0;
  for (; n < 3; ++n) ASSERT_TRUE(WriteInput(backing, n).ok());
  files->RefuseNewLogs(true);
  absl::Status failed;
  for (; n < 40 && failed.ok(); ++n) failed = WriteInput(backing, n);  // 10 MiB: a new log
  ASSERT_FALSE(failed.ok()) << "no new log file was needed";
  const int acknowledged = n - 1;  // inputs 0 .. acknowledged - 1

  std::atomic<bool> stop{false};
  std::atomic<int> reads{0};
  std::thread reader([&] {
    for (int k = 0; !stop.load(); k = (k + 1) % acknowledged) {
      ExpectInput(backing, k);
      reads.fetch_add(1);
    }
  });
  const absl::Status still = WriteInput(backing, n);
  EXPECT_EQ(still.code(), absl::StatusCode::kUnavailable) << still;
  EXPECT_NE(still.message().find("opening it for writing failed; each write tries again"),
            std::string::npos)
      << still;
  EXPECT_TRUE((*store)->ReadOnly());
  auto some_reads = [&] {  // on the instance current now
    const int before = reads.load();
    while (reads.load() < before + 10) std::this_thread::yield();
  };
  some_reads();
  // Refused at once for a second after a failed attempt (an attempt is a whole open).
  const absl::Status at_once = WriteInput(backing, n);
  EXPECT_EQ(at_once.code(), absl::StatusCode::kUnavailable) << at_once;
  files->RefuseNewLogs(false);
  absl::Status again = WriteInput(backing, n);
  for (int attempt = 0; attempt < 40 && !again.ok(); ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    again = WriteInput(backing, n);
  }
  EXPECT_TRUE(again.ok()) << again;
  EXPECT_FALSE((*store)->ReadOnly());
  some_reads();
  stop.store(true);
  reader.join();
  for (int k = 0; k < acknowledged; ++k) ExpectInput(backing, k);
  ExpectInput(backing, n);
  // And after a restart: the same.
  store->reset();
  absl::StatusOr<std::unique_ptr<Store>> reopened =
      Store::Open(StoreOptions{.data_dir = dir.str()});
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  RocksBackingStore fresh(reopened->get());
  for (int k = 0; k < acknowledged; ++k) ExpectInput(fresh, k);
  ExpectInput(fresh, n);
}

// A store closed while its resume does not return is left open to it, as a crash would
// leave it: the close neither waits for good nor pulls the database from under the resume.
TEST(FullDisk, AStoreClosedUnderAResumeThatDoesNotReturnIsLeftToIt) {
  SmallDisk disk(kDiskBytes);
  if (!disk.mounted()) GTEST_SKIP() << disk.why_not();
  auto files = std::make_shared<HeldTableFiles>();
  absl::StatusOr<std::unique_ptr<Store>> store = OpenWithHeldTableFiles(disk, files);
  ASSERT_TRUE(store.ok()) << store.status();
  {
    RocksBackingStore backing(store->get());
    ASSERT_GT(disk.Fill("ballast", kBallastBytes), 0u);
    ASSERT_GT(FillWithInputs(backing), 0);
  }
  disk.Free("ballast");
  files->Hold();
  RocksBackingStore backing(store->get());
  EXPECT_EQ(WriteInput(backing, 1000).code(), absl::StatusCode::kUnavailable);
  store->reset();  // returns: the test would hang here otherwise
  // Left open: this process still holds the database.
  absl::StatusOr<std::unique_ptr<Store>> again =
      Store::Open(StoreOptions{.data_dir = (disk.path() / "data").string()});
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition) << again.status();
  // The resume goes on and ends before the test exits: its flush writes its table files,
  // then it returns, which nothing left can see (the Store is gone), hence the grace. A
  // process that exits under a running resume may crash in RocksDB's teardown.
  files->Release();
  for (int attempt = 0; attempt < 200 && files->Writing(); ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_FALSE(files->Writing());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
}

// Cached results stop short of the disk's reserve (5% of it, at least 1 MiB); inputs and
// deletions go on into it. The engine's snapshots ask (GarbageCollection.InTheDisksReserve...).
TEST(FullDisk, TheReserveRefusesCachedResultsAndLeavesInputsAndDeletionsRoom) {
  SmallDisk disk(kDiskBytes);
  if (!disk.mounted()) GTEST_SKIP() << disk.why_not();
  std::unique_ptr<Store> store = OpenStore((disk.path() / "data").string());
  ASSERT_NE(store, nullptr);
  RocksBackingStore backing(store.get());
  EXPECT_TRUE(backing.RoomForCache(size_t{4} << 20).ok());
  ASSERT_TRUE(disk.LeaveFree(size_t{1} << 20));  // under 5% of 32 MiB

  const absl::Status refused = backing.RoomForCache(0);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_NE(refused.message().find("kept for inputs and garbage collection"), std::string::npos)
      << refused;
  EXPECT_TRUE(WriteInput(backing, 0).ok());  // 256 KiB, into the reserve
  ExpectInput(backing, 0);
  EXPECT_TRUE(backing.DeleteInputs({"k0"}, 3).ok());
  disk.Free("ballast");
  EXPECT_TRUE(backing.RoomForCache(size_t{4} << 20).ok());
}

TEST(FullDisk, OpensReadOnlyAndBecomesWritableWhenSpaceIsFreed) {
  SmallDisk disk(kDiskBytes);
  if (!disk.mounted()) GTEST_SKIP() << disk.why_not();
  const std::string data = (disk.path() / "data").string();
  {
    std::unique_ptr<Store> store = OpenStore(data);
    ASSERT_NE(store, nullptr);
    RocksBackingStore backing(store.get());
    for (int n = 0; n < 3; ++n) ASSERT_TRUE(WriteInput(backing, n).ok());
  }
  disk.Fill("ballast");  // to the last byte

  OpenReport report;
  std::unique_ptr<Store> store = OpenStore(data, &report);
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(report.read_only);
  EXPECT_TRUE(report.moved_aside.empty());
  EXPECT_TRUE(store->ReadOnly());
  RocksBackingStore backing(store.get());
  for (int n = 0; n < 3; ++n) ExpectInput(backing, n);
  absl::Status refused = WriteInput(backing, 3);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_TRUE(store->ReadOnly());

  disk.Free("ballast");
  absl::Status written = WriteInput(backing, 3);
  ASSERT_TRUE(written.ok()) << written;
  EXPECT_FALSE(store->ReadOnly());
  for (int n = 0; n < 4; ++n) ExpectInput(backing, n);
  store.reset();

  store = OpenStore(data, &report);
  ASSERT_NE(store, nullptr);
  EXPECT_FALSE(report.read_only);
  RocksBackingStore reopened(store.get());
  for (int n = 0; n < 4; ++n) ExpectInput(reopened, n);
}

}  // namespace

// A version 2 store opened on a full disk cannot be upgraded at open: it is served as it
// is, a task with a long identity found under its old key, and upgraded before the first
// record under a digest key once the disk has room. Before, the lookup missed it, and the
// rewrite under the digest key left the id index naming the old record (its old result).
TEST(FullDisk, AVersion2StoreOpenedReadOnlyIsUpgradedBeforeItsFirstDigestKey) {
  SmallDisk disk(kDiskBytes);
  if (!disk.mounted()) GTEST_SKIP() << disk.why_not();
  const std::string data = (disk.path() / "data").string();
  const std::string identity(3000, 'v');
  {
    std::unique_ptr<Store> store = OpenStore(data);
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(turbine::testing::PutVersion2Task(*store, 7, 70, identity, "old"));
  }
  disk.Fill("ballast");
  OpenReport report;
  std::unique_ptr<Store> store = OpenStore(data, &report);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->ReadOnly());
  EXPECT_TRUE(store->UpgradePending());
  RocksBackingStore backing(store.get());
  absl::StatusOr<std::optional<turbine::StoredTask>> found = backing.FindTask(70, identity);
  ASSERT_TRUE(found.ok() && found->has_value()) << found.status();
  EXPECT_EQ((*found)->id, 7u);

  disk.Free("ballast");
  ASSERT_TRUE(WriteInput(backing, 0).ok());  // writable again
  turbine::StoredTask rewritten = **found;
  rewritten.result = "new";
  ASSERT_TRUE(backing.WriteSnapshot({rewritten}, 8, 2).ok());
  // The step a snapshot needs; the step for long input names waits for a write of one.
  EXPECT_FALSE(store->UpgradePending(Store::UpgradeStep::kIdentities));
  EXPECT_EQ(turbine::testing::FormatVersion(*store), "3");
  absl::StatusOr<std::optional<turbine::StoredTask>> by_id = backing.ReadTask(7);
  ASSERT_TRUE(by_id.ok() && by_id->has_value()) << by_id.status();
  EXPECT_EQ((*by_id)->result, "new");
  found = backing.FindTask(70, identity);
  ASSERT_TRUE(found.ok() && found->has_value()) << found.status();
  EXPECT_EQ((*found)->result, "new");
}

// The same for a version 3 store and an input whose name is too long to be a key: read
// under its whole name while the store cannot be upgraded, and the store upgraded before
// the first input written under a digest key, which the upgrade would otherwise take for a
// whole name.
TEST(FullDisk, AVersion3StoreOpenedReadOnlyIsUpgradedBeforeItsFirstLongNameKey) {
  SmallDisk disk(kDiskBytes);
  if (!disk.mounted()) GTEST_SKIP() << disk.why_not();
  const std::string data = (disk.path() / "data").string();
  const std::string old_name(3000, 'o');
  const std::string new_name(3000, 'n');
  {
    std::unique_ptr<Store> store = OpenStore(data);
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(turbine::testing::PutVersion3Input(*store, old_name, 5));
  }
  disk.Fill("ballast");
  std::unique_ptr<Store> store = OpenStore(data);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->ReadOnly());
  EXPECT_TRUE(store->UpgradePending());
  RocksBackingStore backing(store.get());
  absl::StatusOr<std::optional<StoredInput>> found = backing.ReadInput(old_name);
  ASSERT_TRUE(found.ok() && found->has_value()) << found.status();
  EXPECT_EQ((*found)->stamp, 5u);
  const auto logged = [&] {
    absl::StatusOr<turbine::InputChangeLog> log = backing.ReadInputChanges(100);
    EXPECT_TRUE(log.ok()) << log.status();
    return turbine::testing::LoggedHashes(*log);
  };
  EXPECT_EQ(logged(), turbine::testing::Hashes({old_name}));

  disk.Free("ballast");
  ASSERT_TRUE(WriteInput(backing, 0).ok());  // writable again
  EXPECT_TRUE(store->UpgradePending());      // a short name waits for nothing
  // A change logged before the upgrade keeps the old layout: the store still says 3.
  const std::string observed(4000, 's');
  ASSERT_TRUE(backing
                  .LogInputChanges(
                      {turbine::InputChange{.stamp = 6, .key = observed, .key_hash = {}}}, {}, 7)
                  .ok());
  EXPECT_EQ(turbine::testing::Longest(*store, turbine::storage::Table::kMeta, false),
            sizeof(turbine::storage::kInputChangePrefix) - 1 + 8 + observed.size());
  ASSERT_TRUE(backing.WriteInputs({{new_name, StoredInput{"i64", "y", 7}}}, 8).ok());
  EXPECT_FALSE(store->UpgradePending());
  EXPECT_EQ(turbine::testing::FormatVersion(*store),
            std::to_string(turbine::storage::kFormatVersion));
  EXPECT_LE(turbine::testing::Longest(*store, turbine::storage::Table::kInputs, false),
            turbine::storage::NameKey::kDigestedSize);
  for (const auto& [name, bytes] : {std::pair(old_name, "x"), std::pair(new_name, "y")}) {
    found = backing.ReadInput(name);
    ASSERT_TRUE(found.ok() && found->has_value()) << found.status();
    EXPECT_EQ((*found)->bytes, bytes);
  }
  const std::vector<uint64_t> hashes = logged();
  for (uint64_t hash : turbine::testing::Hashes({old_name, observed, new_name})) {
    EXPECT_NE(std::find(hashes.begin(), hashes.end(), hash), hashes.end());
  }
}
