// task_state.h — the in-memory record of one task.
//
// Identity fields are immutable after creation. Everything else is guarded by `mu`. The
// refresh that owns a kRunning task is the only writer of output, cells and deps; readers
// touch them only while the task is kClean. No code holds two task locks at once.
#pragma once

#include <absl/base/thread_annotations.h>
#include <absl/container/inlined_vector.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dependent_set.h"
#include "deps_and_cells.h"
#include "mutex.h"
#include "turbine/internal/engine_api.h"
#include "turbine/internal/function_info.h"
#include "turbine/raw_vc.h"
#include "turbine/value_type.h"
#include "turbine/why.h"

namespace turbine::internal {

enum class Phase : uint8_t {
  kScheduled,  // never executed; a hint to run it may sit in a queue; claimable
  kDirty,      // something it read may have changed; refreshed on the next read; claimable
  kRunning,    // one refresh (verify or execute) owns it
  kClean,      // output and cells are current
  // Clean, but the values of its output and cells were evicted (evict.cc): their stamps are
  // current and in memory, the values are in the backing store. A verification reads it as
  // clean (it compares stamps only); a read of a value claims it like a dirty task and the
  // refresh loads the values back. An invalidation marks it dirty like a clean task, so
  // change still reaches its readers.
  kEvicted,
};

// StampsCurrent: the task's stamps say what it holds now (its values may be evicted).
inline bool StampsCurrent(Phase phase) { return phase == Phase::kClean || phase == Phase::kEvicted; }

enum class OutputKind : uint8_t { kNone, kValue, kRef, kError };

// kReadClosedCycle is the stamp recorded for a read that failed because it closed a cycle.
// The slot is running then, so it has no final stamp yet: the edge is registered without a
// staleness check, and the slot's task puts its stamp in when it is clean
// (CycleState::readers). Until then it matches no stamp: verifying the reader re-executes it.
inline constexpr uint64_t kReadClosedCycle = UINT64_MAX - 1;

// CycleRead is a read that closed a cycle on a running task: the reader, the slot, and the
// stamp the reader recorded for it (kReadClosedCycle if its execution read it just now; the
// stamp of its last execution if its verification found the cycle again).
struct CycleRead {
  TaskId reader = kNoTask;
  RawVc slot;
  uint64_t observed = 0;
  uint64_t now = 0;  // the slot's stamp once the task is clean (filled in by Publish)
};

// CycleState is what a task holds only while a cycle runs through it, which is rare: kept
// out of the record (EngineImpl::CycleOf, TaskState::in_cycle), made by the first mark or
// cycle read, freed when it holds nothing again.
struct CycleState {
  // Set when another read detected a cycle through the task while it waited: the read it
  // is waiting in fails with this message instead of returning the value.
  std::shared_ptr<const TaskFailure> error;
  // The task it was waiting for when the cycle was found: only the read that waited for
  // that task takes the error (ReadOp::EndWait). A task woken just before (its
  // `waiting_on` is cleared late) may be on to another read by then, which must not fail.
  TaskId error_on = kNoTask;
  // Tasks whose read of one of the task's slots closed a cycle while it ran, and the stamp
  // each recorded: settled when the task next becomes clean (refresh.cc, SettleCycleReads).
  std::vector<CycleRead> readers;

  bool empty() const { return error == nullptr && readers.empty(); }
};

// Output is what a task's execution produced: a value, a reference, or an error. A value
// (or an error) and a reference never coexist, so they share storage: 16 bytes fewer in
// every task record. A small value of a trivially copyable type (ValueType::inline_size)
// is held in place of the pointer to a boxed one: no allocation kept per task, and a read
// of it touches the record alone. Set through Value/Ref/Error or SetValue/SetRef, which
// keep the kind and the member in use together.
class Output {
 public:
  Output() : ref_() {}
  Output(const Output& other) { CopyFrom(other); }
  Output(Output&& other) noexcept { MoveFrom(std::move(other)); }
  Output& operator=(const Output& other) {
    if (this != &other) {
      Clear();
      CopyFrom(other);
    }
    return *this;
  }
  Output& operator=(Output&& other) noexcept {
    if (this != &other) {
      Clear();
      MoveFrom(std::move(other));
    }
    return *this;
  }
  ~Output() { Clear(); }

  static Output Value(const ValueType* type, std::shared_ptr<const void> value) {
    Output out;
    out.SetValue(type, std::move(value));
    return out;
  }
  static Output Error(absl::StatusCode code, std::string message) {
    Output out;
    new (&out.held_) Held{nullptr, std::make_shared<const TaskFailure>(
                                       TaskFailure{code, std::move(message)})};
    out.kind_ = OutputKind::kError;
    return out;
  }
  // A value of a type held in place is copied there (and the box let go); a null one (not
  // loaded) stays boxed, null.
  void SetValue(const ValueType* type, std::shared_ptr<const void> value) {
    Clear();
    if (type->inline_size != 0 && value != nullptr) {
      new (&in_place_) InPlace{type, {}};
      std::memcpy(in_place_.bytes, value.get(), type->inline_size);
      in_place_held_ = true;
    } else {
      new (&held_) Held{type, std::move(value)};
    }
    kind_ = OutputKind::kValue;
  }
  void SetRef(RawVc ref) {
    Clear();
    ref_ = ref;
    kind_ = OutputKind::kRef;
  }

  OutputKind kind() const { return kind_; }
  // kValue: the value's type; null otherwise.
  const ValueType* type() const {
    if (kind_ != OutputKind::kValue) return nullptr;
    return in_place_held_ ? in_place_.type : held_.type;
  }
  // kValue: the value, where it is held (null while evicted, evict.cc); null otherwise.
  // Valid while the output is unchanged.
  const void* data() const {
    if (kind_ != OutputKind::kValue) return nullptr;
    return in_place_held_ ? static_cast<const void*>(in_place_.bytes) : held_.value.get();
  }
  // kValue: the value, to keep (one held in place is boxed anew); null otherwise.
  std::shared_ptr<const void> shared_value() const {
    if (kind_ != OutputKind::kValue) return nullptr;
    return in_place_held_ ? in_place_.type->box(in_place_.bytes) : held_.value;
  }
  // The value is held in the output itself: it is never evicted (nothing would be freed).
  bool in_place() const { return in_place_held_; }
  // REQUIRES: kind() is kValue and !in_place(). Eviction moves the value out and back.
  std::shared_ptr<const void>& mutable_value() { return held_.value; }
  // kRef: the slot it refers to; none otherwise.
  RawVc ref() const { return kind_ == OutputKind::kRef ? ref_ : RawVc{}; }
  // REQUIRES: kind() is kError.
  const TaskFailure& error() const { return *static_cast<const TaskFailure*>(held_.value.get()); }
  std::shared_ptr<const TaskFailure> failure() const {
    return std::static_pointer_cast<const TaskFailure>(held_.value);
  }

  bool SameAs(const Output& other) const;

 private:
  struct Held {
    const ValueType* type;
    std::shared_ptr<const void> value;
  };
  struct InPlace {
    const ValueType* type;
    alignas(8) unsigned char bytes[kInlineValueBytes];
  };

  bool HoldsBox() const {
    return (kind_ == OutputKind::kValue && !in_place_held_) || kind_ == OutputKind::kError;
  }
  void Clear() {
    if (HoldsBox()) held_.~Held();
    ref_ = RawVc{};
    kind_ = OutputKind::kNone;
    in_place_held_ = false;
  }
  void CopyFrom(const Output& other) {
    if (other.HoldsBox()) {
      new (&held_) Held(other.held_);
    } else if (other.in_place_held_) {
      new (&in_place_) InPlace(other.in_place_);
    } else {
      ref_ = other.ref_;
    }
    kind_ = other.kind_;
    in_place_held_ = other.in_place_held_;
  }
  // Leaves `other` with its kind and a null value (or its value held in place), as a
  // moved-from struct of the two was.
  void MoveFrom(Output&& other) {
    if (other.HoldsBox()) {
      new (&held_) Held(std::move(other.held_));
    } else if (other.in_place_held_) {
      new (&in_place_) InPlace(other.in_place_);
    } else {
      ref_ = other.ref_;
    }
    kind_ = other.kind_;
    in_place_held_ = other.in_place_held_;
  }

  union {
    Held held_;         // kValue boxed, kError
    InPlace in_place_;  // kValue held in place
    RawVc ref_;         // kRef, kNone
  };
  // Last: the task record keeps small fields in the padding after them (TaskState::output).
  // Bits of one byte: the record's fields after the output fill the rest of its word.
  OutputKind kind_ : 7 = OutputKind::kNone;
  bool in_place_held_ : 1 = false;
};
static_assert(sizeof(Output) == 32, "a value held in place takes the room of a boxed one");

struct TaskState {
  // Create allocates a record with the argument tuple moved there from `args`, in one
  // allocation: the tuple first, then the receiver if the function takes one, then the
  // record. A hit compares the tuple, the receiver and the identity at the record's start,
  // which are then adjacent: often one cache line. Most functions take no receiver; keeping
  // it out of the record saves them 16 bytes each.
  static std::unique_ptr<TaskState> Create(TaskId id, uint64_t hash, const FunctionInfo* fn,
                                           RawVc receiver, void* args);
  // `delete` of a record ends the tuple and frees the allocation Create made.
  static void operator delete(TaskState* task, std::destroying_delete_t);
  TaskState(const TaskState&) = delete;
  TaskState& operator=(const TaskState&) = delete;

  // The function's argument tuple (owned), at the start of the allocation.
  void* args() const {
    return const_cast<char*>(reinterpret_cast<const char*>(this)) - PrefixBytes(*fn);
  }
  // The receiver (`this`): none unless the function takes one (FunctionInfo::has_receiver;
  // calls are checked to pass one exactly then). Right before the record.
  RawVc receiver() const {
    if (!fn->has_receiver) return RawVc{};
    return *reinterpret_cast<const RawVc*>(reinterpret_cast<const char*>(this) - sizeof(RawVc));
  }
  // What the allocation holds before the record: the tuple (rounded up so that what follows
  // is aligned), then the receiver if there is one.
  static size_t PrefixBytes(const FunctionInfo& fn) {
    static_assert(alignof(RawVc) <= alignof(TaskState));
    const size_t tuple = (fn.args_size + alignof(TaskState) - 1) & ~(alignof(TaskState) - 1);
    return tuple + (fn.has_receiver ? sizeof(RawVc) : 0);
  }

  const TaskId id;
  // Of the components; the cache map's key hash. Kept, though it could be computed again:
  // without it a probe whose control byte matched by chance (one in about nine) reads the
  // argument tuple to tell, a cache miss (turbo-cached-different-keys 221-236 -> 248 ns),
  // and every growth of the map hashes every argument tuple again.
  const uint64_t hash;
  const FunctionInfo* const fn;

  // The day (since 1970-01-01) the task was last called: on a hit, a relaxed store only
  // when the day changed (EngineImpl::NoteUse). Next to the identity, which a hit reads.
  std::atomic<uint16_t> used_day{0};
  // The last-use day the backing store has for this task. Guarded by the engine's
  // flush_mu_ (snapshots write it), not by `mu`.
  uint16_t stored_day = 0;

  // The fields are ordered to leave no padding, and the flags are bits: the record is
  // allocated once per task, and a million tasks are common. Everything from here on is
  // guarded by `mu` unless it says otherwise (bit-fields cannot carry the annotation).
  Phase phase ABSL_GUARDED_BY(mu) = Phase::kScheduled;
  // Why must_execute was set (kInvalidated, kRestart, kGarbageCollected, kCycle, kRetry),
  // for why.h.
  ExecutionReason forced_reason ABSL_GUARDED_BY(mu) = ExecutionReason::kNone;
  // Why the last execution in this process ran (kNone: none did), and with
  // kDependencyChanged the task whose slot changed (Engine::Why).
  ExecutionReason last_reason ABSL_GUARDED_BY(mu) = ExecutionReason::kNone;
  // Set when an invalidation reached the task while it ran: its result is already stale.
  bool stale : 1 = false;
  // Queued for the next snapshot (with a backing store).
  bool persist_queued : 1 = false;
  // The backing store holds this task (it was read from there, or a snapshot wrote it), so
  // a snapshot need only rewrite its result (StoredTask::stored).
  bool persisted : 1 = false;
  // Its result changed since a snapshot last wrote it. A snapshot skips a task that is not
  // clean; this makes the task queue itself again when it next becomes clean, even if that
  // happens by verification, without executing.
  bool unwritten : 1 = false;
  // Restored from disk and not yet registered with the tasks it read (their dependents
  // sets are in memory only): done when it is first verified or executed.
  bool unlinked : 1 = false;
  // The next refresh executes instead of verifying: the task's result depends on the
  // outside world, which changed (an Invalidator fired) or was not seen this session (a
  // session-dependent task restored from disk). Cleared when that execution starts.
  bool must_execute : 1 = false;
  // Set by every read of a value, cleared by the evictor passing it: a task read since the
  // evictor last passed is spared once (CLOCK).
  bool referenced : 1 = false;
  // Claimed from kEvicted: the refresh loads the values back without verifying anything.
  bool reload_only : 1 = false;

  mutable Mutex mu;
  // Bodies run so far in this process (wraps; servers compare it before and after a read
  // to tell a computed answer from a cached one).
  uint32_t executions ABSL_GUARDED_BY(mu) = 0;
  // Wall time of the last execution in this process, in microseconds (saturating), for
  // Engine::Describe.
  uint32_t last_execution_micros ABSL_GUARDED_BY(mu) = 0;
  TaskId last_cause ABSL_GUARDED_BY(mu) = kNoTask;
  // The engine-wide sequence number of the last execution (its entry in the ring of recent
  // executions, ExecutionHistory); 0: not executed in this process.
  uint64_t last_execution ABSL_GUARDED_BY(mu) = 0;
  // [[no_unique_address]]: the fields below go in the padding at the end of the Output
  // (its kind is one byte of an 8-byte word), 8 bytes fewer per task.
  [[no_unique_address]] Output output ABSL_GUARDED_BY(mu);
  // The current result was adopted from the shared tier (a verified trace), not executed
  // here. Cleared by an execution.
  bool from_shared : 1 = false;
  // Something its last result read, directly or through other tasks, is session-dependent:
  // after a restart only a verification can tell whether it still holds.
  bool reads_session : 1 = false;
  // Its current result follows from one observation of the outside world that the engine
  // checks again at open (observe.h, EngineImpl::observed_.records): it counts as reading
  // nothing session-dependent, and its input summary has the observation's bits.
  bool observed : 1 = false;
  // Evicted whole (evict.cc): out of the cache and the task table, freed once no section
  // can see it (reclaim.h). Whoever finds it through a pointer taken before looks the id
  // up again; nothing changes it any more.
  bool gone : 1 = false;
  // Its result came from the store and no read of its value has taken it since: the first
  // one says it came from disk (ReadOp::reloaded), even when something else (`graph`,
  // `why`, a verification) brought the task into memory before.
  bool unread_since_restore : 1 = false;
  // Restored after this process evicted it whole: what it did here before is not in the
  // store, so `why` cannot say it was not executed in this process (why.cc).
  bool loaded_back : 1 = false;
  // A cycle runs through it: the engine holds a CycleState for it (EngineImpl::CycleOf).
  bool in_cycle : 1 = false;
  // An input a batch of SetInputs/DeleteInputs is being applied to (found, not yet
  // changed): it must not leave memory meanwhile (evict.cc), or a load of its key would
  // bring the old value back as a second record while the change went to this one.
  bool set_pending : 1 = false;
  // Its last execution read a Vc whose task was gone (a GC pass removed it) and asked to
  // execute again (ReadOp::Steps): the next one that finds a Vc gone keeps the error, so
  // that a Vc naming nothing from the start does not run it for ever.
  bool reran_for_lost_read : 1 = false;
  // No caller wants the running execution (or the hinted start) any more. Set with the
  // last caller's cancellation; cleared when a reader claims the task or it restarts.
  std::atomic<bool> cancelled{false};
  // Callers counted as waiting for this task (ReadOp, cancel.cc): when cancellations take
  // the count to zero, the execution is cancelled.
  int32_t callers ABSL_GUARDED_BY(mu) = 0;
  // Change stamp of the output: a fresh engine-wide number each time the output changes.
  uint64_t output_changed_at ABSL_GUARDED_BY(mu) = 0;
  // The inputs its result read, directly or through the tasks it read, as a summary
  // (input_summary.h): persisted with the result, so a restart can tell whether an input
  // change since then may have reached it. An input's is its own key's bits.
  uint64_t inputs ABSL_GUARDED_BY(mu) = 0;
  // What the last execution read, in order, and the cells it made (deps(), cells()).
  DepsAndCells deps_and_cells ABSL_GUARDED_BY(mu);
  DependentSet dependents ABSL_GUARDED_BY(mu);
  Waiter* waiters ABSL_GUARDED_BY(mu) = nullptr;
  // This task's execution, as a caller of the task it waits for.
  Caller as_caller;

  // The task this one's refresh is blocked on, for cycle detection (seq_cst on purpose:
  // two tasks closing a cycle at once must see each other's store). An id, not a pointer:
  // the waiter may clear it only after the task it names is clean and could be evicted
  // (reclaim.h).
  std::atomic<TaskId> waiting_on{kNoTask};

  std::span<Dep> deps() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return deps_and_cells.deps(); }
  std::span<const Dep> deps() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return deps_and_cells.deps();
  }
  std::span<CellSlot> cells() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return deps_and_cells.cells(); }
  std::span<const CellSlot> cells() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return deps_and_cells.cells();
  }

  // SlotChangedAt gives the slot's change stamp, or UINT64_MAX if the slot does not exist
  // (a cell the last execution did not create).
  uint64_t SlotChangedAt(RawVc slot) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  const CellSlot* FindCell(ValueTypeId type, uint32_t index) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // HasEvictedValues: its output's value or a cell's is not in memory (evict.cc).
  bool HasEvictedValues() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // ReadsUncheckedWorld: its result depends on the world outside the engine in a way no
  // check at open covers (it is session-dependent and observed nothing checkable, or it
  // read such a task): only a verification can tell whether it still holds.
  bool ReadsUncheckedWorld() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return (fn->session_dependent && !observed) || reads_session;
  }

  ~TaskState();

 private:
  TaskState(TaskId id, uint64_t hash, const FunctionInfo* fn) : id(id), hash(hash), fn(fn) {}
};

// A million tasks are common: a field added to the record costs a megabyte per 8 bytes
// (and a malloc size class per 16). Raise this on purpose, not by accident. (The lock is
// 8 bytes, but bigger under ThreadSanitizer: mutex.h.)
static_assert(sizeof(TaskState) <= 144 + sizeof(Mutex), "the task record grew");

// ObservationRecord is what a task saw outside the engine (observe.h): `key` is the kind,
// a NUL, and the subject. Its summary bits are those of `change_key`, the key a change of
// it is logged under (InputBits): a NUL and the observation's group.
struct ObservationRecord {
  std::string key;
  std::string change_key;
  uint64_t fingerprint = 0;
  bool operator==(const ObservationRecord&) const = default;
};

// ExecContext is one execution of a task body: what it read and what it produced.
struct ExecContext {
  TaskState* task = nullptr;
  // Most tasks read a handful of values; recording them must not allocate on a hit.
  absl::InlinedVector<Dep, 8> reads;
  std::vector<CellSlot> cells;
  Output output;
  // The body saw its cancellation (a read failed with it, or Cancelled() said so): what it
  // produced may be incomplete, so it is discarded.
  bool saw_cancellation = false;
  // The tasks the body made and left to the worker pool to start (a hint), which it may
  // not have awaited yet: once the execution is cancelled, those nobody else waits for are
  // cancelled too (cancel_state.h), or a walk that starts every entry before awaiting any
  // would run on whole after its caller left. Appended by the executing thread, read by a
  // thread that cancels the execution, which finds it while `starter` (NoteStarted).
  std::mutex started_mu;  // std, not absl: visible to TSan
  std::vector<TaskId> started ABSL_GUARDED_BY(started_mu);
  bool starter = false;  // only the executing thread reads or writes it
  // The result comes from a verified shared trace: committed like an execution's, but not
  // counted as one.
  bool adopted = false;
  uint64_t nanos = 0;  // wall time of the body, set when it finished
  // What the body observed (Observe); `observed_twice`: more than one thing, which the
  // engine cannot check at open, so the result counts as session-dependent.
  std::optional<ObservationRecord> observation;
  bool observed_twice = false;
  // Checkable is the observation the engine can check at open, or null.
  const ObservationRecord* Checkable() const {
    return observation.has_value() && !observed_twice ? &*observation : nullptr;
  }
  ExecutionReason reason = ExecutionReason::kNone;  // why it ran (why.h)
  TaskId cause = kNoTask;                           // with kDependencyChanged
  // The task's reran_for_lost_read when it started, and whether this execution asked to
  // run again for a read of a Vc whose task was gone (ReadOp::Steps).
  bool reran_for_lost_read = false;
  bool asked_rerun_for_lost_read = false;

  // RecordRead returns false when it kept the read before instead (the same slot).
  bool RecordRead(RawVc slot, uint64_t observed) {
    if (!reads.empty() && reads.back().slot == slot) return false;  // a loop reading one value
    reads.push_back(Dep{slot, observed});
    return true;
  }
  // NextCellIndex numbers the cells of each type in creation order. A task makes cells of
  // few types, so a short list beats a map.
  uint32_t NextCellIndex(ValueTypeId type) {
    for (auto& [counted, next] : cell_counts) {
      if (counted == type) return next++;
    }
    cell_counts.emplace_back(type, 1);
    return 0;
  }
  absl::InlinedVector<std::pair<ValueTypeId, uint32_t>, 2> cell_counts;
};

// What the heap holds for a task, an edge and a cell, as eviction and Stats estimate it: a
// task's record with its argument tuple, its cache and table slots and a small value; an
// edge at both ends (the reader's Dep, the dependency's Dependent and its hash slot); a
// cell's slot with a small value.
inline constexpr size_t kTaskRecordBytes = sizeof(TaskState) + 96;
inline constexpr size_t kEdgeBytes = sizeof(Dep) + sizeof(Dependent) + 1;
inline constexpr size_t kCellBytes = sizeof(CellSlot) + 32;

}  // namespace turbine::internal
