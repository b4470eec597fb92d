// engine.cc — the public Engine facade and the engine's lifecycle and statistics.
#include "turbine/engine.h"

#include <absl/container/flat_hash_map.h>
#include <absl/synchronization/mutex.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <thread>
#include <utility>

#include "cancel_state.h"
#include "engine_impl.h"
#include "persist.h"
#include "reclaim.h"

namespace turbine {
namespace internal {

namespace {

// The engine's cycle errors start with this (DescribeCycle); so do the sheet's.
constexpr std::string_view kCyclePrefix = "cycle detected";

// ChangedInputsOf is the store's log of input changes as the engine keeps it.
ChangedInputs ChangedInputsOf(const InputChangeLog& log) {
  ChangedInputs changed(log.since);
  for (const InputChange& change : log.changes) changed.Add(change.stamp, InputBits(change.key));
  return changed;
}

int ResolveWorkerCount(int requested) {
  if (requested > 0) return std::min(requested, kMaxWorkerThreads);
  const unsigned hardware = std::thread::hardware_concurrency();
  return hardware > 0 ? static_cast<int>(hardware) : 2;
}
}  // namespace

EngineImpl::EngineImpl(const EngineOptions& options, uint64_t next_stamp, uint64_t next_task_id,
                       const InputChangeLog& changes)
    : store_(options.backing_store),
      logger_(options.logger),
      // With the input function, which registers on first use: a digest taken before an
      // input was ever read would differ from the next session's.
      functions_digest_((InputFunction(), FunctionsDigest())),
      changed_inputs_(ChangedInputsOf(changes)),
      snapshot_chunk_tasks_(options.snapshot_chunk_tasks),
      counters_(new FunctionCounters[kMaxFunctions]),
      executor_(std::make_unique<Executor>(this, ResolveWorkerCount(options.worker_threads))),
      clock_(options.clock ? options.clock : [] { return std::chrono::system_clock::now(); }),
      gc_options_(options.gc),
      memory_(options.memory),
      shared_(options.shared) {
  invalidation_target_->engine = this;
  recent_executions_.reset(new ExecutionEntry[kRecentExecutions]);
  recent_input_changes_.reset(new InputChangeEntry[kRecentInputChanges]);
  Today();
  // Stamps continue above everything ever persisted, so a restored reader's observed stamp
  // can never match a value this session produced.
  stamp_.store(next_stamp);
  next_task_id_.store(std::max<uint64_t>(next_task_id, 1));
  ids_reserved_.store(next_task_id_.load());  // what the store holds; none given out yet
  // Before anything is restored: what changed outside while no engine watched decides
  // which restored results are trusted.
  CheckObservations();
  // Under a memory limit the thread runs even without periodic snapshots: only what a
  // snapshot wrote can leave memory, so the evictor asks it for snapshots (want_snapshot).
  if (store_ != nullptr && (options.snapshot_interval.count() > 0 || memory_.limit_bytes > 0)) {
    snapshot_thread_ = std::thread([this, interval = options.snapshot_interval,
                                    idle_delay = options.snapshot_idle_delay,
                                    settle_delay = options.settle_delay] {
      SnapshotLoop(interval, idle_delay, settle_delay);
    });
  }
  if (store_ != nullptr && gc_options_.interval.count() > 0) {
    gc_thread_ = std::thread([this] { GcLoop(); });
  }
  if (store_ != nullptr && memory_.limit_bytes > 0) {
    evictor_thread_ = std::thread([this] { EvictorLoop(); });
  }
  if (sharing() && shared_.publish) {
    publish_thread_ = std::thread([this] { PublishLoop(); });
  }
}

void EngineImpl::Log(LogLevel level, const std::string& message) const {
  if (logger_) {
    logger_(level, message);
  } else {
    std::fprintf(stderr, "turbine: %s\n", message.c_str());
  }
}

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
  uint64_t executions_before = execution_count.load(std::memory_order_relaxed);
  bool failing = false;  // said once when snapshots start failing, once when they recover
  // Last-use days reach the store with a snapshot once an hour: a crash loses at most that
  // much of them, which only makes tasks look older by as much.
  constexpr auto kUseSweepInterval = std::chrono::hours(1);
  auto last_sweep = Clock::now();
  std::unique_lock lock(snapshot_mu_);
  // Woken early when the evictor wants a snapshot (snapshot_wanted_).
  while (true) {
    snapshot_stop_.wait_for(lock, tick, [this] {
      return stopping_snapshots_ || snapshot_wanted_.load(std::memory_order_relaxed);
    });
    if (stopping_snapshots_) break;
    lock.unlock();
    Today();
    const bool wanted = snapshot_wanted_.exchange(false, std::memory_order_relaxed);
    // Idleness is judged over whole ticks: a wake-up for the evictor (`wanted`) comes in a
    // burst, and a few milliseconds without an execution would look quiet.
    const uint64_t executions = execution_count.load(std::memory_order_relaxed);
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
        Log(LogLevel::kError,
            "snapshot failed, retrying every snapshot: " + std::string(flushed.message()));
      } else if (flushed.ok() && failing) {
        failing = false;
        Log(LogLevel::kInfo, "snapshots succeed again");
      }
      // Counted after the snapshot, so whoever sees the count also sees its tasks.
      idle_snapshot_count.fetch_add(idle ? 1 : 0, std::memory_order_relaxed);
    }
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
    lock.lock();
  }
}

EngineImpl::~EngineImpl() {
  if (evictor_thread_.joinable()) {
    {
      std::lock_guard lock(evictor_mu_);
      stopping_evictor_ = true;
    }
    evictor_stop_.notify_all();
    evictor_thread_.join();
  }
  if (publish_thread_.joinable()) {
    {
      std::lock_guard lock(publish_mu_);
      stopping_publish_ = true;
    }
    publish_wake_.notify_all();
    publish_thread_.join();
  }
  {
    std::lock_guard lock(retry_mu_);
    stopping_retries_ = true;
  }
  retry_wake_.notify_all();
  if (retry_thread_.joinable()) retry_thread_.join();
  if (gc_thread_.joinable()) {
    gc_abort_.store(true);
    store_->StopReclaiming();  // a pass compacting a large store would take long to end
    {
      std::lock_guard lock(gc_loop_mu_);
      stopping_gc_ = true;
    }
    gc_stop_.notify_all();
    gc_thread_.join();
  }
  {
    std::unique_lock lock(invalidation_target_->mu);
    invalidation_target_->engine = nullptr;  // invalidators handed out become no-ops
  }
  if (snapshot_thread_.joinable()) {
    {
      std::lock_guard lock(snapshot_mu_);
      stopping_snapshots_ = true;
    }
    snapshot_stop_.notify_all();
    snapshot_thread_.join();
  }
  // Refreshes parked on each other finish once their dependencies do; wait for them so
  // no coroutine outlives the tasks it points at. Running bodies see themselves cancelled,
  // so a long one that asks ends early.
  stopping_.store(true);
  while (refreshes_in_flight.load() > 0) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  executor_.reset();
  bool reserved_ids = false;
  {
    std::lock_guard lock(id_reservation_mu_);
    reserved_ids = reserved_ids_;
  }
  if (absl::Status flushed = Flush(/*sweep_uses=*/true); !flushed.ok()) {
    Log(LogLevel::kError, "final snapshot failed: " + std::string(flushed.message()));
  } else if (reserved_ids) {
    // The next process continues from the ids given out, not past those reserved and never
    // used. Kept if the snapshot failed: the reservation still covers what it did not write.
    if (absl::Status released = store_->ReleaseTaskIds(next_task_id_.load()); !released.ok()) {
      Log(LogLevel::kError, "cannot release reserved task ids: " +
                                std::string(released.message()));
    }
  }
}

void EngineImpl::QueuePersist(TaskState& task) {
  if (task.persist_queued) return;
  task.persist_queued = true;
  MutexLock lock(&persist_mu_);
  persist_queue_.push_back(task.id);
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

}  // namespace

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
  record.id = task.id;
  record.hash = task.hash;
  record.stored = task.persisted;
  record.last_used = task.used_day.load(std::memory_order_relaxed);
  // Encoded into a reused buffer and then copied once: appending field by field to the
  // record's own string would reallocate it several times.
  batch.scratch.clear();
  {
    VcSink sink(&refs);  // the receiver and Vcs among the arguments
    EncodeIdentity(*task.fn, task.receiver(), task.args(), &batch.scratch);
  }
  record.identity = batch.scratch;
  // An input's value lives in the inputs table (written durably by SetInputs).
  if (task.fn->kind != FunctionKind::kInput && !never_ran) {
    batch.scratch.clear();
    Validity validity = batch.validity;
    validity.needs_verification = !clean || task.ReadsUncheckedWorld() || ReadACycle(task);
    validity.inputs = task.inputs;
    EncodeResult(task, &batch.scratch, &refs, validity);
    record.result = batch.scratch;
    record.observation = StoredObservationOf(task);
  }
  // Set before the write, which only Flush (serialized by flush_mu_) reads; undone if the
  // write fails or the record waits.
  task.persisted = true;
  task.unwritten = !clean && !never_ran;
  return true;
}

absl::Status EngineImpl::Flush(bool sweep_uses) {
  if (store_ == nullptr) return absl::OkStatus();
  // One snapshot at a time: a Flush that returns has written everything queued before it
  // began, so it waits for one that took those tasks already.
  MutexLock writing(&snapshot_writer_mu_);
  const auto start = std::chrono::steady_clock::now();
  Today();
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
    written = WriteSnapshotChunk(std::span<const TaskId>(queue.data() + next, end - next),
                                 /*deferred=*/next == 0, &pulled, &written_tasks);
    next = end;
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
  if (written_tasks > 0) {
    snapshot_count.fetch_add(1, std::memory_order_relaxed);
    last_snapshot_tasks.store(written_tasks, std::memory_order_relaxed);
    snapshot_tasks.fetch_add(written_tasks, std::memory_order_relaxed);
    snapshot_nanos.fetch_add(
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
                                            absl::flat_hash_set<TaskId>* pulled,
                                            size_t* written_tasks) {
  Section section;  // reclaim.h: the tasks it finds stay allocated
  MutexLock flushing(&flush_mu_);
  std::vector<TaskId> queue;
  if (deferred) queue = std::exchange(deferred_, {});
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
  for (TaskId id : queue) {
    TaskState* task = tasks_.Get(id);
    if (task == nullptr) continue;
    MutexLock lock(&task->mu);
    // Written by an earlier chunk, which it was referred to from, and not queued since.
    if (!task->persist_queued && pulled->contains(id)) continue;
    task->persist_queued = false;
    if (!batch.position.contains(id)) AddToSnapshot(*task, batch);
  }
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
  }
  // Taken after the records were encoded: a record that follows from a changed
  // observation was committed after the change was noted (CommitObservation), so its
  // change is logged by now, before the record.
  absl::Status written = LogObservedChanges();
  // Nothing to write: the counters on disk already cover every id and stamp on disk.
  if (!records.empty()) {
    // Counters are read after the records: every id and stamp in them is below these.
    if (written.ok()) {
      written = store_->WriteSnapshot(records, next_task_id_.load(), stamp_.load() + 1);
    }
    if (!written.ok()) {
      for (const StoredTask& record : records) {  // not written: try again next time
        if (TaskState* task = tasks_.Get(record.id)) {
          MutexLock lock(&task->mu);
          task->persisted = record.stored;
          task->unwritten = true;
          QueuePersist(*task);
        }
      }
      return written;
    }
    NoteEvictionCandidates(records);
    for (size_t i = 0; i < records.size(); ++i) {
      tasks_.Get(records[i].id)->stored_day = records[i].last_used;
      if (collecting_) {
        written_while_collecting_.push_back(records[i].id);
        written_while_collecting_.insert(written_while_collecting_.end(), refs[i].begin(),
                                         refs[i].end());
      }
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

absl::Status EngineImpl::LogObservedChanges() {
  std::vector<InputChange> changes = TakeObservedChanges();
  if (changes.empty()) return absl::OkStatus();
  absl::Status logged = store_->LogInputChanges(changes, stamp_.load() + 1);
  // A store without a log vouches for none (ReadInputChanges): nothing to keep it in.
  if (logged.ok() || logged.code() == absl::StatusCode::kUnimplemented) return absl::OkStatus();
  ReturnObservedChanges(std::move(changes));
  return logged;
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
    if (collecting_) written_while_collecting_.push_back(use.id);
  }
  return absl::OkStatus();
}

EngineStats EngineImpl::Stats() const {
  EngineStats stats;
  // Counts move apart from what they count (a task is counted just before it is in the
  // table): never read one as below zero.
  const auto count = [](const std::atomic<int64_t>& n) {
    return static_cast<uint64_t>(std::max<int64_t>(0, n.load()));
  };
  stats.tasks = count(task_count);
  stats.cells = count(cell_count);
  stats.edges = count(edge_count);
  stats.executions = execution_count.load();
  stats.revision = revision();
  stats.cycles_detected = cycle_count.load();
  stats.restored_tasks = restored_count.load();
  stats.trusted_restored_tasks = trusted_count.load();
  stats.observations_checked = observations_checked.load();
  stats.observations_changed = observations_changed.load();
  stats.snapshots = snapshot_count.load();
  stats.idle_snapshots = idle_snapshot_count.load();
  stats.snapshot_nanos = snapshot_nanos.load();
  stats.last_snapshot_tasks = last_snapshot_tasks.load();
  stats.snapshot_tasks = snapshot_tasks.load();
  stats.gc_passes = gc_passes.load();
  stats.gc_removed_tasks = gc_removed_tasks.load();
  stats.gc_removed_bytes = gc_removed_bytes.load();
  stats.gc_nanos = gc_nanos.load();
  stats.gc_phase = gc_phase.load(std::memory_order_relaxed);
  stats.gc_pass_scanned_tasks = gc_pass_scanned.load(std::memory_order_relaxed);
  stats.gc_pass_garbage_tasks = gc_pass_garbage.load(std::memory_order_relaxed);
  stats.gc_pass_removed_tasks = gc_pass_removed.load(std::memory_order_relaxed);
  stats.memory_limit_bytes = memory_.limit_bytes;
  stats.heap_bytes = heap_bytes.load(std::memory_order_relaxed);
  stats.evicted_values = evicted_values.load(std::memory_order_relaxed);
  stats.evicted_value_bytes = evicted_value_bytes.load(std::memory_order_relaxed);
  stats.reloaded_values = reloaded_values.load(std::memory_order_relaxed);
  stats.reload_failures = reload_failures.load(std::memory_order_relaxed);
  stats.evicted_tasks = evicted_tasks.load(std::memory_order_relaxed);
  stats.reloaded_tasks = reloaded_tasks.load(std::memory_order_relaxed);
  stats.evicted_tasks_away = evicted_away_.load(std::memory_order_relaxed);
  stats.resident_bytes = resident_bytes.load(std::memory_order_relaxed);
  stats.task_bytes = stats.tasks * kTaskRecordBytes;
  stats.edge_bytes = stats.edges * kEdgeBytes;
  stats.cell_bytes = stats.cells * kCellBytes;
  stats.evicted_unfreed_bytes = reclaimer_.PendingBytes();
  stats.admission_waits = admission_waits.load(std::memory_order_relaxed);
  stats.admission_wait_nanos = admission_wait_nanos.load(std::memory_order_relaxed);
  stats.shared_lookups = shared_lookups.load();
  stats.shared_hits = shared_hits.load();
  stats.shared_misses = shared_misses.load();
  stats.shared_verify_failures = shared_verify_failures.load();
  stats.shared_ignored = shared_ignored.load();
  stats.shared_errors = shared_errors.load();
  stats.shared_published = shared_published.load();
  stats.shared_publish_dropped = shared_publish_dropped.load();
  stats.shared_publish_queue = const_cast<EngineImpl*>(this)->SharedPublishQueue();
  for (size_t i = 0; i < stats.tasks_by_last_use.size(); ++i) {
    stats.tasks_by_last_use[i] = tasks_by_last_use[i].load();
  }
  for (const FunctionInfo* fn : AllFunctions()) {
    const FunctionCounters& c = counters_[fn->id];
    const uint64_t calls = c.calls.load(std::memory_order_relaxed);
    const uint64_t executions = c.executions.load(std::memory_order_relaxed);
    // A task restored from disk as somebody's dependency can execute without being called.
    if (calls == 0 && executions == 0) continue;
    const uint64_t misses = c.misses.load(std::memory_order_relaxed);
    stats.functions.push_back(
        FunctionStats{.name = fn->name,
                      .version = fn->version,
                      .calls = calls,
                      .cache_hits = calls >= misses ? calls - misses : 0,
                      .executions = executions,
                      .execution_nanos = c.execution_nanos.load(std::memory_order_relaxed)});
  }
  return stats;
}

void ThrowTaskError(const TaskFailure& failure) {
  if (&failure == CancelledFailure().get()) throw CancelledError();
  throw TaskError(failure.message, failure.code);
}

bool IsCycleError(const TaskFailure& failure) {
  return failure.code == absl::StatusCode::kFailedPrecondition &&
         failure.message.starts_with(kCyclePrefix);
}

absl::Status ReadErrorStatus(const TaskFailure& failure) {
  return absl::Status(failure.code, failure.message);
}

}  // namespace internal

struct Engine::Counters {
  uint64_t next_stamp = 1;
  uint64_t next_task_id = 1;
  InputChangeLog changes;
};

absl::StatusOr<Engine::Counters> Engine::ReadCounters(BackingStore* store) {
  Counters counters;  // 1 and 1 without a store
  if (store == nullptr) return counters;
  absl::StatusOr<uint64_t> stamp = store->NextStamp();
  absl::StatusOr<uint64_t> id = stamp.ok() ? store->NextTaskId() : stamp;
  if (!id.ok()) {
    return absl::Status(id.status().code(), "cannot read the backing store's counters: " +
                                                std::string(id.status().message()));
  }
  // Ids are never reused; at what the task table holds (2^44: five years at a hundred
  // thousand new tasks a second) the first new task could not be held, and past it the
  // counter is damaged. Said at open, not by an abort at that task.
  if (*id >= internal::TaskTable::kMaxIds) {
    return absl::DataLossError("the backing store's task id counter is " +
                               std::to_string(*id) + ": its " +
                               std::to_string(internal::TaskTable::kMaxIds) +
                               " ids are used up, or the store is damaged");
  }
  counters.next_stamp = *stamp;
  counters.next_task_id = *id;
  absl::StatusOr<InputChangeLog> changes =
      store->ReadInputChanges(internal::ChangedInputs::kCapacity);
  if (changes.ok()) {
    counters.changes = std::move(*changes);
  } else if (changes.status().code() == absl::StatusCode::kUnimplemented) {
    counters.changes.since = *stamp - 1;  // no log: only results as of the last stamp hold
  } else {
    return absl::Status(changes.status().code(), "cannot read the backing store's input log: " +
                                                     std::string(changes.status().message()));
  }
  return counters;
}

absl::StatusOr<std::unique_ptr<Engine>> Engine::Open(EngineOptions options) {
  absl::StatusOr<Counters> counters = ReadCounters(options.backing_store);
  if (!counters.ok()) return counters.status();
  return std::unique_ptr<Engine>(new Engine(std::move(options), *counters));
}

Engine::Engine(EngineOptions options, const Counters& counters)
    : impl_(std::make_unique<internal::EngineImpl>(options, counters.next_stamp,
                                                   counters.next_task_id, counters.changes)) {}

Engine::Engine(EngineOptions options) {
  absl::StatusOr<Counters> counters = ReadCounters(options.backing_store);
  if (!counters.ok()) {
    std::fprintf(stderr, "turbine: %s; use Engine::Open to get this as a status\n",
                 std::string(counters.status().message()).c_str());
    std::abort();
  }
  impl_ =
      std::make_unique<internal::EngineImpl>(options, counters->next_stamp, counters->next_task_id,
                                             counters->changes);
}

void DisableMutexDeadlockDetection() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

Engine::~Engine() = default;

Engine::Scope::Scope(Engine& engine) : saved_(internal::tls_context) {
  internal::tls_context = internal::ThreadContext{engine.impl_.get(), nullptr};
}

Engine::Scope::~Scope() { internal::tls_context = saved_; }

Engine::NotStarting::NotStarting() : before_(internal::tls_not_starting) {
  internal::tls_not_starting = true;
}

Engine::NotStarting::~NotStarting() { internal::tls_not_starting = before_; }

void Engine::CheckNotInTaskBody() {
  if (internal::tls_context.exec != nullptr) {
    std::fprintf(stderr, "turbine: Engine::Read called inside a task body; use co_await there\n");
    std::abort();
  }
}

absl::StatusOr<RawVc> Engine::Resolve(RawVc vc) {
  CheckNotInTaskBody();
  Scope scope(*this);
  internal::ReadOp op(vc, nullptr, internal::ReadOp::Mode::kResolve);
  op.Block();
  if (!op.ok()) return internal::ReadErrorStatus(op.error());
  return op.resolved();
}

absl::StatusOr<RawVc> Engine::CallErased(FunctionHandle fn, RawVc receiver, const void* args_type,
                                         void* args, CallSource* source) {
  if (!fn.valid()) return absl::InvalidArgumentError("Engine::Call: the handle names no function");
  const internal::FunctionInfo& info = *fn.info_;
  if (info.args_type != args_type) {
    return absl::InvalidArgumentError("Engine::Call: " + info.name +
                                      " takes other parameter types than the tuple given");
  }
  if (info.has_receiver && receiver.is_none()) {
    return absl::InvalidArgumentError("Engine::Call: " + info.name + " needs a receiver");
  }
  if (!info.has_receiver && !receiver.is_none()) {
    return absl::InvalidArgumentError("Engine::Call: " + info.name + " takes no receiver");
  }
  return impl_->Call(info, receiver, args, source);
}

absl::Status Engine::Flush() { return impl_->Flush(); }

absl::Status Engine::SetInputs(std::vector<InputValue> values, size_t* changed) {
  return impl_->SetInputs(std::move(values), changed);
}

absl::Status Engine::DeleteInputs(std::vector<std::string> keys, size_t* changed) {
  return impl_->DeleteInputs(std::move(keys), changed);
}

absl::StatusOr<GcReport> Engine::CollectGarbage() {
  return impl_->CollectGarbage(impl_->gc_options());
}

absl::StatusOr<GcReport> Engine::CollectGarbage(const GcOptions& options) {
  return impl_->CollectGarbage(options);
}

EngineStats Engine::Stats() const { return impl_->Stats(); }

size_t Engine::Evict(size_t bytes) { return impl_->EvictValues(bytes); }

size_t Engine::EvictTasks(size_t bytes) {
  const size_t freed = impl_->EvictTasks(bytes);
  impl_->ReclaimEvicted();  // frees them now unless another thread's section saw them
  return freed;
}

bool Engine::HasTask(TaskId id) {
  internal::Section section;  // reclaim.h
  return id != kNoTask && impl_->Task(id) != nullptr;
}

const ValueType* Engine::DeclaredType(RawVc vc) {
  if (vc.is_cell()) return ValueTypeById(vc.type);
  internal::Section section;  // reclaim.h
  internal::TaskState* task = vc.task == kNoTask ? nullptr : impl_->Task(vc.task);
  // A trait's name and an input's "any" name no registered type: null, as documented.
  return task == nullptr ? nullptr : FindValueType(task->fn->result_type);
}

bool Engine::StartTrace(const TraceOptions& options) { return impl_->StartTrace(options); }

Trace Engine::StopTrace() { return impl_->StopTrace(); }

Trace Engine::TakeTrace() { return impl_->TakeTrace(); }

}  // namespace turbine
