// version2_records.h — a task record as format version 2 wrote it, for upgrade tests.
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

}  // namespace turbine::testing
