// store.cc — opening the backing store, and what to do when it cannot be used as is.
#include "turbine/storage/store.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
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

constexpr std::array<std::string_view, kTableCount> kTableNames = {
    "meta", "task_cache", "task_type", "task_meta", "task_cells", "deps", "dependents", "inputs"};

// An unusable database (corrupt, another format) is moved aside; anything else is an error.
enum class Verdict { kOk, kMoveAside, kError };

struct Attempt {
  Verdict verdict = Verdict::kOk;
  absl::Status error;  // kError
  std::string reason;  // kMoveAside
};

rocksdb::Options DatabaseOptions() {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.keep_log_file_num = 3;
  options.max_log_file_size = 1 << 20;
  return options;
}

// ConvertOpenError maps what RocksDB said about an open into a verdict.
Attempt ConvertOpenError(const rocksdb::Status& status, const std::string& path) {
  if (status.IsCorruption()) return {Verdict::kMoveAside, {}, status.ToString()};
  if (status.IsIOError() && status.ToString().find("lock") != std::string::npos) {
    return {Verdict::kError,
            absl::FailedPreconditionError("the cache database " + path +
                                          " is in use by another process (" +
                                          status.ToString() + ")"),
            {}};
  }
  if (status.IsIOError()) {
    return {Verdict::kError,
            absl::UnavailableError("cannot open the cache database " + path + ": " +
                                   status.ToString()),
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

  for (int attempt_number = 0; attempt_number < 2; ++attempt_number) {
    const bool existed = fs::exists(fs::path(path) / "CURRENT");
    Attempt attempt;
    std::unique_ptr<Store> store(new Store);
    store->path_ = path;
    store->options_ = options;

    // A database with tables this version does not know was written by another format.
    std::vector<std::string> existing;
    if (existed && rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &existing).ok()) {
      const std::set<std::string_view> known(kTableNames.begin(), kTableNames.end());
      for (const std::string& name : existing) {
        if (name != rocksdb::kDefaultColumnFamilyName && !known.contains(name)) {
          attempt = {Verdict::kMoveAside, {}, "unknown table '" + name + "'"};
        }
      }
    }

    if (attempt.verdict == Verdict::kOk) {
      std::vector<rocksdb::ColumnFamilyDescriptor> families;
      families.emplace_back(rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions());
      for (std::string_view name : kTableNames) {
        families.emplace_back(std::string(name), rocksdb::ColumnFamilyOptions());
      }
      std::vector<rocksdb::ColumnFamilyHandle*> handles;
      rocksdb::DB* raw = nullptr;
      const rocksdb::Status status =
          rocksdb::DB::Open(DatabaseOptions(), path, families, &handles, &raw);
      store->db_.reset(raw);
      if (!status.ok()) {
        attempt = ConvertOpenError(status, path);
      } else {
        // handles[0] is the default family, which the schema does not use.
        store->db_->DestroyColumnFamilyHandle(handles[0]);
        for (int i = 0; i < kTableCount; ++i) store->handles_[i] = handles[i + 1];
      }
    }

    if (attempt.verdict == Verdict::kOk) {
      std::string version;
      absl::StatusOr<bool> found = store->Get(Table::kMeta, kFormatVersionKey, &version);
      if (!found.ok()) {
        attempt = {Verdict::kMoveAside, {}, std::string(found.status().message())};
      } else if (!*found) {
        if (existed && attempt_number == 0) {
          attempt = {Verdict::kMoveAside, {}, "no format version"};
        } else {
          absl::Status written = store->Put(Table::kMeta, kFormatVersionKey,
                                            std::to_string(kFormatVersion));
          if (!written.ok()) return written;
          report->created = true;
          return store;
        }
      } else if (version != std::to_string(kFormatVersion)) {
        attempt = {Verdict::kMoveAside, {},
                   "format version " + version + ", this build reads " +
                       std::to_string(kFormatVersion)};
      } else {
        return store;
      }
    }

    if (attempt.verdict == Verdict::kError) return attempt.error;
    store.reset();  // close before moving the files
    const std::string target = BrokenName(path);
    fs::rename(path, target, error);
    if (error) {
      return absl::UnavailableError("the cache database " + path + " is unusable (" +
                                    attempt.reason + ") and cannot be moved aside: " +
                                    error.message());
    }
    report->moved_aside = target;
    report->reason = attempt.reason;
  }
  return absl::InternalError("the cache database " + path + " is unusable even when new");
}

Store::~Store() {
  if (db_ == nullptr) return;
  for (rocksdb::ColumnFamilyHandle* handle : handles_) {
    if (handle != nullptr) db_->DestroyColumnFamilyHandle(handle);
  }
  db_->Close().PermitUncheckedError();
}

absl::StatusOr<bool> Store::Get(Table table, std::string_view key, std::string* value) const {
  const rocksdb::Status status =
      db_->Get(rocksdb::ReadOptions(), handle(table), rocksdb::Slice(key.data(), key.size()),
               value);
  if (status.IsNotFound()) return false;
  if (!status.ok()) return FromRocks(status, "read from " + std::string(TableName(table)));
  return true;
}

absl::StatusOr<bool> Store::Get(Table table, std::string_view key,
                               rocksdb::PinnableSlice* value) const {
  const rocksdb::Status status =
      db_->Get(rocksdb::ReadOptions(), handle(table), rocksdb::Slice(key.data(), key.size()),
               value);
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

absl::Status Store::Write(rocksdb::WriteBatch& batch, bool sync) {
  rocksdb::WriteOptions write_options;
  write_options.sync = sync || options_.sync_writes;
  return FromRocks(db_->Write(write_options, &batch), "write batch");
}

}  // namespace turbine::storage
