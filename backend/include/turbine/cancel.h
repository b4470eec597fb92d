// cancel.h — giving up on a read, and noticing inside a task body that nobody waits.
//
//   turbine::CancelToken token;
//   engine.ReadAsync(vc, token, done);   // `done` gets kCancelled once token.Cancel() runs
//   token.Cancel();                       // any thread: "the caller is gone"
//
// The engine counts, for every task that is not clean, the callers waiting for it: reads
// from outside and executions of other tasks that await it. When the last one is cancelled,
// the task's execution is cancelled too, and in turn stops counting as a caller of what it
// awaits. Cancellation is cooperative: a body learns of it when it awaits a task that is not
// clean (the await throws CancelledError) or when it asks (Cancelled, ThrowIfCancelled); a
// long body should ask now and then. A cancelled execution stores nothing: the task stays
// dirty and the next caller runs it again. A task somebody else still waits for keeps
// running.
#pragma once

#include <exception>
#include <memory>

namespace turbine {
namespace internal {
struct CancelState;
}  // namespace internal

// CancelToken is a shared handle: copies cancel together. Cheap to copy; Cancel is safe from
// any thread, any number of times.
class CancelToken {
 public:
  CancelToken();
  void Cancel() const;
  bool cancelled() const;
  const std::shared_ptr<internal::CancelState>& state() const { return state_; }

 private:
  std::shared_ptr<internal::CancelState> state_;
};

// CancelledError is what an await throws in an execution nobody waits for any more. A body
// should let it through (a `catch (...)` that swallows it only delays the end: the result is
// discarded anyway).
class CancelledError : public std::exception {
 public:
  const char* what() const noexcept override { return "cancelled: nobody waits for this task"; }
};

// Cancelled tells whether the running execution has been cancelled (every caller is gone,
// or the engine is shutting down). REQUIRES: called from inside a task body.
bool Cancelled();
// ThrowIfCancelled throws CancelledError if Cancelled().
void ThrowIfCancelled();

}  // namespace turbine
