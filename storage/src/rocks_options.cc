// rocks_options.cc — how the store configures RocksDB: the database's options, each
// table's, and opening the database with every table.
#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/table_properties_collectors.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "store_internal.h"

namespace turbine::storage {

rocksdb::Options DatabaseOptions(const std::shared_ptr<rocksdb::Logger>& logger,
                                 const std::shared_ptr<BackgroundErrors>& errors,
                                 size_t write_buffer_bytes, rocksdb::Env* env) {
  rocksdb::Options options;
  if (env != nullptr) options.env = env;
  // Memtables of all tables together stay under this (RocksDB flushes the largest when
  // they reach it); 0 leaves each table its own 64 MB, two of them.
  options.db_write_buffer_size = write_buffer_bytes;
  // A log file goes once every table with data in it has flushed it, and a table written
  // little (meta, whose counters every input change rewrites) rarely flushes: its memtable
  // is never the largest. RocksDB's own bound on the logs is four times every table's
  // memtables (3.5 GB here), and a daemon whose inputs kept changing held that much log
  // for well under a megabyte of data. Past the memtables' own budget (the most they can
  // hold that the log must keep), the tables holding the oldest log are flushed.
  options.max_total_wal_size = write_buffer_bytes > 0
                                   ? std::max<uint64_t>(write_buffer_bytes, uint64_t{32} << 20)
                                   : uint64_t{512} << 20;
  options.info_log = logger;  // not a LOG file on the data disk (rocks_faults.h)
  options.listeners.push_back(errors);
  options.max_bgerror_resume_count = 0;  // the store resumes itself (BackgroundErrors)
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  // Opening starts max_file_opening_threads - 1 threads per table to open its files, even
  // when it has one or two (as ours do once compacted); on a small machine creating them
  // costs more than the opening. Table statistics are read lazily instead of at open.
  options.max_file_opening_threads = 1;
  options.skip_stats_update_on_db_open = true;
  // RocksDB preallocates its log (a memtable's worth, 70 MB) and its manifest (4 MB) on
  // disk: `du` showed 77 MB for an empty database, and a disk limit could never be met.
  // The space is taken as it is written instead.
  options.allow_fallocate = false;
  // The manifest gains a record at every flush, compaction and deletion of files, and
  // RocksDB starts a new one (the tables' files as they are now) only past this size, 1 GB
  // by default, or at an open: under a --disk-limit, a daemon's store grew by its manifest
  // (4.5 MB of a 4.7 MB store after 6 minutes of load), which garbage collection paid for
  // by removing live results. Not much less: a new one is written whole, and keys run to
  // about 1 KiB (format.h), so a store of a few thousand files needs a few MB for it.
  options.max_manifest_file_size = uint64_t{4} << 20;
  // RemoveEmptyLogs deletes log files RocksDB left empty; that is safe only while the
  // manifest does not list the logs (false is RocksDB's default; said here because of it).
  options.track_and_verify_wals_in_manifest = false;
  return options;
}

namespace {

// TableOptions tunes each table for how it is read.
//   tasks     point lookups that mostly miss (every new task asks first) or hit a task
//             written long ago (after a restart): a whole-key bloom filter, in the table
//             files and in the memtable, so a miss costs no block read and no skiplist
//             search; a hash index inside each data block, so a hit does not binary-search
//             the block.
//   task_ids  point lookups that hit (dependencies of restored tasks); no filter needed.
// Both are LZ4-compressed in the levels between: on a cold lookup (bench/run-storage,
// restored-hit) that cost no measurable time against no compression, for 3.5 times less
// disk, and beat Snappy. The last level, where a settled store keeps nearly everything, is
// ZSTD-compressed instead: 80 -> 53 bytes per small task on disk for about 3% on
// restored-hit (its decompression on a block cache miss). So is level 0, what a flush
// writes, at ZSTD's fastest level: the store a stopped daemon leaves is flushed files only
// (the close flushes), and under LZ4 it stayed 1.6 times its compacted size until
// compactions reached it (300,000 small tasks: 83 -> 59 bytes per task at rest, for about
// 90 ms more to stop; bench/run lifecycle). Index blocks stay uncompressed: an engine's
// first read after a restart decompresses every index block it touches, and under ZSTD that
// cost 1-2 ms at a million tasks, for half a byte per task.
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
  blocks.enable_index_compression = false;
  // The index names a table file's last key in full by default, and keeps it pinned: a task
  // whose arguments are 5 MB (they are part of its key) kept 5 MB per table file in memory
  // past the block cache's capacity. Its shortest successor does as well for a lookup.
  blocks.index_shortening =
      rocksdb::BlockBasedTableOptions::IndexShorteningMode::kShortenSeparatorsAndSuccessor;
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
    options.compression_per_level.assign(options.num_levels, rocksdb::kLZ4Compression);
    options.compression_per_level[0] = rocksdb::kZSTD;
    options.compression_opts.level = 1;  // level 0's ZSTD: a flush at a stop waits for it
    options.bottommost_compression = rocksdb::kZSTD;
    options.bottommost_compression_opts.enabled = true;  // its own level: ZSTD's default
  }
  if (table == Table::kTasks || table == Table::kTaskIds || table == Table::kTaskUse ||
      table == Table::kObservations) {
    // Garbage collection deletes from these: a table file in which a quarter of a window of
    // entries are deletions is compacted soon, without waiting for writes to push it down,
    // so the space comes back even when a pass does not reclaim it itself.
    options.table_properties_collector_factories.push_back(
        rocksdb::NewCompactOnDeletionCollectorFactory(/*sliding_window_size=*/256,
                                                      /*deletion_trigger=*/64));
  }
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(blocks));
  return options;
}

}  // namespace

rocksdb::Status OpenInstance(const std::string& path, const std::shared_ptr<rocksdb::Cache>& cache,
                             const rocksdb::Options& options, bool read_only,
                             std::array<rocksdb::ColumnFamilyHandle*, kTableCount>* handles,
                             std::unique_ptr<rocksdb::DB>* db) {
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  families.emplace_back(rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions());
  for (int t = 0; t < kTableCount; ++t) {
    families.emplace_back(std::string(TableName(static_cast<Table>(t))),
                          TableOptions(static_cast<Table>(t), cache));
  }
  std::vector<rocksdb::ColumnFamilyHandle*> opened;
  rocksdb::DB* raw = nullptr;
  const rocksdb::Status status =
      read_only ? rocksdb::DB::OpenForReadOnly(options, path, families, &opened, &raw)
                : rocksdb::DB::Open(options, path, families, &opened, &raw);
  db->reset(raw);
  if (status.ok()) {
    // opened[0] is the default family, which the schema does not use.
    (*db)->DestroyColumnFamilyHandle(opened[0]);
    for (int i = 0; i < kTableCount; ++i) (*handles)[i] = opened[i + 1];
  }
  return status;
}

}  // namespace turbine::storage
