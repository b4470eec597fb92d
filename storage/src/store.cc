// store.cc — the backing store's database: its instances, reads and writes, room on the
// disk, compaction and settling (opening it: store_open.cc; recovery: store_recovery.cc).
#include "turbine/storage/store.h"

#include <absl/cleanup/cleanup.h>
#include <absl/strings/numbers.h>
#include <rocksdb/cache.h>
#include <rocksdb/comparator.h>
#include <rocksdb/db.h>
#include <rocksdb/metadata.h>
#include <rocksdb/options.h>
#include <rocksdb/transaction_log.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <vector>

#include "resumer.h"
#include "rocks_faults.h"
#include "store_internal.h"
#include "turbine/storage/format.h"

namespace turbine::storage {
namespace {

namespace fs = std::filesystem;

constexpr std::array<std::string_view, kTableCount> kTableNames = {
    "meta", "tasks", "task_ids", "inputs", "task_use", "observations"};

using Verdict = Store::Verdict;
using Attempt = Store::Attempt;

// TableHandle names a table in a WriteBatch, which takes only its id from a handle (and
// its comparator, for timestamps): the ids are the database's, the same in every
// instance, so a batch built while one instance was current writes to the right table of
// the next, and never through a handle of an instance closed meanwhile. Only for batches:
// reads go through the pinned instance's own handles (Store::Pin::handle).
class TableHandle final : public rocksdb::ColumnFamilyHandle {
 public:
  TableHandle(std::string_view name, uint32_t id) : name_(name), id_(id) {}
  const std::string& GetName() const override { return name_; }
  uint32_t GetID() const override { return id_; }
  rocksdb::Status GetDescriptor(rocksdb::ColumnFamilyDescriptor*) override {
    return rocksdb::Status::NotSupported("a table's name for write batches only");
  }
  const rocksdb::Comparator* GetComparator() const override {
    return rocksdb::BytewiseComparator();
  }

 private:
  std::string name_;
  uint32_t id_;
};

}  // namespace

// RemoveEmptyLogs deletes the empty write-ahead log files older than the one `db` (just
// opened for writing) writes to. Every open starts a new log, and RocksDB before 8.3 never
// deletes one into which nothing was written: a daemon restarted without writing left one
// more empty file behind each time, without end. They hold nothing, and the database is
// open and locked by this process, so nobody else is about to write to one.
void RemoveEmptyLogs(rocksdb::DB& db, const std::string& path) {
  std::unique_ptr<rocksdb::LogFile> current;
  if (!db.GetCurrentWalFile(&current).ok() || current == nullptr) return;
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(path, error)) {
    if (entry.path().extension() != ".log") continue;
    uint64_t number = 0;
    const std::string stem = entry.path().stem().string();
    if (!absl::SimpleAtoi(stem, &number) || number >= current->LogNumber()) continue;
    std::error_code size_error;
    if (fs::file_size(entry.path(), size_error) == 0 && !size_error) {
      fs::remove(entry.path(), size_error);
    }
  }
}

// LogFileBytes is what the write-ahead log files in `path` take: what the memtables hold,
// as written (their arenas, which RocksDB reports, allocate up to twice that and more), so
// at most what a flush of them writes.
uint64_t LogFileBytes(const std::string& path) {
  uint64_t bytes = 0;
  std::error_code error;  // never thrown: the engine's threads must not throw
  for (fs::directory_iterator it(path, error); !error && it != fs::directory_iterator();
       it.increment(error)) {
    if (it->path().extension() != ".log") continue;
    std::error_code size_error;  // deleted while listing
    const uint64_t size = fs::file_size(it->path(), size_error);
    if (!size_error) bytes += size;
  }
  return bytes;
}

bool IsNoSpace(const rocksdb::Status& status) {
  return status.IsNoSpace() ||
         (status.IsIOError() && status.ToString().find("No space left") != std::string::npos);
}


namespace {
// RefusedBySystem tells whether the system refused a file of the database for a reason of
// its own, whatever status RocksDB wrapped it in: an open-file limit, a permission, memory.
// Such a refusal goes away with its cause, and the database is fine. RocksDB reports one as
// InvalidArgument when it meets it checking the options file ("Found options incompatible
// with filesystem: IO error: ... CURRENT: Too many open files") and as Corruption when
// opening a table file: taken for a database written by something else, or damaged, it was
// moved aside, and every input read as not set.
bool RefusedBySystem(const std::string& text) {
  for (const char* reason : {"Too many open files", "Permission denied", "Operation not permitted",
                             "Cannot allocate memory"}) {
    if (text.find(reason) != std::string::npos) return true;
  }
  return false;
}

// ConvertOpenError maps what RocksDB said about an open into a verdict.
Attempt ConvertOpenError(const rocksdb::Status& status, const std::string& path) {
  const std::string text = status.ToString();
  if (RefusedBySystem(text)) {
    const std::string message = "cannot open the cache database " + path + ": " + text;
    const bool permission = text.find("Permission denied") != std::string::npos ||
                            text.find("Operation not permitted") != std::string::npos;
    return {Verdict::kError,
            permission ? absl::PermissionDeniedError(message) : absl::UnavailableError(message),
            {}};
  }
  if (status.IsCorruption()) return {Verdict::kMoveAside, {}, text, true};
  if (IsNoSpace(status)) {
    return {Verdict::kError,
            absl::ResourceExhaustedError("the disk is full: cannot open the cache database " +
                                         path + ": " + text),
            {}};
  }
  if (status.IsIOError() && text.find("lock") != std::string::npos) {
    // RocksDB says "lock hold by current process" for a second open in this one.
    const bool here = text.find("current process") != std::string::npos;
    return {
        Verdict::kError,
        absl::FailedPreconditionError(
            "the cache database " + path + " is in use by " +
            (here ? "this process already (open it once)" : "another process") + " (" + text + ")"),
        {}};
  }
  if (status.IsIOError()) {
    return {Verdict::kError,
            absl::UnavailableError("cannot open the cache database " + path + ": " + text),
            {}};
  }
  // InvalidArgument, NotSupported, ...: written by something we do not understand.
  return {Verdict::kMoveAside, {}, text};
}

}  // namespace

absl::Status FromRocks(const rocksdb::Status& status, std::string_view what) {
  if (status.ok()) return absl::OkStatus();
  const std::string message = std::string(what) + ": " + status.ToString();
  if (IsNoSpace(status)) return absl::ResourceExhaustedError("the disk is full: " + message);
  if (status.IsIOError()) return absl::UnavailableError(message);
  if (status.IsCorruption()) return absl::DataLossError(message);
  return absl::InternalError(message);
}

// FreeBytes is the space left on the disk holding `path`, if the system says.
std::optional<uint64_t> FreeBytes(const std::string& path) {
  struct statvfs disk {};
  if (::statvfs(path.c_str(), &disk) != 0) return std::nullopt;
  return uint64_t{disk.f_bavail} * disk.f_frsize;
}


namespace {
// FlushMemtables writes what the memtables of `handles` hold into table files. RocksDB
// does not at close when its log is on: the log then held everything written since the
// last flush (up to two memtables per table), the stopped daemon's store was several times
// its compacted size, and the next open replayed it all (4.4 s for a million tasks). An
// immutable memtable counts too: Close abandons a flush still queued. A failed flush loses
// nothing (the log still holds the writes); RocksDB waits 1 s after one.
rocksdb::Status FlushMemtables(
    rocksdb::DB& db, const std::array<rocksdb::ColumnFamilyHandle*, kTableCount>& handles) {
  std::vector<rocksdb::ColumnFamilyHandle*> holding;
  for (rocksdb::ColumnFamilyHandle* handle : handles) {
    if (handle == nullptr) continue;
    uint64_t entries = 0;
    uint64_t immutable = 0;
    db.GetIntProperty(handle, rocksdb::DB::Properties::kNumEntriesActiveMemTable, &entries);
    db.GetIntProperty(handle, rocksdb::DB::Properties::kNumImmutableMemTable, &immutable);
    if (entries > 0 || immutable > 0) holding.push_back(handle);
  }
  if (holding.empty()) return rocksdb::Status::OK();
  rocksdb::FlushOptions options;
  // Not waiting for compactions to catch up first: a flush is what lets writes go on.
  options.allow_write_stall = true;
  return db.Flush(options, holding);
}

// A table's keys that only grow (task ids) make every flushed file fall past all the files
// below it: RocksDB then moves it down whole, without merging, and nothing merges it later
// until the level is a quarter of a gigabyte. Under --memory-limit, with the memtables
// flushed every second, 2,246 files of a few KB each (and as many open descriptors) piled
// up in five minutes. MergeSmallFileRuns merges runs of kSmallFileRun such files lying
// side by side in a level into one, in place, kMostRunsPerCall runs at most. Merged files
// merge again in turn until they pass kSmallFileBytes: a flushed byte is rewritten about
// three times (a few KB, then about 160 KB, 2.5 MB, 40 MB), the largest merge writes 64 MiB
// at most, and a table keeps about one file per 40 MB and a few dozen smaller ones (with
// 1 MiB it kept one per 2.5 MB: 48 files for 9 MB of task ids). Returns whether it left no
// run behind.
constexpr uint64_t kSmallFileBytes = uint64_t{4} << 20;
constexpr size_t kSmallFileRun = 16;
constexpr int kMostRunsPerCall = 4;

bool MergeSmallFileRuns(rocksdb::DB& db, const std::string& path,
                        const std::array<rocksdb::ColumnFamilyHandle*, kTableCount>& handles) {
  rocksdb::CompactionOptions options;
  options.compression = rocksdb::kDisableCompressionOption;  // the table's, for the level
  int merges = 0;
  bool all_merged = true;
  for (rocksdb::ColumnFamilyHandle* handle : handles) {
    if (handle == nullptr) continue;
    rocksdb::ColumnFamilyMetaData table;
    db.GetColumnFamilyMetaData(handle, &table);
    // Level 0's files overlap each other, and RocksDB compacts them by itself.
    for (size_t level = 1; level < table.levels.size(); ++level) {
      const std::vector<rocksdb::SstFileMetaData>& files = table.levels[level].files;  // by key
      std::vector<std::string> run;
      uint64_t run_bytes = 0;
      for (const rocksdb::SstFileMetaData& file : files) {
        if (file.size >= kSmallFileBytes || file.being_compacted) {
          run.clear();
          run_bytes = 0;
          continue;
        }
        run.push_back(file.name);
        run_bytes += file.size;
        if (run.size() < kSmallFileRun) continue;
        if (merges == kMostRunsPerCall) return false;
        const std::optional<uint64_t> free = FreeBytes(path);
        // Best effort: one that fails (a compaction took a file meanwhile) is left for the
        // next call.
        if ((free.has_value() && *free < 2 * run_bytes) ||
            !db.CompactFiles(options, handle, run, static_cast<int>(level)).ok()) {
          all_merged = false;
        }
        ++merges;
        run.clear();
        run_bytes = 0;
      }
    }
  }
  return all_merged;
}

}  // namespace

void Store::Instance::Close() {
  if (db == nullptr || closed.load()) return;
  if (!read_only) {
    rocksdb::Status status = FlushMemtables(*db, handles);
    if (!status.ok()) {
      spdlog::warn("flush at close failed, the log keeps the writes: {}", status.ToString());
    }
  }
  for (rocksdb::ColumnFamilyHandle* handle : handles) {
    if (handle != nullptr) db->DestroyColumnFamilyHandle(handle);
  }
  handles = {};
  db->Close().PermitUncheckedError();
  db.reset();
  closed.store(true);
}


std::string_view TableName(Table table) { return kTableNames[static_cast<int>(table)]; }

Store::Store() : shared_(std::make_shared<Shared>()) {}

rocksdb::Options Store::InstanceOptions() const {
  rocksdb::Options options = DatabaseOptions(shared_->logger, shared_->errors,
                                             options_.write_buffer_bytes, shared_->env.get());
  options.paranoid_checks = !shared_->keep_damaged;
  options.listeners.push_back(shared_->flush_counter);
  return options;
}

Attempt Store::OpenDatabase(bool existed, OpenReport* report, bool keep_damaged) {
  shared_->cache = rocksdb::NewLRUCache(options_.block_cache_bytes);
  shared_->keep_damaged = keep_damaged;
  auto instance = std::make_unique<Instance>();
  const rocksdb::Options db_options = InstanceOptions();
  rocksdb::Status status = OpenInstance(path_, shared_->cache, db_options, /*read_only=*/false,
                                        &instance->handles, &instance->db);
  if (IsNoSpace(status) && existed) {
    // Opening for writing writes (a new manifest, the log replayed into a table): on a
    // full disk, serve what is there and take writes once there is space again.
    report->full_disk = status.ToString();
    instance = std::make_unique<Instance>();
    instance->read_only = true;
    status = OpenInstance(path_, shared_->cache, db_options, /*read_only=*/true,
                          &instance->handles, &instance->db);
    report->read_only = status.ok();
  }
  if (!status.ok()) return ConvertOpenError(status, path_);
  if (!instance->read_only) RemoveEmptyLogs(*instance->db, path_);
  for (int t = 0; t < kTableCount; ++t) {
    table_handles_[t] = std::make_unique<TableHandle>(kTableNames[t], instance->handles[t]->GetID());
  }
  current_.store(instance.get());
  instances_.push_back(std::move(instance));
  return {};
}

Store::~Store() {
  if (resumer_ != nullptr && !resumer_->Finish()) {
    // Closing the database under a resume would crash the process; a restart replays the
    // log, as after a crash. What the database uses stays with it.
    spdlog::error(
        "{} is left open: RocksDB's resume has not returned, and the database cannot close "
        "under it (its log keeps every write)",
        path_);
    for (std::unique_ptr<Instance>& instance : instances_) static_cast<void>(instance.release());
    static_cast<void>(new std::shared_ptr<Shared>(shared_));
    return;
  }
  // Newest first: the writable instance closes (and flushes) before the read-only one it
  // replaced.
  while (!instances_.empty()) instances_.pop_back();
}

bool Store::ReadOnly() const { return Use().read_only(); }

rocksdb::ColumnFamilyHandle* Store::handle(Table table) const {
  return table_handles_[static_cast<int>(table)].get();
}

Store::Pin Store::Use() const {
  // As a hazard pointer: counted, then confirmed still current. A replacement that makes
  // another instance current and then finds no user (ReplaceFailedInstance) cannot miss
  // one that counted itself before that check: its confirmation sees the replacement.
  for (;;) {
    Instance* instance = current_.load();
    instance->users.fetch_add(1);
    if (current_.load() == instance) return Pin(instance);
    instance->users.fetch_sub(1);
  }
}

namespace {

// EstimateKeys estimates the keys in `table` from every table file's properties and the
// memtables: entries that are not deletions, less one for each deletion. RocksDB's own
// estimate-num-keys counts only files whose statistics it read since opening, and it reads
// none at open (skip_stats_update_on_db_open): after a restart it said 0.
uint64_t EstimateKeys(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* table) {
  uint64_t entries = 0;
  uint64_t deletions = 0;
  std::map<std::string, std::string> files;
  if (db.GetMapProperty(table, rocksdb::DB::Properties::kAggregatedTableProperties, &files)) {
    entries = std::strtoull(files["num_entries"].c_str(), nullptr, 10);
    deletions = std::strtoull(files["num_deletions"].c_str(), nullptr, 10);
  }
  uint64_t value = 0;
  for (const std::string& property : {rocksdb::DB::Properties::kNumEntriesActiveMemTable,
                                      rocksdb::DB::Properties::kNumEntriesImmMemTables}) {
    if (db.GetIntProperty(table, property, &value)) entries += value;
  }
  for (const std::string& property : {rocksdb::DB::Properties::kNumDeletesActiveMemTable,
                                      rocksdb::DB::Properties::kNumDeletesImmMemTables}) {
    if (db.GetIntProperty(table, property, &value)) deletions += value;
  }
  return entries > 2 * deletions ? entries - 2 * deletions : 0;
}

}  // namespace

StoreUsage Store::Usage() const {
  StoreUsage usage;
  uint64_t value = 0;
  const Pin pin = Use();
  rocksdb::DB& db = pin.db();
  usage.tasks = EstimateKeys(db, pin.handle(Table::kTaskIds));
  for (int t = 0; t < kTableCount; ++t) {
    rocksdb::ColumnFamilyHandle* table = pin.handle(static_cast<Table>(t));
    if (db.GetIntProperty(table, rocksdb::DB::Properties::kTotalSstFilesSize, &value)) {
      usage.table_file_bytes += value;
    }
    if (db.GetIntProperty(table, rocksdb::DB::Properties::kCurSizeAllMemTables, &value)) {
      usage.memtable_bytes += value;
    }
  }
  // The cache is shared, so any table reports all of it.
  if (db.GetIntProperty(pin.handle(Table::kMeta), rocksdb::DB::Properties::kBlockCacheUsage,
                        &value)) {
    usage.block_cache_bytes = value;
  }
  rocksdb::VectorLogPtr logs;
  if (db.GetSortedWalFiles(logs).ok()) {
    for (const std::unique_ptr<rocksdb::LogFile>& log : logs) {
      usage.log_file_bytes += log->SizeFileBytes();
    }
  }
  return usage;
}

absl::StatusOr<bool> Store::Get(Table table, std::string_view key, std::string* value) const {
  // As RocksDB's own string Get: the slice reads into `value`, unless the block cache
  // pinned the bytes; then they are copied once.
  rocksdb::PinnableSlice pinned(value);
  absl::StatusOr<bool> found = Get(table, key, &pinned);
  if (found.ok() && *found && pinned.IsPinned()) value->assign(pinned.data(), pinned.size());
  return found;
}

namespace {

// Found is what a read's status says: the key was there, was not, or the read failed.
absl::StatusOr<bool> Found(const rocksdb::Status& status, Table table) {
  if (status.IsNotFound()) return false;
  if (!status.ok()) return FromRocks(status, "read from " + std::string(TableName(table)));
  return true;
}

}  // namespace

absl::StatusOr<bool> Store::Get(Table table, std::string_view key,
                                rocksdb::PinnableSlice* value) const {
  const Pin pin = Use();
  return Found(pin.db().Get(rocksdb::ReadOptions(), pin.handle(table),
                        rocksdb::Slice(key.data(), key.size()), value),
               table);
}

std::vector<absl::StatusOr<bool>> Store::MultiGet(Table table,
                                                  const std::vector<rocksdb::Slice>& keys,
                                                  rocksdb::PinnableSlice* values) const {
  std::vector<rocksdb::Status> statuses(keys.size());
  {
    const Pin pin = Use();
    pin.db().MultiGet(rocksdb::ReadOptions(), pin.handle(table), keys.size(), keys.data(), values,
                      statuses.data());
  }
  std::vector<absl::StatusOr<bool>> found;
  found.reserve(keys.size());
  for (const rocksdb::Status& status : statuses) found.push_back(Found(status, table));
  return found;
}

absl::Status Store::Put(Table table, std::string_view key, std::string_view value) {
  rocksdb::WriteBatch batch;
  batch.Put(handle(table), rocksdb::Slice(key.data(), key.size()),
            rocksdb::Slice(value.data(), value.size()));
  return Write(batch, options_.sync_writes);
}

absl::Status Store::Write(rocksdb::WriteBatch& batch, bool sync) {
  absl::Status ready = PrepareWrite();
  rocksdb::Status written;
  if (ready.ok()) {
    rocksdb::WriteOptions write_options;
    write_options.sync = sync || options_.sync_writes;
    const Pin pin = Use();
    if (pin.read_only()) {
      // Replaced after a failed write since PrepareWrite found it writable: not an error of
      // the database, the next write opens it for writing again.
      return absl::UnavailableError(
          "the cache database is being reopened after a failed write; the next write "
          "tries again");
    }
    written = pin.db().Write(write_options, &batch);
    // A failed write may have stopped writes without a background error being reported
    // (yet): resume, or find out that there is nothing to resume, before the next one.
    if (!written.ok()) shared_->errors->Report();
    ready = FromRocks(written, "write batch");
  }
  if (!ready.ok()) {
    if (!shared_->writes_failing.exchange(true)) {
      spdlog::error("writes to {} fail: {}; each later write retries", path_,
                    std::string(ready.message()));
    }
  } else if (shared_->writes_failing.load(std::memory_order_relaxed) &&
             shared_->writes_failing.exchange(false)) {
    spdlog::info("writes to {} succeed again", path_);
  }
  return ready;
}

Store::CacheRoom Store::MeasureCacheRoom() const {
  CacheRoom room;
  struct statvfs disk {};
  if (::statvfs(path_.c_str(), &disk) != 0) return room;  // a write will tell
  constexpr uint64_t kMiB = uint64_t{1} << 20;
  room.known = true;
  room.free = uint64_t{disk.f_bavail} * disk.f_frsize;
  room.reserve = std::clamp(uint64_t{disk.f_blocks} * disk.f_frsize / 20, kMiB, 64 * kMiB);
  const Pin pin = Use();
  for (int t = 0; t < kTableCount; ++t) {
    rocksdb::ColumnFamilyHandle* table = pin.handle(static_cast<Table>(t));
    uint64_t memtables = 0;
    uint64_t files = 0;
    pin.db().GetIntProperty(table, rocksdb::DB::Properties::kCurSizeAllMemTables, &memtables);
    pin.db().GetIntProperty(table, rocksdb::DB::Properties::kLiveSstFilesSize, &files);
    room.held += memtables;
    // The tables results grow; the inputs are the user's, kept whatever the cache does.
    if (static_cast<Table>(t) != Table::kInputs) {
      files = std::min<uint64_t>(files, pin.db().GetOptions(table).max_compaction_bytes);
      room.largest = std::max(room.largest, files);
    }
  }
  room.held = std::min(room.held, LogFileBytes(path_));
  return room;
}

absl::Status Store::RoomForCache(uint64_t bytes) {
  // Besides the reserve, the room the store needs to go on: for the memtables, written
  // again into table files before the log that holds them meanwhile goes, and for a
  // compaction of its largest table of results, which writes its output before it deletes
  // its input (at most max_compaction_bytes of it; a garbage collection pass's compaction
  // of a whole table goes without when there is no room). Results are written twice before
  // the log lets go of them: the log, then a table file. Without the first two, results
  // filled a small disk (64 MiB, nearly all of it log) until nothing could be flushed or
  // compacted, and it stayed full.
  const auto fits = [bytes](const CacheRoom& room) {
    return !room.known || room.free >= room.reserve + room.held + room.largest + 2 * bytes;
  };
  CacheRoom room = MeasureCacheRoom();
  if (fits(room)) return absl::OkStatus();
  // When the memtables are what keeps results out (a busy daemon never idles long enough to
  // settle), writing them into table files lets the log go: Settle does, if there is room.
  // On the snapshot's thread, under its lock: only on a nearly full disk.
  constexpr uint64_t kMiB = uint64_t{1} << 20;
  if (room.held >= kMiB && Settle(kMiB).ok()) {
    room = MeasureCacheRoom();
    if (fits(room)) return absl::OkStatus();
  }
  return absl::ResourceExhaustedError(
      "the disk is nearly full (" + std::to_string(room.free) + " bytes free; " +
      std::to_string(room.reserve) + " kept for inputs and garbage collection, " +
      std::to_string(room.held) + " to write the memtables into table files, " +
      std::to_string(room.largest) +
      " to compact the largest table): cached results are written once there is room");
}

absl::Status Store::CompactAll() {
  // A flush or compaction that fails for lack of space stops every write until the store
  // resumes, and RocksDB (7.8) can be left waiting in that resume for a flush it never
  // runs: none is started while a failure is pending (resumed first, or refused at once
  // while the disk is still as full), nor without room for what it writes.
  if (absl::Status ready = PrepareWrite(); !ready.ok()) return ready;
  const Pin pin = Use();
  if (pin.read_only()) return absl::UnavailableError("the cache database is open read-only");
  rocksdb::DB& db = pin.db();
  // The bottommost files too: a deletion's tombstone that reached the last level would
  // otherwise stay there, with the space it stands for, until a write happens to rewrite
  // that file.
  rocksdb::CompactRangeOptions compaction;
  compaction.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForceOptimized;
  std::vector<rocksdb::LiveFileMetaData> live;
  db.GetLiveFilesMetaData(&live);
  for (int t = 0; t < kTableCount; ++t) {
    rocksdb::ColumnFamilyHandle* table = pin.handle(static_cast<Table>(t));
    // Rewritten whole, a table needs its size free (and its memtable's) until the old
    // files go.
    uint64_t needed = 0;
    db.GetIntProperty(table, rocksdb::DB::Properties::kCurSizeAllMemTables, &needed);
    for (const rocksdb::LiveFileMetaData& file : live) {
      if (file.column_family_name == kTableNames[t]) needed += file.size;
    }
    const std::optional<uint64_t> free = FreeBytes(path_);
    if (free.has_value() && *free < needed) {
      return absl::ResourceExhaustedError(
          "the disk is full: compacting " + std::string(kTableNames[t]) + " needs about " +
          std::to_string(needed) + " bytes free, " + std::to_string(*free) + " are");
    }
    rocksdb::Status status = db.Flush(rocksdb::FlushOptions(), table);
    if (status.ok()) {
      status = db.CompactRange(compaction, table, nullptr, nullptr);
    }
    if (!status.ok()) return FromRocks(status, "compact " + std::string(kTableNames[t]));
  }
  return absl::OkStatus();
}

struct TableScan::View {
  explicit View(Store::Pin pin) : pin(std::move(pin)), db(&this->pin.db()) {}
  Store::Pin pin;  // a scan holds its instance open, even once another replaced it
  rocksdb::DB* db;
  const rocksdb::Snapshot* snapshot = nullptr;
  std::unique_ptr<rocksdb::Iterator> it;
  bool started = false;
};

TableScan::TableScan(std::unique_ptr<View> view) : view_(std::move(view)) {}

TableScan::~TableScan() {
  view_->it.reset();
  view_->db->ReleaseSnapshot(view_->snapshot);
}

absl::StatusOr<bool> TableScan::Next(
    size_t limit, const std::function<void(std::string_view key, std::string_view value)>& visit) {
  rocksdb::Iterator& it = *view_->it;
  if (!view_->started) {
    it.SeekToFirst();
    view_->started = true;
  }
  for (size_t n = 0; n < limit && it.Valid(); ++n, it.Next()) {
    visit(std::string_view(it.key().data(), it.key().size()),
          std::string_view(it.value().data(), it.value().size()));
  }
  if (!it.status().ok()) return FromRocks(it.status(), "scan");
  return it.Valid();
}

absl::StatusOr<bool> TableScan::Get(Table table, std::string_view key, std::string* value) const {
  rocksdb::ReadOptions options;
  options.snapshot = view_->snapshot;
  const rocksdb::Status status = view_->db->Get(options, view_->pin.handle(table),
                                                rocksdb::Slice(key.data(), key.size()), value);
  if (status.IsNotFound()) return false;
  if (!status.ok()) return FromRocks(status, "read from " + std::string(TableName(table)));
  return true;
}

absl::Status Store::Settle(uint64_t min_bytes) {
  // A flush that fails for lack of space stops every write until the store resumes: it is
  // only worth trying with room for its files, and never while a failure is pending.
  // Asked before the pin: recovery takes recover_mu_ and then waits for pins to go.
  if (shared_->errors->Pending()) return absl::OkStatus();
  // Nor while writes fail (a log append that failed is recovered by the next write, which
  // reopens the database): the recovery is the writes' to do.
  if (shared_->writes_failing.load()) return absl::OkStatus();
  {
    std::lock_guard lock(recover_mu_);
    if (shared_->free_when_full.has_value()) return absl::OkStatus();
  }
  const Pin pin = Use();
  if (pin.read_only()) return absl::OkStatus();
  std::array<rocksdb::ColumnFamilyHandle*, kTableCount> handles;
  uint64_t held = 0;
  for (int t = 0; t < kTableCount; ++t) {
    handles[t] = pin.handle(static_cast<Table>(t));
    uint64_t bytes = 0;
    pin.db().GetIntProperty(handles[t], rocksdb::DB::Properties::kCurSizeAllMemTables, &bytes);
    held += bytes;
  }
  if (held < min_bytes) return absl::OkStatus();
  const std::optional<uint64_t> free = FreeBytes(path_);
  // A flush writes at most what the memtables hold (their log, not their arenas); the
  // margin is for the manifest and the next log.
  const uint64_t written = std::min(held, LogFileBytes(path_));
  if (free.has_value() && *free < written + (uint64_t{1} << 20)) return absl::OkStatus();
  rocksdb::Status status = FlushMemtables(pin.db(), handles);
  return status.ok() ? absl::OkStatus() : FromRocks(status, "flush the memtables");
}

void Store::MergeSmallFiles() {
  const uint64_t flushes = shared_->flush_counter->flushes();
  uint64_t merged = shared_->flushes_when_merged.load(std::memory_order_relaxed);
  // Once per kSmallFileRun flushes at most, by one caller at a time.
  if (flushes - merged < kSmallFileRun ||
      !shared_->flushes_when_merged.compare_exchange_strong(merged, flushes)) {
    return;
  }
  // As Settle: the recovery of failed writes is theirs to do.
  if (shared_->errors->Pending() || shared_->writes_failing.load()) return;
  const Pin pin = Use();
  if (pin.read_only()) return;
  std::array<rocksdb::ColumnFamilyHandle*, kTableCount> handles;
  for (int t = 0; t < kTableCount; ++t) handles[t] = pin.handle(static_cast<Table>(t));
  if (!MergeSmallFileRuns(pin.db(), path_, handles)) {
    // Runs left for the next call (more than it merges at once, or a file a compaction
    // held): looked for again then, without waiting for more flushes.
    shared_->flushes_when_merged.store(merged, std::memory_order_relaxed);
  }
}

absl::Status Store::KeepLogSmall() {
  constexpr uint64_t kMiB = uint64_t{1} << 20;
  const CacheRoom room = MeasureCacheRoom();
  if (!room.known || room.held < kMiB || room.held < room.free / 8) return absl::OkStatus();
  return Settle(kMiB);
}

void Store::StopCompacting() {
  stop_compacting_.store(true);
  Use().db().DisableManualCompaction();
}

std::unique_ptr<TableScan> Store::Scan(Table table) const {
  auto view = std::make_unique<TableScan::View>(Use());
  view->snapshot = view->db->GetSnapshot();
  rocksdb::ReadOptions options;
  options.snapshot = view->snapshot;
  options.fill_cache = false;  // a scan must not push out what lookups need
  view->it.reset(view->db->NewIterator(options, view->pin.handle(table)));
  return std::unique_ptr<TableScan>(new TableScan(std::move(view)));
}

uint64_t Store::DiskBytes() const {
  // Table files count only while they are live, at their length rounded up to whole
  // blocks (as du counts a file written in one go). A compaction running now has its
  // inputs and its half-written output on disk at once: counting both doubled the store
  // for a moment, and a disk-limit pass that measured then collected nearly everything.
  constexpr uint64_t kBlock = 4096;
  std::vector<rocksdb::LiveFileMetaData> live;
  Use().db().GetLiveFilesMetaData(&live);
  uint64_t bytes = 0;
  for (const rocksdb::LiveFileMetaData& file : live) {
    bytes += (file.size + kBlock - 1) / kBlock * kBlock;
  }
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(path_, error)) {
    if (entry.path().extension() == ".sst") continue;
    struct stat st {};
    if (::stat(entry.path().c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      bytes += static_cast<uint64_t>(st.st_blocks) * 512;  // allocated, as du counts
    }
  }
  return bytes;
}

std::vector<std::string> Store::TableFiles(Table table) const {
  std::vector<rocksdb::LiveFileMetaData> files;
  Use().db().GetLiveFilesMetaData(&files);
  std::vector<std::string> paths;
  for (const rocksdb::LiveFileMetaData& file : files) {
    if (file.column_family_name == TableName(table)) {
      paths.push_back(file.directory + "/" + file.relative_filename);
    }
  }
  return paths;
}

absl::Status Store::ForEach(
    Table table,
    const std::function<void(std::string_view key, std::string_view value)>& visit) const {
  const Pin pin = Use();
  std::unique_ptr<rocksdb::Iterator> it(pin.db().NewIterator(rocksdb::ReadOptions(), pin.handle(table)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    visit(std::string_view(it->key().data(), it->key().size()),
          std::string_view(it->value().data(), it->value().size()));
  }
  return FromRocks(it->status(), "scan " + std::string(TableName(table)));
}

}  // namespace turbine::storage
