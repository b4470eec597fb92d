// call.cc — the call path: find or create a task by its borrowed components.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "cancel_state.h"
#include "engine_impl.h"
#include "input_summary.h"
#include "persist.h"
#include "reclaim.h"

namespace turbine::internal {

EngineImpl& CurrentEngineOrDie() {
  EngineImpl* engine = tls_context.engine;
  if (engine == nullptr) {
    std::fprintf(stderr,
                 "turbine: a task function was called on a thread with no current engine; "
                 "call it inside a task body or hold a turbine::Engine::Scope\n");
    std::abort();
  }
  return *engine;
}

RawVc Call(const FunctionInfo& fn, RawVc receiver, void* stack_args) {
  return CurrentEngineOrDie().Call(fn, receiver, stack_args);
}

namespace {

// A thread's buffer for encoding identities is kept between calls up to this size.
constexpr size_t kReusedBufferBytes = 64 << 10;

// OnlyDescribing: an Engine::NotStarting lives on this thread, outside any task body (whose
// calls always start what they create): a task created now is only described.
bool OnlyDescribing() { return tls_not_starting && tls_context.exec == nullptr; }

}  // namespace

// Aligned to a cache line: the hit's speed depended on where the linker happened to put
// this function. At a 16-byte boundary that an unrelated change elsewhere in this file
// produced, turbo-cached-same-keys/1 took 84-86 ns in 5 runs of 6 against 59-66 ns at 64.
__attribute__((aligned(64))) RawVc EngineImpl::Call(const FunctionInfo& fn, RawVc receiver,
                                                    void* stack_args, CallSource* source) {
  if (fn.resolver != nullptr && fn.needs_resolution(stack_args)) {
    // Some ResolvedVc argument still names a task output: a resolve-first task (keyed by
    // the unresolved arguments) resolves them and then calls `fn`.
    return Call(*fn.resolver, receiver, stack_args, source);
  }
  FunctionCounters& counters = counters_[fn.id];
  counters.calls.fetch_add(1, std::memory_order_relaxed);
  const TaskKeyView key{&fn, receiver, stack_args, HashComponents(fn, receiver, stack_args)};
  // Step 1: reader lock, borrowed components, no allocation. The lock keeps the task
  // allocated while it is used (FindThen), so a hit opens no Section.
  TaskId hit = kNoTask;
  if (cache_.FindThen(key, [&](TaskState& task) {
        NoteUse(task);
        hit = task.id;
      })) {
    if (source != nullptr) *source = CallSource::kMemory;
    return RawVc::Output(hit);
  }
  // A call from outside the engine waits while a burst of new tasks outruns snapshots
  // under the memory limit (evict.cc). Never a task body's call (its caller runs), nor one
  // a worker makes (it may hold a claimed task), nor an input's task (SetInputs creates
  // those holding the lock a snapshot's chunk takes first; they are small).
  if (admission_closed_.load(std::memory_order_relaxed) && fn.kind != FunctionKind::kInput &&
      tls_context.exec == nullptr && !Executor::OnWorkerThread()) [[unlikely]] {
    AwaitAdmission();
  }
  // Before any lock: the synced write of a reservation holds up nothing else here.
  if (store_ != nullptr) ReserveTaskIdsAhead();
  Section section;  // reclaim.h: the tasks found below stay allocated
  // A record read below is registered in memory before a GC pass can delete it.
  std::optional<ReaderMutexLock> gate;
  if (store_ != nullptr) gate.emplace(&store_gate_);
  // Step 2: the backing store, by the same borrowed components, with no engine lock held.
  // The identity is encoded into a reused buffer; nothing is boxed yet.
  absl::StatusOr<std::optional<StoredInput>> stored_input = std::optional<StoredInput>();
  std::optional<StoredTask> stored_task;
  if (store_ != nullptr && fn.kind == FunctionKind::kInput) {
    const auto& input_key = std::get<0>(*static_cast<const std::tuple<std::string>*>(stack_args));
    stored_input = store_->ReadInput(input_key);  // unreadable: the input's error, below
  }
  bool not_stored = false;  // the store said it holds no record of the task
  if (store_ != nullptr) {
    // Inputs too: their task ids must stay stable, restored readers name them.
    thread_local std::string identity;
    identity.clear();
    EncodeIdentity(fn, receiver, stack_args, &identity);
    absl::StatusOr<std::optional<StoredTask>> found = store_->FindTask(key.hash, identity);
    // Reused for small identities only: one of a call with a 5 MB argument kept 5 MB on every
    // thread that made such a call, for the life of the daemon.
    if (identity.capacity() > kReusedBufferBytes) std::string().swap(identity);
    not_stored = found.ok() && !found->has_value();
    if (found.ok()) stored_task = std::move(*found);  // unreadable: computed afresh
  }
  // Step 3: writer lock, re-check, box the arguments only if still absent.
  bool restored = false;
  auto [task, created] = cache_.FindOrInsert(key, [&] {
    return CreateTask(key, stack_args, stored_input, stored_task ? &*stored_task : nullptr,
                      /*loaded_ahead=*/false, &restored);
  });
  gate.reset();
  if (created && stored_task.has_value()) RecheckObservation(*task);
  if (!created) NoteUse(*task);
  // A miss is a call that made its task: one found in memory (another call may have just
  // made it) or restored from the store is a hit.
  if (created && !restored) counters.misses.fetch_add(1, std::memory_order_relaxed);
  if (created && fn.kind != FunctionKind::kInput && !restored) {
    if (!OnlyDescribing()) {
      executor_->Push(WorkItem::Hint(task->id));
      if (ExecContext* exec = tls_context.exec) NoteStarted(*this, *exec, task->id);
    } else if (not_stored) {
      // Only described, it never runs by itself: stored as its identity alone
      // (AddToSnapshot), it can leave memory under the limit (evict.cc) and come back by its
      // key or by the id the description gave out. Not when the store could not say
      // whether it holds the task: the record written would replace the one it holds.
      MutexLock lock(&task->mu);
      QueuePersist(*task);
    }
  }
  if (source != nullptr) {
    *source = !created ? CallSource::kMemory : restored ? CallSource::kDisk : CallSource::kCreated;
  }
  return RawVc::Output(task->id);
}

TaskId EngineImpl::NewTaskId() {
  for (;;) {
    const TaskId id = next_task_id_.fetch_add(1, std::memory_order_relaxed);
    if (store_ == nullptr) return id;
    // The floor after the bound: ReserveTaskIds raises the floor before the bound.
    if (id < ids_reserved_.load(std::memory_order_acquire) &&
        id >= id_floor_.load(std::memory_order_relaxed)) [[likely]] {
      return id;
    }
    if (ReserveTaskIds(id)) return id;  // else the ids moved on to an unreserved window
  }
}

void EngineImpl::ReserveTaskIdsAhead() {
  const TaskId next = next_task_id_.load(std::memory_order_relaxed);
  if (next + kTaskIdsReservedAtOnce / 2 < ids_reserved_.load(std::memory_order_acquire)) return;
  if (reservation_failing_.load(std::memory_order_relaxed)) return;  // NewTaskId tries again
  ReserveTaskIds(next);
}

bool EngineImpl::ReserveTaskIds(TaskId from) {
  std::lock_guard lock(id_reservation_mu_);
  // Past the table's ids nothing is reserved: the task table says so when it gets one.
  if (from >= TaskTable::kMaxIds) return true;
  const TaskId reserved = ids_reserved_.load(std::memory_order_relaxed);
  const auto may_give = [&](TaskId bound) {
    return from < bound && from >= id_floor_.load(std::memory_order_relaxed);
  };
  if (from + kTaskIdsReservedAtOnce / 2 < reserved) return may_give(reserved);  // meanwhile
  TaskId end = std::min(from + kTaskIdsReservedAtOnce, TaskTable::kMaxIds);
  absl::Status written = store_->ReserveTaskIds(end);
  if (written.ok()) {
    // Every id below `end` is reserved now, those below a window too.
    id_floor_.store(0, std::memory_order_relaxed);
    if (reservation_failing_.exchange(false)) {
      Log(LogLevel::kInfo, "task ids are reserved in the backing store again");
    }
    reserved_ids_ = true;
    ids_reserved_.store(std::max(end, reserved), std::memory_order_release);
    return true;
  }
  // Calls go on, a few ids past the reservation at a time, the next of them trying again
  // (a full disk that gets room). Ids just past the reservation written last would be
  // given again after a crash, to other tasks: the first time in a process, they come from
  // a window far past it instead. Not every time: each jump that a later reservation makes
  // durable uses up that many ids for good.
  TaskId floor = id_floor_.load(std::memory_order_relaxed);
  if (floor == 0 && !jumped_) {
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
    const TaskId window =
        reserved + kUnreservedWindowIds * (1 + static_cast<TaskId>(seconds) % kUnreservedWindows);
    if (window + kTaskIdsReservedAtOnce <= TaskTable::kMaxIds) {
      jumped_ = true;
      floor = window;
      id_floor_.store(window, std::memory_order_relaxed);  // before the bound: NewTaskId
      TaskId next = next_task_id_.load(std::memory_order_relaxed);
      while (next < window && !next_task_id_.compare_exchange_weak(next, window)) {
      }
    }
  }
  if (!reservation_failing_.exchange(true)) {  // said once, and when it works again
    Log(LogLevel::kError,
        "cannot reserve task ids in the backing store (" + std::string(written.message()) +
            "): until it can, new tasks take ids from " +
            std::to_string(std::max(floor, reserved)) +
            (floor > reserved ? " on, far from those the next process gives after a crash"
                              : " on: after a crash, one may be given to another task"));
  }
  end = std::min(std::max({from, reserved, floor}) + kTaskIdsPastAFailedReservation,
                 TaskTable::kMaxIds);
  reserved_ids_ = true;
  ids_reserved_.store(std::max(end, reserved), std::memory_order_release);
  return may_give(std::max(end, reserved));
}

TaskState* EngineImpl::CreateTask(const TaskKeyView& key, void* stack_args,
                                  const absl::StatusOr<std::optional<StoredInput>>& stored_input,
                                  const StoredTask* stored_task, bool loaded_ahead,
                                  bool* restored) {
  if (stored_task != nullptr && !UsableStoredId(stored_task->id)) {
    stored_task = nullptr;  // a damaged record: the task starts afresh under a new id
  }
  const TaskId id = stored_task != nullptr ? stored_task->id : NewTaskId();
  bool retry_input = false;
  std::unique_ptr<TaskState> owned =
      TaskState::Create(id, key.hash, key.fn, key.receiver, stack_args);
  TaskState* task = owned.get();
  // Loaded ahead, it is not used until something reads it; garbage collection counts a
  // task used when a task that read it is (gc.h), which covers the verification that
  // brought it in.
  if (!loaded_ahead) {
    task->used_day.store(today_.load(std::memory_order_relaxed), std::memory_order_relaxed);
  }
  if (key.fn->kind == FunctionKind::kInput) {
    MutexLock lock(&task->mu);
    task->phase = Phase::kClean;
    task->inputs = InputBits(InputKeyOf(*task));
    InputFromStore(InputKeyOf(*task), stored_input, &task->output, &task->output_changed_at);
    retry_input = IsTransientFailure(task->output);  // read again, once it is in the table
  }
  // A record a GC pass is deleting right now is gone for all purposes: the task is not
  // stored, and its result, which may refer to tasks deleted already, is not used.
  const bool deleting = stored_task != nullptr && deleting_.contains(id);
  bool observation_holds = false;  // restored, not trusted, its observation still holds
  // An input's identity, so the id survives a restart (the value is in the inputs table):
  // queued once it is in the table, where a snapshot looks for what it queued.
  bool persist_input = false;
  if (store_ != nullptr) {
    MutexLock lock(&task->mu);
    task->persisted = stored_task != nullptr && !deleting;
    if (key.fn->kind == FunctionKind::kInput) {
      persist_input = !task->persisted;
      if (restored != nullptr) *restored = task->persisted;  // its id, from the store
    } else if (stored_task != nullptr) {
      // A restored result is served after verification (its phase is kDirty: every slot it
      // read must still carry the stamp it saw, in this session), unless its record says
      // nothing it read can have changed since (TrustRestored).
      Validity validity;
      // A stored record without a result is a task that never ran: its identity was
      // written while it waited (a task only described, or one a written record refers
      // to). It starts as a new task would; so does one whose result cannot be used.
      if (!stored_task->result.empty() && !deleting &&
          DecodeResult(stored_task->result, task, &validity)) {
        if (restored != nullptr) *restored = true;
        counts.restored_count.fetch_add(1, std::memory_order_relaxed);
        task->unlinked = true;
        task->unread_since_restore = true;
        task->reads_session = validity.needs_verification;  // until linked: the safe guess
        task->inputs = validity.inputs;
        if (IsTransientFailure(task->output)) {
          // Stored before the failure's retry ran: not a result to keep (retry.cc).
          task->phase = Phase::kDirty;
          task->must_execute = true;
          task->forced_reason = ExecutionReason::kRetry;
        } else if (TrustRestored(*task, validity)) {
          task->phase = Phase::kClean;
          counts.trusted_count.fetch_add(1, std::memory_order_relaxed);
        } else {
          task->phase = Phase::kDirty;
          // An observing task whose observation still holds verifies what it read (often
          // nothing: it is clean at once); a change reached its summary by chance
          // (observations of one group share their bits). Any other session-dependent task
          // looks at the world again.
          observation_holds = key.fn->session_dependent && ObservationHolds(id);
          task->observed = observation_holds;
          task->must_execute = key.fn->session_dependent && !observation_holds;
          task->forced_reason = ExecutionReason::kRestart;
        }
      }
    }
    if (stored_task != nullptr) task->loaded_back = NoteLoadedBack(id);
  }
  // Counted before it is in the table, where the evictor may take it out (and uncount it).
  counts.task_count.fetch_add(1, std::memory_order_relaxed);
  counts.cell_count.fetch_add(static_cast<int64_t>(task->cells().size()),
                              std::memory_order_relaxed);
  if (!tasks_.Put(id, std::move(owned))) {
    std::fprintf(stderr, "turbine: task id space exhausted\n");
    std::abort();
  }
  if (persist_input) {
    MutexLock lock(&task->mu);
    QueuePersist(*task);
  }
  if (retry_input) ScheduleRetry(id);
  return task;
}

void EngineImpl::RecheckObservation(TaskState& task) {
  // CreateTask found its observation to hold; if it no longer does, its subject changed
  // since, and InvalidateMany, which finds tasks by id, may have found none (it was not
  // in the task table yet). What it would have done is done here: either CreateTask's
  // look came after the change was noted, or InvalidateMany's lookup after the insertion.
  if (!task.fn->session_dependent) return;
  std::vector<TaskId> readers;
  {
    MutexLock lock(&task.mu);
    if (!task.observed || task.must_execute || ObservationHolds(task.id)) return;
    task.must_execute = true;
    task.forced_reason = ExecutionReason::kInvalidated;
    MarkOneDirty(task, &readers);
  }
  MarkDirty(std::move(readers));
  NotifyChange();
}

bool EngineImpl::UsableStoredId(TaskId id) const {
  // Every id on disk is below the persisted counter, and an id names one task. A record
  // that breaks either is damaged; trusting it would replace a live task or overflow the
  // task table.
  return id != kNoTask && id < next_task_id_.load(std::memory_order_relaxed) &&
         tasks_.Get(id) == nullptr;
}

TaskState* EngineImpl::LoadTask(TaskId id) {
  std::vector<TaskState*> created;
  TaskState* task = nullptr;
  {
    ReaderMutexLock gate(&store_gate_);  // as in Call: registered before a GC pass deletes it
    // An id in use is refused because a call by its key may have created the task since
    // the caller looked: then that one is it. (Answering nullptr, a verification that met
    // the race read "no task with id" and executed its reader for nothing.)
    if (!UsableStoredId(id)) return tasks_.Get(id);
    absl::StatusOr<std::optional<StoredTask>> read = store_->ReadTask(id);
    if (!read.ok() || !read->has_value()) return nullptr;
    task = AdoptStored(id, **read, /*loaded_ahead=*/false, &created);
  }
  for (TaskState* adopted : created) RecheckObservation(*adopted);
  return task;
}

void EngineImpl::LoadAhead(std::span<const Dep> deps) {
  if (store_ == nullptr || deps.size() < 2) return;
  // Past the evictor's low water, a task loaded ahead may leave memory again before the
  // verification reaches it, and be read twice: one at a time then.
  if (memory_.limit_bytes != 0 &&
      counts.resident_bytes.load(std::memory_order_relaxed) > LowWaterBytes()) {
    return;
  }
  std::vector<TaskId> ids;
  for (const Dep& dep : deps) {
    if (tasks_.Get(dep.slot.task) == nullptr) ids.push_back(dep.slot.task);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  if (ids.size() < 2) return;  // one read, as LoadTask makes it
  Section section;  // reclaim.h: as in LoadTask's callers
  std::vector<TaskState*> created;
  {
    ReaderMutexLock gate(&store_gate_);
    std::erase_if(ids, [&](TaskId id) { return !UsableStoredId(id); });
    if (ids.empty()) return;
    std::vector<absl::StatusOr<std::optional<StoredTask>>> read = store_->ReadTasks(ids);
    if (read.size() != ids.size()) return;  // a store that broke the contract: one at a time
    for (size_t i = 0; i < ids.size(); ++i) {
      // One not read (an error, a damaged record) is left to LoadTask, which meets it again
      // when the read reaches it, and says so there.
      if (read[i].ok() && read[i]->has_value() && tasks_.Get(ids[i]) == nullptr) {
        AdoptStored(ids[i], **read[i], /*loaded_ahead=*/true, &created);
      }
    }
  }
  for (TaskState* adopted : created) RecheckObservation(*adopted);
}

TaskState* EngineImpl::AdoptStored(TaskId id, StoredTask& stored, bool loaded_ahead,
                                   std::vector<TaskState*>* created_tasks) {
  DecodedIdentity identity;
  if (!DecodeIdentity(stored.identity, &identity)) return nullptr;  // another build's task
  const TaskKeyView key{identity.fn, identity.receiver, identity.args,
                        HashComponents(*identity.fn, identity.receiver, identity.args)};
  stored.hash = key.hash;
  absl::StatusOr<std::optional<StoredInput>> stored_input = std::optional<StoredInput>();
  if (identity.fn->kind == FunctionKind::kInput) {
    stored_input =
        store_->ReadInput(InputKeyOf(*static_cast<const std::tuple<std::string>*>(identity.args)));
  }
  auto [task, created] = cache_.FindOrInsert(
      key, [&] { return CreateTask(key, identity.args, stored_input, &stored, loaded_ahead); });
  if (created) created_tasks->push_back(task);
  return task->id == id ? task : nullptr;  // another id: the record was damaged
}

RawVc CreateCell(const ValueType& type, std::shared_ptr<const void> value) {
  ExecContext* context = tls_context.exec;
  if (context == nullptr) {
    std::fprintf(stderr, "turbine: Cell() called outside a task body\n");
    std::abort();
  }
  const uint32_t index = context->NextCellIndex(type.id);
  context->cells.push_back(CellSlot{type.id, index, 0, std::move(value)});
  return RawVc::Cell(context->task->id, type.id, index);
}

void SetOutputValue(ExecContext& context, const ValueType& type,
                    std::shared_ptr<const void> value) {
  context.output.SetValue(&type, std::move(value));
}

void SetOutputRef(ExecContext& context, RawVc target) {
  context.output.SetRef(target);
}

}  // namespace turbine::internal
