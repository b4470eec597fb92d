// refresh.cc — bringing one claimed task up to date: verify, else execute and commit.
#include <algorithm>
#include <chrono>
#include <coroutine>
#include <exception>
#include <span>

#include "cancel_state.h"
#include "engine_impl.h"
#include "input_read_section.h"
#include "job.h"
#include "turbine/cancel.h"

namespace turbine::internal {
namespace {

// kLoadAhead is how many of a verification's dependencies are read from the store in one
// batch (EngineImpl::LoadAhead).
constexpr size_t kLoadAhead = 64;

// StoreVerified queues a restored task found clean in this session (verified, or executed
// with the same result) to be stored again. Its record says it was clean as of an older
// stamp, so an input change logged since that reaches its summary (by chance, often)
// would make it verify at every restart until the log forgets the change; stored
// again, it is clean as of this session's snapshot and trusted at the next open. Only a
// record that can be trusted is worth the write.
void StoreVerified(EngineImpl& engine, TaskState& task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(task.mu) {
  if (!engine.persistent() || task.ReadsUncheckedWorld()) return;
  task.unwritten = true;
  engine.QueuePersist(task);
}

// RunBody transfers control into a task body and back when it finishes.
struct RunBody {
  std::coroutine_handle<PromiseBase> body;
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> job) const noexcept {
    body.promise().continuation = job;
    return body;
  }
  void await_resume() const noexcept {}
};

// FailureOutput is the output of a body that threw: a TaskError keeps its code.
Output FailureOutput(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const TaskError& e) {
    return Output::Error(e.code(), e.message());
  } catch (const std::exception& e) {
    return Output::Error(absl::StatusCode::kUnknown, e.what());
  } catch (...) {
    return Output::Error(absl::StatusCode::kUnknown,
                         "task function threw a non-standard exception");
  }
}

// EndedOnACycle tells whether the task's last result is a cycle error.
bool EndedOnACycle(TaskState& task) {
  MutexLock lock(&task.mu);
  return task.output.kind() == OutputKind::kError && IsCycleError(task.output.error());
}

// DependencyChanged tells whether `dep`'s slot changed since it was read. One that is not
// clean (it became dirty again meanwhile) counts as changed: executing is always safe.
bool DependencyChanged(EngineImpl& engine, const Dep& dep) {
  TaskState* task = engine.Task(dep.slot.task);
  if (task == nullptr) return true;
  MutexLock lock(&task->mu);
  return !StampsCurrent(task->phase) || task->SlotChangedAt(dep.slot) != dep.observed;
}

// SettleCycleReads tells the tasks whose read of this task closed a cycle what came of it,
// now that it is clean. A read made by an execution gets the slot's stamp, so its reader
// verifies like any other from now on (instead of re-executing after every restart). A read
// made by a verification, which counted the cycle as unchanged, is checked: if the slot
// changed after all, the reader and its readers are dirty.
void SettleCycleReads(EngineImpl& engine, const std::vector<CycleRead>& reads) {
  std::vector<TaskId> changed;
  for (const CycleRead& read : reads) {
    TaskState* reader = engine.Task(read.reader);
    if (reader == nullptr) continue;
    MutexLock lock(&reader->mu);
    if (read.observed != kReadClosedCycle) {
      if (read.observed == read.now) continue;
      // Unless it executed meanwhile (and so read the slot anew), it must execute:
      // verifying would only find the same cycle again.
      for (const Dep& dep : reader->deps()) {
        if (dep.slot != read.slot || dep.observed != read.observed) continue;
        reader->must_execute = true;
        reader->forced_reason = ExecutionReason::kCycle;
        changed.push_back(read.reader);
        break;
      }
      continue;
    }
    for (Dep& dep : reader->deps()) {
      if (dep.slot != read.slot || dep.observed != kReadClosedCycle) continue;
      dep.observed = read.now;
      if (engine.persistent()) {
        reader->unwritten = true;
        if (reader->phase == Phase::kClean) engine.QueuePersist(*reader);
      }
    }
  }
  if (!changed.empty()) engine.MarkDirty(std::move(changed));
}

// MarkReadersDirty marks dirty whatever reads the task (it is running).
void MarkReadersDirty(EngineImpl& engine, TaskState& task) {
  std::vector<TaskId> readers;
  {
    MutexLock lock(&task.mu);
    task.dependents.ForEach([&](const Dependent& d) { readers.push_back(d.reader); });
  }
  if (!readers.empty()) engine.MarkDirty(std::move(readers));
}

// Publish ends a refresh: the task becomes clean (or dirty, if an invalidation reached it
// while it ran) and its waiters are woken. A stale task with waiters runs again at once.
void Publish(EngineImpl& engine, TaskState& task, bool stale) {
  Waiter* waiters = nullptr;
  bool restart = false;
  std::vector<CycleRead> cycle_reads;
  {
    MutexLock lock(&task.mu);
    stale = stale || task.stale;
    task.stale = false;
    if (!stale) {
      task.phase = Phase::kClean;
      if (CycleState* cycle = engine.FindCycle(task)) {
        cycle_reads = std::exchange(cycle->readers, {});
        engine.DropCycleIfEmpty(task);
      }
      for (CycleRead& read : cycle_reads) read.now = task.SlotChangedAt(read.slot);
      if (task.unwritten) engine.QueuePersist(task);  // a snapshot skipped it meanwhile
    } else if (task.waiters != nullptr && !engine.stopping()) {
      // Not while the engine stops: an execution cancelled by the stop would restart, be
      // cancelled again, and so on for ever; woken, its waiters end cancelled instead.
      restart = true;  // stays kRunning; waiters stay parked
      task.cancelled.store(false, std::memory_order_relaxed);  // they are its callers
    } else {
      task.phase = Phase::kDirty;
    }
    if (!restart) waiters = std::exchange(task.waiters, nullptr);
  }
  if (restart) engine.executor().Push(WorkItem{WorkItem::Kind::kStartClaimed, &task});
  SettleCycleReads(engine, cycle_reads);
  while (waiters != nullptr) {
    Waiter* next = waiters->next;  // `waiters` may be gone once woken
    waiters->wake(waiters);
    waiters = next;
  }
}

// PublishCancelled ends a refresh nobody waits for any more: nothing it did is kept, the
// task is as dirty as before (and must still execute if it had to).
void PublishCancelled(EngineImpl& engine, TaskState& task, bool must_execute) {
  {
    MutexLock lock(&task.mu);
    task.must_execute = task.must_execute || must_execute;
  }
  Publish(engine, task, /*stale=*/true);
}

// BodyCancelled tells whether an execution ended by its cancellation.
bool BodyCancelled(const ExecContext& context, const std::exception_ptr& error) {
  if (context.saw_cancellation) return true;
  if (!error) return false;
  try {
    std::rethrow_exception(error);
  } catch (const CancelledError&) {
    return true;
  } catch (...) {
    return false;
  }
}

// SameDigest tells whether `slot`, now clean, has `digest`, and gives its stamp.
bool SameDigest(EngineImpl& engine, RawVc slot, const std::string& digest, uint64_t* observed) {
  TaskState* target = engine.Task(slot.task);
  if (target == nullptr) return false;
  InputReadSection between_batches(engine, *target, /*may_wait=*/true);
  MutexLock lock(&target->mu);
  std::string here;
  if (target->phase != Phase::kClean || !SlotDigest(engine, *target, slot, &here)) return false;
  *observed = target->SlotChangedAt(slot);
  return here == digest;
}

// NewSummary is a task's input summary once it registered its reads (`computed` from
// them). A dependency that re-executes after it was read may push bits to the task
// (PropagateReadSummary) that `computed` lacks; it was dirtied first, which made the
// running task stale (here, or in RegisterReads). Then the task keeps what it has too.
uint64_t NewSummary(const TaskState& task, bool stale, uint64_t computed)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(task.mu) {
  return stale || task.stale ? task.inputs | computed : computed;
}

void PropagateReadSummary(EngineImpl& engine, TaskState& task, const ReadSummary& added);

// NanosSince is the wall time from `start` to now, in nanoseconds.
static uint64_t NanosSince(std::chrono::steady_clock::time_point start) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now() - start)
                                   .count());
}

Job RefreshJob(EngineImpl* engine, TaskState* task) {
  tls_context = ThreadContext{engine, nullptr};
  bool execute = false;
  bool forced = false;
  bool first = false;
  bool reload_only = false;
  ExecutionReason forced_reason = ExecutionReason::kNone;
  bool reran_for_lost_read = false;
  std::vector<Dep> deps;
  const Dep* changed_dep = nullptr;  // the read that made it execute, for traces
  {
    MutexLock lock(&task->mu);
    if (CycleState* cycle = engine->FindCycle(*task)) {
      cycle->error.reset();  // left by a cycle found while a cancelled refresh waited
      engine->DropCycleIfEmpty(*task);
    }
    forced = task->must_execute;
    task->must_execute = false;
    // Claimed from kEvicted: it was clean, nothing to verify; its values come back below.
    reload_only = task->reload_only;
    task->reload_only = false;
    forced_reason = task->forced_reason;
    reran_for_lost_read = task->reran_for_lost_read;
    first = task->output.kind() == OutputKind::kNone;
    execute = first || forced;
    if (!execute && !reload_only) deps.assign(task->deps().begin(), task->deps().end());
  }
  // Verify: dependencies in the order the last execution read them. The first one that
  // changed decides; later ones might not even be read by a new execution. Those only on
  // disk (a restored task's) are read in batches of kLoadAhead, each as the reads reach
  // it: if one changed, the execution mostly reads the same ones, and a task that read a
  // million does not load them all because its first changed.
  for (size_t i = 0; i < deps.size(); ++i) {
    const Dep& dep = deps[i];
    if (i % kLoadAhead == 0) {
      engine->LoadAhead(std::span(deps).subspan(i, std::min(kLoadAhead, deps.size() - i)));
    }
    ReadOp op(dep.slot, nullptr, ReadOp::Mode::kClean);
    op.set_waiting_task(task);
    co_await AwaitRead{op};
    if (op.cancelled()) {
      PublishCancelled(*engine, *task, forced);
      engine->refreshes_in_flight.fetch_sub(1);
      co_return;
    }
    if (TaskState* head = op.closed_cycle();
        head != nullptr && dep.observed != kReadClosedCycle && EndedOnACycle(*task)) {
      // The cycle this task was on is verified again (after a restart, say), through this
      // read: count it unchanged for now; if it changed after all, `head` makes this task
      // execute once it is clean (SettleCycleReads). A task whose last result was no cycle
      // error is on a new cycle: it executes, below.
      MutexLock lock(&head->mu);
      engine->CycleOf(*head).readers.push_back(CycleRead{task->id, dep.slot, dep.observed});
      continue;
    }
    if (!op.ok() || DependencyChanged(*engine, dep)) {
      execute = true;
      changed_dep = &dep;
      break;
    }
  }
  bool value_lost = false;  // evicted, and then garbage collected from the store
  if (!execute && !engine->ReloadValues(*task)) {
    // Its evicted values are gone from the store (a GC pass) or changed there: it
    // executes. A task that was clean has readers that are not dirty; they must be now,
    // as for any task about to execute, or a changed result would not reach them.
    execute = true;
    value_lost = true;
    if (reload_only) MarkReadersDirty(*engine, *task);
  } else if (execute && !first) {
    engine->ReloadValues(*task);  // the early cutoff compares with the old values
  }
  if (!execute) {
    // A task restored from disk joins the in-memory reverse edges once it is verified. One
    // whose values were only reloaded verified nothing (`deps` is empty): if it is unlinked,
    // it was trusted (TrustRestored), and stays so, with the summary of what it read.
    bool unlinked = false;
    if (!reload_only) {
      MutexLock lock(&task->mu);
      unlinked = task->unlinked;
      task->unlinked = false;
    }
    ReadSummary summary;
    const bool stale = unlinked && RegisterReads(*engine, *task, deps, &summary);
    ReadSummary added;
    if (unlinked) {
      // A trusted observing task verified: its observation still holds, and stays in its
      // summary (its readers' summaries must keep the bits).
      if (task->fn->session_dependent) summary.inputs |= engine->ObservedBits(*task);
      MutexLock lock(&task->mu);
      // What it reads now that its record did not say: a dependency that executed again
      // meanwhile may read more, and could not tell this task, which was not its reader.
      // Readers that read the record's summary must learn it, as after an execution.
      added.session = summary.session && !task->reads_session;
      added.inputs = summary.inputs & ~task->inputs;
      task->reads_session = summary.session;  // the record's was a guess (cycles counted)
      task->inputs = NewSummary(*task, stale, summary.inputs);
      if (!stale) StoreVerified(*engine, *task);
    }
    if (added.session || added.inputs != 0) PropagateReadSummary(*engine, *task, added);
    Publish(*engine, *task, stale);
    engine->refreshes_in_flight.fetch_sub(1);
    co_return;
  }

  if (task->cancelled.load(std::memory_order_acquire)) {  // its callers left meanwhile
    PublishCancelled(*engine, *task, forced);
    engine->refreshes_in_flight.fetch_sub(1);
    co_return;
  }
  if (first && !forced && engine->Shares(*task)) {
    // The shared tier: a trace executed elsewhere is adopted only if every dependency it
    // read has the same digest here, read in its order (each by the same rule: memory,
    // disk, the shared tier or executing). The first that differs ends the check.
    TraceRecord trace;
    const auto adopt_start = std::chrono::steady_clock::now();  // `why` says how long it took
    if (engine->FetchTrace(*task, &trace)) {
      const std::vector<std::string> prefetched = engine->PrefetchTraces(trace);
      ExecContext adopted;
      adopted.task = task;
      adopted.adopted = true;
      bool same = true;
      RawVc previous;
      for (const TraceDep& traced : trace.deps) {
        RawVc slot;
        if (!ResolveTraceDep(*engine, traced, previous, &slot)) {
          same = false;
          break;
        }
        ReadOp op(slot, nullptr, ReadOp::Mode::kClean);
        op.set_waiting_task(task);
        co_await AwaitRead{op};
        if (op.cancelled()) {
          engine->DropPrefetched(prefetched);
          PublishCancelled(*engine, *task, forced);
          engine->refreshes_in_flight.fetch_sub(1);
          co_return;
        }
        uint64_t observed = 0;
        if (!op.ok() || op.closed_cycle() != nullptr ||
            !SameDigest(*engine, slot, traced.digest, &observed)) {
          same = false;
          break;
        }
        adopted.RecordRead(slot, observed);
        previous = slot;
      }
      engine->DropPrefetched(prefetched);
      if (same && AdoptTrace(*engine, trace, &adopted)) {
        engine->counts.shared_hits.fetch_add(1, std::memory_order_relaxed);
        adopted.nanos = NanosSince(adopt_start);
        CommitExecution(*engine, *task, adopted);
        engine->refreshes_in_flight.fetch_sub(1);
        co_return;
      }
      engine->counts.shared_verify_failures.fetch_add(1, std::memory_order_relaxed);
    }
  }
  ExecContext context;
  context.task = task;
  context.reason = first        ? ExecutionReason::kFirst
                   : forced     ? forced_reason
                   : value_lost ? ExecutionReason::kGarbageCollected
                                : ExecutionReason::kDependencyChanged;
  if (!first && !forced && changed_dep != nullptr) context.cause = changed_dep->slot.task;
  context.reran_for_lost_read = reran_for_lost_read;
  const auto start_time = std::chrono::steady_clock::now();
  // A body that parks may end on another thread: its slice belongs where it started.
  const uint64_t start_thread = engine->tracing() ? TraceThreadNumber() : 0;
  // A task function may be a plain function that checks its arguments and returns another
  // coroutine's task: its code runs here, in invoke, so in the task's context, and what it
  // throws is the body's failure, as from a coroutine. Before, it ended the process.
  tls_context.exec = &context;
  ErasedTask body;
  std::exception_ptr thrown_before_the_body;
  try {
    body = task->fn->invoke(*task->fn, task->receiver(), task->args());
  } catch (...) {
    thrown_before_the_body = std::current_exception();
  }
  if (body.handle) {
    co_await RunBody{body.handle};
  }
  tls_context = ThreadContext{engine, nullptr};
  const std::exception_ptr error =
      body.handle ? body.handle.promise().error : thrown_before_the_body;
  if (context.starter) ForgetStarter(context);
  const uint64_t nanos = NanosSince(start_time);
  FunctionCounters& counters = engine->counters(*task->fn);
  counters.executions.fetch_add(1, std::memory_order_relaxed);
  counters.execution_nanos.fetch_add(nanos, std::memory_order_relaxed);
  context.nanos = nanos;
  if (engine->tracing()) [[unlikely]] {
    TraceEvent event;
    event.task = task->id;
    event.function = task->fn->name;
    task->fn->describe_args(task->args(), &event.args);
    event.reason = std::string(ReasonName(context.reason));
    if (context.cause != kNoTask) event.reason += ": " + engine->DescribeTask(context.cause);
    event.start_nanos =
        std::chrono::duration_cast<std::chrono::nanoseconds>(start_time.time_since_epoch())
            .count();
    event.duration_nanos = nanos;
    event.thread = start_thread != 0 ? start_thread : TraceThreadNumber();
    event.failed = static_cast<bool>(error);
    engine->RecordTrace(std::move(event));
  }
  engine->counts.execution_count.fetch_add(1, std::memory_order_relaxed);

  if (BodyCancelled(context, error)) {
    if (body.handle) body.destroy(body.handle);
    std::vector<TaskId> started;
    {
      std::lock_guard lock(context.started_mu);
      started.swap(context.started);
    }
    engine->CancelUnawaited(started);
    PublishCancelled(*engine, *task, forced);
    engine->refreshes_in_flight.fetch_sub(1);
    co_return;
  }
  if (error) {
    context.output = FailureOutput(error);
    context.cells.clear();  // a failed execution's cells are not results
  } else {
    body.store_result(body.handle.promise(), context);
  }
  if (body.handle) body.destroy(body.handle);
  // Cancelled, and finished all the same (the body never looked): what it started and did
  // not await is cancelled as if it had ended cancelled. What it started before the
  // cancellation went with it; this is what came after.
  if (task->cancelled.load(std::memory_order_acquire)) {
    std::vector<TaskId> started;
    {
      std::lock_guard lock(context.started_mu);
      started.swap(context.started);
    }
    engine->CancelUnawaited(started);
  }
  // A transient failure is not kept: the task is invalidated a second from now (retry.cc).
  const bool transient = IsTransientFailure(context.output);
  const bool publish = engine->publishes() && engine->Shares(*task);
  CommitExecution(*engine, *task, context);
  if (publish) engine->QueueSharedPublish(task->id);  // built and sent off this path
  if (transient) engine->ScheduleRetry(task->id);
  engine->refreshes_in_flight.fetch_sub(1);
}

}  // namespace

bool EngineImpl::TryClaim(TaskState* task) {
  MutexLock lock(&task->mu);
  // Only a task that never ran: a hint left in a queue must not refresh a task that has
  // since become dirty (dirty tasks run when somebody reads them, not before).
  // Nor one whose callers all left before it started.
  // Nor one evicted whole since the hint's worker found it (a task that never ran may leave
  // memory as its identity alone, EvictableWhole): whoever awaits it claims the record
  // loaded back. Before, the hint ran the body on the retired record, which could be freed
  // while the body waited.
  if (task->phase != Phase::kScheduled || task->cancelled.load() || task->gone) return false;
  task->phase = Phase::kRunning;
  return true;
}

void EngineImpl::StartRefresh(TaskState* task) {
  const ThreadContext saved = tls_context;
  refreshes_in_flight.fetch_add(1);
  RefreshJob(this, task).handle.resume();
  tls_context = saved;
}

namespace {

// UniqueReads lists what an execution read, first occurrence first (verification order).
std::vector<Dep> UniqueReads(const absl::InlinedVector<Dep, 8>& reads) {
  std::vector<Dep> unique;
  unique.reserve(reads.size());
  std::vector<RawVc> seen;
  seen.reserve(reads.size());
  for (const Dep& read : reads) {
    auto it = std::lower_bound(seen.begin(), seen.end(), read.slot);
    if (it != seen.end() && *it == read.slot) continue;
    seen.insert(it, read.slot);
    unique.push_back(read);
  }
  return unique;
}

// DigestOfResult digests an output as its readers see it: a reference to one of the
// task's own cells (fs.read of a racy file) by that cell's value, not as a reference to
// the task itself.
OutputDigest DigestOfResult(const Output& output, TaskId self, std::span<const CellSlot> cells) {
  if (output.kind() != OutputKind::kRef || output.ref().task != self) return DigestOf(output);
  for (const CellSlot& cell : cells) {
    if (cell.type == output.ref().type && cell.index == output.ref().index) {
      return DigestOfCell(&cell);
    }
  }
  return {};
}

// CommitResults stores an execution's output, cells and dependencies, keeping the old stamp
// (and the old value object) wherever the new result is equal: this is the early cutoff.
// Returns the task's previous dependencies and cells; `changed` says whether a snapshot
// would write anything differently.
DepsAndCells CommitResults(EngineImpl& engine, TaskState& task, ExecContext& context,
                           std::span<const Dep> new_deps, bool* changed, ExecutionEntry* entry) {
  MutexLock lock(&task.mu);
  task.from_shared = context.adopted;
  task.unread_since_restore = false;  // what it holds now was not read from the store
  task.reran_for_lost_read = context.asked_rerun_for_lost_read;
  if (!context.adopted) {
    ++task.executions;
    // Rounded up: 0 says "not executed in this process" (Engine::Describe), and a body
    // can take less than a microsecond.
    task.last_execution_micros =
        static_cast<uint32_t>(std::clamp<uint64_t>((context.nanos + 999) / 1000, 1, UINT32_MAX));
  }
  task.last_reason = context.reason;
  task.last_cause = context.cause;
  task.last_execution = entry->sequence = engine.history.NextSequence();
  entry->failed = context.output.kind() == OutputKind::kError;
  entry->adopted = context.adopted;
  if (!task.output.SameAs(context.output)) {
    // Digests only when it changed: an equal result (the cutoff) costs nothing more.
    entry->output_changed = true;
    entry->before = DigestOfResult(task.output, task.id, task.cells());
    entry->after = DigestOfResult(context.output, task.id, context.cells);
    task.output = std::move(context.output);
    task.output_changed_at = engine.NextStamp();
    *changed = true;
  }
  *changed = *changed || context.cells.size() != task.cells().size();
  // An output that is a reference to one of the task's own cells (fs.read of a racy file)
  // stays the same reference while what its readers get changes: for `why` and the
  // execution list, such an output changed when that cell did, from value to value.
  const bool output_is_own_cell = !entry->output_changed &&
                                  task.output.kind() == OutputKind::kRef &&
                                  task.output.ref().task == task.id;
  for (CellSlot& cell : context.cells) {
    const CellSlot* old = task.FindCell(cell.type, cell.index);
    if (old != nullptr && old->value != nullptr &&
        ValueTypeById(cell.type)->equal(old->value.get(), cell.value.get())) {
      cell.changed_at = old->changed_at;
      cell.value = old->value;
    } else {
      cell.changed_at = engine.NextStamp();
      *changed = true;
      if (output_is_own_cell && task.output.ref().type == cell.type &&
          task.output.ref().index == cell.index) {
        entry->output_changed = true;
        entry->before = DigestOfCell(old);
        entry->after = DigestOfCell(&cell);
      }
    }
  }
  engine.counts.cell_count.fetch_add(static_cast<int64_t>(context.cells.size()) -
                                     static_cast<int64_t>(task.cells().size()));
  return std::exchange(task.deps_and_cells, DepsAndCells(new_deps, context.cells));
}

// UnlinkDroppedDeps removes the reverse edges of dependencies the new execution no longer
// read.
void UnlinkDroppedDeps(EngineImpl& engine, const TaskState& task, std::span<const Dep> old_deps,
                       const std::vector<Dep>& new_deps) {
  if (old_deps.empty()) return;
  auto by_slot = [](const Dep& a, const Dep& b) { return a.slot < b.slot; };
  std::vector<Dep> sorted_new = new_deps;
  std::sort(sorted_new.begin(), sorted_new.end(), by_slot);
  for (const Dep& dep : old_deps) {
    if (std::binary_search(sorted_new.begin(), sorted_new.end(), dep, by_slot)) continue;
    // In memory only: one loaded from the store has no reverse edges to remove.
    if (TaskState* target = engine.InMemory(dep.slot.task)) {
      MutexLock lock(&target->mu);
      if (target->dependents.erase(Dependent{task.id, dep.slot.type, dep.slot.index}) > 0) {
        engine.counts.edge_count.fetch_sub(1);
      }
    }
  }
}

// PropagateReadSummary adds to everything that reads `task`, transitively, what the task
// now reads that it did not: the outside world (`session`) and input bits. It stops where
// a reader has them already, and takes one task lock at a time.
void PropagateReadSummary(EngineImpl& engine, TaskState& task, const ReadSummary& added) {
  std::vector<TaskId> work;
  {
    MutexLock lock(&task.mu);
    task.dependents.ForEach([&](const Dependent& d) { work.push_back(d.reader); });
  }
  while (!work.empty()) {
    // In memory only. A reader evicted whole keeps its stored summary: what made this task
    // read more came from a change logged after that record was written, so a restore of
    // the reader finds the change and verifies (TrustRestored).
    TaskState* reader = engine.InMemory(work.back());
    work.pop_back();
    if (reader == nullptr) continue;
    MutexLock lock(&reader->mu);
    const bool news = (added.session && !reader->reads_session) ||
                      (reader->inputs & added.inputs) != added.inputs;
    if (!news) continue;
    reader->reads_session = reader->reads_session || added.session;
    reader->inputs |= added.inputs;
    reader->dependents.ForEach([&](const Dependent& d) { work.push_back(d.reader); });
  }
}

}  // namespace

void CommitExecution(EngineImpl& engine, TaskState& task, ExecContext& context) {
  const bool transient = IsTransientFailure(context.output);  // before the output moves
  std::vector<Dep> new_deps = UniqueReads(context.reads);
  bool result_changed = false;
  ExecutionEntry entry;
  entry.task = task.id;
  entry.fn = task.fn;
  entry.nanos = static_cast<int64_t>(context.nanos);
  entry.reason = context.reason;
  entry.cause = context.cause;
  // The previous dependencies and cells, freed (with the cells' values) after the lock.
  DepsAndCells old = CommitResults(engine, task, context, new_deps, &result_changed, &entry);
  const std::span<const Dep> old_deps = std::as_const(old).deps();
  engine.history.Record(entry);
  auto same_dep = [](const Dep& a, const Dep& b) {
    return a.slot == b.slot && a.observed == b.observed;
  };
  result_changed = result_changed || !std::equal(old_deps.begin(), old_deps.end(), new_deps.begin(),
                                                 new_deps.end(), same_dep);
  // Edges: drop those this execution no longer reads, add the new ones, and check each
  // read against the slot's current state; a change that raced with the execution makes
  // the result stale.
  UnlinkDroppedDeps(engine, task, old_deps, new_deps);
  // Before its record can be written (QueuePersist below): a changed observation is
  // logged with the snapshot that writes it, or an earlier one.
  const bool observation_changed = engine.CommitObservation(task, context);
  const ObservationRecord* observation = context.Checkable();
  const bool observed = observation != nullptr;
  ReadSummary summary;
  const bool stale = RegisterReads(engine, task, new_deps, &summary);
  if (observed) summary.inputs |= InputBits(observation->change_key);
  // A transient failure (retry.cc) is as unchecked as the outside world: what reads it is
  // verified after a restart or a reload, never trusted, even if it caught the error.
  if (transient) summary.session = true;
  ReadSummary added;
  {
    MutexLock lock(&task.mu);
    const bool restored = task.unlinked;
    task.unlinked = false;
    // A task that read the world through an observation and no longer does (a racy file)
    // is the world to its readers now: they must know, as for a new session-dependent read.
    const bool became_world = task.fn->session_dependent && task.observed && !observed;
    task.observed = observed;
    added.session = (summary.session && !task.reads_session) || became_world;
    added.inputs = summary.inputs & ~task.inputs;
    // What this execution read; the record's guess for a restored task, and what earlier
    // executions read, no longer count (a stale one keeps both, as NewSummary does).
    task.reads_session = summary.session || (stale && task.reads_session);
    task.inputs = NewSummary(task, stale, summary.inputs);
    // A re-execution that came out identical leaves the stored record as it is, unless the
    // record was restored (a session-dependent task looking again after a restart): then
    // it is stored again to be trusted at the next open (StoreVerified).
    if (engine.persistent() && (result_changed || observation_changed || !task.persisted)) {
      task.unwritten = true;
      engine.QueuePersist(task);
    } else if (restored && !stale) {
      StoreVerified(engine, task);
    } else if (task.unwritten) {
      engine.QueuePersist(task);  // still waiting for a snapshot that found it clean
    }
  }
  // Its readers may have verified it unchanged and kept their value: they read what it
  // reads now too (the outside world, other inputs), and a restart must know.
  if (added.session || added.inputs != 0) PropagateReadSummary(engine, task, added);
  Publish(engine, task, stale);
}

// LockCurrent locks the task with `id` as the task table has it now, loading it if need
// be: one found through an older pointer may have been evicted whole since (reclaim.h).
// Returns null (nothing locked) if the task exists nowhere.
static TaskState* LockCurrent(EngineImpl& engine, TaskId id) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  for (;;) {
    TaskState* task = engine.Task(id);
    if (task == nullptr) return nullptr;
    task->mu.Lock();
    if (!task->gone) return task;
    task->mu.Unlock();
  }
}

bool RegisterReads(EngineImpl& engine, const TaskState& task, const std::vector<Dep>& reads,
                   ReadSummary* summary) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  bool stale = false;
  for (const Dep& read : reads) {
    // The task in the table now: an edge into one evicted whole since the read would be
    // lost, and a change of it would not reach this reader.
    TaskState* target = LockCurrent(engine, read.slot.task);
    if (target == nullptr) {
      stale = true;  // what it read is gone
      continue;
    }
    struct Unlock {
      Mutex* mu;
      ~Unlock() { mu->Unlock(); }
    } unlock{&target->mu};
    // An input the store could not read, which it reads again (retry.cc), is as unchecked
    // as the outside world for a reader that caught its error and made a value of it.
    if (target->ReadsUncheckedWorld() || IsTransientFailure(target->output)) {
      summary->session = true;
    }
    summary->inputs |= target->inputs;
    if (target->dependents.insert(Dependent{task.id, read.slot.type, read.slot.index})) {
      engine.counts.edge_count.fetch_add(1);
    }
    if (read.observed == kReadClosedCycle) continue;  // the target is running: no news
    if (!StampsCurrent(target->phase) || target->SlotChangedAt(read.slot) != read.observed) {
      stale = true;
    }
  }
  return stale;
}

}  // namespace turbine::internal
