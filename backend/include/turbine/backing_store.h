// backing_store.h — what the engine needs from persistent storage.
//
// The engine owns this interface; turbine::storage implements it on RocksDB. An engine
// without one keeps everything in memory. Implementations must be safe to call from any
// thread. The engine never calls them while holding one of its own locks.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace turbine {

// StoredInput is an input as persisted: its value's stable type name, the value's
// canonical bytes, and the change stamp the engine gave it.
struct StoredInput {
  std::string type_name;
  std::string bytes;
  uint64_t stamp = 0;
};

// StoredTask is a task as persisted: its identity (function name, version, receiver and
// canonical argument bytes, encoded by the engine) and, once it has one, its last clean
// result (output, cells and the dependencies it read, encoded by the engine). The store
// treats both as opaque bytes; `hash` is the engine's component hash of the identity.
struct StoredTask {
  uint64_t id = 0;
  uint64_t hash = 0;
  std::string identity;
  std::string result;  // empty: no result persisted
  // For WriteSnapshot: the store already holds this task (an earlier snapshot wrote it, or
  // it was read from the store), so only its result needs writing. False is always safe.
  bool stored = false;
  // The day (since 1970-01-01) the task was last used, for garbage collection; 0: unknown.
  // WriteSnapshot stores it with the task; a TaskScan reports it.
  uint16_t last_used = 0;
  // For WriteSnapshot: what the task's result follows from outside the engine (opaque
  // bytes, ReadObservations), stored apart from the record. nullopt leaves the stored one
  // as it is; empty removes it.
  std::optional<std::string> observation;
};

// StoredObservation is a task's observation as WriteSnapshot stored it.
struct StoredObservation {
  uint64_t id = 0;
  std::string bytes;
};

// InputChange is one input set or deleted, as the store logs it: the stamp of the change
// and the input's key. A store may log a long key by its hash alone (a log of megabyte
// names would hold megabytes per change, and a restart would read them all): `key_hash` is
// then XXH3_64bits of the key (unseeded, turbine/internal/xxh3.h), all a restart needs of
// it, and `key` is empty.
struct InputChange {
  uint64_t stamp = 0;
  std::string key;
  std::optional<uint64_t> key_hash;
};

// InputChangeLog is the recent input changes a store logged: every change with a stamp
// above `since`, oldest first. A restart uses it to tell which restored results an input
// change since their snapshot may have reached (EngineImpl::TrustRestored).
struct InputChangeLog {
  uint64_t since = 0;
  std::vector<InputChange> changes;
};

// LastUse is a task's last-use day, as WriteLastUse stores it.
struct LastUse {
  uint64_t id = 0;
  uint16_t day = 0;
};

// TaskScan reads every stored task as of when it was opened (later writes are not seen),
// in batches, for garbage collection.
class TaskScan {
 public:
  virtual ~TaskScan() = default;
  // Next calls `visit` with up to `limit` tasks (identity, result and last_used filled);
  // false once every task was visited.
  virtual absl::StatusOr<bool> Next(size_t limit,
                                    const std::function<void(const StoredTask& task)>& visit) = 0;
};

class BackingStore {
 public:
  virtual ~BackingStore() = default;

  // FindTask returns the task whose identity bytes equal `identity` among those stored
  // under `hash`, or nullopt. Exact: the hash only picks candidates.
  virtual absl::StatusOr<std::optional<StoredTask>> FindTask(uint64_t hash,
                                                             std::string_view identity) = 0;
  // ReadTask returns task `id`, or nullopt if it was never persisted.
  virtual absl::StatusOr<std::optional<StoredTask>> ReadTask(uint64_t id) = 0;
  // ReadTasks reads tasks `ids` (ascending, distinct) at once: for each, what ReadTask
  // would return. A store that cannot batch reads them one at a time.
  virtual std::vector<absl::StatusOr<std::optional<StoredTask>>> ReadTasks(
      const std::vector<uint64_t>& ids) {
    std::vector<absl::StatusOr<std::optional<StoredTask>>> tasks;
    tasks.reserve(ids.size());
    for (uint64_t id : ids) tasks.push_back(ReadTask(id));
    return tasks;
  }
  // WriteSnapshot persists `tasks` (identity and result; the identity of a task already
  // stored is repeated, and replaces nothing) and the id and stamp counters, atomically.
  // Not synced: a crash may lose the last snapshot, never half of one.
  virtual absl::Status WriteSnapshot(const std::vector<StoredTask>& tasks, uint64_t next_task_id,
                                     uint64_t next_stamp) = 0;
  // NextTaskId returns the persisted id counter (1 for a new store): at least the ids
  // reserved, if the process that reserved them did not release them.
  virtual absl::StatusOr<uint64_t> NextTaskId() = 0;
  // ReserveTaskIds durably (synced) records that ids below `end` may have been given out:
  // a client can hold an id the next snapshot has not written yet, and after a crash the
  // id must not name another task. ReleaseTaskIds, at a clean close, raises the counter to
  // `next_task_id` (every id given out is below it, written in a record or not) and drops
  // the reservation, so that the next process does not skip the ids reserved and unused.
  // Both are synced. A store that does not outlive its process need do neither.
  virtual absl::Status ReserveTaskIds(uint64_t end) {
    (void)end;
    return absl::OkStatus();
  }
  virtual absl::Status ReleaseTaskIds(uint64_t next_task_id) {
    (void)next_task_id;
    return absl::OkStatus();
  }

  // ReadInput returns the persisted input `key`, or nullopt if there is none.
  virtual absl::StatusOr<std::optional<StoredInput>> ReadInput(std::string_view key) = 0;

  // WriteInputs persists a batch of inputs atomically and durably (synced) together with
  // `next_stamp`, the engine's stamp counter: once it returns OK, the inputs survive a
  // crash, and no stamp below `next_stamp` is ever given out again.
  virtual absl::Status WriteInputs(const std::vector<std::pair<std::string, StoredInput>>& inputs,
                                   uint64_t next_stamp) = 0;

  // DeleteInputs removes the persisted inputs `keys` (absent ones are no error), atomically
  // and durably like WriteInputs, together with `next_stamp`. A store that cannot delete
  // says kUnimplemented.
  virtual absl::Status DeleteInputs(const std::vector<std::string>& keys, uint64_t next_stamp) {
    (void)keys;
    (void)next_stamp;
    return absl::UnimplementedError("this backing store cannot delete inputs");
  }

  // NextStamp returns the persisted stamp counter (1 for a new store), and at least one
  // above every change in the log ReadInputChanges returns.
  virtual absl::StatusOr<uint64_t> NextStamp() = 0;

  // Every WriteInputs and DeleteInputs also logs its changes (each input's stamp; a
  // deletion at `next_stamp - 1`). ReadInputChanges returns the log, keeping at most the
  // newest `keep` changes on disk (older ones are dropped and `since` raised past them).
  // `since` must be honest: when the store cannot vouch for the log (it was written by a
  // build that did not keep one), it is the last stamp (`NextStamp() - 1`). A store
  // without a log says kUnimplemented, which the engine treats the same way.
  virtual absl::StatusOr<InputChangeLog> ReadInputChanges(size_t keep) {
    (void)keep;
    return absl::UnimplementedError("this backing store keeps no log of input changes");
  }

  // LogInputChanges adds `changes` to the log ReadInputChanges returns, with the stamp
  // counter, not synced. The engine logs this way a change it learned from outside, the
  // world a task observed, before any record that follows from it: a crash that loses
  // the entries loses those records too. In the same write it stores `observations`
  // (ReadObservations) in place of those tasks' own, removing each whose bytes are empty:
  // the engine marks so an observation whose change is logged before the task's new
  // record is written, and forgets one whose change needs no checking at the next open.
  // Without a log: kUnimplemented.
  virtual absl::Status LogInputChanges(const std::vector<InputChange>& changes,
                                       const std::vector<StoredObservation>& observations,
                                       uint64_t next_stamp) {
    (void)changes;
    (void)observations;
    (void)next_stamp;
    return absl::UnimplementedError("this backing store keeps no log of input changes");
  }
  // ReadObservations returns every observation WriteSnapshot stored, for the engine to
  // check at open. A store that keeps none says kUnimplemented.
  virtual absl::StatusOr<std::vector<StoredObservation>> ReadObservations() {
    return absl::UnimplementedError("this backing store keeps no observations");
  }

  // Garbage collection. A store that does not implement it says kUnimplemented.
  //
  // ScanTasks opens a scan of every stored task. The scan must end before the store does.
  virtual absl::StatusOr<std::unique_ptr<TaskScan>> ScanTasks() {
    return absl::UnimplementedError("this backing store cannot collect garbage");
  }
  // DeleteTasks removes tasks `ids` (their records, id index entries, last-use days and
  // observations);
  // absent ids are no error. Not synced: a crash may bring deleted tasks back, which only
  // keeps what a later pass removes again.
  virtual absl::Status DeleteTasks(const std::vector<uint64_t>& ids) {
    (void)ids;
    return absl::UnimplementedError("this backing store cannot collect garbage");
  }
  // WriteLastUse stores last-use days of tasks already stored. Not synced.
  virtual absl::Status WriteLastUse(const std::vector<LastUse>& uses) {
    (void)uses;
    return absl::UnimplementedError("this backing store does not track use");
  }
  // DiskBytes is what the store occupies on disk, as `du` counts it, except files a
  // compaction is writing or has just replaced (a measure that does not double meanwhile).
  virtual absl::StatusOr<uint64_t> DiskBytes() {
    return absl::UnimplementedError("this backing store does not know its size");
  }
  // Reclaim makes the space of deleted tasks free on disk (compacting what holds them).
  virtual absl::Status Reclaim() { return absl::OkStatus(); }
  // Settle writes what the store keeps in memory (RocksDB's memtables) into its files when
  // that is at least `min_bytes`, so a crash has little log to replay at the next open. An
  // idle engine calls it.
  virtual absl::Status Settle(uint64_t /*min_bytes*/) { return absl::OkStatus(); }
  // KeepLogSmall writes what the store keeps in memory into its files when that (and the
  // log holding it meanwhile) takes a large share of the disk's free space: a garbage
  // collection pass calls it between batches of deletions, which would otherwise fill a
  // nearly full disk with a log of them.
  virtual absl::Status KeepLogSmall() { return absl::OkStatus(); }
  // Tidy does the store's own upkeep that its library leaves undone (RocksBackingStore:
  // merging the small files frequent flushes leave). The snapshot thread calls it after
  // each tick, holding no engine lock; it may take milliseconds.
  virtual void Tidy() {}
  // StopReclaiming makes a Reclaim running on another thread, and any later one, return
  // early: the engine is going away. Safe from any thread.
  virtual void StopReclaiming() {}
  // RoomForCache tells whether about `bytes` more of cached results (a snapshot) may be
  // written now, making room first if the store can by itself (writing its memtables into
  // files); a refusal (kResourceExhausted) keeps what space is left for inputs and for
  // what frees space. Snapshots ask first (a garbage collection pass's too, which then
  // keeps what the results left in memory refer to); nothing else does.
  virtual absl::Status RoomForCache(uint64_t /*bytes*/) { return absl::OkStatus(); }
};

}  // namespace turbine
