// job.h — the engine's own coroutines: fire-and-forget jobs that park on reads.
//
// A refresh (refresh.cc) and a server's read (async_read.cc) are each one Job: created
// suspended, started by whoever resumes its handle (inline or on a worker), destroyed by
// itself when it ends. AwaitRead parks a job on a ReadOp until the read is done.
#pragma once

#include <coroutine>
#include <exception>

#include "turbine/internal/engine_api.h"

namespace turbine::internal {

struct Job {
  struct promise_type {
    Job get_return_object() {
      return Job{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() const noexcept { return {}; }
    std::suspend_never final_suspend() const noexcept { return {}; }
    void return_void() const noexcept {}
    // Engine code never throws, and a server's callback must not.
    void unhandled_exception() const noexcept { std::terminate(); }
  };
  std::coroutine_handle<promise_type> handle;
};

struct AwaitRead {
  ReadOp& op;
  bool await_ready() { return op.TryComplete(); }
  bool await_suspend(std::coroutine_handle<> job) { return op.Suspend(job); }
  void await_resume() { op.Resumed(); }
};

}  // namespace turbine::internal
