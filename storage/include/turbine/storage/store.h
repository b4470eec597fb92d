// store.h — the RocksDB database that backs the engine's task graph.
//
// One database at <data-dir>/db, one column family per logical table (see format.h for
// the schema). Opening never refuses service because of the cache's state: a database with
// a format version this build does not read, or one RocksDB reports as corrupt, is moved aside to
// <data-dir>/db.broken-<time> and replaced by an empty one. What cannot be fixed that way
// (an unwritable directory, another process holding the database) is a clear error.
//
// Faults it survives without a restart:
//   - A full disk. A write that finds no space fails with kResourceExhausted and leaves the
//     database read-only; each later write first asks RocksDB to resume, which succeeds
//     once space is back (kUnavailable while a resume takes longer than
//     StoreOptions::resume_wait). Opening on a full disk opens read-only (reads work,
//     writes fail the same way); each write then tries to reopen for writing. RocksDB's
//     own log goes to the process's log (spdlog), never to a file on the full disk.
//   - A write error RocksDB does not resume from (a log file it could not create in a
//     directory made read-only, say). The failed database is closed and reads go on from
//     a read-only open; each later write tries to open it for writing again, which
//     succeeds once the cause is gone. Nothing acknowledged is lost: the log keeps it.
//   - A damaged inputs table. Open reads it whole with checksums verified and says what
//     is damaged (OpenReport::damaged_inputs); a read of a damaged input is kDataLoss.
//     The database is kept: inputs are the user's data, moving them aside would lose them.
//
// Thread-safety: a Store may be used from any number of threads at once.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
class FileSystem;
class PinnableSlice;
class Slice;
struct Options;
class WriteBatch;
}  // namespace rocksdb

namespace turbine::storage {

// Table names the column families. Stored on disk by name: renaming one is a format change.
enum class Table : int {
  kMeta,          // format version, id and stamp counters
  kTasks,         // (component hash, identity) -> TaskId, last clean result: lookup by components
  kTaskIds,       // TaskId -> (component hash, identity), the task's key in kTasks: lookup by id
  kInputs,        // input name key -> value, type, change stamp (durable on acknowledgement)
  kTaskUse,       // TaskId -> the day it was last used (garbage collection)
  kObservations,  // TaskId -> what the task saw outside the engine (checked again at open)
};
inline constexpr int kTableCount = 6;
std::string_view TableName(Table table);

struct StoreOptions {
  // Directory that holds the database (created if missing).
  std::string data_dir = "./.turbine";
  // Fsync the write-ahead log on every write batch. Inputs need it (they are user data,
  // durable once acknowledged); snapshots of cached results do not.
  bool sync_writes = false;
  // Bytes of uncompressed table blocks kept in memory, shared by all tables: lookups of
  // tasks restored after a restart read through it. Index and filter blocks are charged to
  // it and pinned there (a few percent of the data), so it bounds the store's read memory.
  size_t block_cache_bytes = size_t{128} << 20;
  // Bytes of memtables (writes not yet in table files), all tables together; 0: RocksDB's
  // default of up to two 64 MB memtables per table.
  size_t write_buffer_bytes = 0;
  // How long writes wait for the store to resume after a failed write, and the close for a
  // resume under way. A resume still running then refuses writes with kUnavailable until
  // it returns (RocksDB can wait in one for good: resumer.h); a close leaves the database
  // open to it, as a crash would (the log keeps every write).
  std::chrono::milliseconds resume_wait{5000};
  // Where the database's files are written; null: the local file system. For tests that
  // inject faults.
  std::shared_ptr<rocksdb::FileSystem> file_system = nullptr;
};

// StoreUsage is what the database occupies, by RocksDB's own accounting.
struct StoreUsage {
  uint64_t tasks = 0;             // estimate: entries of the id index
  uint64_t table_file_bytes = 0;  // SST files of every table, including ones a compaction
                                  // is about to delete
  uint64_t log_file_bytes = 0;    // write-ahead log files: writes not yet in a table file
  uint64_t memtable_bytes = 0;    // memory, not disk: those writes, held until flushed
  uint64_t block_cache_bytes = 0; // memory: cached table blocks (shared by all tables)
};

// OpenReport says what Open found, for the daemon's log.
struct OpenReport {
  bool created = false;     // a new, empty database was made
  std::string moved_aside;  // where an unusable database went, empty if none
  std::string reason;       // why it was unusable
  // The disk is full: the database was opened read-only, and `full_disk` says what failed.
  bool read_only = false;
  std::string full_disk;
  // The inputs table failed its checksum check: what RocksDB found, empty if nothing.
  std::string damaged_inputs;
  // The database moved aside was damaged, and its inputs, all readable, were carried over
  // into the new one: how many.
  size_t carried_inputs = 0;
  // The database was damaged in its inputs too: kept where it is, and opened with the
  // damaged table files left for the reads that need them to fail.
  bool kept_damaged = false;
  // The database moved aside was damaged, and its inputs could not be carried over: why.
  // They stay in the database moved aside (and read as not set).
  std::string inputs_left;
};

class Store;
class Resumer;

// TableScan reads one table in key order as of the moment it was opened (writes made since
// are not seen), in batches, and reads single records of other tables as of that moment.
// It holds the database's state of that moment: end it before long. It must not outlive
// its Store.
class TableScan {
 public:
  ~TableScan();
  TableScan(const TableScan&) = delete;
  TableScan& operator=(const TableScan&) = delete;

  // Next calls `visit` with up to `limit` records; false once the table is done.
  absl::StatusOr<bool> Next(
      size_t limit, const std::function<void(std::string_view key, std::string_view value)>& visit);
  // Get reads one value of `table` as of the scan's moment; false if the key is absent.
  absl::StatusOr<bool> Get(Table table, std::string_view key, std::string* value) const;

 private:
  friend class Store;
  struct View;
  explicit TableScan(std::unique_ptr<View> view);
  std::unique_ptr<View> view_;
};

class Store {
 public:
  // Open opens or creates the database. Errors: kPermissionDenied / kUnavailable when the
  // directory cannot be used, kFailedPrecondition when another process (or Store) holds it.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options,
                                                     OpenReport* report = nullptr);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Get reads one value into `value`; returns false if the key is absent.
  absl::StatusOr<bool> Get(Table table, std::string_view key, std::string* value) const;
  // This Get leaves the value where RocksDB holds it (no copy when the block cache has it);
  // Reset() the slice before reusing it.
  absl::StatusOr<bool> Get(Table table, std::string_view key,
                           rocksdb::PinnableSlice* value) const;
  // MultiGet reads `keys` in one batch (RocksDB sorts them, and reads a block once for all
  // the keys in it): for each, what Get says, with the value in `values` (as large as
  // `keys`; Reset() them before reusing).
  std::vector<absl::StatusOr<bool>> MultiGet(Table table, const std::vector<rocksdb::Slice>& keys,
                                             rocksdb::PinnableSlice* values) const;
  absl::Status Put(Table table, std::string_view key, std::string_view value);
  // Write applies `batch` atomically across tables (the snapshot unit). kResourceExhausted
  // when the disk is full (nothing of the batch is applied); the next write retries.
  absl::Status Write(rocksdb::WriteBatch& batch, bool sync);
  // RoomForCache refuses (kResourceExhausted) a write of about `bytes` of cached results
  // that would leave the disk less free space than its reserve (5% of the disk, at least
  // 1 MiB and at most 64 MiB) plus the room the store needs to go on: to write its
  // memtables into table files, and to compact its largest table of results (the inputs
  // table aside: inputs are kept whatever the cache does; at most max_compaction_bytes,
  // what one compaction rewrites). Cached results can be
  // written later or computed again; the reserve keeps room for inputs (the user's data)
  // and for what frees space (a garbage collection's deletions, a flush that lets the log
  // go). When the memtables are what keeps results out, it writes them into table files
  // first (Settle), which lets the log go.
  absl::Status RoomForCache(uint64_t bytes);
  // CompactAll flushes every table's memtable and compacts its files into the fewest, as a
  // long-lived store settles: deleted records and their tombstones are gone afterwards, and
  // so are the files and the log that held them (after bulk deletes, for measurements).
  absl::Status CompactAll();
  // Settle writes the memtables into table files when together they hold at least
  // `min_bytes`, so that a crash has little log to replay at the next open (an idle
  // engine calls it). Nothing to do on a read-only store, nor without room for the files
  // (a failed flush would stop writes until the store resumes).
  absl::Status Settle(uint64_t min_bytes);
  // KeepLogSmall settles the store (as Settle) when the memtables, and the log that holds
  // them meanwhile, take an eighth of the disk's free space or more (from 1 MiB).
  absl::Status KeepLogSmall();
  // MergeSmallFiles merges the small table files that flushes leave in a table whose keys
  // only grow (RocksDB moves each down a level whole and never merges them): once 16
  // flushes have completed since it last looked, each run of 16 files under 4 MiB side by
  // side in a level becomes one, four runs at most per call. It compacts on the calling
  // thread: call it holding nothing a write waits for. Nothing to do on a read-only store
  // or while writes fail.
  void MergeSmallFiles();
  // StopCompacting makes a CompactAll running on another thread, and every later one, stop
  // early with an error (for shutting down). Safe from any thread.
  void StopCompacting();
  // The upgrade from older format versions (store_upgrade.cc), in two steps, each run at
  // open and, if it could not run then (read-only on a full disk, a failed write), pending
  // until the first write that needs it: from version 2, tasks whose identity is too long
  // to be a key move to their digest key (the store then says 3); from 2 or 3, inputs
  // whose name is too long (then 4). While a step is pending, lookups try the old key too.
  // FinishUpgrade(step) runs the pending steps up to `step`; UpgradeLock, held, keeps any
  // step from running (for a lookup's second try, and for deletions, which must not race a
  // step's moves).
  enum class UpgradeStep : int { kIdentities = 0, kNames = 1 };
  static constexpr int StepBit(UpgradeStep step) { return 1 << static_cast<int>(step); }
  bool UpgradePending(UpgradeStep step) const {
    return pending_steps_.load(std::memory_order_acquire) & StepBit(step);
  }
  bool UpgradePending() const { return pending_steps_.load(std::memory_order_acquire) != 0; }
  absl::Status FinishUpgrade(UpgradeStep step);
  std::unique_lock<std::mutex> UpgradeLock() { return std::unique_lock(upgrade_mu_); }
  // Scan opens a scan of `table` (see TableScan).
  std::unique_ptr<TableScan> Scan(Table table) const;
  // DiskBytes is what the database directory occupies on disk, as `du` counts it (every
  // file: tables, log, manifest, options), except table files a compaction is writing or
  // has just replaced: a measure that does not double while a compaction runs.
  uint64_t DiskBytes() const;
  // TableFiles lists the files that hold `table` now (full paths; memtables not included):
  // for tools and fault-injection tests.
  std::vector<std::string> TableFiles(Table table) const;
  // ForEach calls `visit` with every record of `table`, in key order (a scan, for tools and
  // offline checks; not for the call path).
  absl::Status ForEach(Table table,
                       const std::function<void(std::string_view key, std::string_view value)>&
                           visit) const;
  // ReadOnly tells whether the database is open read-only (opened on a full disk and not
  // yet reopened for writing).
  bool ReadOnly() const;

  // Usage asks RocksDB (table properties and the log directory, no walk of the data), for
  // monitoring: cheap enough for every metrics scrape, not meant for a hot path.
  StoreUsage Usage() const;

  // handle names `table` in a WriteBatch (and only there): by the table's id, which every
  // instance of the database shares, so a batch built before a reopen still writes to the
  // right table.
  rocksdb::ColumnFamilyHandle* handle(Table table) const;
  const std::string& path() const { return path_; }

  // An unusable database (corrupt, another format) is moved aside; anything else is an
  // error. For Open.
  enum class Verdict { kOk, kMoveAside, kError };
  struct Attempt {
    Verdict verdict = Verdict::kOk;
    absl::Status error;    // kError
    std::string reason;    // kMoveAside
    bool damaged = false;  // kMoveAside: RocksDB found the data damaged (not another format)
  };

 private:
  friend class TableScan;
  // Instance is one open of the database (store_internal.h). A read-only one (opened on a
  // full disk) is replaced by a writable one once there is space; a writable one that
  // failed with an error RocksDB does not resume from is replaced by a read-only one,
  // closed, and opened again for writing. Each use pins the instance it found current
  // (Pin), and a replaced one closes once nothing pins it.
  struct Instance;
  struct Shared;  // what RocksDB's listener and logger share with the Store
  class Pin;

  Store();
  Pin Use() const;  // the current instance, pinned
  // CacheRoom is what RoomForCache weighs: the disk's free bytes and reserve, what the
  // memtables hold, and the largest table's files (`known` false: the disk did not say).
  struct CacheRoom {
    bool known = false;
    uint64_t free = 0;
    uint64_t reserve = 0;
    uint64_t held = 0;
    uint64_t largest = 0;
  };
  CacheRoom MeasureCacheRoom() const;
  // OpenDatabase opens the tables at path_ (read-only on a full disk, if the database
  // exists); CheckFormat checks (or, in a new database, writes) the format version;
  // CheckInputs verifies the inputs table and logs what Open found.
  // `keep_damaged`: table files RocksDB cannot load are left for the reads that need them
  // to fail (paranoid checks off), rather than failing the open. InstanceOptions are the
  // options of every open of the database, this one's and the recovery's.
  rocksdb::Options InstanceOptions() const;
  Attempt OpenDatabase(bool existed, OpenReport* report, bool keep_damaged = false);
  Attempt CheckFormat(bool must_have_version, OpenReport* report);
  // The two steps of the upgrade (store_upgrade.cc), under upgrade_mu_; WriteIfFull writes
  // a step's batch (synced) once it holds a batch's worth, and clears it.
  absl::Status RekeyLongIdentities();
  absl::Status RekeyLongNames();
  void WriteIfFull(rocksdb::WriteBatch& batch, absl::Status& failed);
  void CheckInputs(OpenReport* report);
  // Recovery (store_recovery.cc), under recover_mu_. PrepareWrite makes the database
  // writable again after a failed write, if it can: ResumeWriting asks RocksDB to resume;
  // ReplaceFailedInstance, for an error it does not resume from (or a failed log append,
  // which it does not resume from safely), serves reads from a
  // read-only instance and closes the failed one; ReopenForWriting replaces a read-only
  // instance by a writable one once the replaced ones that would keep it from opening
  // are closed (CloseRetired).
  absl::Status PrepareWrite();
  absl::Status ResumeWriting();
  absl::Status ReplaceFailedInstance(std::string_view why);
  // ReopenForWriting waits up to `wait` for the last pins of a replaced writable instance
  // (the first attempt after a replacement waits, later ones, each write's, do not), then
  // closes it and opens a writable one on the resumer's thread; Install makes that current.
  absl::Status ReopenForWriting(std::chrono::milliseconds wait);
  std::unique_ptr<Instance> TakeOpened();
  absl::Status Install(std::unique_ptr<Instance> instance);
  // CloseRetired closes the replaced read-only instances nothing pins, and gives the
  // replaced writable ones not yet closed in `writable` once nothing pins them, waiting up
  // to `wait` for that; false if one is still pinned (it is left out of `writable`).
  bool CloseRetired(std::chrono::milliseconds wait, std::vector<Instance*>* writable);

  std::string path_;
  StoreOptions options_;
  std::shared_ptr<Shared> shared_;
  std::atomic<Instance*> current_{nullptr};
  std::mutex recover_mu_;                             // serializes recovery (PrepareWrite)
  std::unique_ptr<Resumer> resumer_;                  // runs RocksDB's resume (resumer.h)
  std::atomic<int> pending_steps_{0};                 // bits: 1 << UpgradeStep
  std::mutex upgrade_mu_;                             // one step at a time
  std::vector<std::unique_ptr<Instance>> instances_;  // every open not closed, current_ last
  // What handle() gives: a table's id, valid in every instance (store.cc, TableHandle).
  std::array<std::unique_ptr<rocksdb::ColumnFamilyHandle>, kTableCount> table_handles_;
  std::atomic<bool> stop_compacting_{false};  // StopCompacting, for instances opened later
};

}  // namespace turbine::storage
