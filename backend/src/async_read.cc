// async_read.cc — Engine::ReadAsync: reads for servers, whose threads must never block.
//
// A clean value is answered on the calling thread. Anything else moves to a worker: a
// self-destroying coroutine awaits the read there (claiming and running refreshes on the
// worker, or parking without holding it) and then calls `done`.
#include <absl/container/flat_hash_set.h>

#include <coroutine>
#include <exception>
#include <utility>
#include <vector>

#include "cancel_state.h"
#include "engine_impl.h"
#include "job.h"
#include "reclaim.h"
#include "turbine/engine.h"

namespace turbine::internal {
namespace {

// RanSince tells whether the task `vc` names ran its body after execution `sequence`
// (an adopted result of the shared tier is no run). By sequence number, not by its
// execution counter: a task evicted whole and loaded back meanwhile starts counting
// again. One not in memory now is not loaded for this: it ran in no execution that it
// remembers.
bool RanSince(EngineImpl& engine, RawVc vc, uint64_t sequence) {
  if (vc.is_none()) return false;
  TaskState* task = engine.InMemory(vc.task);
  if (task == nullptr) return false;
  MutexLock lock(&task->mu);
  return task->last_execution > sequence && !task->from_shared;
}

// DependencyRanSince tells whether something the task of `vc` reads, directly or through
// other tasks, executed since execution `sequence` though the task did not (its result came
// out equal: early cutoff). Found from the other end: each task executed since then that
// the ring of recent ones holds (an adoption from the shared tier ran nothing) is followed
// up through its readers, one task lock at a time, to `vc`. Bounded, then it says no: at
// most kMaxSeen distinct tasks are ever queued (a task read by more than is left of that
// is too wide to follow).
bool DependencyRanSince(EngineImpl& engine, RawVc vc, uint64_t sequence) {
  constexpr size_t kMaxSeen = 2 * kRecentExecutions;  // the executions, and as many readers
  const uint64_t last = engine.history.Sequence();
  if (vc.is_none() || last <= sequence) return false;  // nothing ran anywhere
  std::vector<TaskId> executed;
  engine.history.TasksExecutedSince(sequence, last, &executed);
  absl::flat_hash_set<TaskId> seen;
  std::vector<TaskId> work;
  for (TaskId id : executed) {
    if (seen.insert(id).second) work.push_back(id);  // a task that ran many times: once
  }
  while (!work.empty()) {
    const TaskId id = work.back();
    work.pop_back();
    if (id == vc.task) return true;
    TaskState* task = engine.InMemory(id);
    if (task == nullptr) continue;
    MutexLock lock(&task->mu);
    if (seen.size() + task->dependents.size() > kMaxSeen) return false;
    task->dependents.ForEach([&](const Dependent& d) {
      if (seen.insert(d.reader).second) work.push_back(d.reader);
    });
  }
  return false;
}

// AdoptedFromShared tells whether the task of `vc` holds a result of the shared tier
// adopted after execution `sequence` (0: at any time; an adoption is numbered as an
// execution is). Not loaded for this either: one loaded back holds no adopted result.
bool AdoptedFromShared(EngineImpl& engine, RawVc vc, uint64_t sequence = 0) {
  if (!engine.sharing() || vc.is_none()) return false;  // no tier: no task lock to take
  TaskState* task = engine.InMemory(vc.task);
  if (task == nullptr) return false;
  MutexLock lock(&task->mu);
  return task->from_shared && task->last_execution > sequence;
}

Engine::AsyncRead Finish(ReadOp& op, bool immediate) {
  Engine::AsyncRead result;
  result.immediate = immediate;
  if (!op.ok()) {
    result.status = ReadErrorStatus(op.error());
  } else {
    result.value = op.value();
    result.type = op.value_type();
    result.cell = op.resolved();
  }
  return result;
}

// `caller` and `cancel` are both null, or the read is cancellable: `caller` is already
// counted on the task `vc` names and attached to `cancel`. `reloaded`: the attempt on the
// caller's thread already brought a task back from the store.
Job ReadOnWorker(EngineImpl* engine, RawVc vc, std::function<void(Engine::AsyncRead)> done,
                 std::unique_ptr<Caller> caller, std::shared_ptr<CancelState> cancel,
                 bool reloaded) {
  tls_context = ThreadContext{engine, nullptr};
  const uint64_t sequence_before = engine->history.Sequence();
  const uint64_t stamp_before = engine->CurrentStamp();
  ReadOp op(vc, nullptr, ReadOp::Mode::kValue);
  if (cancel != nullptr) op.set_caller(caller.get(), cancel.get());
  co_await AwaitRead{op};
  tls_context = ThreadContext{engine, nullptr};
  if (cancel != nullptr) cancel->Detach(caller.get());
  Engine::AsyncRead result = Finish(op, /*immediate=*/false);
  // The answer was computed for this read if the task named ran meanwhile, if the value
  // (perhaps at the end of a chain of references) changed meanwhile, or if something it
  // reads ran and came out the same.
  const bool ran = RanSince(*engine, vc, sequence_before);
  // Shared: the task named was adopted for this read, and the one holding the value at the
  // end of its references was adopted too (a trait call's dispatch may be adopted while its
  // implementation ran). Then it is not executed, though its value is new (what it read to
  // verify the trace may have run here: that is the shared tier's cost, not an execution
  // of the task). One adopted before and only verified now is not: what ran for it then
  // came out equal, an execution's early cutoff (executed, below).
  result.shared =
      !ran && AdoptedFromShared(*engine, vc, sequence_before) &&
      (!op.ok() || op.resolved().task == vc.task || AdoptedFromShared(*engine, op.resolved()));
  result.executed = !result.shared && (ran || (op.ok() && op.value_stamp() > stamp_before) ||
                                       DependencyRanSince(*engine, vc, sequence_before));
  result.reloaded = reloaded || op.reloaded();
  done(std::move(result));
  engine->refreshes_in_flight.fetch_sub(1);
}

}  // namespace

void EngineImpl::ReadAsync(RawVc vc, std::function<void(Engine::AsyncRead)> done,
                           std::shared_ptr<CancelState> cancel) {
  const ThreadContext saved = tls_context;
  tls_context = ThreadContext{this, nullptr};
  bool reloaded = false;
  {
    ReadOp op(vc, nullptr, ReadOp::Mode::kValue);
    if (op.TryComplete()) {
      tls_context = saved;
      Engine::AsyncRead result = Finish(op, /*immediate=*/true);
      result.reloaded = op.reloaded();
      done(std::move(result));
      return;
    }
    reloaded = op.reloaded();
  }
  tls_context = saved;
  std::unique_ptr<Caller> caller;
  if (cancel != nullptr) {
    // Counted as a caller from now on, not from when a worker takes the job: a task started
    // meanwhile (a hint) is then cancelled with this read.
    caller = std::make_unique<Caller>();
    Section section;  // reclaim.h
    if (TaskState* task = vc.is_none() ? nullptr : Task(vc.task)) {
      MutexLock lock(&task->mu);
      // Not one evicted whole: the count would outlive the record (the read, by id, finds
      // the task loaded back and counts there).
      if (!task->gone) CountCaller(caller.get(), *task);
    }
    if (!cancel->Attach(caller.get())) CancelCaller(caller.get());
  }
  refreshes_in_flight.fetch_add(1);  // the destructor waits for the job
  Job job = ReadOnWorker(this, vc, std::move(done), std::move(caller), std::move(cancel),
                         reloaded);
  executor_->Push(WorkItem{WorkItem::Kind::kResumeCoroutine, job.handle.address()});
}

}  // namespace turbine::internal

namespace turbine {

void Engine::ReadAsync(RawVc vc, std::function<void(AsyncRead)> done) {
  impl_->ReadAsync(vc, std::move(done), nullptr);
}

void Engine::ReadAsync(RawVc vc, const CancelToken& cancel, std::function<void(AsyncRead)> done) {
  impl_->ReadAsync(vc, std::move(done), cancel.state());
}

}  // namespace turbine
