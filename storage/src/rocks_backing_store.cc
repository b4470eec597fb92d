// rocks_backing_store.cc — inputs and the stamp counter in RocksDB (layout in format.h).
#include "turbine/storage/rocks_backing_store.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>

#include <tuple>

#include "turbine/internal/byte_streams.h"
#include "turbine/storage/format.h"

namespace turbine::storage {
namespace {

using InputRecord = std::tuple<std::string, std::string, uint64_t>;  // type, bytes, stamp

// Keys with integers are big-endian so that bytewise order is numeric order and a hash
// prefix scan finds all candidates of one hash together. Built in stack buffers.
void PutBigEndian(uint64_t value, char* out) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(value & 0xff);
    value >>= 8;
  }
}
uint64_t GetBigEndian(const char* in) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | static_cast<unsigned char>(in[i]);
  return value;
}

absl::StatusOr<uint64_t> ReadCounter(Store& store, const char* key) {
  std::string bytes;
  absl::StatusOr<bool> found = store.Get(Table::kMeta, key, &bytes);
  if (!found.ok()) return found.status();
  if (!*found) return uint64_t{1};
  uint64_t value = 0;
  if (!internal::DeserializeFrom(bytes, &value)) {
    return absl::DataLossError(std::string("the stored counter '") + key + "' is damaged");
  }
  return value;
}

}  // namespace

absl::StatusOr<std::optional<StoredInput>> RocksBackingStore::ReadInput(std::string_view key) {
  // The key is the input's name as given; the value is decoded where RocksDB holds it.
  rocksdb::PinnableSlice bytes;
  absl::StatusOr<bool> found = store_->Get(Table::kInputs, key, &bytes);
  if (!found.ok()) return found.status();
  if (!*found) return std::nullopt;
  InputRecord record;
  if (!internal::DeserializeFrom(bytes.ToStringView(), &record)) {
    return absl::DataLossError("input '" + std::string(key) + "' is stored damaged");
  }
  return StoredInput{std::move(std::get<0>(record)), std::move(std::get<1>(record)),
                     std::get<2>(record)};
}

absl::Status RocksBackingStore::WriteInputs(
    const std::vector<std::pair<std::string, StoredInput>>& inputs, uint64_t next_stamp) {
  rocksdb::WriteBatch batch;
  std::string bytes;
  for (const auto& [key, input] : inputs) {
    bytes.clear();
    internal::SerializeTo(InputRecord{input.type_name, input.bytes, input.stamp}, &bytes);
    batch.Put(store_->handle(Table::kInputs), key, bytes);
  }
  bytes.clear();
  internal::SerializeTo(next_stamp, &bytes);
  batch.Put(store_->handle(Table::kMeta), kNextStampKey, bytes);
  return store_->Write(batch, /*sync=*/true);  // the user's data: durable on return
}

absl::StatusOr<uint64_t> RocksBackingStore::NextStamp() {
  return ReadCounter(*store_, kNextStampKey);
}

absl::StatusOr<uint64_t> RocksBackingStore::NextTaskId() {
  return ReadCounter(*store_, kNextTaskIdKey);
}

absl::StatusOr<std::optional<StoredTask>> RocksBackingStore::ReadTask(uint64_t id) {
  char key[8];
  PutBigEndian(id, key);
  StoredTask task;
  task.id = id;
  absl::StatusOr<bool> found = store_->Get(Table::kTaskType, std::string_view(key, 8),
                                           &task.identity);
  if (!found.ok()) return found.status();
  if (!*found) return std::nullopt;
  absl::StatusOr<bool> has_result =
      store_->Get(Table::kTaskMeta, std::string_view(key, 8), &task.result);
  if (!has_result.ok()) return has_result.status();
  return task;
}

absl::StatusOr<std::optional<StoredTask>> RocksBackingStore::FindTask(uint64_t hash,
                                                                      std::string_view identity) {
  char prefix[8];
  PutBigEndian(hash, prefix);
  std::unique_ptr<rocksdb::Iterator> it(
      store_->db().NewIterator(rocksdb::ReadOptions(), store_->handle(Table::kTaskCache)));
  // Every candidate is compared byte for byte: equal hashes are not equal identities.
  for (it->Seek(rocksdb::Slice(prefix, 8)); it->Valid() && it->key().starts_with(
                                                 rocksdb::Slice(prefix, 8));
       it->Next()) {
    if (it->key().size() != 16) continue;
    // The candidate's identity is compared where RocksDB holds it (a pinned block or the
    // reused slice), so a candidate that is not the one costs no copy.
    thread_local rocksdb::PinnableSlice stored_identity;
    stored_identity.Reset();
    const std::string_view id_key(it->key().data() + 8, 8);
    absl::StatusOr<bool> read = store_->Get(Table::kTaskType, id_key, &stored_identity);
    if (!read.ok()) return read.status();
    if (!*read) continue;
    if (std::string_view(stored_identity.data(), stored_identity.size()) != identity) continue;
    stored_identity.Reset();  // unpin before the next read
    StoredTask task{GetBigEndian(id_key.data()), hash, std::string(identity), {}};
    absl::StatusOr<bool> has_result = store_->Get(Table::kTaskMeta, id_key, &task.result);
    if (!has_result.ok()) return has_result.status();
    return task;
  }
  if (!it->status().ok()) return absl::UnavailableError(it->status().ToString());
  return std::nullopt;
}

BackingStore::Size RocksBackingStore::DiskSize() {
  Size size;
  uint64_t value = 0;
  if (store_->db().GetIntProperty(store_->handle(Table::kTaskType), "rocksdb.estimate-num-keys",
                                  &value)) {
    size.tasks = value;
  }
  for (int t = 0; t < kTableCount; ++t) {
    rocksdb::ColumnFamilyHandle* handle = store_->handle(static_cast<Table>(t));
    if (store_->db().GetIntProperty(handle, "rocksdb.total-sst-files-size", &value)) {
      size.bytes += value;
    }
    if (store_->db().GetIntProperty(handle, "rocksdb.cur-size-all-mem-tables", &value)) {
      size.bytes += value;
    }
  }
  return size;
}

absl::Status RocksBackingStore::WriteSnapshot(const std::vector<StoredTask>& tasks,
                                              uint64_t next_task_id, uint64_t next_stamp) {
  rocksdb::WriteBatch batch;
  for (const StoredTask& task : tasks) {
    char id_key[8];
    PutBigEndian(task.id, id_key);
    char cache_key[16];
    PutBigEndian(task.hash, cache_key);
    PutBigEndian(task.id, cache_key + 8);
    batch.Put(store_->handle(Table::kTaskCache), rocksdb::Slice(cache_key, 16), rocksdb::Slice());
    batch.Put(store_->handle(Table::kTaskType), rocksdb::Slice(id_key, 8), task.identity);
    if (!task.result.empty()) {
      batch.Put(store_->handle(Table::kTaskMeta), rocksdb::Slice(id_key, 8), task.result);
    }
  }
  std::string bytes;
  internal::SerializeTo(next_task_id, &bytes);
  batch.Put(store_->handle(Table::kMeta), kNextTaskIdKey, bytes);
  bytes.clear();
  internal::SerializeTo(next_stamp, &bytes);
  batch.Put(store_->handle(Table::kMeta), kNextStampKey, bytes);
  return store_->Write(batch, /*sync=*/false);
}

}  // namespace turbine::storage
