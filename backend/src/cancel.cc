// cancel.cc — callers per task, and cancelling an execution nobody waits for (cancel.h).
#include "turbine/cancel.h"

#include <absl/cleanup/cleanup.h>
#include <absl/container/flat_hash_map.h>

#include <algorithm>
#include <mutex>
#include <utility>

#include "cancel_state.h"
#include "engine_impl.h"
#include "reclaim.h"
#include "turbine/internal/test_seams.h"
#include "waiter_list.h"

namespace turbine {
namespace internal {

bool CancelState::Attach(Caller* caller) {
  std::lock_guard lock(mu);
  if (cancelled.load()) return false;
  reads.push_back(caller);
  return true;
}

void CancelState::Detach(Caller* caller) {
  std::lock_guard lock(mu);
  std::erase(reads, caller);
}

TaskState* CountCaller(Caller* caller, TaskState& task) {
  if (caller->counted_on.load() == &task) return nullptr;
  ++task.callers;
  return caller->counted_on.exchange(&task);
}

void UncountCaller(TaskState* task) {
  if (task == nullptr) return;
  MutexLock lock(&task->mu);
  --task->callers;
}

bool DropCancelledCaller(TaskState& task) {
  --task.callers;
  if (task.callers != 0 || task.phase == Phase::kClean) return false;
  task.cancelled.store(true, std::memory_order_release);
  return task.phase == Phase::kRunning;
}

void CancelCaller(Caller* caller) {
  // A task it cascades to may finish meanwhile and be evicted whole: it stays allocated.
  Section section;
  while (caller != nullptr) {
    TaskState* task = caller->counted_on.exchange(nullptr);
    if (task == nullptr) return;
    Waiter* parked = nullptr;
    bool cascade = false;
    {
      MutexLock lock(&task->mu);
      parked = RemoveWaiter(task->waiters, [caller](Waiter* waiter) {
        return static_cast<ReadOp*>(waiter)->caller() == caller;
      });
      cascade = DropCancelledCaller(*task);
    }
    if (parked != nullptr) parked->wake(parked);  // it sees the cancellation and ends
    if (cascade) CancelStartedBy(task);
    caller = cascade ? &task->as_caller : nullptr;
  }
}

namespace {
// The running executions that started tasks, by task: process-wide, as CancelCaller runs
// on any thread with no engine at hand.
struct Starter {
  EngineImpl* engine;
  ExecContext* exec;
};
std::mutex starters_mu;
absl::flat_hash_map<const TaskState*, Starter>& Starters() {
  static auto* const starters = new absl::flat_hash_map<const TaskState*, Starter>();
  return *starters;
}
}  // namespace

void NoteStarted(EngineImpl& engine, ExecContext& exec, TaskId id) {
  // A body may call into another engine (by handle): its ids are that engine's.
  if (tls_context.engine != &engine) return;
  if (!exec.starter) {
    std::lock_guard lock(starters_mu);
    Starters()[exec.task] = Starter{&engine, &exec};
    exec.starter = true;
  }
  std::lock_guard lock(exec.started_mu);
  exec.started.push_back(id);
}

void ForgetStarter(ExecContext& exec) {
  std::lock_guard lock(starters_mu);
  Starters().erase(exec.task);
  exec.starter = false;
}

void CancelStartedBy(TaskState* task) {
  EngineImpl* engine = nullptr;
  std::vector<TaskId> started;
  {
    std::lock_guard lock(starters_mu);  // the execution stays while it is found here
    auto it = Starters().find(task);
    if (it == Starters().end()) return;
    engine = it->second.engine;
    std::lock_guard copying(it->second.exec->started_mu);
    started = it->second.exec->started;
  }
  engine->CancelUnawaited(started);
}

const std::shared_ptr<const TaskFailure>& CancelledFailure() {
  static const auto* const failure =
      new std::shared_ptr<const TaskFailure>(std::make_shared<const TaskFailure>(
          TaskFailure{absl::StatusCode::kCancelled, "cancelled: the caller is gone"}));
  return *failure;
}

void EngineImpl::CancelUnawaited(const std::vector<TaskId>& started) {
  // Cancelling a running task cancels what it started in turn, and so on down: a chain as
  // long as the graph is deep. Called again from within for this engine (through
  // CancelStartedBy, also by way of CancelCaller), this only adds to the outermost call's
  // list, which it works through: recursion once per link overflowed the stack at 100,000
  // links. Another engine's tasks (a body may call into one by handle) are that engine's
  // to cancel at once: an entry left in this list could outlive it.
  struct Outermost {
    EngineImpl* engine = nullptr;
    std::vector<TaskId>* pending = nullptr;
  };
  thread_local Outermost outermost;
  if (outermost.engine == this) {
    outermost.pending->insert(outermost.pending->end(), started.rbegin(), started.rend());
    return;
  }
  std::vector<TaskId> pending(started.rbegin(), started.rend());
  const Outermost enclosing = std::exchange(outermost, Outermost{this, &pending});
  absl::Cleanup done = [enclosing] { outermost = enclosing; };
  while (!pending.empty()) {
    const TaskId next = pending.back();
    pending.pop_back();
    CancelIfUnawaited(next);
  }
}

void EngineImpl::CancelIfUnawaited(TaskId id) {
  Section section;  // a task cancelled here may finish and be evicted meanwhile
  TaskState* task = InMemory(id);
  if (task == nullptr) return;
  {
    MutexLock lock(&task->mu);
    // Awaited by someone (the cancelled body itself counted until it let go), clean or
    // dirty and not started: nothing to stop.
    if (task->callers != 0) return;
    if (task->phase != Phase::kScheduled && task->phase != Phase::kRunning) return;
    // Cancelled already, and what it started and waits for with it: going down the chain
    // again from every link as its body ends made a chain of n links cost n^2 (5,000
    // links: 11 s). What it starts from now on, its own end cancels (RefreshJob).
    if (task->cancelled.load(std::memory_order_relaxed)) return;
    task->cancelled.store(true, std::memory_order_release);  // a hint left queued is dropped
    if (task->phase != Phase::kRunning) return;
  }
  // What it started and what it waits for, as when a read of it is cancelled.
  CancelStartedBy(task);
  CancelCaller(&task->as_caller);
}

}  // namespace internal

CancelToken::CancelToken() : state_(std::make_shared<internal::CancelState>()) {}

void CancelToken::Cancel() const {
  // Under the lock: a read detaches itself (and is destroyed) only after this is done.
  std::lock_guard lock(state_->mu);
  if (state_->cancelled.exchange(true)) return;
  if (auto* seam = internal::seams::after_cancel_flag.load(std::memory_order_relaxed)) seam();
  for (internal::Caller* caller : state_->reads) internal::CancelCaller(caller);
}

bool CancelToken::cancelled() const { return state_->cancelled.load(); }

bool Cancelled() {
  internal::ExecContext* exec = internal::tls_context.exec;
  if (exec == nullptr) return false;
  if (!exec->task->cancelled.load(std::memory_order_acquire) &&
      !internal::tls_context.engine->stopping()) {
    return false;
  }
  exec->saw_cancellation = true;
  return true;
}

void ThrowIfCancelled() {
  if (Cancelled()) throw CancelledError();
}

}  // namespace turbine
