// trace_recorder.cc — Engine::StartTrace / StopTrace: a bounded list of events (trace.h).
#include <atomic>

#include "engine_impl.h"
#include "reclaim.h"

namespace turbine::internal {
uint64_t TraceThreadNumber() {
  static std::atomic<uint64_t> next{1};
  thread_local const uint64_t number = next.fetch_add(1, std::memory_order_relaxed);
  return number;
}

bool EngineImpl::StartTrace(const TraceOptions& options) {
  std::lock_guard lock(trace_mu_);
  if (tracing_.load()) return false;
  trace_ = Trace{};
  trace_max_events_ = options.max_events;
  tracing_.store(true);
  return true;
}

Trace EngineImpl::StopTrace() {
  std::lock_guard lock(trace_mu_);
  tracing_.store(false);
  return std::exchange(trace_, Trace{});
}

Trace EngineImpl::TakeTrace() {
  std::lock_guard lock(trace_mu_);
  Trace taken = std::exchange(trace_, Trace{});
  return taken;
}

void EngineImpl::RecordTrace(TraceEvent event) {
  if (event.thread == 0) event.thread = TraceThreadNumber();
  std::lock_guard lock(trace_mu_);
  if (!tracing_.load(std::memory_order_relaxed)) return;  // stopped meanwhile
  if (trace_.events.size() >= trace_max_events_) {
    ++trace_.dropped;
    return;
  }
  trace_.events.push_back(std::move(event));
}

std::string EngineImpl::DescribeTask(TaskId id) {
  Section section;  // reclaim.h: the tasks it finds stay allocated
  TaskState* task = tasks_.Get(id);  // in memory: a verification just read it
  if (task == nullptr) return "@" + std::to_string(id);
  std::string text = task->fn->name + "(";
  task->fn->describe_args(task->args(), &text);
  return text + ") @" + std::to_string(id);
}

}  // namespace turbine::internal
