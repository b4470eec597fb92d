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

// Unreadable is the verdict on a database whose meta table cannot be read: moved aside,
// as damaged if RocksDB found it so.
Attempt Unreadable(const absl::Status& status) {
  return {Verdict::kMoveAside,
          {},
          std::string(status.message()),
          status.code() == absl::StatusCode::kDataLoss};
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

// VerifyTable reads a whole table with checksums verified; what RocksDB found wrong, or
// empty. `visit` sees each record. Inputs are the user's data: a damaged one must be an
// error, never silently absent, and the operator should hear of it at start, not at the
// first read. The meta table is read whole at every start (its counters, its log): a
// damaged one would stop the start later.
std::string VerifyTable(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* table,
                        const std::function<void(std::string_view, std::string_view)>& visit) {
  rocksdb::ReadOptions options;
  options.verify_checksums = true;
  options.fill_cache = false;  // a scan at start must not push out what lookups need
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(options, table));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (visit) visit(it->key().ToStringView(), it->value().ToStringView());
  }
  return it->status().ok() ? std::string() : it->status().ToString();
}

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
  if (!found.ok()) return Unreadable(found.status());
  if (*found) {
    const int from_3 = StepBit(UpgradeStep::kNames);
    const int from_2 = StepBit(UpgradeStep::kIdentities) | from_3;
    int pending = -1;  // not a version this build reads
    if (version == "2") pending = from_2;
    if (version == "3") pending = from_3;
    if (version == std::to_string(kFormatVersion)) {
      std::string unused;
      absl::StatusOr<bool> moving = Get(Table::kMeta, kMovingInputNamesKey, &unused);
      if (!moving.ok()) return Unreadable(moving.status());
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
