// rocks_backing_store.cc — tasks, inputs and counters in RocksDB (layout in format.h).
#include "turbine/storage/rocks_backing_store.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "records.h"
#include "turbine/storage/format.h"
#include "turbine/value_type.h"

namespace turbine::storage {
namespace {

// BatchBytes is about the size of a snapshot's write batch: reserved up front, so the batch
// is not copied each time it outgrows its buffer.
size_t BatchBytes(const std::vector<StoredTask>& tasks) {
  constexpr size_t kRecordOverhead = 64;  // tags, varint lengths, fixed-size key parts
  size_t bytes = 256;                     // header and counters
  for (const StoredTask& task : tasks) {
    bytes += kRecordOverhead + 2 * task.identity.size() + task.result.size();
  }
  return bytes;
}

absl::StatusOr<uint64_t> ReadCounter(Store& store, const char* key) {
  std::string bytes;
  absl::StatusOr<bool> found = store.Get(Table::kMeta, key, &bytes);
  if (!found.ok()) return found.status();
  if (!*found) return uint64_t{1};
  std::optional<uint64_t> value = DecodeCounter(bytes);
  if (!value.has_value()) {
    return absl::DataLossError(std::string("the stored counter '") + key + "' is damaged");
  }
  return *value;
}

}  // namespace

absl::StatusOr<std::optional<StoredInput>> RocksBackingStore::ReadInput(std::string_view key) {
  // The key is the input's name as given; the value is decoded where RocksDB holds it.
  rocksdb::PinnableSlice bytes;
  absl::StatusOr<bool> found = store_->Get(Table::kInputs, key, &bytes);
  if (!found.ok()) {
    // The user's data: said loudly, once per input (the engine keeps the error it makes).
    spdlog::error("input '{}' cannot be read: {}", key, std::string(found.status().message()));
    return found.status();
  }
  if (!*found) return std::nullopt;
  std::optional<StoredInput> input = DecodeInputRecord(bytes.ToStringView());
  if (!input.has_value()) {
    spdlog::error("input '{}' is stored damaged", key);
    return absl::DataLossError("input '" + std::string(key) + "' is stored damaged");
  }
  return input;
}

absl::Status RocksBackingStore::WriteInputs(
    const std::vector<std::pair<std::string, StoredInput>>& inputs, uint64_t next_stamp) {
  rocksdb::WriteBatch batch;
  std::string bytes;
  for (const auto& [key, input] : inputs) {
    bytes.clear();
    EncodeInputRecord(input, &bytes);
    batch.Put(store_->handle(Table::kInputs), key, bytes);
  }
  bytes.clear();
  EncodeCounter(next_stamp, &bytes);
  batch.Put(store_->handle(Table::kMeta), kNextStampKey, bytes);
  return store_->Write(batch, /*sync=*/true);  // the user's data: durable on return
}

absl::Status RocksBackingStore::DeleteInputs(const std::vector<std::string>& keys,
                                             uint64_t next_stamp) {
  rocksdb::WriteBatch batch;
  for (const std::string& key : keys) batch.Delete(store_->handle(Table::kInputs), key);
  std::string bytes;
  EncodeCounter(next_stamp, &bytes);
  batch.Put(store_->handle(Table::kMeta), kNextStampKey, bytes);
  return store_->Write(batch, /*sync=*/true);  // as WriteInputs: durable on return
}

absl::StatusOr<uint64_t> RocksBackingStore::NextStamp() {
  return ReadCounter(*store_, kNextStampKey);
}

absl::StatusOr<uint64_t> RocksBackingStore::NextTaskId() {
  return ReadCounter(*store_, kNextTaskIdKey);
}

absl::StatusOr<std::optional<StoredTask>> RocksBackingStore::FindTask(uint64_t hash,
                                                                      std::string_view identity) {
  // The identity is part of the key, so RocksDB's own key comparison makes the lookup
  // exact: two identities with one hash are two keys. One point read, and a task that was
  // never stored is usually turned away by the bloom filter without reading a block.
  thread_local std::string key;
  key.resize(8);
  PutBigEndian(hash, key.data());
  key.append(identity);
  thread_local rocksdb::PinnableSlice value;
  value.Reset();
  absl::StatusOr<bool> found = store_->Get(Table::kTasks, key, &value);
  if (!found.ok()) return found.status();
  if (!*found) return std::nullopt;
  std::optional<StoredTask> task = DecodeTaskRecord(key, value.ToStringView());
  value.Reset();  // unpin the block
  if (!task.has_value()) return absl::DataLossError("a stored task is damaged");
  return task;
}

absl::StatusOr<std::optional<StoredTask>> RocksBackingStore::ReadTask(uint64_t id) {
  // The id index names the task's key in `tasks`: two point reads.
  char id_key[8];
  PutBigEndian(id, id_key);
  thread_local rocksdb::PinnableSlice key;
  key.Reset();
  absl::StatusOr<bool> indexed = store_->Get(Table::kTaskIds, std::string_view(id_key, 8), &key);
  if (!indexed.ok()) return indexed.status();
  if (!*indexed) return std::nullopt;
  thread_local rocksdb::PinnableSlice value;
  value.Reset();
  absl::StatusOr<bool> found = store_->Get(Table::kTasks, key.ToStringView(), &value);
  std::optional<StoredTask> task;
  if (found.ok() && *found) task = DecodeTaskRecord(key.ToStringView(), value.ToStringView());
  key.Reset();
  value.Reset();
  if (!found.ok()) return found.status();
  if (!*found || !task.has_value() || task->id != id) {
    return absl::DataLossError("the id index names a task that is not stored");
  }
  return task;
}

absl::Status RocksBackingStore::WriteSnapshot(const std::vector<StoredTask>& tasks,
                                              uint64_t next_task_id, uint64_t next_stamp) {
  // Each table's records go into the batch in key order. A memtable starts an insert where
  // its previous one went, so in-order inserts skip most of the skiplist search; with
  // random hashes in queue order, that search (a cache miss at every level) was the
  // snapshot's largest cost.
  std::vector<const StoredTask*> order;
  order.reserve(tasks.size());
  for (const StoredTask& task : tasks) order.push_back(&task);
  std::sort(order.begin(), order.end(), [](const StoredTask* a, const StoredTask* b) {
    return a->hash != b->hash ? a->hash < b->hash : a->identity < b->identity;
  });
  rocksdb::WriteBatch batch(BatchBytes(tasks));
  for (const StoredTask* task : order) PutTask(*task, batch);
  std::sort(order.begin(), order.end(),
            [](const StoredTask* a, const StoredTask* b) { return a->id < b->id; });
  for (const StoredTask* task : order) {
    if (!task->stored) PutTaskId(*task, batch);
    if (task->last_used != 0) PutLastUse(task->id, task->last_used, batch);
  }
  std::string bytes;
  EncodeCounter(next_task_id, &bytes);
  batch.Put(store_->handle(Table::kMeta), kNextTaskIdKey, bytes);
  bytes.clear();
  EncodeCounter(next_stamp, &bytes);
  batch.Put(store_->handle(Table::kMeta), kNextStampKey, bytes);
  return store_->Write(batch, /*sync=*/false);
}

void RocksBackingStore::PutTask(const StoredTask& task, rocksdb::WriteBatch& batch) {
  // Keys and values are written from their parts: no intermediate strings.
  char hash[8];
  PutBigEndian(task.hash, hash);
  char id[8];
  PutBigEndian(task.id, id);
  const rocksdb::Slice key[] = {{hash, 8}, {task.identity.data(), task.identity.size()}};
  const rocksdb::Slice value[] = {{id, 8}, {task.result.data(), task.result.size()}};
  batch.Put(store_->handle(Table::kTasks), rocksdb::SliceParts(key, 2),
            rocksdb::SliceParts(value, 2));
}

void RocksBackingStore::PutTaskId(const StoredTask& task, rocksdb::WriteBatch& batch) {
  char id[8];
  PutBigEndian(task.id, id);
  char hash[8];
  PutBigEndian(task.hash, hash);
  const rocksdb::Slice key(id, 8);
  const rocksdb::Slice value[] = {{hash, 8}, {task.identity.data(), task.identity.size()}};
  batch.Put(store_->handle(Table::kTaskIds), rocksdb::SliceParts(&key, 1),
            rocksdb::SliceParts(value, 2));
}

void RocksBackingStore::PutLastUse(uint64_t id, uint16_t day, rocksdb::WriteBatch& batch) {
  char key[8];
  PutBigEndian(id, key);
  const char value[2] = {static_cast<char>(day >> 8), static_cast<char>(day & 0xff)};
  batch.Put(store_->handle(Table::kTaskUse), rocksdb::Slice(key, 8), rocksdb::Slice(value, 2));
}

absl::Status RocksBackingStore::WriteLastUse(const std::vector<LastUse>& uses) {
  rocksdb::WriteBatch batch;
  for (const LastUse& use : uses) PutLastUse(use.id, use.day, batch);
  return store_->Write(batch, /*sync=*/false);
}

namespace {

// RocksTaskScan reads `tasks` in key order, and each task's day from `task_use`, both as of
// the moment the scan opened.
class RocksTaskScan final : public TaskScan {
 public:
  explicit RocksTaskScan(std::unique_ptr<TableScan> scan) : scan_(std::move(scan)) {}

  absl::StatusOr<bool> Next(size_t limit,
                            const std::function<void(const StoredTask& task)>& visit) override {
    absl::Status failed;
    absl::StatusOr<bool> more =
        scan_->Next(limit, [&](std::string_view key, std::string_view value) {
          std::optional<StoredTask> task = DecodeTaskRecord(key, value);
          if (!task.has_value() || !failed.ok()) return;  // damaged: not a task to keep
          char id[8];
          PutBigEndian(task->id, id);
          std::string day;
          absl::StatusOr<bool> found = scan_->Get(Table::kTaskUse, std::string_view(id, 8), &day);
          if (!found.ok()) {
            failed = found.status();
            return;
          }
          if (*found && day.size() == 2) {
            task->last_used = static_cast<uint16_t>(static_cast<unsigned char>(day[0]) << 8 |
                                                    static_cast<unsigned char>(day[1]));
          }
          visit(*task);
        });
    if (!failed.ok()) return failed;
    return more;
  }

 private:
  std::unique_ptr<TableScan> scan_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<TaskScan>> RocksBackingStore::ScanTasks() {
  return std::unique_ptr<TaskScan>(new RocksTaskScan(store_->Scan(Table::kTasks)));
}

absl::Status RocksBackingStore::DeleteTasks(const std::vector<uint64_t>& ids) {
  rocksdb::WriteBatch batch;
  std::string key;
  std::string value;
  for (uint64_t id : ids) {
    char id_key[8];
    PutBigEndian(id, id_key);
    const rocksdb::Slice id_slice(id_key, 8);
    absl::StatusOr<bool> indexed = store_->Get(Table::kTaskIds, std::string_view(id_key, 8), &key);
    if (!indexed.ok()) return indexed.status();
    if (*indexed) {
      // The record goes only if it is this task's: a damaged id index may name another's.
      absl::StatusOr<bool> found = store_->Get(Table::kTasks, key, &value);
      if (!found.ok()) return found.status();
      if (*found && value.size() >= 8 && GetBigEndian(value.data()) == id) {
        batch.Delete(store_->handle(Table::kTasks), key);
      }
    }
    batch.Delete(store_->handle(Table::kTaskIds), id_slice);
    batch.Delete(store_->handle(Table::kTaskUse), id_slice);
  }
  return store_->Write(batch, /*sync=*/false);
}

absl::StatusOr<uint64_t> RocksBackingStore::DiskBytes() { return store_->DiskBytes(); }

absl::Status RocksBackingStore::Reclaim() { return store_->CompactAll(); }

absl::Status RocksBackingStore::Settle(uint64_t min_bytes) { return store_->Settle(min_bytes); }

void RocksBackingStore::StopReclaiming() { store_->StopCompacting(); }

}  // namespace turbine::storage
