// store_upgrade.cc — from format version 2 or 3 to 4: tasks whose identity (from 2), and
// inputs and logged changes whose name (from 2 or 3), is too long to be a key move to their
// digest key (format.h).
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <optional>
#include <string>

#include "records.h"
#include "turbine/storage/format.h"
#include "turbine/storage/store.h"

namespace turbine::storage {

absl::Status Store::FinishUpgrade() {
  std::lock_guard lock(upgrade_mu_);
  if (!UpgradePending()) return absl::OkStatus();
  absl::Status upgraded = upgrade_from_ == 2 ? RekeyLongIdentities() : absl::OkStatus();
  if (upgraded.ok()) upgraded = RekeyLongNames();
  if (upgraded.ok()) upgrade_pending_.store(false, std::memory_order_release);
  return upgraded;
}

absl::Status Store::RekeyLongIdentities() {
  // Version 2 keyed every task by its whole identity. Those over the limit are found by
  // a scan, each written again under its digest key with the id index pointing there, and
  // the old key deleted: a lookup by identity would miss it, and a snapshot rewriting the
  // task under the new key would leave the id index naming the old record. The scan reads
  // as of its start, so its own writes do not come back to it. The version changes after
  // the last batch (RekeyLongNames): an upgrade cut short runs again at the next open (what
  // it moved already has short keys).
  constexpr size_t kBatchBytes = size_t{64} << 20;
  rocksdb::WriteBatch batch;
  size_t moved = 0;
  absl::Status failed;
  absl::Status scanned =
      ForEach(Table::kTasks, [&](std::string_view old_key, std::string_view value) {
        if (old_key.size() <= 8 + kLongestKeyedIdentity || !failed.ok()) return;
        batch.Delete(handle(Table::kTasks), rocksdb::Slice(old_key.data(), old_key.size()));
        std::optional<StoredTask> task = DecodeTaskRecord(old_key, value);
        if (!task.has_value()) return;  // damaged (DATA_LOSS to a lookup): dropped
        const TaskKey key(task->hash, task->identity);
        char head[16];
        const size_t head_size = TaskValueHead(task->id, key, task->identity.size(), head);
        const std::string new_key(key.head());
        std::string new_value(head, head_size);
        new_value.append(task->identity).append(task->result);
        batch.Put(handle(Table::kTasks), new_key, new_value);
        char id[8];
        PutBigEndian(task->id, id);
        batch.Put(handle(Table::kTaskIds), rocksdb::Slice(id, 8), new_key);
        ++moved;
        if (batch.GetDataSize() >= kBatchBytes) {
          failed = Write(batch, /*sync=*/true);
          batch.Clear();
        }
      });
  if (!scanned.ok()) return scanned;
  if (!failed.ok()) return failed;
  if (absl::Status written = Write(batch, /*sync=*/true); !written.ok()) return written;
  spdlog::info("cache database {}: {} tasks with long identities rekeyed", path_, moved);
  return absl::OkStatus();
}

absl::Status Store::RekeyLongNames() {
  // Before version 4, an input's name was its whole key, however long, and the tail of its
  // entries in the log of changes. Those over the limit move to their NameKey, the name
  // into the value. Unlike the tasks', this move is one batch, with the version: a key of
  // NameKey's digested size is a whole name before it and a digest key after, so an
  // upgrade cut short must leave none of the second kind. (A log entry tells by its value,
  // empty before; the inputs table cannot.) Inputs are the user's data: it is synced.
  rocksdb::WriteBatch batch;
  size_t inputs = 0;
  absl::Status scanned =
      ForEach(Table::kInputs, [&](std::string_view name, std::string_view value) {
        if (name.size() <= kLongestKeyedName) return;
        const NameKey key(name);
        batch.Delete(handle(Table::kInputs), rocksdb::Slice(name.data(), name.size()));
        batch.Put(handle(Table::kInputs), rocksdb::Slice(key.key().data(), key.key().size()),
                  NamedValue(key, name, value));
        ++inputs;
      });
  if (!scanned.ok()) return scanned;
  const std::string_view prefix(kInputChangePrefix, sizeof(kInputChangePrefix) - 1);
  scanned = ForEach(Table::kMeta, [&](std::string_view old_key, std::string_view value) {
    if (old_key.size() <= prefix.size() + 8 + kLongestKeyedName || !value.empty() ||
        old_key.substr(0, prefix.size()) != prefix) {
      return;
    }
    const std::string_view name = old_key.substr(prefix.size() + 8);
    const NameKey key(name);
    std::string new_key(old_key.substr(0, prefix.size() + 8));
    new_key.append(key.key());
    batch.Delete(handle(Table::kMeta), rocksdb::Slice(old_key.data(), old_key.size()));
    batch.Put(handle(Table::kMeta), new_key, NamedValue(key, name, {}));
  });
  if (!scanned.ok()) return scanned;
  batch.Put(handle(Table::kMeta), kFormatVersionKey, std::to_string(kFormatVersion));
  if (absl::Status written = Write(batch, /*sync=*/true); !written.ok()) return written;
  spdlog::info("cache database {} upgraded from format version {} to {}: {} inputs rekeyed", path_,
               upgrade_from_, kFormatVersion, inputs);
  return absl::OkStatus();
}

}  // namespace turbine::storage
