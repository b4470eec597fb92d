// old_format_records.h — records as older format versions wrote them, for upgrade tests.
#pragma once

#include <cstdint>
#include <string>

#include "records.h"
#include "turbine/storage/format.h"
#include "turbine/storage/store.h"

namespace turbine::testing {

// PutVersion2Task writes task `id` keyed by hash and whole identity (however long), its
// value the id and the result, and the id index entry naming that key; and says the store
// is of version 2.
inline bool PutVersion2Task(storage::Store& store, uint64_t id, uint64_t hash,
                            const std::string& identity, const std::string& result) {
  std::string key(8, '\0');
  storage::PutBigEndian(hash, key.data());
  key += identity;
  std::string value(8, '\0');
  storage::PutBigEndian(id, value.data());
  value += result;
  std::string id_key(8, '\0');
  storage::PutBigEndian(id, id_key.data());
  return store.Put(storage::Table::kMeta, storage::kFormatVersionKey, "2").ok() &&
         store.Put(storage::Table::kTasks, key, value).ok() &&
         store.Put(storage::Table::kTaskIds, id_key, key).ok();
}

// PutVersion3Input writes input `name` set at `stamp` and its entry in the log of changes as
// format version 3 did, keyed by the whole name however long; and says the store is of
// version 3.
inline bool PutVersion3Input(storage::Store& store, const std::string& name, uint64_t stamp) {
  std::string record;
  storage::EncodeInputRecord(StoredInput{"i64", "x", stamp}, &record);
  std::string log_key(storage::kInputChangePrefix);
  log_key.resize(log_key.size() + 8);
  storage::PutBigEndian(stamp, log_key.data() + log_key.size() - 8);
  log_key += name;
  return store.Put(storage::Table::kMeta, storage::kFormatVersionKey, "3").ok() &&
         store.Put(storage::Table::kInputs, name, record).ok() &&
         store.Put(storage::Table::kMeta, log_key, "").ok();
}

}  // namespace turbine::testing
