// stored_tasks.h — what a stopped daemon's store holds, read with RocksDB directly (for the
// GC daemon tests and bench/lifecycle_bench.cc).
#pragma once

#include <rocksdb/db.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace turbine::testing {

// StoredTasksOf counts the records of the `tasks` table of a stopped daemon's database whose
// identity names `function` (an identity holds its function's name as it is); -1 if the
// database cannot be opened.
inline int64_t StoredTasksOf(const std::string& db, const std::string& function) {
  std::vector<std::string> names;
  if (!rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), db, &names).ok()) return -1;
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const std::string& name : names) families.emplace_back(name, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::OpenForReadOnly(rocksdb::Options(), db, families, &handles, &raw).ok()) {
    return -1;
  }
  std::unique_ptr<rocksdb::DB> database(raw);
  int64_t count = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] != "tasks") continue;
    std::unique_ptr<rocksdb::Iterator> it(
        database->NewIterator(rocksdb::ReadOptions(), handles[i]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      // The identity follows the hash in the key, or, if the value's top bit says so, the
      // id and the identity's size in the value (storage/include/turbine/storage/format.h).
      const std::string key = it->key().ToString();
      const std::string value = it->value().ToString();
      std::string identity = key.substr(std::min<size_t>(key.size(), 8));
      if (value.size() >= 16 && (value[0] & 0x80) != 0) {
        uint64_t size = 0;
        for (int i = 8; i < 16; ++i) size = size << 8 | static_cast<unsigned char>(value[i]);
        identity = value.substr(16, size);
      }
      count += identity.find(function) != std::string::npos ? 1 : 0;
    }
  }
  for (rocksdb::ColumnFamilyHandle* handle : handles) database->DestroyColumnFamilyHandle(handle);
  return count;
}

}  // namespace turbine::testing
