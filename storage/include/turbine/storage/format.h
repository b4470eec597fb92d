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
//               "next_task_id"          -> u64 big-endian
//   task_cache  hash(u64) task(u64)     -> ""                (hash = the engine's task hash)
//   task_type   task(u64)               -> function name, version, receiver, argument bytes
//   task_meta   task(u64)               -> output and state
//   task_cells  task(u64) type index    -> cell value
//   deps        task(u64)               -> the reads of its last execution, in order
//   dependents  task(u64) slot reader   -> ""
//   inputs      key                     -> (type name, value bytes, stamp) as a cereal tuple
#pragma once

#include <cstdint>

namespace turbine::storage {

inline constexpr uint64_t kFormatVersion = 1;
inline constexpr char kFormatVersionKey[] = "format_version";
inline constexpr char kNextStampKey[] = "next_stamp";

}  // namespace turbine::storage
