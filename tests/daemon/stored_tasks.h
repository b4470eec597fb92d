// stored_tasks.h — what a stopped daemon's store holds, read with RocksDB directly (for the
// GC daemon tests and bench/lifecycle_bench.cc).
#pragma once

#include <rocksdb/db.h>

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
      count += it->key().ToString().find(function) != std::string::npos ? 1 : 0;
    }
  }
  for (rocksdb::ColumnFamilyHandle* handle : handles) database->DestroyColumnFamilyHandle(handle);
  return count;
}

}  // namespace turbine::testing
