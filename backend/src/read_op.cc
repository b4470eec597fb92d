// read_op.cc — reading a Vc: follow outputs to a value, wait for clean, detect cycles.
#include <absl/container/flat_hash_set.h>

#include <algorithm>
#include <semaphore>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cancel_state.h"
#include "engine_impl.h"
#include "input_read_section.h"
#include "persist.h"
#include "reclaim.h"
#include "waiter_list.h"
#include "turbine/text.h"
#include "turbine/internal/test_seams.h"

namespace turbine::internal {
namespace {

// Nested inline refreshes per thread. Beyond this the refresh goes to the queue, so a deep
// chain of calls (fib(20000)) never grows one native stack without bound.
constexpr int kMaxInlineDepth = 16;
thread_local int tls_inline_depth = 0;

// ChainReaches follows the waits-for chain from `from` and tells whether it reaches
// `target`. The chain has no length limit (a cycle of a million tasks is found), but it may
// briefly loop without passing through `target`: a cycle another thread is closing and is
// about to fail. Brent's loop detection ends the walk there, in time linear in the chain.
bool ChainReaches(EngineImpl& engine, TaskState* from, TaskState* target) {
  TaskState* mark = nullptr;
  uint64_t steps = 0;
  uint64_t limit = 1;
  for (TaskState* p = from; p != nullptr; p = engine.WaitedOn(*p)) {
    if (p == target) return true;
    if (p == mark) return false;
    if (++steps == limit) {
      mark = p;
      limit *= 2;
      steps = 0;
    }
  }
  return false;
}

}  // namespace

ReadOp::ReadOp(RawVc vc, const ValueType* expected_type, Mode mode, CopyOut copy_out, void* out)
    : saved_context_(tls_context),
      cursor_(vc),
      expected_type_(expected_type),
      mode_(mode),
      copy_out_(copy_out),
      out_(out) {
  if (saved_context_.exec != nullptr) waiting_task_ = saved_context_.exec->task;
}

bool ReadOp::TryComplete() { return Run(/*may_park=*/false) == Step::kDone; }

bool ReadOp::Suspend(std::coroutine_handle<> awaiter) {
  awaiter_ = awaiter;
  wake = &WakeCoroutine;
  // After kParked another thread may already be resuming the coroutine: touch nothing.
  return Run(/*may_park=*/true) == Step::kParked;
}

void ReadOp::Block() {
  std::binary_semaphore woken(0);
  blocked_thread_ = &woken;
  wake = &WakeThread;
  while (Run(/*may_park=*/true) == Step::kParked) {
    // This thread's pending task (if any) must not wait for it to wake up.
    saved_context_.engine->executor().FlushLocalHint();
    woken.acquire();
  }
}

void ReadOp::WakeCoroutine(Waiter* self) {
  auto* op = static_cast<ReadOp*>(self);
  if (op->waiting_task_ != nullptr) op->waiting_task_->waiting_on.store(kNoTask);
  op->saved_context_.engine->executor().Push(WorkItem{WorkItem::Kind::kResumeRead, op});
}

void ReadOp::WakeThread(Waiter* self) {
  auto* op = static_cast<ReadOp*>(self);
  static_cast<std::binary_semaphore*>(op->blocked_thread_)->release();
}

void ReadOp::ContinueAfterWake() {
  if (Run(/*may_park=*/true) == Step::kDone) awaiter_.resume();
}

void ReadOp::SetError(std::string message, absl::StatusCode code) {
  error_ = std::make_shared<const TaskFailure>(TaskFailure{code, std::move(message)});
}

template <class Keep>
void ReadOp::TakeValue(const ValueType* type, const void* value, uint64_t stamp, Keep&& keep) {
  value_type_ = type;
  value_stamp_ = stamp;
  if (expected_type_ != nullptr && expected_type_ != type) {
    SetError("value has type '" + type->name + "', expected '" + expected_type_->name + "'");
    return;
  }
  if (copy_out_ != nullptr) {
    copy_out_(value, out_);
  } else {
    value_ = keep();
  }
}

namespace {

// HoldersOf is, of the tasks whose slots `reads` names, those whose value there holds a Vc
// naming `lost`, and of what those read, the same, and so on (a holder may have copied the
// Vc out of a value it read). For a read of a Vc into nothing (rare): it serializes each
// value to find the Vcs in it.
std::vector<TaskId> HoldersOf(EngineImpl& engine, std::span<const Dep> reads, TaskId lost) {
  std::vector<TaskId> holders;
  std::vector<Dep> work(reads.begin(), reads.end());
  absl::flat_hash_set<TaskId> seen;
  std::vector<TaskId> named;
  std::string scratch;
  while (!work.empty()) {
    const Dep read = work.back();
    work.pop_back();
    TaskState* task = engine.Task(read.slot.task);
    if (task == nullptr) continue;
    const ValueType* type = nullptr;
    std::shared_ptr<const void> value;
    std::vector<Dep> its_reads;
    {
      MutexLock lock(&task->mu);
      if (read.slot.is_output()) {
        type = task->output.type();
        value = task->output.shared_value();
      } else if (const CellSlot* cell = task->FindCell(read.slot.type, read.slot.index)) {
        type = ValueTypeById(cell->type);
        value = cell->value;
      }
      if (type != nullptr) its_reads.assign(task->deps().begin(), task->deps().end());
    }
    if (type == nullptr) continue;
    bool holds = value == nullptr;  // evicted: it may hold the Vc; it runs again, not loaded
    if (!holds) {
      named.clear();
      scratch.clear();
      VcSink sink(&named);
      type->serialize(value.get(), &scratch);
      sink.Stop();
      holds = std::find(named.begin(), named.end(), lost) != named.end();
    }
    if (!holds || !seen.insert(task->id).second) continue;
    holders.push_back(task->id);
    work.insert(work.end(), its_reads.begin(), its_reads.end());
  }
  return holders;
}

}  // namespace

ReadOp::Step ReadOp::Run(bool may_park) {
  Section section;  // reclaim.h: the tasks it finds stay allocated
  const Step step = Steps(may_park);
  if (step == Step::kDone && waited_) EndWait();
  return step;
}

ReadOp::Step ReadOp::Steps(bool may_park) {
  EngineImpl& engine = *saved_context_.engine;
  for (;;) {
    if (cursor_.is_none()) {
      SetError("read of an empty Vc");
      return Step::kDone;
    }
    bool loaded = false;  // evicted whole, say: the answer comes from the store
    TaskState* task = engine.Task(cursor_.task, &loaded);
    reloaded_ |= loaded;
    if (task == nullptr) {
      // A reference into nothing: a GC pass removed the task it names while the referrer,
      // not written yet, pointed at it (docs/ARCHITECTURE.md, "Garbage collection"). As a
      // missing dependency does, it reads as a change: the referrer executes again and the
      // read starts over from it. Twice at most, should the new reference vanish too.
      // Not a change of value: no change listener hears of it (a watch would read again,
      // and find the same). The reader's read of the old reference goes, so that it does
      // not run again for it; it reads the new one. Only if this read recorded it: one kept
      // from before (the same slot read twice in a row) carries the stamp that may be the
      // only sign the reader is stale.
      if (referrer_ != kNoTask && referrers_redone_ < 2) {
        if (!may_park) return Step::kNotReady;  // the referrer executes: not on this thread
        ++referrers_redone_;
        const RawVc old_read = RawVc::Output(std::exchange(referrer_, kNoTask));
        if (ExecContext* reader = saved_context_.exec; reader != nullptr && referrer_read_recorded_) {
          if (!reader->reads.empty() && reader->reads.back().slot == old_read) {
            reader->reads.pop_back();
          }
        }
        std::vector<TaskId> referrer{old_read.task};
        engine.ExecuteAgain(referrer, ExecutionReason::kGarbageCollected);
        cursor_ = old_read;
        continue;
      }
      // A Vc the reading body held while the task it names left memory and a pass removed
      // its record: a hit gave the id and nothing had read it yet, so nothing kept it. As a
      // missing dependency does, it reads as a change: whatever the body makes of the error
      // is not kept (the reader is stale), and it executes again, when the same call finds
      // or makes a task. Once: a Vc naming nothing from the start (an argument, say) must
      // not run its reader for ever (TaskState::reran_for_lost_read).
      // Or the Vc came out of a value the body read: a result restored from the store
      // that holds a Vc of a task the store no longer has (removed by a pass, or of a
      // function version this build lacks). What holds it executes again too, or the
      // reader would find the same Vc in it again, and keep the error for good.
      if (ExecContext* reader = saved_context_.exec;
          reader != nullptr && !reader->reran_for_lost_read &&
          !std::exchange(reader->asked_rerun_for_lost_read, true)) {
        std::vector<TaskId> again = HoldersOf(engine, reader->reads, cursor_.task);
        again.push_back(reader->task->id);
        engine.ExecuteAgain(again, ExecutionReason::kGarbageCollected);
      }
      SetError("no task with id " + std::to_string(cursor_.task));
      return Step::kDone;
    }
    {
      // An input's value is read between batches of SetInputs (EngineImpl::input_batch_mu).
      InputReadSection between_batches(engine, *task, may_park);
      if (!between_batches.entered()) return Step::kNotReady;  // a worker finishes it
      MutexLock lock(&task->mu);
      if (task->gone) continue;  // evicted whole since it was found: look the id up again
      // A verification compares stamps and resolving follows references: neither needs the
      // values an evicted task lacks.
      if (task->phase == Phase::kClean ||
          (task->phase == Phase::kEvicted && mode_ != Mode::kValue)) {
        if (mode_ == Mode::kClean || HopClean(*task) == Hop::kDone) return Step::kDone;
        continue;
      }
      if (task->phase == Phase::kEvicted) reloaded_ = true;
    }
    if (!may_park) return Step::kNotReady;
    if (CallerCancelled()) {
      error_ = CancelledFailure();
      if (saved_context_.exec != nullptr) saved_context_.exec->saw_cancellation = true;
      return Step::kDone;
    }
    // Set before AwaitClean: once parked, another thread may resume this read at once.
    waited_ = true;
    waited_on_ = task->id;
    std::string cycle;
    switch (engine.AwaitClean(task, this, waiting_task_, caller(), &cycle)) {
      case EngineImpl::Wait::kClean:
      case EngineImpl::Wait::kRanInline:
        continue;
      case EngineImpl::Wait::kParked:
        return Step::kParked;
      case EngineImpl::Wait::kCancelled:
        error_ = CancelledFailure();
        if (saved_context_.exec != nullptr) saved_context_.exec->saw_cancellation = true;
        return Step::kDone;
      case EngineImpl::Wait::kCycle:
        // The reader depends on the task it failed to read: when the cycle is broken, that
        // task's change reaches it like any other.
        if (ExecContext* reader = saved_context_.exec) {
          const bool own_value = cursor_.is_output() || cursor_.index == kOutputCellIndex;
          const RawVc slot = own_value ? RawVc::Output(task->id) : cursor_;
          reader->RecordRead(slot, kReadClosedCycle);
          MutexLock lock(&task->mu);
          engine.CycleOf(*task).readers.push_back(
              CycleRead{reader->task->id, slot, kReadClosedCycle});
        }
        closed_cycle_ = task;
        SetError(std::move(cycle), absl::StatusCode::kFailedPrecondition);
        return Step::kDone;
    }
  }
}

bool ReadOp::CallerCancelled() const {
  if (cancel_ != nullptr && cancel_->cancelled.load(std::memory_order_acquire)) return true;
  if (waiting_task_ != nullptr && waiting_task_->cancelled.load(std::memory_order_acquire)) {
    return true;
  }
  return saved_context_.engine->stopping();
}

bool ReadOp::cancelled() const { return error_ == CancelledFailure(); }

Caller* ReadOp::TaskCaller(TaskState* task) { return &task->as_caller; }

// EndWait ends a read that waited: it stops counting as a caller, and takes the cycle error
// another read left for the waiting task.
void ReadOp::EndWait() {
  waited_ = false;
  UncountCaller(caller()->counted_on.exchange(nullptr));
  if (waiting_task_ == nullptr) return;
  std::shared_ptr<const TaskFailure> cycle;
  {
    MutexLock lock(&waiting_task_->mu);
    EngineImpl& engine = *saved_context_.engine;
    if (CycleState* marked = engine.FindCycle(*waiting_task_); marked != nullptr) {
      // Left for an earlier wait (the task was marked as it woke from it): not this read's.
      if (marked->error_on == waited_on_) cycle = std::move(marked->error);
      marked->error.reset();
      engine.DropCycleIfEmpty(*waiting_task_);
    }
  }
  // A verification only waits for the task to be clean; its stamp decides (refresh.cc).
  if (cycle != nullptr && !cancelled() && mode_ != Mode::kClean) {
    error_ = std::move(cycle);
    value_.reset();
  }
}

// HopClean takes one step of the read on a clean task. REQUIRES: task.mu held.
ReadOp::Hop ReadOp::HopClean(TaskState& task) {
  ExecContext* reader = saved_context_.exec;
  const bool own_value = cursor_.is_output() || cursor_.index == kOutputCellIndex;
  task.referenced = true;  // the evictor spares it once (the line is held already)
  if (task.unread_since_restore && mode_ == Mode::kValue) [[unlikely]] {
    task.unread_since_restore = false;
    reloaded_ = true;
  }
  if (own_value) {
    const bool recorded =
        reader != nullptr && reader->RecordRead(RawVc::Output(task.id), task.output_changed_at);
    const Output& out = task.output;
    switch (out.kind()) {
      case OutputKind::kValue:
        if (cursor_.is_cell() && cursor_.type != out.type()->id) {
          SetError("the cell this Vc points at no longer exists");
        } else if (mode_ == Mode::kResolve) {
          cursor_ = RawVc::Cell(task.id, out.type()->id, kOutputCellIndex);
        } else if (expected_type_ != nullptr && expected_type_ != out.type() &&
                   task.fn == saved_context_.engine->input_function) [[unlikely]] {
          // Which input, and for one set over the wire (a "value"), how to read it.
          SetError("input '" + Echo(InputKeyOf(task)) + "' holds a value of type '" +
                   out.type()->name + "', expected '" + expected_type_->name + "'" +
                   (out.type()->name == "value"
                        ? " (inputs set over the wire are read as turbine::WireValue)"
                        : ""));
        } else {
          TakeValue(out.type(), out.data(), task.output_changed_at,
                    [&out] { return out.shared_value(); });
        }
        return Hop::kDone;
      case OutputKind::kRef:
        if (cursor_.is_cell()) {
          SetError("the cell this Vc points at no longer exists");
          return Hop::kDone;
        }
        referrer_ = task.id;
        referrer_read_recorded_ = recorded;
        cursor_ = out.ref();
        return Hop::kFollow;
      case OutputKind::kError:
        error_ = out.failure();
        return Hop::kDone;
      case OutputKind::kNone:
        SetError("task has no output");
        return Hop::kDone;
    }
  }
  const CellSlot* cell = task.FindCell(cursor_.type, cursor_.index);
  if (reader != nullptr) {
    reader->RecordRead(cursor_, cell != nullptr ? cell->changed_at : UINT64_MAX);
  }
  if (cell == nullptr) {
    SetError("the cell this Vc points at no longer exists");
  } else if (mode_ != Mode::kResolve) {
    TakeValue(ValueTypeById(cell->type), cell->value.get(), cell->changed_at,
              [cell] { return cell->value; });
  }
  return Hop::kDone;
}

EngineImpl::Wait EngineImpl::AwaitClean(TaskState* task, ReadOp* read, TaskState* waiting_task,
                                        Caller* caller, std::string* cycle) {
  if (auto* seam = seams::before_counting_caller.load(std::memory_order_relaxed)) seam(task->id);
  TaskState* no_longer_waited_for = nullptr;
  bool parked = false;
  bool closes_cycle = false;
  bool cancelled = false;
  bool cancel_what_it_waits_for = false;  // `task`, left with no caller, is running
  {
    MutexLock lock(&task->mu);
    if (task->gone) return Wait::kClean;  // evicted whole: the reader looks the id up again
    if (task->phase == Phase::kClean) return Wait::kClean;
    if (task->phase == Phase::kRunning && waiting_task != nullptr) {
      waiting_task->waiting_on.store(task->id);
      if (ChainReaches(*this, task, waiting_task)) {
        waiting_task->waiting_on.store(kNoTask);
        closes_cycle = true;
      }
    }
    if (!closes_cycle) {
      no_longer_waited_for = CountCaller(caller, *task);
      // The read saw its caller not cancelled before it took this lock. A cancellation
      // since then took the caller's count off the task it was counted on before (or found
      // none, or has not got to it yet) and may never see this one, so the read looks again
      // now that it counts here. The count it takes off is one the cancellation would have
      // taken: a task it leaves with no caller is cancelled as the cancellation would have.
      if (read->CallerCancelled()) {
        if (caller->counted_on.exchange(nullptr) == task) {
          cancel_what_it_waits_for = DropCancelledCaller(*task);
        }
        if (waiting_task != nullptr) waiting_task->waiting_on.store(kNoTask);
        cancelled = true;
      } else if (task->phase == Phase::kRunning) {
        PushWaiter(task->waiters, read);
        parked = true;  // from here on the read may be resumed by another thread
      } else {
        if (task->phase == Phase::kEvicted) task->reload_only = true;
        task->phase = Phase::kRunning;  // claimed: this thread runs or queues the refresh
        task->cancelled.store(false, std::memory_order_relaxed);  // somebody wants it
      }
    }
  }
  UncountCaller(no_longer_waited_for);
  if (cancel_what_it_waits_for) {
    CancelStartedBy(task);
    CancelCaller(&task->as_caller);
  }
  if (cancelled) return Wait::kCancelled;
  if (closes_cycle) {
    counts.cycle_count.fetch_add(1, std::memory_order_relaxed);
    *cycle = DescribeCycle(waiting_task, task);
    MarkCycle(task, waiting_task, *cycle);
    return Wait::kCycle;
  }
  if (parked) return Wait::kParked;
  executor_->ForgetHint(task->id);
  if (tls_inline_depth >= kMaxInlineDepth) {
    executor_->Push(WorkItem{WorkItem::Kind::kStartClaimed, task});
    return Wait::kRanInline;  // the caller comes back, finds it running, and parks
  }
  if (waiting_task != nullptr) waiting_task->waiting_on.store(task->id);
  ++tls_inline_depth;
  StartRefresh(task);
  --tls_inline_depth;
  if (waiting_task != nullptr) waiting_task->waiting_on.store(kNoTask);
  return Wait::kRanInline;
}

// MarkCycle gives every task on the cycle from `task` to `waiting_task` (which closed it)
// the cycle's error for the read it waits in. They all wait, directly or not, for
// `waiting_task`, whose thread this is: none of them moves until it returns.
void EngineImpl::MarkCycle(TaskState* task, TaskState* waiting_task, const std::string& message) {
  std::vector<std::pair<TaskState*, TaskId>> members;  // and the task each waits for
  TaskState* mark = nullptr;
  uint64_t steps = 0;
  uint64_t limit = 1;
  for (TaskState* p = task; p != nullptr && p != waiting_task && p != mark; p = WaitedOn(*p)) {
    members.emplace_back(p, p->waiting_on.load());
    if (++steps == limit) {
      mark = p;
      limit *= 2;
      steps = 0;
    }
  }
  if (members.empty()) return;
  auto shared = std::make_shared<const TaskFailure>(
      TaskFailure{absl::StatusCode::kFailedPrecondition, message});
  for (const auto& [member, waits_for] : members) {
    MutexLock lock(&member->mu);
    // Clean and evicted whole since it was found waiting: it waits in no read any more, and
    // a cycle state kept for it would outlive its record.
    if (member->gone) continue;
    CycleState& marked = CycleOf(*member);
    marked.error = shared;
    marked.error_on = waits_for;
  }
}

CycleState& EngineImpl::CycleOf(TaskState& task) {
  MutexLock lock(&cycles_mu_);
  std::unique_ptr<CycleState>& cycle = cycles_[task.id];
  if (cycle == nullptr) cycle = std::make_unique<CycleState>();
  task.in_cycle = true;
  return *cycle;
}

CycleState* EngineImpl::FindCycle(TaskState& task) {
  if (!task.in_cycle) return nullptr;
  MutexLock lock(&cycles_mu_);
  auto it = cycles_.find(task.id);
  return it == cycles_.end() ? nullptr : it->second.get();
}

void EngineImpl::DropCycleIfEmpty(TaskState& task) {
  if (!task.in_cycle) return;
  MutexLock lock(&cycles_mu_);
  auto it = cycles_.find(task.id);
  if (it != cycles_.end() && !it->second->empty()) return;
  if (it != cycles_.end()) cycles_.erase(it);
  task.in_cycle = false;
}

std::string EngineImpl::DescribeCycle(TaskState* waiting_task, TaskState* task) const {
  std::string text = "cycle detected: " + waiting_task->fn->name;
  int steps = 0;
  for (TaskState* p = task; p != nullptr && steps < 64; p = WaitedOn(*p), ++steps) {
    text += " -> " + p->fn->name;
    if (p == waiting_task) return text;
  }
  return text + " -> ...";
}

}  // namespace turbine::internal
