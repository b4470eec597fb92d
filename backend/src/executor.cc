// executor.cc — worker threads, the shared queue and the per-thread LIFO slot.
#include "executor.h"

#include <atomic>

#include "engine_impl.h"

namespace turbine::internal {
namespace {

std::atomic<uint64_t> next_generation{1};

// LocalSlot is one thread's "run next" item. On a non-worker thread it only ever holds a
// hint (a hint can be dropped: the task still runs when somebody awaits it); anything that
// must run goes to the shared queue.
struct LocalSlot {
  uint64_t generation = 0;  // the executor it belongs to; 0 = none
  bool is_worker = false;
  WorkItem item;
};
thread_local LocalSlot tls_slot;

void RunItem(EngineImpl& engine, WorkItem item) {
  switch (item.kind) {
    case WorkItem::Kind::kNone:
      return;
    case WorkItem::Kind::kHint: {
      auto* task = static_cast<TaskState*>(item.target);
      if (engine.TryClaim(task)) engine.StartRefresh(task);
      return;
    }
    case WorkItem::Kind::kStartClaimed:
      engine.StartRefresh(static_cast<TaskState*>(item.target));
      return;
    case WorkItem::Kind::kResumeRead:
      static_cast<ReadOp*>(item.target)->ContinueAfterWake();
      return;
  }
}

}  // namespace

Executor::Executor(EngineImpl* engine, int threads)
    : engine_(engine), generation_(next_generation.fetch_add(1)) {
  workers_.reserve(static_cast<size_t>(threads));
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

Executor::~Executor() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  work_available_.SignalAll();
  for (std::thread& worker : workers_) worker.join();
}

void Executor::Push(WorkItem item) {
  LocalSlot& slot = tls_slot;
  if (slot.generation != generation_) {
    if (slot.is_worker || item.kind != WorkItem::Kind::kHint) {
      PushShared(item);  // another engine's worker, or an item that must run
    } else {
      slot.generation = generation_;  // a hint of another engine is simply dropped
      slot.item = item;
    }
    return;
  }
  if (!slot.is_worker && item.kind != WorkItem::Kind::kHint) {
    PushShared(item);
    return;
  }
  if (slot.item.kind != WorkItem::Kind::kNone) PushShared(slot.item);
  slot.item = item;
}

void Executor::ForgetHint(TaskState* task) {
  LocalSlot& slot = tls_slot;
  if (slot.generation == generation_ && slot.item.kind == WorkItem::Kind::kHint &&
      slot.item.target == task) {
    slot.item = WorkItem{};
  }
}

void Executor::PushShared(WorkItem item) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(item);
  if (idle_workers_ > 0) work_available_.Signal();
}

WorkItem Executor::PopShared() {
  absl::MutexLock lock(&mu_);
  while (queue_.empty() && !stopping_) {
    ++idle_workers_;
    work_available_.Wait(&mu_);
    --idle_workers_;
  }
  if (stopping_) return WorkItem{};
  WorkItem item = queue_.front();
  queue_.pop_front();
  return item;
}

void Executor::WorkerLoop() {
  tls_slot = LocalSlot{generation_, /*is_worker=*/true, WorkItem{}};
  for (;;) {
    tls_context = ThreadContext{engine_, nullptr};
    WorkItem item = std::exchange(tls_slot.item, WorkItem{});
    if (item.kind == WorkItem::Kind::kNone) item = PopShared();
    if (item.kind == WorkItem::Kind::kNone) return;  // stopping
    RunItem(*engine_, item);
  }
}

}  // namespace turbine::internal
