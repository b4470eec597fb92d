// format.h — the on-disk format of the backing store, and its version.
//
// Bump kFormatVersion whenever a key or value layout below changes: a database with any
// other version is moved aside at start-up and the cache starts empty (a cache is rebuilt,
// never migrated).
//
// Keys are binary, big-endian where they carry integers, so RocksDB's bytewise order
// groups a task's records together.
//
//   meta        "format_version"        -> decimal text, e.g. "1"
//               "next_stamp"            -> u64 (cereal): above every change stamp on disk
//               "next_task_id"          -> u64 (cereal): above every task id on disk
//   task_cache  hash(u64) task(u64)     -> ""                (hash = the engine's task hash)
//   task_type   task(u64)               -> identity: function name, version, receiver,
//                                          canonical argument bytes (engine-encoded)
//   task_meta   task(u64)               -> last clean result: output, cells, and the
//                                          (slot, stamp) pairs it read (engine-encoded,
//                                          backend/src/persist.cc)
//   task_cells, deps, dependents        -> reserved; cells and deps live in task_meta, and
//                                          reverse edges are rebuilt in memory (a restored
//                                          task is verified by stamps before use)
//   inputs      key                     -> (type name, value bytes, stamp) as a cereal tuple
#pragma once

#include <cstdint>

namespace turbine::storage {

inline constexpr uint64_t kFormatVersion = 1;
inline constexpr char kFormatVersionKey[] = "format_version";
inline constexpr char kNextStampKey[] = "next_stamp";
inline constexpr char kNextTaskIdKey[] = "next_task_id";

}  // namespace turbine::storage
