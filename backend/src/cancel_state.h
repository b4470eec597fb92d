// cancel_state.h — what a CancelToken shares with the reads it cancels, and the counting of
// callers per task (cancel.cc).
#pragma once

#include <absl/base/thread_annotations.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "turbine/internal/engine_api.h"

namespace turbine::internal {

class EngineImpl;
struct ExecContext;

// CancelState is a CancelToken's shared state: the flag, and the reads from outside in
// progress under it, each with its Caller.
struct CancelState {
  std::atomic<bool> cancelled{false};
  std::mutex mu;  // std, not absl: visible to TSan
  std::vector<Caller*> reads ABSL_GUARDED_BY(mu);

  // Attach adds a read; false if the token is already cancelled (the read is not added).
  bool Attach(Caller* caller);
  void Detach(Caller* caller);
};

// CountCaller counts `caller` among the callers of `task` and returns the task it was
// counted on before (to pass to UncountCaller), if another. REQUIRES: task.mu held.
TaskState* CountCaller(Caller* caller, TaskState& task);
// UncountCaller takes one caller off `task` (null: nothing) without cancelling anything:
// the read is over.
void UncountCaller(TaskState* task);
// CancelCaller takes `caller` off the task it is counted on and wakes its read parked there.
// A task left with no caller is cancelled, and its execution in turn stops counting as a
// caller of what it waits for, and so on down the chain.
void CancelCaller(Caller* caller);
// DropCancelledCaller takes one cancelled caller off `task`, as CancelCaller does: a task
// left with no caller that is not clean is cancelled. Returns true if that task is running,
// so that its own reads are to be cancelled in turn (CancelCaller(&task.as_caller)) once
// the lock is released. REQUIRES: task.mu held.
bool DropCancelledCaller(TaskState& task);

// NoteStarted records that the execution `exec` (of `engine`) made task `id` and left it to
// the worker pool to start; the first makes the execution findable by CancelStartedBy until
// ForgetStarter, which its thread calls once the body is over.
void NoteStarted(EngineImpl& engine, ExecContext& exec, TaskId id);
void ForgetStarter(ExecContext& exec);
// CancelStartedBy cancels, of what the running execution of `task` (just cancelled) has
// started, what nobody waits for (EngineImpl::CancelUnawaited). At once, not when that
// execution ends: its continuation may wait for a worker that one of those holds.
void CancelStartedBy(TaskState* task);

// CancelledFailure is the error of a read whose caller was cancelled, code kCancelled (one
// shared object, so ReadOp::cancelled is a pointer comparison).
const std::shared_ptr<const TaskFailure>& CancelledFailure();

}  // namespace turbine::internal
