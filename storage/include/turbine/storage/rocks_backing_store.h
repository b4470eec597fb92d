// rocks_backing_store.h — the engine's BackingStore on top of a Store (RocksDB).
//
// Thread-safety: safe from any thread (RocksDB is). Does not own the Store.
#pragma once

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
  absl::StatusOr<std::optional<StoredTask>> FindTask(uint64_t hash,
                                                     std::string_view identity) override;
  absl::StatusOr<std::optional<StoredTask>> ReadTask(uint64_t id) override;
  absl::Status WriteSnapshot(const std::vector<StoredTask>& tasks, uint64_t next_task_id,
                             uint64_t next_stamp) override;
  absl::StatusOr<uint64_t> NextTaskId() override;
  absl::StatusOr<std::unique_ptr<TaskScan>> ScanTasks() override;
  absl::Status DeleteTasks(const std::vector<uint64_t>& ids) override;
  absl::Status WriteLastUse(const std::vector<LastUse>& uses) override;
  absl::StatusOr<uint64_t> DiskBytes() override;
  absl::Status Reclaim() override;
  absl::Status Settle(uint64_t min_bytes) override;
  void StopReclaiming() override;

 private:
  // PutTask adds a task's record to `batch`; PutTaskId its entry in the id index.
  void PutTask(const StoredTask& task, rocksdb::WriteBatch& batch);
  void PutTaskId(const StoredTask& task, rocksdb::WriteBatch& batch);
  void PutLastUse(uint64_t id, uint16_t day, rocksdb::WriteBatch& batch);

  Store* const store_;
};

}  // namespace turbine::storage
