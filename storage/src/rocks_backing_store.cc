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

}  // namespace

absl::StatusOr<std::optional<StoredInput>> RocksBackingStore::ReadInput(std::string_view key) {
  std::string bytes;
  absl::StatusOr<bool> found = store_->Get(Table::kInputs, key, &bytes);
  if (!found.ok()) return found.status();
  if (!*found) return std::nullopt;
  InputRecord record;
  if (!internal::DeserializeFrom(bytes, &record)) {
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
  std::string bytes;
  absl::StatusOr<bool> found = store_->Get(Table::kMeta, kNextStampKey, &bytes);
  if (!found.ok()) return found.status();
  if (!*found) return uint64_t{1};
  uint64_t next = 0;
  if (!internal::DeserializeFrom(bytes, &next)) {
    return absl::DataLossError("the stored stamp counter is damaged");
  }
  return next;
}

}  // namespace turbine::storage
