// executor.cc — worker threads, the shared queue and the per-thread LIFO slot.
#include "executor.h"

#include <atomic>

#include "engine_impl.h"
#include "reclaim.h"

namespace turbine::internal {
namespace {

std::atomic<uint64_t> next_generation{1};

// LocalSlot is the one-item slot of a thread outside the pool. It only ever holds a hint:
// a hint may be dropped (the task still runs when somebody awaits it).
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
      TaskState* task = engine.InMemory(item.id);
      if (task != nullptr && engine.TryClaim(task)) engine.StartRefresh(task);
      return;
    }
    case WorkItem::Kind::kStartClaimed:
      engine.StartRefresh(static_cast<TaskState*>(item.target));
      return;
    case WorkItem::Kind::kResumeRead:
      static_cast<ReadOp*>(item.target)->ContinueAfterWake();
      return;
    case WorkItem::Kind::kResumeCoroutine:
      std::coroutine_handle<>::from_address(item.target).resume();
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
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_available_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void Executor::Push(WorkItem item) {
  LocalSlot& slot = tls_slot;
  const bool keep_local = item.kind == WorkItem::Kind::kHint && !slot.is_worker &&
                          tls_context.exec == nullptr;
  if (!keep_local) {
    PushShared(item);
    return;
  }
  // A hint of another engine in the slot is dropped rather than pushed: that engine may
  // be gone.
  if (slot.generation == generation_ && slot.item.kind != WorkItem::Kind::kNone) {
    PushShared(slot.item);
  }
  slot.generation = generation_;
  slot.item = item;
}

void Executor::ForgetHint(TaskId id) {
  LocalSlot& slot = tls_slot;
  if (slot.generation == generation_ && slot.item.kind == WorkItem::Kind::kHint &&
      slot.item.id == id) {
    slot.item = WorkItem{};
  }
}

void Executor::FlushLocalHint() {
  LocalSlot& slot = tls_slot;
  if (slot.generation == generation_ && slot.item.kind != WorkItem::Kind::kNone) {
    PushShared(std::exchange(slot.item, WorkItem{}));
  }
}

void Executor::PushShared(WorkItem item) {
  std::lock_guard lock(mu_);
  queue_.push_back(item);
  if (idle_workers_ > 0) work_available_.notify_one();
}

WorkItem Executor::PopShared() {
  std::unique_lock lock(mu_);
  while (queue_.empty() && !stopping_) {
    ++idle_workers_;
    work_available_.wait(lock);
    --idle_workers_;
  }
  if (stopping_) return WorkItem{};
  WorkItem item = queue_.front();
  queue_.pop_front();
  return item;
}

bool Executor::OnWorkerThread() { return tls_slot.is_worker; }

void Executor::WorkerLoop() {
  tls_slot = LocalSlot{generation_, /*is_worker=*/true, WorkItem{}};
  for (;;) {
    tls_context = ThreadContext{engine_, nullptr};
    WorkItem item = PopShared();
    if (item.kind == WorkItem::Kind::kNone) return;  // stopping
    Section section;  // what the item finds in the engine's maps stays allocated
    RunItem(*engine_, item);
  }
}

}  // namespace turbine::internal
