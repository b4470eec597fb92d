// store_internal.h — what store.cc, store_recovery.cc and rocks_options.cc share: one open of the database
// (Instance), the pin that keeps one open while it is used, and the helpers both use.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rocks_faults.h"
#include "turbine/storage/store.h"

namespace turbine::storage {

// Instance is one open of the database. Every use of it holds a Pin; one that is no longer
// current closes its database once no pin holds it (Store::CloseRetired), so a read that
// started on it finishes there. The Instance itself, and its count of pins, stays until
// the Store ends: a Use() may still count itself on one it found current just before it
// was replaced (and then back off).
struct Store::Instance {
  std::unique_ptr<rocksdb::DB> db;
  std::array<rocksdb::ColumnFamilyHandle*, kTableCount> handles{};
  bool read_only = false;
  std::atomic<int> users{0};
  std::atomic<bool> closed{false};  // set once Close has returned

  // Close flushes a writable instance's memtables (a failed flush leaves the writes to the
  // log) and closes its database. Once: it may run on the resumer's thread (CloseRetired).
  void Close();
  ~Instance() { Close(); }
};

// FlushCounter counts the memtable flushes RocksDB completed, its own and ours: each may
// leave a small table file to merge (MergeSmallFiles).
class FlushCounter : public rocksdb::EventListener {
 public:
  void OnFlushCompleted(rocksdb::DB*, const rocksdb::FlushJobInfo&) override {
    flushes_.fetch_add(1, std::memory_order_relaxed);
  }
  uint64_t flushes() const { return flushes_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> flushes_{0};
};

struct Store::Shared {
  std::shared_ptr<rocksdb::Cache> cache;
  std::shared_ptr<FlushCounter> flush_counter = std::make_shared<FlushCounter>();
  // FlushCounter::flushes() when small files were last looked for (Store::MergeSmallFiles).
  std::atomic<uint64_t> flushes_when_merged{0};
  std::shared_ptr<rocksdb::Logger> logger = NewProcessLogger();
  std::shared_ptr<BackgroundErrors> errors = std::make_shared<BackgroundErrors>();
  std::unique_ptr<rocksdb::Env> env;  // over StoreOptions::file_system, if given
  // Opened with its damaged table files left for reads to find (paranoid checks off):
  // every later open of it (InstanceOptions) must do the same, or it fails as at first.
  bool keep_damaged = false;
  std::atomic<bool> writes_failing{false};  // logged once per failing period
  // Set by a resume that failed with an error RocksDB does not resume from: the next
  // write reopens the database instead (Store::ReplaceFailedInstance).
  std::atomic<bool> resume_refused{false};
  // Free bytes on the disk after the last attempt to resume failed for lack of space, if
  // it did. Guarded by the Store's recover_mu_.
  std::optional<uint64_t> free_when_full;
  // When an attempt to open the database for writing again last failed (not for lack of
  // space), and how: the writes of the next second get that answer at once. Guarded by
  // recover_mu_.
  std::optional<std::pair<std::chrono::steady_clock::time_point, absl::Status>> reopen_failed;
  // Failed log appends (BackgroundErrors::LogAppendFailures) already answered by a
  // replacement, or from before the current instance opened. Guarded by recover_mu_.
  uint64_t log_failures_handled = 0;
  // A writable instance a reopen opened on the resumer's thread, until a writer installs
  // it (Store::ReopenForWriting), and the counts of errors and of failed log appends
  // reported before it opened.
  std::mutex opened_mu;
  std::unique_ptr<Instance> opened;
  uint64_t opened_reported = 0;
  uint64_t opened_log_failures = 0;
};

// Pin holds the instance that was current when it was taken (Store::Use) open until it
// ends.
class Store::Pin {
 public:
  explicit Pin(Instance* instance) : instance_(instance) {}
  Pin(Pin&& other) noexcept : instance_(std::exchange(other.instance_, nullptr)) {}
  Pin& operator=(Pin&&) = delete;
  ~Pin() {
    if (instance_ != nullptr) instance_->users.fetch_sub(1);
  }

  rocksdb::DB& db() const { return *instance_->db; }
  // The instance's own handle: for its reads (a batch takes Store::handle, which names
  // the table in any instance).
  rocksdb::ColumnFamilyHandle* handle(Table table) const {
    return instance_->handles[static_cast<int>(table)];
  }
  bool read_only() const { return instance_->read_only; }

 private:
  Instance* instance_;
};

bool IsNoSpace(const rocksdb::Status& status);
// FromRocks maps a RocksDB status to an absl one: kResourceExhausted for a full disk,
// kUnavailable for other I/O errors, kDataLoss for corruption.
absl::Status FromRocks(const rocksdb::Status& status, std::string_view what);
// FreeBytes is the space left on the disk holding `path`, if the system says.
std::optional<uint64_t> FreeBytes(const std::string& path);
rocksdb::Options DatabaseOptions(const std::shared_ptr<rocksdb::Logger>& logger,
                                 const std::shared_ptr<BackgroundErrors>& errors,
                                 size_t write_buffer_bytes, rocksdb::Env* env);
// RemoveEmptyLogs deletes the empty log files older than the one `db`, just opened for
// writing, writes to (store.cc says why).
void RemoveEmptyLogs(rocksdb::DB& db, const std::string& path);
// OpenInstance opens the database at `path` with every table: `handles` in Table order.
rocksdb::Status OpenInstance(const std::string& path, const std::shared_ptr<rocksdb::Cache>& cache,
                             const rocksdb::Options& options, bool read_only,
                             std::array<rocksdb::ColumnFamilyHandle*, kTableCount>* handles,
                             std::unique_ptr<rocksdb::DB>* db);

// VerifyTable reads a whole table with checksums verified (store_open.cc); what RocksDB
// found wrong, or empty. `visit` sees each record.
std::string VerifyTable(
    rocksdb::DB& db, rocksdb::ColumnFamilyHandle* table,
    const std::function<void(std::string_view, std::string_view)>& visit = nullptr);

// Salvage of a damaged database's inputs (store_salvage.cc): what Store::Open carries over
// into the new database when the damage is elsewhere.
// SalvagedInputs are the inputs of a damaged database: each name with its record, and the
// stamp counter past their stamps.
struct SalvagedInputs {
  std::vector<std::pair<std::string, std::string>> inputs;
  uint64_t next_stamp = 1;
};
// SalvageInputs reads every input of the damaged database at `path`: kDataLoss if any
// cannot be read, kUnavailable if the database cannot be opened to read them.
absl::StatusOr<SalvagedInputs> SalvageInputs(const std::string& path, rocksdb::Env* env);
// WriteCarried makes a new database at `path` holding the salvaged inputs.
absl::Status WriteCarried(const std::string& path, const SalvagedInputs& salvaged,
                          rocksdb::Env* env);
// CarriedPath is where a new database holding a damaged one's inputs waits to be swapped
// in; CarryingPath where it is written before it is whole. FinishCarrying completes what a
// start cut short.
std::string CarriedPath(const std::string& path);
std::string CarryingPath(const std::string& path);
void FinishCarrying(const std::string& path);

}  // namespace turbine::storage
