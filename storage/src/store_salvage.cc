// store_salvage.cc — the inputs of a damaged database, carried over into the new one
// (Store::Open, store_open.cc; docs/ARCHITECTURE.md, "Damaged inputs").
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "records.h"
#include "store_internal.h"
#include "turbine/storage/format.h"

namespace turbine::storage {

namespace fs = std::filesystem;

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

// WriteCarried makes a new database at `path` holding the salvaged inputs, synced, with
// the stamp counter past their stamps. Beside the damaged one first, then swapped in
// (FinishCarrying): the inputs are never only in a database moved aside, whatever crashes.
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

}  // namespace turbine::storage
