// internal/engine_api.h — the few non-template entry points that header templates call.
//
// Everything here works on the engine that is current on the calling thread: a worker
// thread's own engine, or the one an Engine::Scope entered.
#pragma once

#include <absl/status/status.h>

#include <atomic>
#include <coroutine>
#include <memory>
#include <optional>
#include <string>

#include "turbine/raw_vc.h"
#include "turbine/value_type.h"

namespace turbine::internal {

class EngineImpl;
struct CancelState;
struct ExecContext;
struct FunctionInfo;
struct TaskState;

// TaskFailure is a failed task's output: what a read of it reports.
struct TaskFailure {
  absl::StatusCode code = absl::StatusCode::kUnknown;
  std::string message;
  bool operator==(const TaskFailure&) const = default;
};

// ThreadContext says which engine and which task execution (if any) this thread serves.
struct ThreadContext {
  EngineImpl* engine = nullptr;
  ExecContext* exec = nullptr;  // null outside task bodies
};
inline thread_local ThreadContext tls_context;

// CurrentEngineOrDie returns the thread's engine; calling a task function with none is a
// programming error and aborts with a message saying how to fix it.
EngineImpl& CurrentEngineOrDie();

// Call finds or creates the task (fn, receiver, *stack_args) and returns its output Vc.
// The argument tuple is only borrowed: it is moved to the heap on a true miss alone.
RawVc Call(const FunctionInfo& fn, RawVc receiver, void* stack_args);

// CreateCell stores `value` as the next cell of its type in the running task.
// REQUIRES: called from inside a task body.
RawVc CreateCell(const ValueType& type, std::shared_ptr<const void> value);

// SetOutputValue / SetOutputRef store a finished body's result (called by ErasedTask).
void SetOutputValue(ExecContext& context, const ValueType& type, std::shared_ptr<const void> value);
void SetOutputRef(ExecContext& context, RawVc target);

// Caller is one party waiting for tasks: a task's execution, or a read from outside. It is
// counted among the callers of at most one task at a time (`counted_on`); whoever exchanges
// that pointer out takes the count back (cancel.cc).
struct Caller {
  std::atomic<TaskState*> counted_on{nullptr};
};

// Waiter is an intrusive node a reader parks on a task that is not clean yet.
struct Waiter {
  Waiter* next = nullptr;
  Waiter* prev = nullptr;  // the head's: the tail (waiter_list.h)
  void (*wake)(Waiter* self) = nullptr;
};

// ReadOp is one read of a RawVc: it follows task outputs until it reaches a value (or, in
// resolve mode, a cell), waiting for every task on the way to be clean, and records each
// hop as a dependency of the reading task. Lives in the awaiting coroutine's frame or on
// the blocked thread's stack; never moved after the first call.
class ReadOp : public Waiter {
 public:
  // kValue: follow to a value. kResolve: follow to a cell. kClean: only wait until the
  // task named by the Vc is clean (no dependency recorded).
  enum class Mode : uint8_t { kValue, kResolve, kClean };

  // CopyOut copies a value of the expected type into the reader's storage. With one, the
  // value is copied while the task's lock is held, so a hit touches no reference count.
  using CopyOut = void (*)(const void* value, void* out);

  ReadOp(RawVc vc, const ValueType* expected_type, Mode mode, CopyOut copy_out = nullptr,
         void* out = nullptr);
  ReadOp(const ReadOp&) = delete;
  ReadOp& operator=(const ReadOp&) = delete;

  // TryComplete finishes the read if every hop is clean; true when done (value or error).
  // Allocation-free when it returns true, but for a read without CopyOut of a value held
  // in place (Output::in_place), which is boxed for it to keep.
  bool TryComplete();
  // Suspend parks coroutine `awaiter` until the read is done. Returns false if the read
  // finished without parking (the caller then continues at once).
  bool Suspend(std::coroutine_handle<> awaiter);
  // Block completes the read on a thread that is not running a task body.
  void Block();
  // Resumed restores the reading task's thread context after the coroutine moved threads.
  void Resumed() const { tls_context = saved_context_; }

  bool ok() const { return error_ == nullptr; }
  const TaskFailure& error() const { return *error_; }
  // cancelled: the read ended because its caller was cancelled.
  bool cancelled() const;
  // closed_cycle: the task this read failed to read because waiting would close a cycle.
  TaskState* closed_cycle() const { return closed_cycle_; }
  // value is the value read, unless a CopyOut received it.
  const std::shared_ptr<const void>& value() const { return value_; }
  const ValueType* value_type() const { return value_type_; }
  // value_stamp is the change stamp of the slot the value came from.
  uint64_t value_stamp() const { return value_stamp_; }
  RawVc resolved() const { return cursor_; }
  // reloaded: a task on the read's way was not in memory, or had its values evicted, or
  // was restored and never read since: it came back from the store for this read.
  bool reloaded() const { return reloaded_; }

  // ContinueAfterWake is the engine's continuation after a wake; for the engine only.
  void ContinueAfterWake();
  // set_waiting_task names the task blocked by this read when it is not the reading task
  // body (a refresh verifying its dependencies). For the engine only.
  void set_waiting_task(TaskState* task) { waiting_task_ = task; }
  // set_caller makes a read from outside count as `caller`, cancelled with `cancel` (both
  // outlive the read). For the engine only (ReadAsync).
  void set_caller(Caller* caller, CancelState* cancel) {
    external_caller_ = caller;
    cancel_ = cancel;
    waited_ = true;  // counted as a caller already
  }
  // caller is who this read counts as among the callers of the task it waits for.
  Caller* caller() {
    if (waiting_task_ != nullptr) return TaskCaller(waiting_task_);
    return external_caller_ != nullptr ? external_caller_ : &own_caller_;
  }
  // CallerCancelled: whoever this read is for is gone (its token, its task's execution,
  // or the engine stopping).
  bool CallerCancelled() const;

 private:
  enum class Step : uint8_t { kDone, kParked, kNotReady };
  enum class Hop : uint8_t { kDone, kFollow };
  Hop HopClean(TaskState& task);
  Step Run(bool may_park);
  Step Steps(bool may_park);
  void EndWait();
  static Caller* TaskCaller(TaskState* task);
  static void WakeCoroutine(Waiter* self);
  static void WakeThread(Waiter* self);

  void SetError(std::string message, absl::StatusCode code = absl::StatusCode::kUnknown);
  // TakeValue takes the value a read reached: copied out under the task's lock, or kept
  // (`keep()` gives the value to keep; called only then).
  template <class Keep>
  void TakeValue(const ValueType* type, const void* value, uint64_t stamp, Keep&& keep);

  ThreadContext saved_context_;
  TaskState* waiting_task_ = nullptr;
  RawVc cursor_;
  const ValueType* expected_type_;
  Mode mode_;
  CopyOut copy_out_;
  void* out_;
  std::coroutine_handle<> awaiter_;
  void* blocked_thread_ = nullptr;  // a std::binary_semaphore while Block() waits
  std::shared_ptr<const void> value_;
  const ValueType* value_type_ = nullptr;
  uint64_t value_stamp_ = 0;
  std::shared_ptr<const TaskFailure> error_;
  Caller* external_caller_ = nullptr;
  CancelState* cancel_ = nullptr;
  Caller own_caller_;
  TaskState* closed_cycle_ = nullptr;
  TaskId waited_on_ = kNoTask;  // the task this read last waited for (EndWait)
  // The task whose reference the read followed last, and how often a reference into
  // nothing made it execute again (ReadOp::Steps).
  TaskId referrer_ = kNoTask;
  uint8_t referrers_redone_ = 0;
  bool referrer_read_recorded_ = false;  // the reading task's read of it was this read's
  // The read parked or ran a refresh: it is counted as a caller, and may have been on a
  // cycle another read detected.
  bool waited_ = false;
  bool reloaded_ = false;
};

// CopyInto is the CopyOut for a std::optional<T> destination.
template <class T>
void CopyInto(const void* value, void* out) {
  static_cast<std::optional<T>*>(out)->emplace(*static_cast<const T*>(value));
}

// ReadErrorStatus turns a read's error into a Status with its code.
absl::Status ReadErrorStatus(const TaskFailure& failure);

// ThrowTaskError rethrows a read's error inside a task body (out of line: cold path).
[[noreturn]] void ThrowTaskError(const TaskFailure& failure);

}  // namespace turbine::internal
