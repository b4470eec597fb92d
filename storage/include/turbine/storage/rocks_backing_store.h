// rocks_backing_store.h — the engine's BackingStore on top of a Store (RocksDB).
//
// Thread-safety: safe from any thread (RocksDB is). Does not own the Store.
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <string_view>

#include "turbine/backing_store.h"
#include "turbine/storage/store.h"

namespace turbine::storage {

class RocksBackingStore : public BackingStore {
 public:
  explicit RocksBackingStore(Store* store) : store_(store) {}

  absl::StatusOr<std::optional<StoredInput>> ReadInput(std::string_view key) override;
  absl::Status WriteInputs(const std::vector<std::pair<std::string, StoredInput>>& inputs,
                           uint64_t next_stamp) override;
  absl::Status DeleteInputs(const std::vector<std::string>& keys, uint64_t next_stamp) override;
  absl::StatusOr<uint64_t> NextStamp() override;
  absl::StatusOr<InputChangeLog> ReadInputChanges(size_t keep) override;
  absl::Status LogInputChanges(const std::vector<InputChange>& changes,
                               const std::vector<StoredObservation>& observations,
                               uint64_t next_stamp) override;
  absl::StatusOr<std::vector<StoredObservation>> ReadObservations() override;
  absl::StatusOr<std::optional<StoredTask>> FindTask(uint64_t hash,
                                                     std::string_view identity) override;
  absl::StatusOr<std::optional<StoredTask>> ReadTask(uint64_t id) override;
  std::vector<absl::StatusOr<std::optional<StoredTask>>> ReadTasks(
      const std::vector<uint64_t>& ids) override;
  absl::Status WriteSnapshot(const std::vector<StoredTask>& tasks, uint64_t next_task_id,
                             uint64_t next_stamp) override;
  absl::StatusOr<uint64_t> NextTaskId() override;
  absl::Status ReserveTaskIds(uint64_t end) override;
  absl::Status ReleaseTaskIds(uint64_t next_task_id) override;
  absl::StatusOr<std::unique_ptr<TaskScan>> ScanTasks() override;
  absl::Status DeleteTasks(const std::vector<uint64_t>& ids) override;
  absl::Status WriteLastUse(const std::vector<LastUse>& uses) override;
  absl::StatusOr<uint64_t> DiskBytes() override;
  absl::Status Reclaim() override;
  absl::Status Settle(uint64_t min_bytes) override;
  absl::Status KeepLogSmall() override;
  void Tidy() override;
  void StopReclaiming() override;
  absl::Status RoomForCache(uint64_t bytes) override;

 private:
  // PutTask adds a task's record to `batch` (true if its key is digested); PutTaskId its
  // entry in the id index.
  bool PutTask(const StoredTask& task, rocksdb::WriteBatch& batch);
  void PutTaskId(const StoredTask& task, rocksdb::WriteBatch& batch);
  void PutLastUse(uint64_t id, uint16_t day, rocksdb::WriteBatch& batch);
  void PutObservation(uint64_t id, const std::string& observation, rocksdb::WriteBatch& batch);
  // ReadTask and ReadTasks without their second try (under Store::UpgradeLock).
  absl::StatusOr<std::optional<StoredTask>> ReadTaskOnce(uint64_t id);
  std::vector<absl::StatusOr<std::optional<StoredTask>>> ReadTasksOnce(
      const std::vector<uint64_t>& ids);
  // WriteWithNextStamp writes `batch` with the stamp counter added, and the log's claim to
  // be complete up to it once ReadInputChanges has found (or made) the log sound. The
  // counter written is never below one written before: sets and snapshots take their
  // counters under different engine locks, so a set's lower counter could otherwise land
  // after a snapshot's higher one, and after a crash there the stamps the snapshot's
  // records hold would be handed out again.
  absl::Status WriteWithNextStamp(uint64_t next_stamp, rocksdb::WriteBatch& batch, bool sync);
  // LogInputChange adds one change to the log; PruneInputChanges (ReadInputChanges, and
  // WriteInputs once the log has grown by `keep` since) drops all but the newest `keep`,
  // and at open also resets the log if a build that keeps none wrote since.
  void LogInputChange(uint64_t stamp, std::string_view key, rocksdb::WriteBatch& batch);
  absl::StatusOr<InputChangeLog> PruneInputChanges(rocksdb::WriteBatch& batch, bool at_open);

  Store* const store_;
  std::atomic<size_t> keep_changes_{4096};
  std::atomic<size_t> changes_since_prune_{0};
  std::atomic<bool> log_vouched_{false};
  // Serializes the writes that carry the stamp counter, so that they reach the log in the
  // counter's order (WriteWithNextStamp).
  std::mutex counter_mu_;
  uint64_t next_stamp_written_ = 0;  // guarded by counter_mu_
};

}  // namespace turbine::storage
