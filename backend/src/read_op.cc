// read_op.cc — reading a Vc: follow outputs to a value, wait for clean, detect cycles.
#include <semaphore>

#include "engine_impl.h"

namespace turbine::internal {
namespace {

// Nested inline refreshes per thread. Beyond this the refresh goes to the queue, so a deep
// chain of calls (fib(20000)) never grows one native stack without bound.
constexpr int kMaxInlineDepth = 16;
thread_local int tls_inline_depth = 0;

// Cycle checks follow the waits-for chain this far.
constexpr int kMaxCycleWalk = 1 << 16;

bool ChainReaches(TaskState* from, TaskState* target) {
  int steps = 0;
  for (TaskState* p = from; p != nullptr && steps < kMaxCycleWalk; ++steps) {
    if (p == target) return true;
    p = p->waiting_on.load();
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
  if (op->waiting_task_ != nullptr) op->waiting_task_->waiting_on.store(nullptr);
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

void ReadOp::TakeValue(const ValueType* type, const std::shared_ptr<const void>& value,
                       uint64_t stamp) {
  value_type_ = type;
  value_stamp_ = stamp;
  if (expected_type_ != nullptr && expected_type_ != type) {
    SetError("value has type '" + type->name + "', expected '" + expected_type_->name + "'");
    return;
  }
  if (copy_out_ != nullptr) {
    copy_out_(value.get(), out_);
  } else {
    value_ = value;
  }
}

ReadOp::Step ReadOp::Run(bool may_park) {
  EngineImpl& engine = *saved_context_.engine;
  for (;;) {
    if (cursor_.is_none()) {
      SetError("read of an empty Vc");
      return Step::kDone;
    }
    TaskState* task = engine.Task(cursor_.task);
    if (task == nullptr) {
      SetError("no task with id " + std::to_string(cursor_.task));
      return Step::kDone;
    }
    {
      MutexLock lock(&task->mu);
      if (task->phase == Phase::kClean) {
        if (mode_ == Mode::kClean || HopClean(*task) == Hop::kDone) return Step::kDone;
        continue;
      }
    }
    if (!may_park) return Step::kNotReady;
    std::string cycle;
    switch (engine.AwaitClean(task, this, waiting_task_, &cycle)) {
      case EngineImpl::Wait::kClean:
      case EngineImpl::Wait::kRanInline:
        continue;
      case EngineImpl::Wait::kParked:
        return Step::kParked;
      case EngineImpl::Wait::kCycle:
        SetError(std::move(cycle), absl::StatusCode::kFailedPrecondition);
        return Step::kDone;
    }
  }
}

// HopClean takes one step of the read on a clean task. REQUIRES: task.mu held.
ReadOp::Hop ReadOp::HopClean(TaskState& task) {
  ExecContext* reader = saved_context_.exec;
  const bool own_value = cursor_.is_output() || cursor_.index == kOutputCellIndex;
  if (own_value) {
    if (reader != nullptr) reader->RecordRead(RawVc::Output(task.id), task.output_changed_at);
    const Output& out = task.output;
    switch (out.kind) {
      case OutputKind::kValue:
        if (cursor_.is_cell() && cursor_.type != out.type->id) {
          SetError("the cell this Vc points at no longer exists");
        } else if (mode_ == Mode::kResolve) {
          cursor_ = RawVc::Cell(task.id, out.type->id, kOutputCellIndex);
        } else {
          TakeValue(out.type, out.value, task.output_changed_at);
        }
        return Hop::kDone;
      case OutputKind::kRef:
        if (cursor_.is_cell()) {
          SetError("the cell this Vc points at no longer exists");
          return Hop::kDone;
        }
        cursor_ = out.ref;
        return Hop::kFollow;
      case OutputKind::kError:
        error_ = std::static_pointer_cast<const TaskFailure>(out.value);
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
    TakeValue(ValueTypeById(cell->type), cell->value, cell->changed_at);
  }
  return Hop::kDone;
}

EngineImpl::Wait EngineImpl::AwaitClean(TaskState* task, Waiter* waiter, TaskState* waiting_task,
                                        std::string* cycle) {
  {
    MutexLock lock(&task->mu);
    switch (task->phase) {
      case Phase::kClean:
        return Wait::kClean;
      case Phase::kScheduled:
      case Phase::kDirty:
        task->phase = Phase::kRunning;  // claimed: this thread runs or queues the refresh
        break;
      case Phase::kRunning:
        if (waiting_task != nullptr) {
          waiting_task->waiting_on.store(task);
          if (ChainReaches(task, waiting_task)) {
            waiting_task->waiting_on.store(nullptr);
            cycle_count.fetch_add(1, std::memory_order_relaxed);
            *cycle = DescribeCycle(waiting_task, task);
            return Wait::kCycle;
          }
        }
        waiter->next = task->waiters;
        task->waiters = waiter;
        return Wait::kParked;
    }
  }
  executor_->ForgetHint(task);
  if (tls_inline_depth >= kMaxInlineDepth) {
    executor_->Push(WorkItem{WorkItem::Kind::kStartClaimed, task});
    return Wait::kRanInline;  // the caller comes back, finds it running, and parks
  }
  if (waiting_task != nullptr) waiting_task->waiting_on.store(task);
  ++tls_inline_depth;
  StartRefresh(task);
  --tls_inline_depth;
  if (waiting_task != nullptr) waiting_task->waiting_on.store(nullptr);
  return Wait::kRanInline;
}

std::string EngineImpl::DescribeCycle(TaskState* waiting_task, TaskState* task) const {
  std::string text = "cycle detected: " + waiting_task->fn->name;
  int steps = 0;
  for (TaskState* p = task; p != nullptr && steps < 64; p = p->waiting_on.load(), ++steps) {
    text += " -> " + p->fn->name;
    if (p == waiting_task) return text;
  }
  return text + " -> ...";
}

}  // namespace turbine::internal
