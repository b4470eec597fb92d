// store_open.cc — opening the backing store: checking its format (and upgrading an older
// one), checking its inputs, and moving aside a database that cannot be used as is.
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "records.h"
#include "resumer.h"
#include "store_internal.h"
#include "turbine/storage/format.h"
#include "turbine/storage/store.h"

namespace turbine::storage {
namespace {

namespace fs = std::filesystem;

using Verdict = Store::Verdict;
using Attempt = Store::Attempt;

// BrokenName is where an unusable database at `path` is moved: a name no other has.
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

// VerifyTable reads a whole table with checksums verified; what RocksDB found wrong, or
// empty. `visit` sees each record. Inputs are the user's data: a damaged one must be an
// error, never silently absent, and the operator should hear of it at start, not at the
// first read. The meta table is read whole at every start (its counters, its log): a
// damaged one would stop the start later.
std::string VerifyTable(
    rocksdb::DB& db, rocksdb::ColumnFamilyHandle* table,
    const std::function<void(std::string_view, std::string_view)>& visit = nullptr) {
  rocksdb::ReadOptions options;
  options.verify_checksums = true;
  options.fill_cache = false;  // a scan at start must not push out what lookups need
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(options, table));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (visit) visit(it->key().ToStringView(), it->value().ToStringView());
  }
  return it->status().ok() ? std::string() : it->status().ToString();
}

// SalvagedInputs are the inputs of a damaged database: each name with its record, and the
// stamp counter past their stamps.
struct SalvagedInputs {
  std::vector<std::pair<std::string, std::string>> inputs;
  uint64_t next_stamp = 1;
};

// SalvageInputs reads every input of the damaged database at `path`, so that the new one
// keeps them when the damage is elsewhere: opened read-only, with table files RocksDB
// cannot load at open left out, checksums verified. Fails (DATA_LOSS) if any input cannot
// be read: they must not be lost silently. Each record is taken apart as format version 4
// wrote it, or as 2 and 3 did (a long name as the whole key), since the damage may be in
// the table that says which.
absl::StatusOr<SalvagedInputs> SalvageInputs(const std::string& path, rocksdb::Env* env) {
  rocksdb::Options options =
      DatabaseOptions(NewProcessLogger(), std::make_shared<BackgroundErrors>(),
                      /*write_buffer_bytes=*/0, env);
  options.paranoid_checks = false;
  // The tables it has: a read-only open makes none, and a store of an older build may lack
  // some this one has. The inputs and meta tables are all that is read.
  std::vector<std::string> names;
  rocksdb::Status status = rocksdb::DB::ListColumnFamilies(options, path, &names);
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const std::string& name : names) families.emplace_back(name, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  if (status.ok()) status = rocksdb::DB::OpenForReadOnly(options, path, families, &handles, &raw);
  if (!status.ok()) {
    return absl::UnavailableError("it cannot be opened to read them: " + status.ToString());
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::ColumnFamilyHandle* inputs = nullptr;
  rocksdb::ColumnFamilyHandle* meta = nullptr;
  for (rocksdb::ColumnFamilyHandle* handle : handles) {
    if (handle->GetName() == TableName(Table::kInputs)) inputs = handle;
    if (handle->GetName() == TableName(Table::kMeta)) meta = handle;
  }
  // A version this build does not read (a newer build's) is not taken apart as its own; an
  // unreadable one (the damage may be there) is taken for 2 to 4, which lay inputs out alike
  // but for long names, told apart record by record below.
  std::string version;
  if (meta != nullptr && db->Get(rocksdb::ReadOptions(), meta, kFormatVersionKey, &version).ok() &&
      version != "2" && version != "3" && version != std::to_string(kFormatVersion)) {
    for (rocksdb::ColumnFamilyHandle* handle : handles) db->DestroyColumnFamilyHandle(handle);
    return absl::UnavailableError("its format version " + version + " is not one this build reads");
  }
  SalvagedInputs salvaged;
  std::string undecodable;
  const std::string damage =
      inputs == nullptr
          ? std::string()
          : VerifyTable(*db, inputs, [&](std::string_view key, std::string_view value) {
              std::optional<std::pair<std::string_view, std::string_view>> parts =
                  NameAndValue(key, value);
              if (!parts.has_value()) parts = std::pair(key, value);  // long, version 2 or 3
              const std::optional<StoredInput> input = DecodeInputRecord(parts->second);
              if (!input.has_value()) {
                if (undecodable.empty()) undecodable = std::string(parts->first.substr(0, 64));
                return;
              }
              salvaged.next_stamp = std::max(salvaged.next_stamp, input->stamp + 1);
              salvaged.inputs.emplace_back(std::string(parts->first), std::string(parts->second));
            });
  for (rocksdb::ColumnFamilyHandle* handle : handles) db->DestroyColumnFamilyHandle(handle);
  if (!damage.empty()) return absl::DataLossError("its inputs table is damaged: " + damage);
  if (!undecodable.empty()) {
    return absl::DataLossError("its input '" + undecodable + "' cannot be decoded");
  }
  return salvaged;
}

// UnknownTable names a table in the database at `path` that this version does not know
// (then another format wrote it); empty if there is none.
std::string UnknownTable(const std::string& path) {
  std::vector<std::string> existing;
  if (!rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &existing).ok()) return "";
  std::set<std::string_view> known = {rocksdb::kDefaultColumnFamilyName};
  for (int t = 0; t < kTableCount; ++t) known.insert(TableName(static_cast<Table>(t)));
  for (const std::string& name : existing) {
    if (!known.contains(name)) return name;
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

// WriteCarried makes a new database at `path` holding the salvaged inputs, synced, with
// the stamp counter past their stamps. Beside the damaged one first, then swapped in
// (SwapInCarried): the inputs are never only in a database moved aside, whatever crashes.
absl::Status WriteCarried(const std::string& path, const SalvagedInputs& salvaged,
                          rocksdb::Env* env) {
  std::error_code ignored;
  fs::remove_all(path, ignored);
  rocksdb::Options options =
      DatabaseOptions(NewProcessLogger(), std::make_shared<BackgroundErrors>(),
                      /*write_buffer_bytes=*/0, env);
  std::array<rocksdb::ColumnFamilyHandle*, kTableCount> handles{};
  std::unique_ptr<rocksdb::DB> db;
  rocksdb::Status status = OpenInstance(path, rocksdb::NewLRUCache(8 << 20), options,
                                        /*read_only=*/false, &handles, &db);
  if (status.ok()) {
    rocksdb::WriteBatch batch;
    rocksdb::ColumnFamilyHandle* inputs = handles[static_cast<int>(Table::kInputs)];
    rocksdb::ColumnFamilyHandle* meta = handles[static_cast<int>(Table::kMeta)];
    for (const auto& [name, record] : salvaged.inputs) {
      const NameKey key(name);
      const std::string_view stored_key = key.key();
      batch.Put(inputs, rocksdb::Slice(stored_key.data(), stored_key.size()),
                key.digested() ? NamedValue(key, name, record) : record);
    }
    std::string counter;
    EncodeCounter(salvaged.next_stamp, &counter);
    batch.Put(meta, kNextStampKey, counter);
    batch.Put(meta, kFormatVersionKey, std::to_string(kFormatVersion));
    rocksdb::WriteOptions synced;
    synced.sync = true;
    status = db->Write(synced, &batch);
  }
  for (rocksdb::ColumnFamilyHandle* handle : handles) {
    if (handle != nullptr) db->DestroyColumnFamilyHandle(handle);
  }
  if (db != nullptr && status.ok()) status = db->Close();
  db.reset();
  if (!status.ok()) {
    fs::remove_all(path, ignored);
    return absl::UnavailableError("cannot write them into a new database: " + status.ToString());
  }
  return absl::OkStatus();
}

// CarriedPath is where a new database holding a damaged one's inputs waits to be swapped
// in; CarryingPath where it is written before it is whole.
std::string CarriedPath(const std::string& path) { return path + ".carried"; }
std::string CarryingPath(const std::string& path) { return path + ".carrying"; }

// FinishCarrying completes what a start cut short: a whole carried database goes where the
// damaged one was moved from (if that one is gone; if not, it is salvaged again), and one
// not yet whole is dropped.
void FinishCarrying(const std::string& path) {
  std::error_code error;
  fs::remove_all(CarryingPath(path), error);
  if (!fs::exists(CarriedPath(path), error)) return;
  if (fs::exists(fs::path(path) / "CURRENT", error)) {
    fs::remove_all(CarriedPath(path), error);
    return;
  }
  fs::remove_all(path, error);  // an empty one a start made before it was cut short
  fs::rename(CarriedPath(path), path, error);
  if (error) {
    spdlog::error("cannot put the inputs carried over from a damaged database at {} in place: {}",
                  path, error.message());
  }
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

  // A database found unusable is moved aside and a new one created. One RocksDB found
  // damaged gives its inputs to the new one; if they are damaged too, it is kept and
  // opened with its damaged table files left for the reads that need them to fail.
  FinishCarrying(path);
  std::optional<size_t> carried;  // inputs carried over from a damaged database
  bool keep_damaged = false;
  std::string damage;  // what RocksDB found, when the database is kept
  for (int attempt = 0; attempt < 3; ++attempt) {
    const bool existed = fs::exists(fs::path(path) / "CURRENT");
    std::string unusable = existed ? UnknownTable(path) : "";
    if (!unusable.empty()) unusable = "unknown table '" + unusable + "'";
    bool damaged = false;
    if (unusable.empty()) {
      std::unique_ptr<Store> store(new Store);
      store->path_ = path;
      store->options_ = options;
      store->resumer_ = std::make_unique<Resumer>(options.resume_wait);
      if (options.file_system != nullptr) {
        store->shared_->env = rocksdb::NewCompositeEnv(options.file_system);
      }
      const Attempt opened = store->OpenDatabase(existed, report, keep_damaged);
      if (opened.verdict == Verdict::kError) return opened.error;
      unusable = opened.reason;
      damaged = opened.damaged;
      if (opened.verdict == Verdict::kOk) {
        Attempt checked = store->CheckFormat(existed, report);
        if (checked.verdict == Verdict::kError) return checked.error;
        if (checked.verdict == Verdict::kOk && existed) {
          const Pin pin = store->Use();
          if (std::string meta = VerifyTable(pin.db(), pin.handle(Table::kMeta)); !meta.empty()) {
            checked = {Verdict::kMoveAside, {}, "its meta table is damaged: " + meta, true};
          }
        }
        if (checked.verdict == Verdict::kOk) {
          if (carried.has_value()) {
            report->created = true;  // new, with the inputs alone
            report->carried_inputs = *carried;
          }
          if (!report->moved_aside.empty() && !report->inputs_left.empty()) {
            spdlog::error(
                "the cache database {} was unusable ({}) and was moved to {}; its inputs could "
                "not be carried over ({}) and stay there: they read as not set until set again",
                path, report->reason, report->moved_aside, report->inputs_left);
          } else if (carried.has_value()) {
            spdlog::warn(
                "the cache database {} was damaged ({}) and was moved to {}; its {} inputs were "
                "carried over into the new one",
                path, report->reason, report->moved_aside, *carried);
          }
          if (keep_damaged) {
            spdlog::error(
                "the cache database {} is damaged ({}): kept for its inputs, with the damaged "
                "table files left for the reads that need them to fail",
                path, damage);
          }
          report->kept_damaged = keep_damaged;
          if (!report->created || carried.has_value()) store->CheckInputs(report);
          return store;
        }
        unusable = checked.reason;
        damaged = checked.damaged;
      }
    }  // the store closes here, before its files move
    if (damaged && existed && !keep_damaged) {
      // The store's file system, if a test gave one.
      std::unique_ptr<rocksdb::Env> env =
          options.file_system != nullptr ? rocksdb::NewCompositeEnv(options.file_system) : nullptr;
      absl::StatusOr<SalvagedInputs> salvaged = SalvageInputs(path, env.get());
      absl::Status written = salvaged.ok() ? WriteCarried(CarryingPath(path), *salvaged, env.get())
                                           : salvaged.status();
      std::error_code error;
      if (written.ok()) fs::rename(CarryingPath(path), CarriedPath(path), error);
      if (written.ok() && error) {
        written =
            absl::UnavailableError("cannot rename " + CarryingPath(path) + ": " + error.message());
      }
      if (salvaged.ok() && !written.ok()) {
        // Read but not written (a full disk, say): the damaged database stays, with its
        // inputs, for a start that can write them.
        return absl::Status(written.code(), "the cache database " + path + " is damaged (" +
                                                unusable +
                                                ") and its inputs cannot be carried "
                                                "into a new one: " +
                                                std::string(written.message()));
      }
      if (written.ok()) {
        // Moved aside, then the carried one in its place (FinishCarrying, also at the next
        // start if this one is cut short between the two).
        absl::Status moved = MoveAside(path, unusable, report);
        if (!moved.ok()) return moved;
        FinishCarrying(path);
        carried = salvaged->inputs.size();
        continue;
      }
      if (salvaged.status().code() == absl::StatusCode::kDataLoss) {
        keep_damaged = true;  // the user's data stays where it is: try again, keeping it
        damage = unusable + "; " + std::string(salvaged.status().message());
        continue;
      }
      report->inputs_left = std::string(written.message());
    } else if (damaged && existed) {
      report->inputs_left = "it cannot be served with its damaged inputs: " + unusable;
    }
    absl::Status moved = MoveAside(path, unusable, report);
    if (!moved.ok()) return moved;
  }
  return absl::InternalError("the cache database " + path + " is unusable even when new");
}

Attempt Store::CheckFormat(bool must_have_version, OpenReport* report) {
  std::string version;
  absl::StatusOr<bool> found = Get(Table::kMeta, kFormatVersionKey, &version);
  if (!found.ok()) {
    return {Verdict::kMoveAside,
            {},
            std::string(found.status().message()),
            found.status().code() == absl::StatusCode::kDataLoss};
  }
  if (*found) {
    const int from_3 = StepBit(UpgradeStep::kNames);
    const int from_2 = StepBit(UpgradeStep::kIdentities) | from_3;
    int pending = -1;  // not a version this build reads
    if (version == "2") pending = from_2;
    if (version == "3") pending = from_3;
    if (version == std::to_string(kFormatVersion)) {
      std::string unused;
      absl::StatusOr<bool> moving = Get(Table::kMeta, kMovingInputNamesKey, &unused);
      if (!moving.ok()) {
        return {Verdict::kMoveAside,
                {},
                std::string(moving.status().message()),
                moving.status().code() == absl::StatusCode::kDataLoss};
      }
      pending = *moving ? from_3 : 0;
    }
    if (pending > 0) {
      // Upgraded now if it can be. If not (a full disk, a failed write), the cache is
      // served as it is: lookups try the old keys too, and the first write of a digest key
      // upgrades it first.
      pending_steps_.store(pending, std::memory_order_release);
      if (!Use().read_only()) {
        if (absl::Status upgraded = FinishUpgrade(UpgradeStep::kNames); !upgraded.ok()) {
          spdlog::warn(
              "cache database {} (format version {}): its upgrade failed ({}); "
              "served as it is until a write tries again",
              path_, version, upgraded.ToString());
        }
      }
    }
    if (pending >= 0) return {};
    return {
        Verdict::kMoveAside,
        {},
        "format version " + version + ", this build reads 2 to " + std::to_string(kFormatVersion)};
  }
  if (must_have_version) return {Verdict::kMoveAside, {}, "no format version"};
  absl::Status written = Put(Table::kMeta, kFormatVersionKey, std::to_string(kFormatVersion));
  if (!written.ok()) return {Verdict::kError, written, {}};
  report->created = true;
  return {};
}

void Store::CheckInputs(OpenReport* report) {
  const Pin pin = Use();
  report->damaged_inputs = VerifyTable(pin.db(), pin.handle(Table::kInputs));
  if (!report->damaged_inputs.empty()) {
    spdlog::error(
        "the inputs table of {} is damaged ({}); inputs stored there read as "
        "DATA_LOSS until they are set again",
        path_, report->damaged_inputs);
  }
  if (report->read_only) {
    spdlog::warn(
        "the disk is full: opened {} read-only; writes fail with "
        "RESOURCE_EXHAUSTED until there is space ({})",
        path_, report->full_disk);
  }
}

}  // namespace turbine::storage
