// executor.h — the fixed worker pool that runs task refreshes and resumes parked readers.
//
// One shared FIFO queue that idle workers sleep on. Work created inside task bodies goes
// there at once, so independent tasks spread over the workers. A thread outside the pool
// (a client calling the engine directly) keeps its most recent task in a one-item slot
// instead: it usually awaits that task next and runs it inline, with no cross-thread
// handoff; a second call, or the thread blocking, moves the slot's task to the queue.
// Readers claim tasks, so a queued task that somebody already ran is skipped.
// Thread-safety: all methods are safe from any thread.
#pragma once

#include <absl/base/thread_annotations.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "turbine/raw_vc.h"

namespace turbine::internal {

class EngineImpl;
class ReadOp;
struct TaskState;

struct WorkItem {
  enum class Kind : uint8_t {
    kNone,
    kHint,          // run task `id` if it is in memory and still claimable (else drop)
    kStartClaimed,  // `task` is already kRunning: start its refresh
    kResumeRead,    // continue parked `read`
    kResumeCoroutine,  // resume the suspended coroutine whose address is `target`
  };
  Kind kind = Kind::kNone;
  void* target = nullptr;  // TaskState*, ReadOp* or a coroutine address
  // A hint names its task by id: it may sit in a queue or a thread's slot after the task
  // ran and was evicted (reclaim.h).
  TaskId id = kNoTask;

  static WorkItem Hint(TaskId task) { return WorkItem{Kind::kHint, nullptr, task}; }
};

class Executor {
 public:
  Executor(EngineImpl* engine, int threads);
  ~Executor();  // stops and joins the workers; queued items are dropped
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  void Push(WorkItem item);
  // ForgetHint removes the hint of task `id` from this thread's slot when the thread runs
  // it itself.
  void ForgetHint(TaskId id);
  // FlushLocalHint moves this thread's slot to the queue; called before the thread blocks.
  void FlushLocalHint();
  int threads() const { return static_cast<int>(workers_.size()); }
  // OnWorkerThread tells whether the calling thread is a worker of some executor.
  static bool OnWorkerThread();

 private:
  void WorkerLoop();
  void PushShared(WorkItem item);
  WorkItem PopShared();  // blocks; kNone once stopping

  EngineImpl* const engine_;
  const uint64_t generation_;  // tags thread-local slots; never reused
  std::mutex mu_;
  std::condition_variable work_available_;
  std::deque<WorkItem> queue_ ABSL_GUARDED_BY(mu_);
  int idle_workers_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace turbine::internal
