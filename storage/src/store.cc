// store.cc — opening the backing store, and what to do when it cannot be used as is.
#include "turbine/storage/store.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/transaction_log.h>
#include <rocksdb/write_batch.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <set>
#include <vector>

#include "turbine/storage/format.h"

namespace turbine::storage {
namespace {

namespace fs = std::filesystem;

constexpr std::array<std::string_view, kTableCount> kTableNames = {"meta", "tasks", "task_ids",
                                                                   "inputs"};

using Verdict = Store::Verdict;
using Attempt = Store::Attempt;

rocksdb::Options DatabaseOptions() {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.keep_log_file_num = 3;
  options.max_log_file_size = 1 << 20;
  // Opening starts max_file_opening_threads - 1 threads per table to open its files, even
  // when it has one or two (as ours do once compacted); on a small machine creating them
  // costs more than the opening. Table statistics are read lazily instead of at open.
  options.max_file_opening_threads = 1;
  options.skip_stats_update_on_db_open = true;
  return options;
}

// TableOptions tunes each table for how it is read.
//   tasks     point lookups that mostly miss (every new task asks first) or hit a task
//             written long ago (after a restart): a whole-key bloom filter, in the table
//             files and in the memtable, so a miss costs no block read and no skiplist
//             search; a hash index inside each data block, so a hit does not binary-search
//             the block.
//   task_ids  point lookups that hit (dependencies of restored tasks); no filter needed.
// Both are LZ4-compressed: on a cold lookup (bench/run-storage, restored-hit) that cost no
// measurable time against no compression, for 3.5 times less disk, and beat Snappy.
// optimize_filters_for_hits would drop the filters of the last level, where nearly all
// tasks are: wrong here, because misses are the common case.
//
// Every table reads through the one shared block cache. Index and filter blocks are
// charged to it and pinned (a lookup then reaches them without a cache lookup, and data
// blocks never evict them), so the store's read memory is about block_cache_bytes plus
// the pinned metadata, a few percent of the data.
rocksdb::ColumnFamilyOptions TableOptions(Table table,
                                          const std::shared_ptr<rocksdb::Cache>& cache) {
  rocksdb::ColumnFamilyOptions options;
  rocksdb::BlockBasedTableOptions blocks;
  blocks.block_cache = cache;
  blocks.cache_index_and_filter_blocks = true;
  blocks.metadata_cache_options.top_level_index_pinning = rocksdb::PinningTier::kAll;
  blocks.metadata_cache_options.partition_pinning = rocksdb::PinningTier::kAll;
  blocks.metadata_cache_options.unpartitioned_pinning = rocksdb::PinningTier::kAll;
  if (table == Table::kTasks) {
    blocks.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    blocks.whole_key_filtering = true;
    blocks.data_block_index_type = rocksdb::BlockBasedTableOptions::kDataBlockBinaryAndHash;
    options.memtable_prefix_bloom_size_ratio = 0.02;
    options.memtable_whole_key_filtering = true;
  }
  if (table == Table::kTasks || table == Table::kTaskIds) {
    options.compression = rocksdb::kLZ4Compression;
  }
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(blocks));
  return options;
}

// ConvertOpenError maps what RocksDB said about an open into a verdict.
Attempt ConvertOpenError(const rocksdb::Status& status, const std::string& path) {
  if (status.IsCorruption()) return {Verdict::kMoveAside, {}, status.ToString()};
  if (status.IsIOError() && status.ToString().find("lock") != std::string::npos) {
    return {
        Verdict::kError,
        absl::FailedPreconditionError("the cache database " + path +
                                      " is in use by another process (" + status.ToString() + ")"),
        {}};
  }
  if (status.IsIOError()) {
    return {
        Verdict::kError,
        absl::UnavailableError("cannot open the cache database " + path + ": " + status.ToString()),
        {}};
  }
  // InvalidArgument, NotSupported, ...: written by something we do not understand.
  return {Verdict::kMoveAside, {}, status.ToString()};
}

std::string BrokenName(const std::string& path) {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", std::gmtime(&now));
  std::string target = path + ".broken-" + stamp;
  for (int n = 1; fs::exists(target); ++n) {
    target = path + ".broken-" + stamp + "-" + std::to_string(n);
  }
  return target;
}

absl::Status FromRocks(const rocksdb::Status& status, std::string_view what) {
  if (status.ok()) return absl::OkStatus();
  const std::string message = std::string(what) + ": " + status.ToString();
  if (status.IsNoSpace()) return absl::ResourceExhaustedError(message);
  if (status.IsIOError()) return absl::UnavailableError(message);
  if (status.IsCorruption()) return absl::DataLossError(message);
  return absl::InternalError(message);
}

}  // namespace

std::string_view TableName(Table table) { return kTableNames[static_cast<int>(table)]; }

namespace {

// UnknownTable names a table in the database at `path` that this version does not know
// (then another format wrote it); empty if there is none or the database is new.
std::string UnknownTable(const std::string& path) {
  std::vector<std::string> existing;
  if (!rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &existing).ok()) return "";
  const std::set<std::string_view> known(kTableNames.begin(), kTableNames.end());
  for (const std::string& name : existing) {
    if (name != rocksdb::kDefaultColumnFamilyName && !known.contains(name)) return name;
  }
  return "";
}

// MoveAside renames an unusable database out of the way, recording where and why.
absl::Status MoveAside(const std::string& path, const std::string& reason, OpenReport* report) {
  std::error_code error;
  const std::string target = BrokenName(path);
  fs::rename(path, target, error);
  if (error) {
    return absl::UnavailableError("the cache database " + path + " is unusable (" + reason +
                                  ") and cannot be moved aside: " + error.message());
  }
  report->moved_aside = target;
  report->reason = reason;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const StoreOptions& options,
                                                   OpenReport* report) {
  OpenReport ignored;
  if (report == nullptr) report = &ignored;
  *report = OpenReport{};

  std::error_code error;
  fs::create_directories(options.data_dir, error);
  if (error) {
    return absl::PermissionDeniedError("cannot create the data directory " + options.data_dir +
                                       ": " + error.message());
  }
  const std::string path = (fs::path(options.data_dir) / "db").string();

  // At most twice: a database found unusable is moved aside and a new one created.
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool existed = fs::exists(fs::path(path) / "CURRENT");
    std::string unusable = existed ? UnknownTable(path) : "";
    if (!unusable.empty()) unusable = "unknown table '" + unusable + "'";
    if (unusable.empty()) {
      std::unique_ptr<Store> store(new Store);
      store->path_ = path;
      store->options_ = options;
      const Attempt opened = store->OpenDatabase();
      if (opened.verdict == Verdict::kError) return opened.error;
      unusable = opened.reason;
      if (opened.verdict == Verdict::kOk) {
        const Attempt checked = store->CheckFormat(existed && attempt == 0, report);
        if (checked.verdict == Verdict::kOk) return store;
        if (checked.verdict == Verdict::kError) return checked.error;
        unusable = checked.reason;
      }
    }  // the store closes here, before its files move
    absl::Status moved = MoveAside(path, unusable, report);
    if (!moved.ok()) return moved;
  }
  return absl::InternalError("the cache database " + path + " is unusable even when new");
}

Store::Attempt Store::OpenDatabase() {
  const std::shared_ptr<rocksdb::Cache> cache = rocksdb::NewLRUCache(options_.block_cache_bytes);
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  families.emplace_back(rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions());
  for (int t = 0; t < kTableCount; ++t) {
    families.emplace_back(std::string(kTableNames[t]), TableOptions(static_cast<Table>(t), cache));
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  const rocksdb::Status status =
      rocksdb::DB::Open(DatabaseOptions(), path_, families, &handles, &raw);
  db_.reset(raw);
  if (!status.ok()) return ConvertOpenError(status, path_);
  // handles[0] is the default family, which the schema does not use.
  db_->DestroyColumnFamilyHandle(handles[0]);
  for (int i = 0; i < kTableCount; ++i) handles_[i] = handles[i + 1];
  return {};
}

Store::Attempt Store::CheckFormat(bool must_have_version, OpenReport* report) {
  std::string version;
  absl::StatusOr<bool> found = Get(Table::kMeta, kFormatVersionKey, &version);
  if (!found.ok()) return {Verdict::kMoveAside, {}, std::string(found.status().message())};
  if (*found) {
    if (version == std::to_string(kFormatVersion)) return {};
    return {Verdict::kMoveAside,
            {},
            "format version " + version + ", this build reads " + std::to_string(kFormatVersion)};
  }
  if (must_have_version) return {Verdict::kMoveAside, {}, "no format version"};
  absl::Status written = Put(Table::kMeta, kFormatVersionKey, std::to_string(kFormatVersion));
  if (!written.ok()) return {Verdict::kError, written, {}};
  report->created = true;
  return {};
}

Store::~Store() {
  if (db_ == nullptr) return;
  for (rocksdb::ColumnFamilyHandle* handle : handles_) {
    if (handle != nullptr) db_->DestroyColumnFamilyHandle(handle);
  }
  db_->Close().PermitUncheckedError();
}

StoreUsage Store::Usage() const {
  StoreUsage usage;
  uint64_t value = 0;
  if (db_->GetIntProperty(handle(Table::kTaskIds), rocksdb::DB::Properties::kEstimateNumKeys,
                          &value)) {
    usage.tasks = value;
  }
  for (rocksdb::ColumnFamilyHandle* table : handles_) {
    if (db_->GetIntProperty(table, rocksdb::DB::Properties::kTotalSstFilesSize, &value)) {
      usage.table_file_bytes += value;
    }
    if (db_->GetIntProperty(table, rocksdb::DB::Properties::kCurSizeAllMemTables, &value)) {
      usage.memtable_bytes += value;
    }
  }
  // The cache is shared, so any table reports all of it.
  if (db_->GetIntProperty(handles_[0], rocksdb::DB::Properties::kBlockCacheUsage, &value)) {
    usage.block_cache_bytes = value;
  }
  rocksdb::VectorLogPtr logs;
  if (db_->GetSortedWalFiles(logs).ok()) {
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

absl::StatusOr<bool> Store::Get(Table table, std::string_view key,
                                rocksdb::PinnableSlice* value) const {
  const rocksdb::Status status = db_->Get(rocksdb::ReadOptions(), handle(table),
                                          rocksdb::Slice(key.data(), key.size()), value);
  if (status.IsNotFound()) return false;
  if (!status.ok()) return FromRocks(status, "read from " + std::string(TableName(table)));
  return true;
}

absl::Status Store::Put(Table table, std::string_view key, std::string_view value) {
  rocksdb::WriteOptions write_options;
  write_options.sync = options_.sync_writes;
  return FromRocks(db_->Put(write_options, handle(table), rocksdb::Slice(key.data(), key.size()),
                            rocksdb::Slice(value.data(), value.size())),
                   "write to " + std::string(TableName(table)));
}

absl::Status Store::CompactAll() {
  for (int t = 0; t < kTableCount; ++t) {
    rocksdb::ColumnFamilyHandle* table = handles_[t];
    rocksdb::Status status = db_->Flush(rocksdb::FlushOptions(), table);
    if (status.ok()) {
      status = db_->CompactRange(rocksdb::CompactRangeOptions(), table, nullptr, nullptr);
    }
    if (!status.ok()) return FromRocks(status, "compact " + std::string(kTableNames[t]));
  }
  return absl::OkStatus();
}

absl::Status Store::Write(rocksdb::WriteBatch& batch, bool sync) {
  rocksdb::WriteOptions write_options;
  write_options.sync = sync || options_.sync_writes;
  return FromRocks(db_->Write(write_options, &batch), "write batch");
}

}  // namespace turbine::storage
