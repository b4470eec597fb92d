// store_upgrade.cc — from format version 2 or 3 to 4, in two steps: tasks whose identity is
// too long to be a key move to their digest key (from 2, then the store says 3), and inputs
// whose name is too long move to their name key (from 3: the store says 4, and that the
// move is under way until it is done); format.h.
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <optional>
#include <string>

#include "records.h"
#include "turbine/storage/format.h"
#include "turbine/storage/store.h"

namespace turbine::storage {
namespace {

// A step writes what it moves in batches of this size or a record more: each synced. A
// step cut short runs again, and what it moved already it recognizes (below).
constexpr size_t kBatchBytes = size_t{64} << 20;

}  // namespace

void Store::WriteIfFull(rocksdb::WriteBatch& batch, absl::Status& failed) {
  if (batch.GetDataSize() < kBatchBytes) return;
  failed = Write(batch, /*sync=*/true);
  batch.Clear();
}

absl::Status Store::FinishUpgrade(UpgradeStep step) {
  std::lock_guard lock(upgrade_mu_);
  for (UpgradeStep next : {UpgradeStep::kIdentities, UpgradeStep::kNames}) {
    if (static_cast<int>(next) > static_cast<int>(step)) break;
    if (!UpgradePending(next)) continue;
    absl::Status done = next == UpgradeStep::kIdentities ? RekeyLongIdentities() : RekeyLongNames();
    if (!done.ok()) return done;
    pending_steps_.fetch_and(~StepBit(next), std::memory_order_acq_rel);
  }
  return absl::OkStatus();
}

absl::Status Store::RekeyLongIdentities() {
  // Version 2 keyed every task by its whole identity. Those over the limit are found by
  // a scan, each written again under its digest key with the id index pointing there, and
  // the old key deleted: a lookup by identity would miss it, and a snapshot rewriting the
  // task under the new key would leave the id index naming the old record. The scan reads
  // as of its start, so its own writes do not come back to it; deletions of tasks hold
  // UpgradeLock, so none lands between the scan and a batch to be undone by it. A moved
  // task's key is short: a rerun passes it by.
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
        WriteIfFull(batch, failed);
      });
  if (!scanned.ok()) return scanned;
  if (!failed.ok()) return failed;
  batch.Put(handle(Table::kMeta), kFormatVersionKey, "3");
  if (absl::Status written = Write(batch, /*sync=*/true); !written.ok()) return written;
  spdlog::info("cache database {} upgraded from format version 2 to 3: {} tasks rekeyed", path_,
               moved);
  return absl::OkStatus();
}

absl::Status Store::RekeyLongNames() {
  // Before version 4, an input's key was its whole name, however long. Those over the
  // limit move to their name key, the name into the value. A key of a digest key's size
  // may be either while the move is under way, but the value tells: one that holds a name
  // matching the key was moved already (a version 3 value starts with a small little-endian
  // length, too large read big-endian). Inputs are the user's data: every batch is synced,
  // and the old key goes in the batch that writes the new.
  //
  // The store says 4 before the first input moves, and kMovingInputNamesKey says the step
  // is under way (format.h): a build of version 3 must not read a table moved in part.
  //
  // The log of changes is left as it is: an entry tells its layout by its value (empty
  // before), so a version 3 entry is read as such until pruned. Entries logged while the
  // step is pending keep that layout too: a store not upgraded yet still says 3.
  rocksdb::WriteBatch batch;
  batch.Put(handle(Table::kMeta), kFormatVersionKey, std::to_string(kFormatVersion));
  batch.Put(handle(Table::kMeta), kMovingInputNamesKey, "");
  if (absl::Status written = Write(batch, /*sync=*/true); !written.ok()) return written;
  batch.Clear();
  size_t moved = 0;
  absl::Status failed;
  absl::Status scanned =
      ForEach(Table::kInputs, [&](std::string_view name, std::string_view value) {
        if (name.size() <= kLongestKeyedName || !failed.ok()) return;
        if (name.size() == NameKey::kDigestedSize && NameAndValue(name, value).has_value()) {
          return;  // moved by an earlier run
        }
        const NameKey key(name);
        batch.Delete(handle(Table::kInputs), rocksdb::Slice(name.data(), name.size()));
        batch.Put(handle(Table::kInputs), rocksdb::Slice(key.key().data(), key.key().size()),
                  NamedValue(key, name, value));
        ++moved;
        WriteIfFull(batch, failed);
      });
  if (!scanned.ok()) return scanned;
  if (!failed.ok()) return failed;
  batch.Delete(handle(Table::kMeta), kMovingInputNamesKey);
  if (absl::Status written = Write(batch, /*sync=*/true); !written.ok()) return written;
  spdlog::info("cache database {} upgraded to format version {}: {} inputs rekeyed", path_,
               kFormatVersion, moved);
  return absl::OkStatus();
}

}  // namespace turbine::storage
