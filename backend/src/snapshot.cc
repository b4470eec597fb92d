// snapshot.cc — writing the engine's tasks to its backing store: the queue of tasks to
// write, snapshots in atomic chunks that never store a record without what it refers to,
// the background snapshot thread, and the sweep of last-use days.
#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>

#include <algorithm>
#include <chrono>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "engine_impl.h"
#include "persist.h"
#include "reclaim.h"

namespace turbine::internal {

void EngineImpl::SnapshotLoop(std::chrono::milliseconds interval,
                              std::chrono::milliseconds idle_delay,
                              std::chrono::milliseconds settle_delay) {
  using Clock = std::chrono::steady_clock;
  // Interval 0: no snapshot but those the evictor wants (and flushes and the last one,
  // which are not this loop's), no idle ones, no settling.
  const bool periodic = interval.count() > 0;
  if (!periodic) {
    interval = std::chrono::hours(24 * 365);
    settle_delay = std::chrono::milliseconds(0);
  }
  const bool idle_snapshots = periodic && idle_delay.count() > 0;
  const auto tick = idle_snapshots ? std::min(interval, idle_delay) : interval;
  // Settling makes table files of the memtables: below this, replaying their log is quick,
  // and a flush per short pause would only make small files for compactions to merge.
  constexpr uint64_t kSettleMinBytes = 4 << 20;
  std::optional<Clock::time_point> quiet_since;  // no execution and no refresh since
  bool settle_failed = false;                      // said once per quiet period
  auto last_snapshot = Clock::now();
  // Idleness is read off counters the engine keeps anyway, so the hot path pays nothing
  // for it: no execution during a whole tick and no refresh running now.
  uint64_t executions_before = counts.execution_count.load(std::memory_order_relaxed);
  bool failing = false;  // said once when snapshots start failing, once when they recover
  uint64_t written_when_failing = 0;  // snapshots_written_ then
  // Last-use days reach the store with a snapshot once an hour: a crash loses at most that
  // much of them, which only makes tasks look older by as much.
  constexpr auto kUseSweepInterval = std::chrono::hours(1);
  auto last_sweep = Clock::now();
  // Woken early when the evictor wants a snapshot (snapshot_wanted_).
  while (snapshot_signal_.Sleep(tick)) {
    Today();
    // The evictor, over the memory limit with nothing else to free, asks for the memtables
    // to go to table files now (settle_wanted_). A wake for that alone is no tick: judged
    // as one, its few milliseconds without an execution would look quiet.
    if (settle_wanted_.exchange(false, std::memory_order_relaxed)) {
      if (absl::Status settle = store_->Settle(kSettleMinBytes);
          !settle.ok() && !std::exchange(settle_failed, true)) {
        Log(LogLevel::kWarning, "could not flush the store's memtables (over the memory limit): " +
                                    std::string(settle.message()));
      }
      if (!snapshot_wanted_.load(std::memory_order_relaxed)) continue;
    }
    const bool wanted = snapshot_wanted_.exchange(false, std::memory_order_relaxed);
    // Idleness is judged over whole ticks: a wake-up for the evictor (`wanted`) comes in a
    // burst, and a few milliseconds without an execution would look quiet.
    const uint64_t executions = counts.execution_count.load(std::memory_order_relaxed);
    const bool quiet = !wanted && executions == executions_before && refreshes_in_flight.load() == 0;
    const bool idle = idle_snapshots && quiet;
    if (!wanted) executions_before = executions;
    if (!quiet) {
      quiet_since.reset();
      settle_failed = false;
    } else if (!quiet_since.has_value()) {
      quiet_since = Clock::now();
    }
    const bool due = wanted || idle || Clock::now() - last_snapshot >= interval;
    bool empty = false;
    {
      MutexLock queue(&persist_mu_);
      empty = persist_queue_.empty();
    }
    if (failing && snapshots_written_.load(std::memory_order_relaxed) != written_when_failing) {
      // Another flush (the Flush RPC's) wrote a snapshot since this one failed: they work
      // again, and the next failure is said again.
      failing = false;
      snapshots_failing_.store(false, std::memory_order_relaxed);
      Log(LogLevel::kInfo, "snapshots succeed again");
    }
    const bool sweep = periodic && Clock::now() - last_sweep >= kUseSweepInterval;
    if ((due && !empty) || sweep) {
      last_snapshot = Clock::now();
      if (sweep) last_sweep = last_snapshot;
      // On failure the engine keeps serving from memory and what failed stays queued: the
      // next snapshot retries it (a full disk fails each one until there is space). Said
      // once when snapshots start failing, once when they recover.
      absl::Status flushed = Flush(sweep);
      snapshots_failing_.store(!flushed.ok(), std::memory_order_relaxed);
      if (!flushed.ok() && !failing) {
        failing = true;
        written_when_failing = snapshots_written_.load(std::memory_order_relaxed);
        Log(LogLevel::kError,
            "snapshot failed, retrying every snapshot: " + std::string(flushed.message()));
      } else if (flushed.ok() && failing) {
        failing = false;
        Log(LogLevel::kInfo, "snapshots succeed again");
      }
      // Counted after the snapshot, so whoever sees the count also sees its tasks.
      counts.idle_snapshot_count.fetch_add(idle ? 1 : 0, std::memory_order_relaxed);
    }
    // Holding no lock: it may compact for milliseconds, and every write would wait.
    store_->Tidy();
    // Every tick while quiet, not once: what is written meanwhile (inputs, the use sweep)
    // settles too once it reaches the threshold, which the store checks cheaply.
    if (settle_delay.count() > 0 && quiet_since.has_value() &&
        Clock::now() - *quiet_since >= settle_delay) {
      if (absl::Status settle = store_->Settle(kSettleMinBytes);
          !settle.ok() && !std::exchange(settle_failed, true)) {
        Log(LogLevel::kWarning, "could not flush the store while idle (a crash now replays its "
                                "log at the next start): " + std::string(settle.message()));
      }
    }
  }
}

void EngineImpl::QueuePersist(TaskState& task) {
  if (task.persist_queued) return;
  task.persist_queued = true;
  {
    MutexLock lock(&persist_mu_);
    persist_queue_.push_back(task.id);
  }
  if (evictor_resting_.load(std::memory_order_relaxed) &&
      evictor_resting_.exchange(false, std::memory_order_relaxed)) {
    evictor_signal_.Wake();
  }
}

// SnapshotBatch is what one snapshot writes: records, and for each the tasks it refers to.
struct EngineImpl::SnapshotBatch {
  std::vector<StoredTask> records;
  std::vector<std::vector<TaskId>> refs;
  absl::flat_hash_map<TaskId, size_t> position;  // id -> index in records
  std::string scratch;
  Validity validity;  // of every record: the snapshot's clean_as_of and this build's functions
};

namespace {

// ReadACycle tells whether a task's result came out of a cycle: a read that closed one, or
// a cycle error. A restart verifies those (refresh.cc settles cycles as it verifies).
bool ReadACycle(const TaskState& task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(task.mu) {
  if (task.output.kind() == OutputKind::kError && IsCycleError(task.output.error())) return true;
  return std::ranges::any_of(task.deps(),
                             [](const Dep& dep) { return dep.observed == kReadClosedCycle; });
}

// RecordBytes is about what `record` (or `records`) take written.
uint64_t RecordBytes(const StoredTask& record) {
  return 32 + record.identity.size() + record.result.size() +
         (record.observation.has_value() ? record.observation->size() : 0);
}
uint64_t RecordBytes(const std::vector<StoredTask>& records) {
  uint64_t bytes = 0;
  for (const StoredTask& record : records) bytes += RecordBytes(record);
  return bytes;
}

// TakeEncoded gives `record_field` what `scratch` holds: copied, so that the buffer's room
// is reused for the next record, unless large, when it moves (a 300 MB value was otherwise
// held once more while its chunk was written: in the task, the buffer, the record, the
// write batch and the memtable).
void TakeEncoded(std::string& scratch, std::string& record_field) {
  constexpr size_t kMovedBytes = size_t{64} << 10;
  if (scratch.size() > kMovedBytes) {
    record_field = std::move(scratch);
    scratch = std::string();
  } else {
    record_field = scratch;
  }
}

// A snapshot chunk takes queued tasks until its records reach this size (and then what
// they refer to): the store asks for twice a chunk free (RoomForCache), and 16,384 results
// of 256 KiB, one chunk by count, were refused on every disk with less than 8 GiB free, so
// nothing was ever written.
constexpr uint64_t kChunkBytes = uint64_t{4} << 20;

}  // namespace

void EngineImpl::FillIdentityRecord(const TaskState& task, StoredTask& record,
                                    std::string& scratch, std::vector<TaskId>* refs) {
  record.id = task.id;
  record.hash = task.hash;
  record.last_used = task.used_day.load(std::memory_order_relaxed);
  // Encoded into a reused buffer and then copied once: appending field by field to the
  // record's own string would reallocate it several times.
  scratch.clear();
  {
    VcSink sink(refs);  // the receiver and Vcs among the arguments
    EncodeIdentity(*task.fn, task.receiver(), task.args(), &scratch);
  }
  TakeEncoded(scratch, record.identity);
}

bool EngineImpl::AddToSnapshot(TaskState& task, SnapshotBatch& batch) {
  // A task that never ran and waits to is written as its identity alone (an input's always
  // is): a task only described, or one a record in this snapshot refers to. Its first
  // execution queues it again, with its result.
  const bool never_ran = task.output.kind() == OutputKind::kNone;
  if (never_ran && task.phase != Phase::kScheduled) return false;  // its first run is on
  // A dirty task's last result is written too, for verification only: the stamps it read
  // are all a verification needs, and without it a restart would find an older result
  // (a stop right after a change reached what this session computed). It queues itself
  // again once clean, to be written as clean. Not one that must execute: why (an
  // invalidation, a collected task its value refers to) is not in its stamps.
  const bool clean = task.phase == Phase::kClean;
  if (!never_ran && !clean &&
      (task.phase != Phase::kDirty || task.must_execute || task.HasEvictedValues())) {
    return false;
  }
  batch.position[task.id] = batch.records.size();
  StoredTask& record = batch.records.emplace_back();
  std::vector<TaskId>& refs = batch.refs.emplace_back();
  FillIdentityRecord(task, record, batch.scratch, &refs);
  record.stored = task.persisted;
  // An input's value lives in the inputs table (written durably by SetInputs).
  if (task.fn->kind != FunctionKind::kInput && !never_ran) {
    batch.scratch.clear();
    Validity validity = batch.validity;
    validity.needs_verification = !clean || task.ReadsUncheckedWorld() || ReadACycle(task);
    validity.inputs = task.inputs;
    EncodeResult(task, &batch.scratch, &refs, validity);
    TakeEncoded(batch.scratch, record.result);
    record.observation = StoredObservationOf(task);
  }
  // Set before the write, which only Flush (serialized by flush_mu_) reads; undone if the
  // write fails or the record waits.
  task.persisted = true;
  task.unwritten = !clean && !never_ran;
  return true;
}

absl::Status EngineImpl::Flush(bool sweep_uses, bool for_collection) {
  if (store_ == nullptr) return absl::OkStatus();
  // One snapshot at a time: a Flush that returns has written everything queued before it
  // began, so it waits for one that took those tasks already.
  MutexLock writing(&snapshot_writer_mu_);
  const auto start = std::chrono::steady_clock::now();
  Today();
  // Refused before anything is encoded: the evictor asks for a snapshot every few
  // milliseconds while one is wanted.
  if (!for_collection) {
    if (absl::Status room = store_->RoomForCache(0); !room.ok()) return room;
  }
  std::vector<TaskId> queue;
  {
    MutexLock lock(&persist_mu_);
    queue.swap(persist_queue_);
    snapshot_backlog_.store(queue.size(), std::memory_order_relaxed);
  }
  // Written in chunks, each one atomic and self-contained (the tasks a record refers to go
  // with it or before it): a burst of new tasks is stored, and may leave memory, chunk by
  // chunk, and between chunks the evictor and a GC pass get flush_mu_.
  const size_t chunk = std::max<size_t>(snapshot_chunk_tasks_, 1);
  size_t written_tasks = 0;
  size_t next = 0;
  absl::flat_hash_set<TaskId> pulled;
  absl::Status written;
  do {
    const size_t end = std::min(queue.size(), next + chunk);
    size_t taken = 0;
    written =
        WriteSnapshotChunk(std::span<const TaskId>(queue.data() + next, end - next),
                           /*deferred=*/next == 0, for_collection, &pulled, &written_tasks, &taken);
    next += taken;
    snapshot_backlog_.store(queue.size() - next, std::memory_order_relaxed);
  } while (written.ok() && next < queue.size());
  {
    MutexLock lock(&persist_mu_);
    // Not reached after a failed chunk: still queued (`persist_queued`), for the next try.
    persist_queue_.insert(persist_queue_.end(), queue.begin() + next, queue.end());
    snapshot_backlog_.store(0, std::memory_order_relaxed);
  }
  if (tracing() && (written_tasks > 0 || !written.ok())) [[unlikely]] {
    TraceEvent event;
    event.kind = TraceEvent::Kind::kSnapshot;
    event.reason = std::to_string(written_tasks) + " tasks written";
    event.start_nanos =
        std::chrono::duration_cast<std::chrono::nanoseconds>(start.time_since_epoch()).count();
    event.duration_nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::steady_clock::now() - start)
                               .count();
    event.failed = !written.ok();
    RecordTrace(std::move(event));
  }
  if (written_tasks > 0 && written.ok()) {
    snapshots_written_.fetch_add(1, std::memory_order_relaxed);
  }
  if (written_tasks > 0) {
    counts.snapshot_count.fetch_add(1, std::memory_order_relaxed);
    counts.last_snapshot_tasks.store(written_tasks, std::memory_order_relaxed);
    counts.snapshot_tasks.fetch_add(written_tasks, std::memory_order_relaxed);
    counts.snapshot_nanos.fetch_add(
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  std::chrono::steady_clock::now() - start)
                                  .count()),
        std::memory_order_relaxed);
  }
  if (!written.ok() || !sweep_uses) return written;
  Section section;  // reclaim.h: the tasks it finds stay allocated
  MutexLock flushing(&flush_mu_);
  return SweepUses();
}

absl::Status EngineImpl::WriteSnapshotChunk(std::span<const TaskId> ids, bool deferred,
                                            bool for_collection,
                                            absl::flat_hash_set<TaskId>* pulled,
                                            size_t* written_tasks, size_t* taken) {
  Section section;  // reclaim.h: the tasks it finds stay allocated
  MutexLock flushing(&flush_mu_);
  std::vector<TaskId> queue;
  if (deferred) queue = std::exchange(deferred_, {});
  const size_t held_back = queue.size();
  queue.insert(queue.end(), ids.begin(), ids.end());
  // Encode under each task's lock, write with no engine lock held. A task that cannot be
  // written as clean now queues itself again once it is clean (`unwritten`).
  SnapshotBatch batch;
  {
    // Every input change whose stamp is at most this one has marked its readers dirty
    // (ApplyInputs does both under input_writer_mu_), so a task clean from now on holds
    // for all of them.
    MutexLock inputs(&input_writer_mu_);
    batch.validity.clean_as_of = stamp_.load();
  }
  batch.validity.functions = functions_digest_;
  batch.records.reserve(queue.size());
  batch.refs.reserve(queue.size());
  uint64_t encoded = 0;
  size_t end = queue.size();
  for (size_t q = 0; q < end; ++q) {
    const TaskId id = queue[q];
    TaskState* task = tasks_.Get(id);
    if (task == nullptr) continue;
    MutexLock lock(&task->mu);
    // Written by an earlier chunk, which it was referred to from, and not queued since.
    if (!task->persist_queued && pulled->contains(id)) continue;
    task->persist_queued = false;
    if (batch.position.contains(id) || !AddToSnapshot(*task, batch)) continue;
    encoded += RecordBytes(batch.records.back());
    if (encoded >= kChunkBytes && q >= held_back) end = q + 1;  // the rest: the next chunk
  }
  *taken = end - held_back;
  // A record must never be on disk without the tasks it refers to (a reader would follow
  // the reference into nothing): each goes with this snapshot unless the store has it
  // already. One that cannot be written holds back the records referring to it, until it
  // can.
  std::vector<bool> blocked(batch.records.size(), false);
  for (size_t i = 0; i < batch.records.size(); ++i) {  // grows as referred tasks join
    for (size_t r = 0; r < batch.refs[i].size(); ++r) {
      const TaskId target_id = batch.refs[i][r];
      if (batch.position.contains(target_id)) continue;
      TaskState* target = tasks_.Get(target_id);
      if (target == nullptr) continue;  // not in memory: known only from the store
      MutexLock lock(&target->mu);
      if (target->persisted) continue;
      if (AddToSnapshot(*target, batch)) {
        // Its own turn in this snapshot, if it is queued, writes nothing more.
        if (target->persist_queued) {
          target->persist_queued = false;
          pulled->insert(target_id);
        }
        continue;
      }
      blocked.resize(batch.records.size(), false);
      blocked[i] = true;
      target->unwritten = true;  // queues itself once clean
    }
  }
  blocked.resize(batch.records.size(), false);
  for (bool more = true; more;) {  // and whatever refers to a held-back record
    more = false;
    for (size_t i = 0; i < batch.records.size(); ++i) {
      if (blocked[i]) continue;
      for (TaskId target : batch.refs[i]) {
        auto at = batch.position.find(target);
        if (at != batch.position.end() && blocked[at->second]) {
          blocked[i] = more = true;
          break;
        }
      }
    }
  }
  std::vector<StoredTask> records;
  std::vector<std::vector<TaskId>> refs;
  records.reserve(batch.records.size());
  for (size_t i = 0; i < batch.records.size(); ++i) {
    if (!blocked[i]) {
      records.push_back(std::move(batch.records[i]));
      refs.push_back(std::move(batch.refs[i]));
      continue;
    }
    TaskState* task = tasks_.Get(batch.records[i].id);
    MutexLock lock(&task->mu);
    task->persisted = batch.records[i].stored;
    task->unwritten = true;
    task->persist_queued = true;  // in deferred_, not in the queue
    deferred_.push_back(task->id);
    KeepWhileCollecting(batch.records[i].id, batch.refs[i], for_collection);
  }
  // Taken after the records were encoded: a record that follows from a changed
  // observation was committed after the change was noted (CommitObservation), so its
  // change is logged by now, before the record.
  absl::Status written = LogObservedChanges(records);
  // Nothing to write: the counters on disk already cover every id and stamp on disk.
  if (!records.empty()) {
    // Counters are read after the records: every id and stamp in them is below these.
    bool refused = false;
    if (written.ok()) {
      written = store_->RoomForCache(RecordBytes(records));
      refused = !written.ok();
    }
    if (written.ok()) {
      written = store_->WriteSnapshot(records, next_task_id_.load(), stamp_.load() + 1);
    }
    if (!written.ok()) {
      for (size_t i = 0; i < records.size(); ++i) {  // not written: try again next time
        if (TaskState* task = tasks_.Get(records[i].id)) {
          MutexLock lock(&task->mu);
          task->persisted = records[i].stored;
          task->unwritten = true;
          QueuePersist(*task);
        }
        KeepWhileCollecting(records[i].id, refs[i], for_collection);
      }
      // A pass goes on through the queue: each record left in memory keeps what it refers
      // to, and the space the pass frees is what the store waits for.
      if (refused && for_collection) return absl::OkStatus();
      return written;
    }
    NoteEvictionCandidates(records);
    for (size_t i = 0; i < records.size(); ++i) {
      tasks_.Get(records[i].id)->stored_day = records[i].last_used;
      KeepWhileCollecting(records[i].id, refs[i]);
    }
    *written_tasks += records.size();
  }
  // What the evictor asked for while a chunk held flush_mu_ (EvictorLoop): done here, as
  // the next chunk would take the lock again before the evictor could.
  if (const size_t wanted = eviction_wanted_.exchange(0, std::memory_order_relaxed); wanted > 0) {
    EvictLocked(wanted);
  }
  return written;
}

absl::Status EngineImpl::SweepUses() {
  // Every task in memory; those used on a day the store does not have yet, and stored.
  std::vector<LastUse> uses;
  tasks_.ForEach([&](TaskId id, TaskState* task) {
    const uint16_t day = task->used_day.load(std::memory_order_relaxed);
    if (day == task->stored_day) return;
    MutexLock lock(&task->mu);
    if (task->persisted) uses.push_back(LastUse{id, day});
  });
  if (uses.empty()) return absl::OkStatus();
  absl::Status written = store_->WriteLastUse(uses);
  if (!written.ok()) return written;
  for (const LastUse& use : uses) {
    tasks_.Get(use.id)->stored_day = use.day;
    // A GC pass scanning meanwhile has the older day; the task may leave memory before the
    // pass looks at it (EvictTasks), so the pass keeps it.
    if (collecting_) kept_while_collecting_.push_back(use.id);
  }
  return absl::OkStatus();
}

}  // namespace turbine::internal
