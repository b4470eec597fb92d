// store_open.cc — opening the backing store: checking its format (and upgrading an older
// one), checking its inputs, and moving aside a database that cannot be used as is.
#include <rocksdb/db.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

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

// VerifyInputs reads the whole inputs table with checksums verified; what RocksDB found
// wrong, or empty. Inputs are the user's data: a damaged one must be an error, never
// silently absent, and the operator should hear of it at start, not at the first read.
std::string VerifyInputs(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* inputs) {
  rocksdb::ReadOptions options;
  options.verify_checksums = true;
  options.fill_cache = false;  // a scan at start must not push out what lookups need
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(options, inputs));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
  }
  return it->status().ok() ? std::string() : it->status().ToString();
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
      store->resumer_ = std::make_unique<Resumer>(options.resume_wait);
      if (options.file_system != nullptr) {
        store->shared_->env = rocksdb::NewCompositeEnv(options.file_system);
      }
      const Attempt opened = store->OpenDatabase(existed, report);
      if (opened.verdict == Verdict::kError) return opened.error;
      unusable = opened.reason;
      if (opened.verdict == Verdict::kOk) {
        const Attempt checked = store->CheckFormat(existed && attempt == 0, report);
        if (checked.verdict == Verdict::kError) return checked.error;
        if (checked.verdict == Verdict::kOk) {
          if (!report->created) store->CheckInputs(report);
          return store;
        }
        unusable = checked.reason;
      }
    }  // the store closes here, before its files move
    absl::Status moved = MoveAside(path, unusable, report);
    if (!moved.ok()) return moved;
  }
  return absl::InternalError("the cache database " + path + " is unusable even when new");
}

Attempt Store::CheckFormat(bool must_have_version, OpenReport* report) {
  std::string version;
  absl::StatusOr<bool> found = Get(Table::kMeta, kFormatVersionKey, &version);
  if (!found.ok()) return {Verdict::kMoveAside, {}, std::string(found.status().message())};
  if (*found) {
    const int from_3 = StepBit(UpgradeStep::kNames);
    const int from_2 = StepBit(UpgradeStep::kIdentities) | from_3;
    int pending = -1;  // not a version this build reads
    if (version == "2") pending = from_2;
    if (version == "3") pending = from_3;
    if (version == std::to_string(kFormatVersion)) {
      std::string unused;
      absl::StatusOr<bool> moving = Get(Table::kMeta, kMovingInputNamesKey, &unused);
      if (!moving.ok()) return {Verdict::kMoveAside, {}, std::string(moving.status().message())};
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
  report->damaged_inputs = VerifyInputs(pin.db(), pin.handle(Table::kInputs));
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
