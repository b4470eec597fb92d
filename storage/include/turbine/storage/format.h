// format.h — the on-disk format of the backing store, and its version.
//
// Bump kFormatVersion whenever a key or value layout below changes: a database with a
// version this build cannot read is moved aside at start-up and the cache starts empty (a
// cache is rebuilt, never migrated), except from versions 2 and 3, whose few records with
// long keys are rekeyed at open (Store::FinishUpgrade): their cache and inputs are kept.
//
// Integers in keys and values are big-endian (u64 BE below), so bytewise order is numeric
// order. `identity` is the engine's encoding of a task's function name, version, receiver
// and canonical argument bytes; `result` its encoding of a clean task's output, cells and
// the (slot, stamp) pairs it read (backend/src/persist.cc). The store treats both as bytes.
//
//   meta      "format_version"           -> decimal text, e.g. "4"
//             "next_stamp"               -> u64 (cereal): above every change stamp on disk
//             "next_task_id"             -> u64 (cereal): above every task id on disk
//             "moving_input_names"       -> empty: an upgrade from version 3 is under way
//             "input_change/" stamp(u64 BE) name key -> empty, or for a long name its
//                                           XXH3-64 (u64 BE): an input set or deleted at
//                                           `stamp` (an empty value with a long name key:
//                                           the whole name, as version 3 logged it)
//             "input_changes_since"      -> u64 (cereal): every input change above it is
//                                           logged (absent: 0)
//             "input_changes_through"    -> u64 (cereal): the next_stamp the log was last
//                                           written with; another value means a build that
//                                           keeps no log wrote since, and `since` is reset
//   tasks     hash(u64 BE) identity      -> task(u64 BE) result   (result empty: none yet)
//             hash(u64 BE) digest(128)   -> task(u64 BE, top bit set) size(u64 BE) identity
//                                           result: an identity over 1 KiB (below)
//   task_ids  task(u64 BE)               -> the task's key in tasks
//   inputs    name key                   -> (type name, value bytes, stamp) as a cereal tuple,
//                                           after the name's length (u64 BE) and the name
//                                           for a long name
//   (a name key is the input's name, or for a name over 1 KiB its first 1 KiB and its
//   digest, XXH3-128: longer than 1 KiB exactly when it is a digest key)
//   task_use  task(u64 BE)               -> day(u16 BE): the day (since 1970-01-01) the task
//                                           was last used, for garbage collection
//   observations task(u64 BE)            -> what a task's result follows from outside the
//                                           engine (the engine's encoding: observation kind,
//                                           subject, fingerprint), checked again at open
//
// Why the identity is in the key of `tasks`: a lookup by components (every memory miss
// makes one) is then a single point read, exact by construction (RocksDB compares whole
// keys, so tasks whose hashes collide are simply different keys), and a task that was
// never stored is turned away by the table's whole-key bloom filter without a block read.
// The hash in front spreads keys evenly. `task_ids` repeats the key so a dependency can be
// loaded by id in two point reads; it is written once per task (ids grow, so its writes
// are appends), while `tasks` is rewritten whenever the task's result changes.
// An identity over 1 KiB (a call with a large argument) is keyed by its digest (XXH3-128)
// instead, and kept in the value, where a lookup compares it; so is an input's name over
// 1 KiB, after its first 1 KiB, so that a digest key is longer than any name that is its own key. A
// key is copied whole into places RocksDB keeps for the life of a table file: each file's smallest
// and largest key live in memory and in every MANIFEST edit naming the file, and an index block
// names the keys between its data blocks. With keys of megabytes, that held tens of megabytes in
// memory past any limit and grew the MANIFEST by a megabyte or more per flush.
// A task's cells and dependencies travel inside its result; reverse edges are rebuilt in
// memory (a restored task is verified by stamps before use). `task_use` is apart from
// `tasks` so that noting a use rewrites ten bytes, not the task's result; a database
// without it (made before it existed) gets it empty, and its tasks count as used the day
// a garbage collection pass first sees them. `observations` is apart for the same reason,
// and so that an open reads all of them in one scan of a small table.
#pragma once

#include <cstdint>

namespace turbine::storage {

// Version 4: input names over 1 KiB keyed by their digest. Version 3: identities over
// 1 KiB keyed by their digest. Version 2: tasks keyed by (hash, identity), one record per
// task; version 1 had task_cache / task_type / task_meta (three reads per restored task).
inline constexpr uint64_t kFormatVersion = 4;
inline constexpr char kFormatVersionKey[] = "format_version";
inline constexpr char kNextStampKey[] = "next_stamp";
inline constexpr char kNextTaskIdKey[] = "next_task_id";
// Set while a process runs: ids below it may have been given out (ReserveTaskIds).
inline constexpr char kTaskIdsReservedKey[] = "task_ids_reserved";
// Set while an upgrade from version 3 moves inputs with long names to their name keys
// (Store::RekeyLongNames). The store says 4 from its first batch on, so that a build of
// version 3 moves it aside rather than misread a table moved in part.
inline constexpr char kMovingInputNamesKey[] = "moving_input_names";
inline constexpr char kInputChangePrefix[] = "input_change/";
inline constexpr char kInputChangesSinceKey[] = "input_changes_since";
inline constexpr char kInputChangesThroughKey[] = "input_changes_through";

}  // namespace turbine::storage
