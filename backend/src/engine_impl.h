// engine_impl.h — the engine's private core: task creation, reads, refresh, invalidation.
//
// How a value gets computed:
//   Call() finds or creates the task by borrowed components, boxing them on a true miss
//   (docs/ARCHITECTURE.md, "How a call flows").
//   A reader that finds a task not clean claims it (kScheduled/kDirty -> kRunning) and runs
//   its refresh inline, or parks on it while another thread runs it.
//   A refresh first verifies: if every slot the task read still carries the change stamp it
//   had when read, the task is clean again without executing (early cutoff). Otherwise it
//   executes the body and commits output, cells and dependency edges.
//   An input change marks its readers, and their readers transitively, dirty; nothing
//   executes until something reads them.
#pragma once

#include <absl/base/thread_annotations.h>
#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "change_listeners.h"
#include "engine_counts.h"
#include "eviction_state.h"
#include "execution_history.h"
#include "executor.h"
#include "input_summary.h"
#include "mutex.h"
#include "observation_state.h"
#include "outage_log.h"
#include "reclaim.h"
#include "shared_trace.h"
#include "stop_signal.h"
#include "task_cache.h"
#include "task_state.h"
#include "task_table.h"
#include "turbine/engine.h"
#include "turbine/observe.h"
#include "why_records.h"

namespace turbine::internal {

struct Validity;  // persist.h

// InputFunction is the function of input tasks, registered on first use (invalidation.cc).
const FunctionInfo& InputFunction();

struct GcGraph;  // what a garbage collection pass found in the store (gc.cc)

// FunctionCounters are per engine and per function; relaxed atomics.
struct alignas(64) FunctionCounters {
  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> misses{0};
  std::atomic<uint64_t> executions{0};
  std::atomic<uint64_t> execution_nanos{0};
};

// InvalidationTarget is shared by an engine and every Invalidator it handed out: the
// engine clears `engine` under the exclusive lock when it is destroyed, so an invalidation
// either finishes before the engine goes or finds it gone.
struct InvalidationTarget {
  std::shared_mutex mu;
  EngineImpl* engine = nullptr;
};

class EngineImpl {
 public:
  static constexpr size_t kMaxFunctions = 4096;

  // `next_stamp` and `next_task_id` continue the backing store's counters (1 without one);
  // `changes` is its log of input changes.
  EngineImpl(const EngineOptions& options, uint64_t next_stamp, uint64_t next_task_id,
             const InputChangeLog& changes);
  ~EngineImpl();

  // --- call path (call.cc) ---
  RawVc Call(const FunctionInfo& fn, RawVc receiver, void* stack_args,
             CallSource* source = nullptr);
  // Task returns the task with `id`, loading it from the backing store if need be (null if
  // it exists nowhere).
  // `loaded`, if given, says whether it came from the store just now.
  TaskState* Task(TaskId id, bool* loaded = nullptr) {
    TaskState* task = tasks_.Get(id);
    if (task != nullptr || store_ == nullptr) return task;
    task = LoadTask(id);
    if (loaded != nullptr) *loaded = task != nullptr;
    return task;
  }
  // InMemory returns the task with `id` if it is in memory (never reads the store).
  TaskState* InMemory(TaskId id) { return tasks_.Get(id); }
  // LoadAhead brings the tasks `deps` name that are only in the backing store into memory,
  // read in one batch, before a verification reads them one by one (call.cc). Not past the
  // evictor's low water. The store gate is held for the batch.
  void LoadAhead(std::span<const Dep> deps);
  // WaitedOn is the task whose result `task`'s refresh waits for, if it is in memory.
  TaskState* WaitedOn(const TaskState& task) const {
    const TaskId id = task.waiting_on.load();
    return id == kNoTask ? nullptr : tasks_.Get(id);
  }
  // The CycleState of tasks a cycle runs through (their `in_cycle` bit set): few, and only
  // while the cycle resolves, so kept here rather than in every record. REQUIRES for
  // each: task.mu held (cycles_mu_ is taken after it). CycleOf makes one if there is none;
  // FindCycle returns null if there is none; DropCycleIfEmpty frees one holding nothing.
  CycleState& CycleOf(TaskState& task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(task.mu);
  CycleState* FindCycle(TaskState& task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(task.mu);
  void DropCycleIfEmpty(TaskState& task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(task.mu);
  // Flush writes every task that changed since the last snapshot (docs/ARCHITECTURE.md,
  // "Persistence"). `sweep_uses` also writes the last-use day of every stored task used
  // since the store last heard of it. Cached results keep out of the store's reserve
  // (BackingStore::RoomForCache): a refusal ends the flush, unless `for_collection` (a
  // garbage collection pass, collecting_ set): then the flush goes through the whole queue,
  // and what it cannot write keeps what it refers to from the pass (KeepWhileCollecting).
  absl::Status Flush(bool sweep_uses = false, bool for_collection = false);
  // QueuePersist marks a task for the next snapshot. REQUIRES: task.mu held.
  void QueuePersist(TaskState& task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(task.mu);
  bool persistent() const { return store_ != nullptr; }
  // NoteUse records that `task` was used today: nothing but a relaxed load on all calls of
  // a day but the first.
  void NoteUse(TaskState& task) {
    const uint16_t today = today_.load(std::memory_order_relaxed);
    if (task.used_day.load(std::memory_order_relaxed) != today) {
      task.used_day.store(today, std::memory_order_relaxed);
    }
  }
  // Today reads the clock: the day since 1970-01-01 (what NoteUse records).
  uint16_t Today();

  // --- garbage collection (gc.cc) ---
  // A pass asked for reclaims the space it freed at once; a background pass only when it
  // freed a tenth of the store or more (RocksDB's compactions take care of less).
  absl::StatusOr<GcReport> CollectGarbage(const GcOptions& options, bool background = false);
  const GcOptions& gc_options() const { return gc_options_; }

  // --- waiting for clean tasks (read_op.cc) ---
  enum class Wait : uint8_t { kClean, kRanInline, kParked, kCycle, kCancelled };
  // AwaitClean makes sure `task` is clean or parks `read` on it. `waiting_task` (may be
  // null) is the task whose progress depends on it, for cycle detection. On kCycle,
  // `cycle` describes the cycle. kCancelled: the read's caller is cancelled.
  // `caller` is counted as waiting for `task` until the read ends (cancel.cc).
  Wait AwaitClean(TaskState* task, ReadOp* read, TaskState* waiting_task, Caller* caller,
                  std::string* cycle);

  // --- reads for servers (async_read.cc) ---
  // `cancel` may be null (not cancellable).
  void ReadAsync(RawVc vc, std::function<void(Engine::AsyncRead)> done,
                 std::shared_ptr<CancelState> cancel);

  // --- refresh (refresh.cc) ---
  // StartRefresh runs the refresh of a task this thread claimed (phase kRunning).
  void StartRefresh(TaskState* task);
  // TryClaim moves a task that never ran (kScheduled) to kRunning; true if this caller now
  // owns it. Used by queued hints.
  bool TryClaim(TaskState* task);
  // CancelUnawaited cancels, of the tasks a cancelled execution made (ExecContext::started),
  // those nobody waits for: one not started yet never starts, one running is cancelled as a
  // task whose last caller left.
  void CancelUnawaited(const std::vector<TaskId>& started);
  // CancelIfUnawaited is that for one task, whose own started tasks join the list.
  void CancelIfUnawaited(TaskId id);

  // --- invalidation and inputs (invalidation.cc) ---
  absl::Status SetInputs(std::vector<InputValue> values, size_t* changed = nullptr);
  absl::Status DeleteInputs(std::vector<std::string> keys, size_t* changed = nullptr);
  RawVc InputVc(const std::string& key);
  // MarkDirty marks `readers` and everything downstream of them dirty. MarkOneDirty marks
  // one task (stale, if it is running) and adds its readers to `readers`, unless it was
  // marked already.
  void MarkDirty(std::vector<TaskId> readers);
  void MarkOneDirty(TaskState& task, std::vector<TaskId>* readers)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(task.mu);
  uint64_t AddChangeListener(std::function<void()> listener);
  void RemoveChangeListener(uint64_t id);
  // NotifyChange runs the change listeners.
  void NotifyChange();
  // Invalidate makes task `id` execute on its next read and marks its readers dirty.
  void Invalidate(TaskId id) { InvalidateMany({id}); }
  // `reason` is what the next executions report (why.h). Change listeners hear of it
  // unless `notify` is false (Invalidator::MarkAll: the caller tells them later).
  void InvalidateMany(std::vector<TaskId> ids,
                      ExecutionReason reason = ExecutionReason::kInvalidated, bool notify = true);
  // A poll checks the observations of tasks again as CheckObservations does (subscribe,
  // then look) and invalidates only those whose subject changed, or that hold no
  // observation it can check (Invalidator::RecheckAll; observe.cc). In three steps:
  // PlanRechecks under the engine's target lock, RunRechecks without it (a look may wait on
  // a slow network filesystem, and the engine's destruction must not wait for it), then
  // InvalidateMany of `changed` under the lock again. RecheckMany does all three.
  struct Recheck {
    TaskId id;
    ObservationSubscriber subscribe;
    ObservationLooker look;
    std::string subject;
    uint64_t fingerprint;
    bool subscribe_only;  // doubted: it looks again when it executes, and is only
                          // subscribed again (the poll took its subscription)
  };
  struct RecheckPlan {
    std::vector<Recheck> rechecks;
    std::vector<TaskId> changed;
  };
  RecheckPlan PlanRechecks(std::vector<TaskId> ids);
  static void RunRechecks(const std::shared_ptr<InvalidationTarget>& target, RecheckPlan* plan);
  void RecheckMany(std::vector<TaskId> ids);
  // ExecuteAgain makes the tasks among `ids` in memory execute on their next read, for
  // `reason`, and marks their readers dirty; change listeners do not hear of it (an
  // invalidation does). It drops the ids not in memory from `ids`.
  void ExecuteAgain(std::vector<TaskId>& ids, ExecutionReason reason);
  const std::shared_ptr<InvalidationTarget>& invalidation_target() const {
    return invalidation_target_;
  }

  // --- observations of the outside world (observe.h, observe.cc) ---
  // CommitObservation records what `context` observed as `task`'s observation. When that
  // differs from the one before (the stored one, for a restored task), it is an input
  // change: logged with the next snapshot, before the record that follows from it, and
  // made known to trusted tasks. True when the record must be rewritten for it.
  // REQUIRES: no engine lock held.
  bool CommitObservation(TaskState& task, const ExecContext& context);
  // ObservedBits is the summary bits of `task`'s observation (0: none).
  uint64_t ObservedBits(const TaskState& task);
  // ObservationHolds: task `id` has an observation, the check at open found it to hold,
  // and no change of it has been seen since (its subject is watched from the check on).
  // Such a restored task need not look again; it verifies what it read like any task.
  bool ObservationHolds(TaskId id);
  // StoredObservationOf is what a snapshot stores for `task`: nullopt for a task that
  // cannot observe, empty for one whose result follows from no checkable observation.
  // REQUIRES: task.mu held.
  std::optional<std::string> StoredObservationOf(const TaskState& task)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(task.mu);
  // LogObservedChanges, at each snapshot, logs the observation changes committed since
  // the last. The final snapshot (`final_snapshot_`) also forgets the doubted
  // observations (observed_.doubted): each one's change is logged at its stamp and its
  // stored observation removed, so the next open neither checks it nor finds it changed.
  // A task that is never read again (a deleted file's) would otherwise count as a change
  // at every open. On failure everything waits for the next snapshot (for the final one,
  // the next open's check). A committed change whose task's new record is not among
  // `records` (the chunk about to be written, after the log) leaves a marker as the task's stored
  // observation, in the log's write: a crash before that record is written must not leave the old
  // observation, which may hold again at the next open (a file made and removed again),
  // to be checked instead of the change its readers on disk follow from.
  absl::Status LogObservedChanges(std::vector<StoredTask>& records);
  // ForgetObservations, before garbage collection deletes `ids`: their observations will
  // not be checked at the next open, so each is a change there, logged before the
  // deletion (a stored result that follows from one is then not trusted).
  absl::Status ForgetObservations(const std::vector<uint64_t>& ids);

  // stopping: the engine is being destroyed; every execution counts as cancelled.
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }

  uint64_t revision() const { return revision_.load(std::memory_order_acquire); }
  // NextStamp gives a change stamp no slot has carried before. Stamps, not revisions, mark
  // changes: a reader keeps the stamp it saw, so "changed since I read it" is an exact
  // comparison, whatever raced with the read.
  uint64_t NextStamp() { return stamp_.fetch_add(1, std::memory_order_relaxed) + 1; }
  // CurrentStamp is the last stamp given out: every later change carries a larger one.
  uint64_t CurrentStamp() const { return stamp_.load(std::memory_order_relaxed); }
  Executor& executor() { return *executor_; }
  FunctionCounters& counters(const FunctionInfo& fn) { return counters_[fn.id]; }
  EngineStats Stats() const;
  // --- tracing (trace_recorder.cc) ---
  // tracing: a trace is running. Read once per execution, relaxed: the only cost when off.
  bool tracing() const { return tracing_.load(std::memory_order_relaxed); }
  // RecordTrace keeps `event` if a trace is running (and has room).
  void RecordTrace(TraceEvent event);
  bool StartTrace(const TraceOptions& options);
  Trace StopTrace();
  Trace TakeTrace();
  // DescribeTask is "function(args) @id", for trace reasons; "@id" for a task that exists
  // nowhere. DescribeArgs gives the function's name and the arguments as text, from memory
  // or else the task's stored record (nothing is loaded); false if neither has it.
  std::string DescribeTask(TaskId id);
  bool DescribeArgs(TaskId id, std::string* function, std::string* args);
  // --- why a value was computed (why.cc) ---
  absl::StatusOr<WhyReport> Why(RawVc vc, const WhyOptions& options);
  ExecutionHistory history;
  // DigestText: a digest for people (why.h); GoneText: why task `id` exists nowhere.
  // `load`: a referenced task not in memory is loaded from the store to be named.
  std::string DigestText(const OutputDigest& digest, bool load = false);
  std::string GoneText(TaskId id);
  std::vector<ExecutionRecord> RecentExecutions(size_t max);
  // Describe walks the dependencies of vc's task, breadth first (describe.cc).
  absl::StatusOr<DependencyGraph> Describe(RawVc vc, const DescribeOptions& options);
  // Log reports a background problem through the embedder's logger (stderr by default).
  void Log(LogLevel level, const std::string& message) const;

  // Held exclusively while a batch of SetInputs/DeleteInputs changes its inputs and marks
  // their readers dirty, shared by every read of an input's value (ReadOp): a read sees all
  // of a batch or none of it, and whatever read an input before the batch is dirty (or
  // stale, if running) before anything can read an input after it. Without it, a task
  // reading two results of tasks that each read one input of the batch could see one old
  // and one new, and be clean.
  Mutex input_batch_mu;
  // InputFunction(), compared by address: a read tells an input by its first cache line.
  const FunctionInfo* const input_function = &InputFunction();

  // What Stats() reports, counted as things happen.
  EngineCounts counts;

  // Memory (evict.cc). EvictValues evicts the values of candidates the evictor passes
  // unreferenced until about `bytes` are freed, and returns what it freed.
  size_t EvictValues(size_t bytes);
  size_t EvictValuesLocked(size_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(flush_mu_);
  // ReloadValues brings back the evicted values of a task this thread claimed (kRunning);
  // true if it has all its values now, false if the store no longer has them as they were.
  bool ReloadValues(TaskState& task);
  // NoteEvictionCandidates lists the large results a snapshot just wrote.
  void NoteEvictionCandidates(const std::vector<StoredTask>& written);
  // EvictTasks evicts whole tasks the evictor's hand passes unreferenced (clean, stored as
  // they are, read by no task in memory) until about `bytes` are freed, and returns that
  // estimate. A later ReclaimEvicted frees their records, once no section can see them.
  size_t EvictTasks(size_t bytes);
  // `cut_short` (if given) says whether it stopped short of `bytes` at the most tasks one
  // call looks at, rather than after going round: a next call may free more at once.
  size_t EvictTasksLocked(size_t bytes, bool* cut_short = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(flush_mu_);
  // ReadInMemory: a task in memory read the task's result (its edge is in the task's record).
  // REQUIRES: a Section open on this thread.
  bool ReadInMemory(const TaskState& task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(task.mu);
  // TakeOutLocked takes the task out of the task table into `victims` (it is `gone` from
  // then on) and out of the counts, and returns about what it held. The caller erases it
  // from the cache once it released the task's lock, and retires the victims (reclaimer_).
  size_t TakeOutLocked(TaskState& task, std::vector<std::unique_ptr<TaskState>>* victims)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(task.mu, eviction_.mu);
  // EvictUnsetInputs evicts every unset input in memory that may leave (as EvictTasks would,
  // under no limit): a GC pass calls it, and removes their records at its next pass.
  // Returns how many left.
  size_t EvictUnsetInputs() ABSL_LOCKS_EXCLUDED(flush_mu_, eviction_.mu, input_writer_mu_);
  // RetireEvictedLocked does what follows the eviction of `victims` (out of the table and
  // the cache): the last-use days, the lists that name them, the counts, their freeing.
  void RetireEvictedLocked(std::vector<std::unique_ptr<TaskState>> victims,
                           const std::vector<LastUse>& uses, size_t freed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(flush_mu_, eviction_.mu, input_writer_mu_);
  // TraceEviction records an eviction pass that began at `start` (when tracing).
  void TraceEviction(std::chrono::steady_clock::time_point start, std::string reason);
  // EvictLocked evicts values, then whole tasks, until about `bytes` are freed.
  size_t EvictLocked(size_t bytes, bool* cut_short = nullptr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(flush_mu_);
  size_t ReclaimEvicted() { return reclaimer_.Poll(); }
  // DropValuesOfCollected: the values of the tasks with these ids, superseded versions a
  // GC pass just removed from the store, leave memory (their tasks are kEvicted: a read
  // executes them again). Nothing else would take them out: eviction takes only what the
  // store holds as it is, and nothing writes a collected task again until it executes.
  void DropValuesOfCollected(std::span<const TaskId> ids) ABSL_EXCLUSIVE_LOCKS_REQUIRED(flush_mu_);

  // --- the shared tier (shared_trace.cc) ---
  // Shares: the task's traces may be fetched and published (a plain, not session-dependent
  // function, with a tier configured). Its identity may still hold a Vc: then it is not.
  bool Shares(const TaskState& task) const;
  bool sharing() const { return shared_.tier != nullptr; }  // a tier is configured
  bool publishes() const { return shared_.publish; }
  // FetchTrace looks the task's trace up (blocking, within the tier's timeout); false on a
  // miss, an error or a record that is ignored (each counted).
  bool FetchTrace(TaskState& task, TraceRecord* record);
  // PrefetchTraces fetches together (LookupMany) the traces of the dependencies of `record`
  // that could be shared (not inputs, not session-dependent or machine-local), so that
  // verifying them in order costs no round trip each. They wait for their FetchTrace in
  // `prefetched_` (bounded in bytes: beyond it, none is kept). Returns the keys it kept;
  // the verification hands them to DropPrefetched when it ends, so a record it did not
  // take (a dependency found here, or after one that differed) never outlives it.
  // Blocking, like FetchTrace.
  std::vector<std::string> PrefetchTraces(const TraceRecord& record);
  void DropPrefetched(const std::vector<std::string>& keys);
  // TakePrefetched removes and returns the record prefetched under `key`, if one waits.
  std::optional<std::string> TakePrefetched(const std::string& key);
  // QueueSharedPublish hands an executed task to the publishing thread.
  void QueueSharedPublish(TaskId id);
  uint64_t SharedPublishQueue();

  // Refreshes started and not finished; the destructor waits for zero.
  std::atomic<int64_t> refreshes_in_flight{0};

 private:
  friend class Refresh;
  // ApplyInputs sets `values` (or, `deleting`, unsets their keys) as one durable batch.
  absl::Status ApplyInputs(std::vector<InputValue> values, bool deleting, size_t* changed);
  // ApplyInputBatch writes and applies the changes among `values` (`bytes`: each one
  // encoded, none when deleting or without a store) and returns how many there were.
  absl::StatusOr<size_t> ApplyInputBatch(std::vector<InputValue>& values,
                                         std::vector<std::string>& bytes, bool deleting)
      ABSL_LOCKS_EXCLUDED(input_writer_mu_);
  // StoreReferredTasks writes the identity of each task in `work`, and of what those refer
  // to, that the store does not hold yet; during a GC pass it also keeps them all.
  absl::Status StoreReferredTasks(std::vector<TaskId> work)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(flush_mu_);
  // REQUIRES: store_gate_ held (shared), with a backing store. `loaded_ahead`: read from
  // the store before anything asked for it (LoadAhead).
  // NewTaskId gives out the next id, reserving a block in the backing store first when it
  // is past the ids reserved (a synced write per kTaskIdsReservedAtOnce new tasks). Calls
  // reserve the next block ahead, before they take any lock (ReserveTaskIdsAhead, once
  // half of the block is used), so that the write is rarely made under the cache shard's
  // lock by NewTaskId itself. ReserveTaskIds tells whether `from` may be given out.
  TaskId NewTaskId();
  void ReserveTaskIdsAhead();
  bool ReserveTaskIds(TaskId from);
  static constexpr TaskId kTaskIdsReservedAtOnce = TaskId{1} << 20;
  static constexpr TaskId kTaskIdsPastAFailedReservation = 1024;
  // The first time in a process that no reservation can be written (a full disk), ids
  // come from a window this far past the last one written, times one of
  // kUnreservedWindows chosen by the clock: a process after a crash goes on from that
  // reservation and reaches the window only after 2^31 new tasks, so an id given out
  // meanwhile is not given again to another task (unless a second process in a row fails
  // so and picks the same window: one chance in 31). A jump made durable later uses up at
  // most 2^36 of the 2^44 ids.
  static constexpr TaskId kUnreservedWindowIds = TaskId{1} << 31;
  static constexpr TaskId kUnreservedWindows = 31;
  // CreateTask makes the task `key` names, from `stored_task` if it is usable; `restored`
  // (may be null) says whether it was: a result, or an input's identity, taken from it.
  TaskState* CreateTask(const TaskKeyView& key, void* stack_args,
                        const absl::StatusOr<std::optional<StoredInput>>& stored_input,
                        const StoredTask* stored_task, bool loaded_ahead = false,
                        bool* restored = nullptr);
  // RecheckObservation, once a restored task is in the cache and the table: see call.cc.
  void RecheckObservation(TaskState& task);
  TaskState* LoadTask(TaskId id);
  // AdoptStored makes task `id`, read from the store, a task in memory (null if its record
  // is another build's or damaged). REQUIRES: store_gate_ held (shared); a Section open.
  // A task it created is added to `created`: RecheckObservation is the caller's, once it
  // let go of store_gate_ (it may run change listeners, which may load tasks too, and a GC
  // pass waiting for the gate would then hold them both).
  TaskState* AdoptStored(TaskId id, StoredTask& stored, bool loaded_ahead,
                         std::vector<TaskState*>* created);
  // UsableStoredId tells whether a task id read from the store may be given to a task.
  bool UsableStoredId(TaskId id) const;
  std::string DescribeCycle(TaskState* from, TaskState* to) const;
  void MarkCycle(TaskState* task, TaskState* waiting_task, const std::string& message);

  BackingStore* store_;  // null: memory only
  Logger logger_;
  TaskTable tasks_;
  TaskCache cache_;
  std::atomic<TaskId> next_task_id_{1};
  // Ids below this may be given out: the backing store has them reserved (NewTaskId).
  std::atomic<TaskId> ids_reserved_{1};
  std::mutex id_reservation_mu_;  // one reservation written at a time
  // This process reserved ids: its clean close releases them. Not otherwise, so that an
  // idle start and stop writes nothing to the store.
  bool reserved_ids_ ABSL_GUARDED_BY(id_reservation_mu_) = false;
  std::atomic<bool> reservation_failing_{false};  // the last reservation could not be written
  // Ids below this are not given out (0: none such): the start of the unreserved window
  // the ids jumped to, until a reservation is written. Raised before ids_reserved_.
  std::atomic<TaskId> id_floor_{0};
  bool jumped_ ABSL_GUARDED_BY(id_reservation_mu_) = false;  // once per process
  std::atomic<uint64_t> revision_{1};
  std::atomic<uint64_t> stamp_{1};
  std::atomic<bool> stopping_{false};
  // Set for the destructor's Flush, when nothing runs any more (LogObservedChanges).
  std::atomic<bool> final_snapshot_{false};
  Mutex input_writer_mu_;  // serializes SetInputs batches

  // Restored = valid or dirty (docs/ARCHITECTURE.md). TrustRestored tells whether a task
  // restored with `validity` is clean without verifying what it read: in this build's
  // functions, it read nothing session-dependent, and no input it read changed after the
  // snapshot that wrote it (its input summary shares no bit with the changes logged since,
  // and the log reaches back that far). Then the task is clean but unlinked: no reverse
  // edge leads to it, so DistrustRestored, at each input change, makes the trusted tasks
  // the change may reach dirty, with their readers.
  bool TrustRestored(TaskState& task, const Validity& validity)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(task.mu);
  struct StampedBits {
    uint64_t stamp;
    uint64_t bits;
  };
  void DistrustRestored(const std::vector<StampedBits>& changes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(input_writer_mu_);
  // The same for changes made together at `stamp`, one per entry of `bits` (each is
  // tested on its own: ReachesAny).
  void DistrustRestored(uint64_t stamp, const std::vector<uint64_t>& bits)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(input_writer_mu_);
  const uint32_t functions_digest_;
  Mutex cycles_mu_;  // after a task's lock
  absl::flat_hash_map<TaskId, std::unique_ptr<CycleState>> cycles_ ABSL_GUARDED_BY(cycles_mu_);
  Mutex trust_mu_;  // after a task's lock
  ChangedInputs changed_inputs_ ABSL_GUARDED_BY(trust_mu_);
  struct Trusted {
    TaskState* task;
    uint64_t inputs;  // its summary, copied: read here without the task's lock
  };
  std::vector<Trusted> trusted_ ABSL_GUARDED_BY(trust_mu_);
  // CheckObservations, at open: every stored observation is checked again (its kind
  // subscribes anew, on one thread, and looks, on the others); those that changed, or
  // cannot be checked, count as inputs changed now.
  void CheckObservations();
  // LogChecked logs what CheckObservations found, begun at `start`.
  void LogChecked(size_t checked, size_t changed, std::chrono::steady_clock::time_point start);
  ObservationState observed_;
  ChangeListeners listeners_;
  std::shared_ptr<InvalidationTarget> invalidation_target_ = std::make_shared<InvalidationTarget>();
  // Flush: one snapshot at a time, each written in chunks (WriteSnapshotChunk) under
  // flush_mu_, which a GC pass deletes under too and the evictor evicts under.
  Mutex snapshot_writer_mu_ ABSL_ACQUIRED_BEFORE(flush_mu_);
  Mutex flush_mu_;
  const size_t snapshot_chunk_tasks_;
  Mutex persist_mu_;
  std::vector<TaskId> persist_queue_ ABSL_GUARDED_BY(persist_mu_);
  // Clean tasks a snapshot did not write because a task they refer to could not be written
  // with them (it was not clean): retried with the next snapshot.
  std::vector<TaskId> deferred_ ABSL_GUARDED_BY(flush_mu_);
  // While a GC pass runs: the tasks snapshots wrote, or left in memory unwritten (no room
  // on the disk, or held back), or the evictor evicted, since it scanned the store or
  // deleted its last batch, and what they refer to; and from its own flush before the
  // scan, what that left in memory unwritten (`unwritten_by_pass`). They are in use: the
  // pass keeps them, and the tasks they refer to, before it deletes its next batch.
  bool collecting_ ABSL_GUARDED_BY(flush_mu_) = false;
  std::vector<TaskId> kept_while_collecting_ ABSL_GUARDED_BY(flush_mu_);
  void KeepWhileCollecting(TaskId id, std::span<const TaskId> refers_to,
                           bool unwritten_by_pass = false)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(flush_mu_) {
    if (!collecting_ && !unwritten_by_pass) return;
    kept_while_collecting_.push_back(id);
    kept_while_collecting_.insert(kept_while_collecting_.end(), refers_to.begin(), refers_to.end());
  }
  // Held shared from reading a task's record to registering the task in memory (a call that
  // misses memory, a lazy load). A GC pass takes it exclusively, for a swap, to note the
  // tasks it is about to delete in `deleting_`, and again to forget them once they are
  // deleted: a task read from the store meanwhile is registered as not stored, and one
  // registered before is found in memory by the pass.
  Mutex store_gate_;
  absl::flat_hash_set<TaskId> deleting_ ABSL_GUARDED_BY(store_gate_);
  struct SnapshotBatch;
  // FillIdentityRecord sets `record`'s id, hash, last-use day and identity bytes from
  // `task` (encoded through `scratch`, a reused buffer), adding the tasks the identity
  // refers to (the receiver, Vc arguments) to `refs`.
  static void FillIdentityRecord(const TaskState& task, StoredTask& record, std::string& scratch,
                                 std::vector<TaskId>* refs);
  // AddToSnapshot encodes a clean task into `batch`; false if it is not clean.
  bool AddToSnapshot(TaskState& task, SnapshotBatch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(task.mu);
  absl::Status SweepUses() ABSL_EXCLUSIVE_LOCKS_REQUIRED(flush_mu_);
  // WriteSnapshotChunk writes `ids` (with `deferred`, also the tasks held back last time,
  // deferred_) and the tasks they refer to that the store lacks as one atomic write, adding
  // their count to `written_tasks`. It takes the first `taken` of `ids` only, once their
  // records reach kChunkBytes (snapshot.cc): the rest go in the next chunk. `pulled` collects the
  // queued tasks written ahead of their turn (referred to by an earlier chunk), which their own
  // chunk skips.
  absl::Status WriteSnapshotChunk(std::span<const TaskId> ids, bool deferred, bool for_collection,
                                  absl::flat_hash_set<TaskId>* pulled, size_t* written_tasks,
                                  size_t* taken) ABSL_LOCKS_EXCLUDED(flush_mu_);
  std::unique_ptr<FunctionCounters[]> counters_;
  std::unique_ptr<Executor> executor_;

  // RecordOf puts an entry of the history into words (why.cc).
  ExecutionRecord RecordOf(const ExecutionEntry& entry);

  std::atomic<bool> tracing_{false};
  std::mutex trace_mu_;
  Trace trace_ ABSL_GUARDED_BY(trace_mu_);
  size_t trace_max_events_ ABSL_GUARDED_BY(trace_mu_) = 0;

  // Background snapshots (engine.cc).
  void SnapshotLoop(std::chrono::milliseconds interval, std::chrono::milliseconds idle_delay,
                    std::chrono::milliseconds settle_delay);
  StopSignal snapshot_signal_;
  // Set by the evictor when it found too little it may evict: only stored tasks can leave
  // memory, so the next tick of the snapshot thread writes what is pending at once.
  std::atomic<bool> snapshot_wanted_{false};
  // Set by the evictor when it found too little it may evict and nothing waits for a
  // snapshot: what is left to free is the store's memtables, which the snapshot thread
  // writes into table files (Settle) at its next tick, quiet or not.
  std::atomic<bool> settle_wanted_{false};
  std::thread snapshot_thread_;

  // Days and garbage collection (gc.cc).
  std::function<std::chrono::system_clock::time_point()> clock_;
  std::atomic<uint16_t> today_{0};
  const GcOptions gc_options_;
  Mutex gc_mu_;  // one pass at a time
  // The store's size past which a background pass is due: the disk limit, or, after a pass
  // (background or asked for) that left the store over it (what no pass removes: set
  // inputs, the store's own files), that size grown by an eighth (64 KiB at least). Not the
  // limit then, or every size check would start a pass with nothing to remove; not never,
  // or the results that come after could fill the disk until the next timed pass.
  std::atomic<uint64_t> gc_size_trigger_{0};
  // A pass left the store over the disk limit and the log said so: said once until a pass
  // leaves it under the limit again.
  bool gc_said_over_limit_ ABSL_GUARDED_BY(gc_mu_) = false;
  // Records removed by background passes that left their space to RocksDB's own
  // compactions (a small harvest): a pass asked for reclaims it even if it removes
  // nothing itself, as it promises the space back. Zero again after a reclaim.
  uint64_t unreclaimed_removals_ ABSL_GUARDED_BY(gc_mu_) = 0;
  // NoteDiskLimit updates both after a pass under the daemon's own limit.
  void NoteDiskLimit(const GcReport& report) ABSL_EXCLUSIVE_LOCKS_REQUIRED(gc_mu_);
  // ScanStore reads the store's tasks into `graph`; DeleteGarbage deletes what the pass
  // found garbage in it.
  absl::Status ScanStore(GcGraph& graph, const GcOptions& options);
  absl::Status DeleteGarbage(GcGraph& graph, const GcOptions& options);
  // ReclaimUnlessFull is store_->Reclaim(), except that a store without room to compact
  // (kResourceExhausted) is logged and is no error.
  absl::Status ReclaimUnlessFull() ABSL_EXCLUSIVE_LOCKS_REQUIRED(gc_mu_);
  // DeleteBatch deletes the garbage among `batch` (nodes of `graph`) under flush_mu_, after
  // taking back what was written or evicted since the last batch; `invalidated`: tasks in
  // memory were made to execute again (the caller tells the change listeners).
  absl::Status DeleteBatch(GcGraph& graph, std::span<const uint32_t> batch, bool* invalidated)
      ABSL_LOCKS_EXCLUDED(flush_mu_);
  // KeepUnsetInputsInUse keeps the unset inputs among `nodes` (and `ids`) that are in memory
  // or were set again since the scan.
  void KeepUnsetInputsInUse(GcGraph& graph, std::vector<uint32_t>* nodes,
                            std::vector<uint64_t>* ids) ABSL_EXCLUSIVE_LOCKS_REQUIRED(flush_mu_);
  // Stopping: the engine is going, or the pass's own `stop` says so.
  bool GcStopping(const GcOptions& options) const {
    return gc_abort_.load() || (options.stop && options.stop());
  }
  void GcLoop();
  StopSignal gc_signal_;
  std::atomic<bool> gc_abort_{false};  // the engine is going: a running pass stops early
  std::thread gc_thread_;

  // Memory (evict.cc).
  const MemoryOptions memory_;
  // LowWaterBytes is what the evictor evicts down to, 90% of the limit, so that a resident
  // set hovering at the limit does not make it run on every tick.
  size_t LowWaterBytes() const { return memory_.limit_bytes / 10 * 9; }
  void EvictorLoop();
  // RunClock moves the CLOCK hand for EvictValues, counting what it evicts into `evicted`.
  size_t RunClock(size_t bytes, size_t* evicted) ABSL_EXCLUSIVE_LOCKS_REQUIRED(flush_mu_);
  // DropCandidateLocked takes eviction_.candidates[index] off the list (the last one takes
  // its place).
  void DropCandidateLocked(size_t index) ABSL_EXCLUSIVE_LOCKS_REQUIRED(eviction_.mu);
  EvictionState eviction_;
  Reclaimer reclaimer_;  // the records evicted whole, until no section can see them
  // ForgetEvictedLocked clears the id's bit; false if it was not set.
  bool ForgetEvictedLocked(TaskId id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(eviction_.evicted_ids_mu);
  // ForgetEvicted clears the bits of tasks a GC pass removed from the store: they never
  // come back by those ids (ids are not reused), and their bits would stay for good.
  void ForgetEvicted(const std::vector<uint64_t>& ids);
  // NoteLoadedBack counts a task loaded from the store that this process evicted whole, and
  // says whether it was one.
  bool NoteLoadedBack(TaskId id);
  StopSignal evictor_signal_;
  // The evictor sleeps its full interval, stuck over the limit with nothing to write: the
  // first result queued for a snapshot wakes it (QueuePersist).
  std::atomic<bool> evictor_resting_{false};
  std::thread evictor_thread_;
  // Admission (evict.cc): while the process is over its limit and more new results wait
  // for a snapshot than the limit can hold, a call from outside the engine that misses
  // memory waits (AwaitAdmission) until a snapshot stored them and they could leave. Only a
  // task stored as it is may leave memory, and a burst of new tasks outruns snapshots.
  void AwaitAdmission();
  void SetAdmission(bool closed);  // by the evictor
  std::atomic<bool> snapshots_failing_{false};  // since the last background snapshot failed
  // Flushes that wrote tasks and succeeded, whoever asked (the snapshot loop, the Flush
  // RPC): the loop's failing period ends with one.
  std::atomic<uint64_t> snapshots_written_{0};
  // What an ongoing snapshot has yet to write (Flush), for the evictor's backlog.
  std::atomic<size_t> snapshot_backlog_{0};
  // What the evictor wanted freed while a snapshot's chunk held flush_mu_: the snapshot
  // evicts it before its next chunk.
  std::atomic<size_t> eviction_wanted_{0};
  std::atomic<bool> admission_closed_{false};
  std::mutex admission_mu_;
  std::condition_variable admission_open_;
  // The shared tier's publishing thread (shared_trace.cc).
  const SharedTierOptions shared_;
  // What the log said of the tier's faults, lookups and publishing apart: a full Redis
  // refuses every publish and answers every lookup.
  OutageLog shared_lookups_outage_;
  OutageLog shared_publish_outage_;
  void PublishLoop();
  std::mutex publish_mu_;
  std::condition_variable publish_wake_;
  std::vector<TaskId> publish_queue_ ABSL_GUARDED_BY(publish_mu_);
  // The queue overflowed since it was last empty (logged once for each overflow).
  bool publish_overflowed_ ABSL_GUARDED_BY(publish_mu_) = false;
  size_t publishing_ ABSL_GUARDED_BY(publish_mu_) = 0;  // taken from the queue, being written
  bool stopping_publish_ ABSL_GUARDED_BY(publish_mu_) = false;
  std::thread publish_thread_;

 public:
  // ScheduleRetry invalidates task `id` a second from now: its execution failed with a
  // transient error (IsTransientFailure), which is not a result to keep (retry.cc).
  void ScheduleRetry(TaskId id);

 private:
  void RetryLoop();
  // RetryInput reads again an input the store could not read (InputFromStore, with a
  // transient code), and if it can now, its readers are dirty.
  void RetryInput(TaskState& input);
  struct Retry {
    std::chrono::steady_clock::time_point due;
    TaskId id;
  };
  std::mutex retry_mu_;
  std::condition_variable retry_wake_;
  std::deque<Retry> retries_ ABSL_GUARDED_BY(retry_mu_);  // due in order: one delay for all
  bool stopping_retries_ ABSL_GUARDED_BY(retry_mu_) = false;
  std::thread retry_thread_;  // started at the first retry
  std::mutex prefetched_mu_;
  // Trace records fetched ahead, by key: each is taken by the first FetchTrace of its key.
  absl::flat_hash_map<std::string, std::string> prefetched_ ABSL_GUARDED_BY(prefetched_mu_);
  size_t prefetched_bytes_ ABSL_GUARDED_BY(prefetched_mu_) = 0;
};

// Set while an Engine::NotStarting lives on this thread: a task a call creates is not
// hinted to the workers.
inline thread_local bool tls_not_starting = false;

// IsTransientFailure: the output is an error with code UNAVAILABLE or RESOURCE_EXHAUSTED,
// one that may go away by itself, so it is not kept (retry.cc).
bool IsTransientFailure(const Output& output);

// InputKeyOf is the key of an input task; InputFromStore turns what the store read for it
// into the task's output and stamp: the value, "not set", or the error of an input the
// store could not read, a data loss when the store says so (invalidation.cc). The stamp is
// left as it is unless a value was read.
const std::string& InputKeyOf(const TaskState& input);
const std::string& InputKeyOf(const std::tuple<std::string>& args);
void InputFromStore(const std::string& key,
                    const absl::StatusOr<std::optional<StoredInput>>& stored, Output* output,
                    uint64_t* stamp);
// NotSetOutput is what an input that is not set (never, or no longer) reads as.
Output NotSetOutput(const std::string& key);

// TraceThreadNumber numbers OS threads 1, 2, ... in the order they first ask: short and
// stable in a trace, where a pthread id is long and reused (trace_recorder.cc).
uint64_t TraceThreadNumber();

// IsCycleError tells whether an error is a cycle's (engine.cc).
bool IsCycleError(const TaskFailure& failure);

// The refresh of a task and the commit of its results (refresh.cc).
void CommitExecution(EngineImpl& engine, TaskState& task, ExecContext& context);
// ReadSummary is what a task's reads reach, directly or not: the outside world (a
// session-dependent task), and which inputs (input_summary.h).
struct ReadSummary {
  bool session = false;
  uint64_t inputs = 0;
};
// RegisterReads adds `task` to the dependents of every slot in `reads` and tells whether
// any of them changed since it was read (then the task's result is stale). It adds to
// `*summary` what they reach.
bool RegisterReads(EngineImpl& engine, const TaskState& task, const std::vector<Dep>& reads,
                   ReadSummary* summary);

}  // namespace turbine::internal
