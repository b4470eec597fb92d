// rocks_backing_store.cc — tasks, inputs and counters in RocksDB (layout in format.h).
#include "turbine/storage/rocks_backing_store.h"

#include <absl/cleanup/cleanup.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "records.h"
#include "turbine/internal/xxh3.h"
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
    const size_t key_bytes = std::min(task.identity.size(), kLongestKeyedIdentity);
    bytes += kRecordOverhead + 2 * key_bytes + task.identity.size() + task.result.size();
    if (task.observation.has_value()) bytes += kRecordOverhead + task.observation->size();
  }
  return bytes;
}

// IndexedTask is the record the id index names for task `id` (`value` if `tasks` has its
// key): a record missing, damaged or of another id is a damaged store.
absl::StatusOr<std::optional<StoredTask>> IndexedTask(uint64_t id, std::string_view key,
                                                      std::optional<std::string_view> value) {
  std::optional<StoredTask> task;
  if (value.has_value()) task = DecodeTaskRecord(key, *value);
  if (!task.has_value() || task->id != id) {
    return absl::DataLossError("the id index names a task that is not stored");
  }
  return task;
}

rocksdb::Slice ToSlice(std::string_view bytes) { return {bytes.data(), bytes.size()}; }

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
  // The key is the input's name as given, or for a long one its NameKey, the name then
  // leading the value; the value is decoded where RocksDB holds it.
  const NameKey name_key(key);
  // Asked before the read: a step that ends between the read and the question would leave
  // a miss of an input it moved unexplained.
  const bool pending = store_->UpgradePending(Store::UpgradeStep::kNames);
  rocksdb::PinnableSlice bytes;
  absl::StatusOr<bool> found = store_->Get(Table::kInputs, name_key.key(), &bytes);
  bool old_layout = false;
  if (found.ok() && !*found && name_key.digested() && pending) {
    // A version 3 store not upgraded yet keeps it under its whole name. Both keys are read
    // again with the upgrade held off: it may have moved the input since the first read.
    auto no_upgrade = store_->UpgradeLock();
    bytes.Reset();
    found = store_->Get(Table::kInputs, name_key.key(), &bytes);
    if (found.ok() && !*found) {
      old_layout = true;
      found = store_->Get(Table::kInputs, key, &bytes);
    }
  }
  if (!found.ok()) {
    // The user's data: said loudly, once per input (the engine keeps the error it makes).
    spdlog::error("input '{}' cannot be read: {}", key, std::string(found.status().message()));
    return found.status();
  }
  if (!*found) return std::nullopt;
  std::optional<std::pair<std::string_view, std::string_view>> named =
      NameAndValue(old_layout ? std::string_view() : name_key.key(), bytes.ToStringView());
  std::optional<StoredInput> input;
  if (named.has_value() && (old_layout || named->first == key)) {
    input = DecodeInputRecord(named->second);
  }
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
    const NameKey name_key(key);
    if (name_key.digested()) {
      // A version 3 store not upgraded yet is upgraded before its first long-name key.
      absl::Status upgraded = store_->FinishUpgrade(Store::UpgradeStep::kNames);
      if (!upgraded.ok()) return upgraded;
      bytes = NamedValue(name_key, key, bytes);
    }
    batch.Put(store_->handle(Table::kInputs), ToSlice(name_key.key()), bytes);
    LogInputChange(input.stamp, key, batch);
  }
  if (changes_since_prune_.fetch_add(inputs.size()) + inputs.size() > keep_changes_.load()) {
    changes_since_prune_.store(0);
    if (absl::StatusOr<InputChangeLog> pruned = PruneInputChanges(batch, /*at_open=*/false); !pruned.ok()) {
      return pruned.status();
    }
  }
  // The user's data: durable on return.
  return WriteWithNextStamp(next_stamp, batch, /*sync=*/true);
}

absl::Status RocksBackingStore::DeleteInputs(const std::vector<std::string>& keys,
                                             uint64_t next_stamp) {
  rocksdb::WriteBatch batch;
  for (const std::string& key : keys) {
    const NameKey name_key(key);
    if (name_key.digested()) {
      absl::Status upgraded = store_->FinishUpgrade(Store::UpgradeStep::kNames);
      if (!upgraded.ok()) return upgraded;
    }
    batch.Delete(store_->handle(Table::kInputs), ToSlice(name_key.key()));
    LogInputChange(next_stamp - 1, key, batch);
  }
  changes_since_prune_.fetch_add(keys.size());
  return WriteWithNextStamp(next_stamp, batch, /*sync=*/true);  // as WriteInputs: durable
}

absl::Status RocksBackingStore::LogInputChanges(const std::vector<InputChange>& changes,
                                               const std::vector<StoredObservation>& observations,
                                               uint64_t next_stamp) {
  rocksdb::WriteBatch batch;
  for (const InputChange& change : changes) LogInputChange(change.stamp, change.key, batch);
  for (const StoredObservation& observation : observations) {
    PutObservation(observation.id, observation.bytes, batch);
  }
  changes_since_prune_.fetch_add(changes.size());
  return WriteWithNextStamp(next_stamp, batch, /*sync=*/false);
}

absl::StatusOr<std::vector<StoredObservation>> RocksBackingStore::ReadObservations() {
  std::vector<StoredObservation> observations;
  absl::Status scanned =
      store_->ForEach(Table::kObservations, [&](std::string_view key, std::string_view value) {
        if (key.size() != 8) return;  // damaged: the task is simply not trusted
        observations.push_back(StoredObservation{GetBigEndian(key.data()), std::string(value)});
      });
  if (!scanned.ok()) return scanned;
  return observations;
}

absl::Status RocksBackingStore::WriteWithNextStamp(uint64_t next_stamp, rocksdb::WriteBatch& batch,
                                                   bool sync) {
  // Held through the write: the log must receive the counters in order, not just compute
  // them in order. RocksDB queues concurrent writers behind one another anyway.
  std::lock_guard<std::mutex> lock(counter_mu_);
  next_stamp = std::max(next_stamp, next_stamp_written_);
  std::string bytes;
  EncodeCounter(next_stamp, &bytes);
  batch.Put(store_->handle(Table::kMeta), kNextStampKey, bytes);
  if (log_vouched_.load()) batch.Put(store_->handle(Table::kMeta), kInputChangesThroughKey, bytes);
  // Whatever the outcome: a write reported failed may still be in the log (its sync
  // failed after the append, or a reopen replays it), and a counter too high only skips
  // stamps.
  next_stamp_written_ = next_stamp;
  return store_->Write(batch, sync);
}

void RocksBackingStore::LogInputChange(uint64_t stamp, std::string_view key,
                                       rocksdb::WriteBatch& batch) {
  // A long name is logged under its NameKey, with the name's hash (all a restart needs of
  // it: InputChange) as the value (format.h); in a store of an older version, under the
  // whole name, as a build of that version reads it.
  char stamp_bytes[8];
  PutBigEndian(stamp, stamp_bytes);
  const NameKey name_key(key);
  const bool digested = name_key.digested() && !store_->UpgradePending(Store::UpgradeStep::kNames);
  const std::string_view tail = digested ? name_key.key() : key;
  const rocksdb::Slice parts[] = {{kInputChangePrefix, sizeof(kInputChangePrefix) - 1},
                                  {stamp_bytes, 8},
                                  {tail.data(), tail.size()}};
  char hash[8];
  if (digested) PutBigEndian(XXH3_64bits(key.data(), key.size()), hash);
  const rocksdb::Slice value(hash, digested ? 8 : 0);
  batch.Put(store_->handle(Table::kMeta), rocksdb::SliceParts(parts, 3),
            rocksdb::SliceParts(&value, 1));
}

absl::StatusOr<InputChangeLog> RocksBackingStore::ReadInputChanges(size_t keep) {
  keep_changes_.store(std::max<size_t>(keep, 1));
  changes_since_prune_.store(0);
  rocksdb::WriteBatch batch;
  absl::StatusOr<InputChangeLog> log = PruneInputChanges(batch, /*at_open=*/true);
  if (!log.ok()) return log.status();
  // Not synced: a crash brings dropped changes back, which only makes the log longer. A
  // reset that is not written must not be overtaken by a later write claiming the log
  // complete, so until one is, writes make no such claim (WriteWithNextStamp).
  bool written = batch.Count() == 0;
  if (!written && !store_->ReadOnly()) {
    absl::Status status = store_->Write(batch, /*sync=*/false);
    written = status.ok();
    if (!written) {
      spdlog::warn("the log of input changes was not pruned: {}", std::string(status.message()));
    }
  }
  log_vouched_.store(written);
  return log;
}

absl::StatusOr<InputChangeLog> RocksBackingStore::PruneInputChanges(rocksdb::WriteBatch& batch,
                                                                     bool at_open) {
  absl::StatusOr<uint64_t> next_stamp = ReadCounter(*store_, kNextStampKey);
  if (!next_stamp.ok()) return next_stamp.status();
  absl::StatusOr<uint64_t> through = ReadCounter(*store_, kInputChangesThroughKey);
  if (!through.ok()) return through.status();
  std::string since_bytes;
  absl::StatusOr<bool> has_since = store_->Get(Table::kMeta, kInputChangesSinceKey, &since_bytes);
  if (!has_since.ok()) return has_since.status();
  InputChangeLog log;
  if (*has_since) {
    std::optional<uint64_t> since = DecodeCounter(since_bytes);
    if (!since.has_value()) return absl::DataLossError("the stored input change floor is damaged");
    log.since = *since;
  }
  const std::string_view prefix(kInputChangePrefix, sizeof(kInputChangePrefix) - 1);
  struct Entry {
    std::string key;
    InputChange change;  // its stamp is set below
  };
  std::vector<Entry> entries;    // of the log, in stamp order
  uint64_t damaged_through = 0;  // the highest stamp of an entry whose input is unknown
  absl::Status scanned =
      store_->ForEach(Table::kMeta, [&](std::string_view key, std::string_view value) {
        if (key.size() < prefix.size() + 8 || key.substr(0, prefix.size()) != prefix) return;
        const std::string_view tail = key.substr(prefix.size() + 8);
        Entry entry{std::string(key), {}};
        if (value.empty()) {
          entry.change.key = tail;  // the whole name (so is a long one's before version 4)
        } else if (value.size() == 8 && tail.size() == NameKey::kDigestedSize) {
          entry.change.key_hash = GetBigEndian(value.data());
        } else {
          damaged_through = std::max(damaged_through, GetBigEndian(key.data() + prefix.size()));
        }
        entries.push_back(std::move(entry));
      });
  if (!scanned.ok()) return scanned;
  const uint64_t since_before = log.since;
  // A build that keeps no log wrote after the last one that did (its stamp counter moved
  // without the log): nothing below the current stamp can be vouched for. Checked at open
  // only: later, a snapshot may move both counters between the two reads above.
  const bool foreign = at_open && *through != *next_stamp;
  if (foreign) log.since = std::max(log.since, *next_stamp - 1);
  // A change whose input is unknown could be of any: the log vouches only for later ones.
  log.since = std::max(log.since, damaged_through);
  auto stamp_of = [&](const Entry& entry) {
    return GetBigEndian(entry.key.data() + prefix.size());
  };
  if (entries.size() > keep_changes_.load()) {
    log.since = std::max(log.since, stamp_of(entries[entries.size() - keep_changes_.load() - 1]));
  }
  for (Entry& entry : entries) {
    if (stamp_of(entry) <= log.since) {
      batch.Delete(store_->handle(Table::kMeta), entry.key);
    } else {
      entry.change.stamp = stamp_of(entry);
      log.changes.push_back(std::move(entry.change));
    }
  }
  if (log.since != since_before || foreign) {
    std::string bytes;
    EncodeCounter(log.since, &bytes);
    batch.Put(store_->handle(Table::kMeta), kInputChangesSinceKey, bytes);
    if (foreign) {
      bytes.clear();
      EncodeCounter(*next_stamp, &bytes);
      batch.Put(store_->handle(Table::kMeta), kInputChangesThroughKey, bytes);
    }
  }
  return log;
}

absl::StatusOr<uint64_t> RocksBackingStore::NextStamp() {
  absl::StatusOr<uint64_t> next = ReadCounter(*store_, kNextStampKey);
  if (!next.ok()) return next;
  // Above every logged change too. This build never writes the counter back
  // (WriteWithNextStamp), but older ones did: a snapshot's write, with the counter it read
  // before its records, could land after a set's, which logs the set's stamps and a higher
  // counter. After a crash there, a stamp handed out again could be an input's own, and a
  // reader that read the input at that stamp would take a new change of it for none.
  const std::string_view prefix(kInputChangePrefix, sizeof(kInputChangePrefix) - 1);
  uint64_t logged = 0;
  absl::Status scanned =
      store_->ForEach(Table::kMeta, [&](std::string_view key, std::string_view) {
        if (key.size() >= prefix.size() + 8 && key.substr(0, prefix.size()) == prefix) {
          logged = std::max(logged, GetBigEndian(key.data() + prefix.size()));
        }
      });
  if (!scanned.ok()) return scanned;
  return std::max(*next, logged + 1);
}

absl::StatusOr<uint64_t> RocksBackingStore::NextTaskId() {
  absl::StatusOr<uint64_t> next = ReadCounter(*store_, kNextTaskIdKey);
  if (!next.ok()) return next;
  // A reservation left by a process that did not close: it may have given out ids up to
  // it that no snapshot wrote.
  absl::StatusOr<uint64_t> reserved = ReadCounter(*store_, kTaskIdsReservedKey);
  if (!reserved.ok()) return reserved;
  return std::max(*next, *reserved);
}

absl::Status RocksBackingStore::ReserveTaskIds(uint64_t end) {
  rocksdb::WriteBatch batch;
  std::string bytes;
  EncodeCounter(end, &bytes);
  batch.Put(store_->handle(Table::kMeta), kTaskIdsReservedKey, bytes);
  return store_->Write(batch, /*sync=*/true);  // before any id it covers is given out
}

absl::Status RocksBackingStore::ReleaseTaskIds(uint64_t next_task_id) {
  absl::StatusOr<uint64_t> written = ReadCounter(*store_, kNextTaskIdKey);
  if (!written.ok()) return written.status();
  rocksdb::WriteBatch batch;
  if (next_task_id > *written) {
    std::string bytes;
    EncodeCounter(next_task_id, &bytes);
    batch.Put(store_->handle(Table::kMeta), kNextTaskIdKey, bytes);
  }
  batch.Delete(store_->handle(Table::kMeta), kTaskIdsReservedKey);
  return store_->Write(batch, /*sync=*/true);
}

namespace {

// The buffers a thread reuses for point reads are kept up to this size: a call with a 5 MB
// argument, or a 300 MB record read from a memtable (copied, not pinned), kept that much
// on every thread that made one, for the life of the daemon.
constexpr size_t kReusedBufferBytes = 64 << 10;

void ReleaseIfLarge(std::string& buffer) {
  if (buffer.capacity() > kReusedBufferBytes) std::string().swap(buffer);
}
void ReleaseIfLarge(rocksdb::PinnableSlice& slice) {  // REQUIRES: Reset
  ReleaseIfLarge(*slice.GetSelf());
}
template <class A, class B>
void ReleaseIfLarge(A& a, B& b) {
  ReleaseIfLarge(a);
  ReleaseIfLarge(b);
}

}  // namespace

absl::StatusOr<std::optional<StoredTask>> RocksBackingStore::FindTask(uint64_t hash,
                                                                      std::string_view identity) {
  // The identity is part of the key, so RocksDB's own key comparison makes the lookup
  // exact: two identities with one hash are two keys. One point read, and a task that was
  // never stored is usually turned away by the bloom filter without reading a block. A
  // long identity's key holds its digest instead: the record found must hold the identity.
  const TaskKey parts(hash, identity);
  thread_local std::string key;
  key.assign(parts.head());
  key.append(parts.tail());
  thread_local rocksdb::PinnableSlice value;
  value.Reset();
  absl::Cleanup done = [] {
    value.Reset();  // unpin the block
    ReleaseIfLarge(key, value);
  };
  const bool pending = store_->UpgradePending(Store::UpgradeStep::kIdentities);  // as ReadInput
  absl::StatusOr<bool> found = store_->Get(Table::kTasks, key, &value);
  if (found.ok() && !*found && parts.digested() && pending) {
    // A version 2 store not upgraded yet keeps it under its whole identity. Both keys are
    // read again with the upgrade held off: it may have moved the task since the first read.
    auto no_upgrade = store_->UpgradeLock();
    value.Reset();
    found = store_->Get(Table::kTasks, key, &value);
    if (found.ok() && !*found) {
      key.assign(parts.head().substr(0, 8));
      key.append(identity);
      found = store_->Get(Table::kTasks, key, &value);
    }
  }
  if (!found.ok()) return found.status();
  if (!*found) return std::nullopt;
  std::optional<StoredTask> task = DecodeTaskRecord(key, value.ToStringView());
  if (!task.has_value()) return absl::DataLossError("a stored task is damaged");
  // Equal by construction for a key holding the identity; a digest key's record holds its
  // own, which a colliding digest (or a short identity of a digest key's bytes) differs from.
  if (task->identity != identity) return std::nullopt;
  return task;
}

absl::StatusOr<std::optional<StoredTask>> RocksBackingStore::ReadTask(uint64_t id) {
  const bool pending = store_->UpgradePending(Store::UpgradeStep::kIdentities);  // as ReadInput
  absl::StatusOr<std::optional<StoredTask>> task = ReadTaskOnce(id);
  if (!task.ok() && absl::IsDataLoss(task.status()) && pending) {
    // An upgrade moving tasks rewrites the index entry and the record at once; two reads
    // that straddle it find the index naming a key it moved. Read again, with it held off.
    auto no_upgrade = store_->UpgradeLock();
    task = ReadTaskOnce(id);
  }
  return task;
}

absl::StatusOr<std::optional<StoredTask>> RocksBackingStore::ReadTaskOnce(uint64_t id) {
  // The id index names the task's key in `tasks`: two point reads.
  char id_key[8];
  PutBigEndian(id, id_key);
  thread_local rocksdb::PinnableSlice key;
  thread_local rocksdb::PinnableSlice value;
  key.Reset();
  value.Reset();
  absl::Cleanup done = [] {
    key.Reset();
    value.Reset();
    ReleaseIfLarge(key, value);
  };
  absl::StatusOr<bool> indexed = store_->Get(Table::kTaskIds, std::string_view(id_key, 8), &key);
  if (!indexed.ok()) return indexed.status();
  if (!*indexed) return std::nullopt;
  absl::StatusOr<bool> found = store_->Get(Table::kTasks, key.ToStringView(), &value);
  absl::StatusOr<std::optional<StoredTask>> task =
      !found.ok() ? found.status()
                  : IndexedTask(id, key.ToStringView(),
                                *found ? std::optional(value.ToStringView()) : std::nullopt);
  return task;
}

std::vector<absl::StatusOr<std::optional<StoredTask>>> RocksBackingStore::ReadTasks(
    const std::vector<uint64_t>& ids) {
  const bool pending = store_->UpgradePending(Store::UpgradeStep::kIdentities);  // as ReadInput
  std::vector<absl::StatusOr<std::optional<StoredTask>>> tasks = ReadTasksOnce(ids);
  const bool damaged = std::any_of(tasks.begin(), tasks.end(), [](const auto& task) {
    return !task.ok() && absl::IsDataLoss(task.status());
  });
  if (damaged && pending) {
    auto no_upgrade = store_->UpgradeLock();  // as in ReadTask
    tasks = ReadTasksOnce(ids);
  }
  return tasks;
}

std::vector<absl::StatusOr<std::optional<StoredTask>>> RocksBackingStore::ReadTasksOnce(
    const std::vector<uint64_t>& ids) {
  // ReadTask's two point reads, each as one batch: the id index, then the tasks it names.
  if (ids.empty()) return {};
  std::vector<absl::StatusOr<std::optional<StoredTask>>> tasks(ids.size(), std::nullopt);
  std::vector<char> id_bytes(ids.size() * 8);
  std::vector<rocksdb::Slice> id_keys;
  id_keys.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    PutBigEndian(ids[i], &id_bytes[i * 8]);
    id_keys.emplace_back(&id_bytes[i * 8], 8);
  }
  std::vector<rocksdb::PinnableSlice> keys(ids.size());
  const std::vector<absl::StatusOr<bool>> indexed =
      store_->MultiGet(Table::kTaskIds, id_keys, keys.data());
  std::vector<size_t> stored;  // positions whose id the index names
  std::vector<rocksdb::Slice> task_keys;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!indexed[i].ok()) {
      tasks[i] = indexed[i].status();
    } else if (*indexed[i]) {
      stored.push_back(i);
      task_keys.emplace_back(keys[i]);
    }
  }
  if (stored.empty()) return tasks;
  std::vector<rocksdb::PinnableSlice> values(stored.size());
  const std::vector<absl::StatusOr<bool>> found =
      store_->MultiGet(Table::kTasks, task_keys, values.data());
  for (size_t j = 0; j < stored.size(); ++j) {
    const size_t i = stored[j];
    tasks[i] = !found[j].ok() ? found[j].status()
                              : IndexedTask(ids[i], keys[i].ToStringView(),
                                            *found[j] ? std::optional(values[j].ToStringView())
                                                      : std::nullopt);
  }
  return tasks;
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
  bool digested = false;  // a record under a digest key
  rocksdb::WriteBatch batch(BatchBytes(tasks));
  for (const StoredTask* task : order) digested |= PutTask(*task, batch);
  // A version 2 store not upgraded yet is upgraded before its first digest key: written
  // beside its old whole-identity record, a digest key would leave the id index naming it.
  if (digested) {
    absl::Status upgraded = store_->FinishUpgrade(Store::UpgradeStep::kIdentities);
    if (!upgraded.ok()) return upgraded;
  }
  std::sort(order.begin(), order.end(),
            [](const StoredTask* a, const StoredTask* b) { return a->id < b->id; });
  for (const StoredTask* task : order) {
    if (!task->stored) PutTaskId(*task, batch);
    if (task->last_used != 0) PutLastUse(task->id, task->last_used, batch);
    if (task->observation.has_value()) PutObservation(task->id, *task->observation, batch);
  }
  std::string bytes;
  EncodeCounter(next_task_id, &bytes);
  batch.Put(store_->handle(Table::kMeta), kNextTaskIdKey, bytes);
  return WriteWithNextStamp(next_stamp, batch, /*sync=*/false);
}

bool RocksBackingStore::PutTask(const StoredTask& task, rocksdb::WriteBatch& batch) {
  // Keys and values are written from their parts: no intermediate strings.
  const TaskKey key(task.hash, task.identity);
  char head[16];
  const size_t head_size = TaskValueHead(task.id, key, task.identity.size(), head);
  const rocksdb::Slice key_parts[] = {ToSlice(key.head()), ToSlice(key.tail())};
  const std::string_view identity = key.digested() ? task.identity : std::string_view();
  const rocksdb::Slice value_parts[] = {{head, head_size}, ToSlice(identity), ToSlice(task.result)};
  batch.Put(store_->handle(Table::kTasks), rocksdb::SliceParts(key_parts, 2),
            rocksdb::SliceParts(value_parts, 3));
  return key.digested();
}

void RocksBackingStore::PutTaskId(const StoredTask& task, rocksdb::WriteBatch& batch) {
  char id[8];
  PutBigEndian(task.id, id);
  const TaskKey task_key(task.hash, task.identity);
  const rocksdb::Slice key(id, 8);
  const rocksdb::Slice value[] = {ToSlice(task_key.head()), ToSlice(task_key.tail())};
  batch.Put(store_->handle(Table::kTaskIds), rocksdb::SliceParts(&key, 1),
            rocksdb::SliceParts(value, 2));
}

void RocksBackingStore::PutLastUse(uint64_t id, uint16_t day, rocksdb::WriteBatch& batch) {
  char key[8];
  PutBigEndian(id, key);
  const char value[2] = {static_cast<char>(day >> 8), static_cast<char>(day & 0xff)};
  batch.Put(store_->handle(Table::kTaskUse), rocksdb::Slice(key, 8), rocksdb::Slice(value, 2));
}

void RocksBackingStore::PutObservation(uint64_t id, const std::string& observation,
                                       rocksdb::WriteBatch& batch) {
  char key[8];
  PutBigEndian(id, key);
  if (observation.empty()) {
    batch.Delete(store_->handle(Table::kObservations), rocksdb::Slice(key, 8));
  } else {
    batch.Put(store_->handle(Table::kObservations), rocksdb::Slice(key, 8), observation);
  }
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
  // An upgrade moving tasks must not run between the reads of their keys and the write: it
  // would write a deleted task back, or keep one under a key read before it moved.
  std::unique_lock<std::mutex> no_upgrade;
  if (store_->UpgradePending(Store::UpgradeStep::kIdentities)) no_upgrade = store_->UpgradeLock();
  rocksdb::WriteBatch batch;
  std::string key;
  std::string value;
  rocksdb::PinnableSlice observation;
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
      if (*found && StoredTaskId(value) == id) {
        batch.Delete(store_->handle(Table::kTasks), key);
      }
    }
    batch.Delete(store_->handle(Table::kTaskIds), id_slice);
    batch.Delete(store_->handle(Table::kTaskUse), id_slice);
    // Few tasks have an observation. A deletion of one that is not there is a tombstone
    // over nothing: a table file of such tombstones, which overlaps no other, moves to the
    // last level whole, and the compaction after a pass left it there (1.2 MB on disk for
    // 150,000 tasks that never had an observation).
    observation.Reset();
    absl::StatusOr<bool> observed =
        store_->Get(Table::kObservations, std::string_view(id_key, 8), &observation);
    if (!observed.ok()) return observed.status();
    if (*observed) batch.Delete(store_->handle(Table::kObservations), id_slice);
  }
  return store_->Write(batch, /*sync=*/false);
}

absl::StatusOr<uint64_t> RocksBackingStore::DiskBytes() { return store_->DiskBytes(); }

absl::Status RocksBackingStore::Reclaim() { return store_->CompactAll(); }

absl::Status RocksBackingStore::Settle(uint64_t min_bytes) { return store_->Settle(min_bytes); }

absl::Status RocksBackingStore::KeepLogSmall() { return store_->KeepLogSmall(); }

void RocksBackingStore::Tidy() { store_->MergeSmallFiles(); }

void RocksBackingStore::StopReclaiming() { store_->StopCompacting(); }

absl::Status RocksBackingStore::RoomForCache(uint64_t bytes) {
  return store_->RoomForCache(bytes);
}

}  // namespace turbine::storage
