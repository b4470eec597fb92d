// trace_recorder.cc — Engine::StartTrace / StopTrace: a bounded list of events (trace.h).
#include <atomic>

#include "engine_impl.h"
#include "persist.h"
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
  std::string function;
  std::string args;
  if (!DescribeArgs(id, &function, &args)) return "@" + std::to_string(id);
  return function + "(" + args + ") @" + std::to_string(id);
}

bool EngineImpl::DescribeArgs(TaskId id, std::string* function, std::string* args) {
  {
    Section section;  // reclaim.h: the tasks it finds stay allocated
    if (TaskState* task = tasks_.Get(id)) {  // usually: a verification just read it
      *function = task->fn->name;
      task->fn->describe_args(task->args(), args);
      return true;
    }
  }
  // Evicted whole (or never loaded in this process): its record says, without loading it.
  if (store_ == nullptr) return false;
  absl::StatusOr<std::optional<StoredTask>> stored = store_->ReadTask(id);
  if (!stored.ok() || !stored->has_value()) return false;
  DecodedIdentity identity;
  if (!DecodeIdentity((*stored)->identity, &identity)) return false;
  *function = identity.fn->name;
  identity.fn->describe_args(identity.args, args);
  return true;
}

}  // namespace turbine::internal
