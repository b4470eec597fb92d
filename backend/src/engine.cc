// engine.cc — the public Engine facade and the engine's lifecycle and statistics.
#include "turbine/engine.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <absl/synchronization/mutex.h>

#include "engine_impl.h"

namespace turbine {
namespace internal {

namespace {
constexpr std::string_view kCyclePrefix = "cycle detected";

int ResolveWorkerCount(int requested) {
  if (requested > 0) return requested;
  const unsigned hardware = std::thread::hardware_concurrency();
  return hardware > 0 ? static_cast<int>(hardware) : 2;
}
}  // namespace

EngineImpl::EngineImpl(const EngineOptions& options)
    : store_(options.backing_store),
      counters_(new FunctionCounters[kMaxFunctions]),
      executor_(std::make_unique<Executor>(this, ResolveWorkerCount(options.worker_threads))) {
  // Debian builds Abseil without NDEBUG, which leaves absl::Mutex deadlock detection on:
  // every lock then updates a global lock graph, several times the cost of the lock on
  // the cache-hit path. The engine never nests its locks (see task_state.h), so the check
  // buys nothing here; it is a process-wide setting, documented in README.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (store_ != nullptr) {
    // Stamps continue above everything ever persisted, so a restored reader's observed
    // stamp can never match a value this session produced.
    absl::StatusOr<uint64_t> next = store_->NextStamp();
    if (next.ok()) {
      stamp_.store(*next);
    } else {
      std::fprintf(stderr, "turbine: backing store unreadable, running in memory: %s\n",
                   std::string(next.status().message()).c_str());
      store_ = nullptr;
    }
  }
}

EngineImpl::~EngineImpl() {
  // Refreshes parked on each other finish once their dependencies do; wait for them so
  // no coroutine outlives the tasks it points at.
  while (refreshes_in_flight.load() > 0) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  executor_.reset();
}

EngineStats EngineImpl::Stats() const {
  EngineStats stats;
  stats.tasks = static_cast<uint64_t>(task_count.load());
  stats.cells = static_cast<uint64_t>(cell_count.load());
  stats.edges = static_cast<uint64_t>(edge_count.load());
  stats.executions = execution_count.load();
  stats.revision = revision();
  stats.cycles_detected = cycle_count.load();
  for (const FunctionInfo* fn : AllFunctions()) {
    const FunctionCounters& c = counters_[fn->id];
    const uint64_t calls = c.calls.load(std::memory_order_relaxed);
    if (calls == 0) continue;
    const uint64_t misses = c.misses.load(std::memory_order_relaxed);
    stats.functions.push_back(FunctionStats{
        .name = fn->name,
        .version = fn->version,
        .calls = calls,
        .cache_hits = calls >= misses ? calls - misses : 0,
        .executions = c.executions.load(std::memory_order_relaxed),
        .execution_nanos = c.execution_nanos.load(std::memory_order_relaxed)});
  }
  return stats;
}

void ThrowTaskError(const std::string& message) { throw TaskError(message); }

}  // namespace internal

Engine::Engine(EngineOptions options)
    : impl_(std::make_unique<internal::EngineImpl>(options)) {}

Engine::~Engine() = default;

Engine::Scope::Scope(Engine& engine) : saved_(internal::tls_context) {
  internal::tls_context = internal::ThreadContext{engine.impl_.get(), nullptr};
}

Engine::Scope::~Scope() { internal::tls_context = saved_; }

void Engine::CheckNotInTaskBody() {
  if (internal::tls_context.exec != nullptr) {
    std::fprintf(stderr,
                 "turbine: Engine::Read called inside a task body; use co_await there\n");
    std::abort();
  }
}

void Engine::ReadBlocking(internal::ReadOp& op) { op.Block(); }

absl::Status Engine::ErrorStatus(const std::string& message) {
  if (message.starts_with(internal::kCyclePrefix)) {
    return absl::FailedPreconditionError(message);
  }
  return absl::UnknownError(message);
}

absl::StatusOr<RawVc> Engine::Resolve(RawVc vc) {
  CheckNotInTaskBody();
  Scope scope(*this);
  internal::ReadOp op(vc, nullptr, internal::ReadOp::Mode::kResolve);
  op.Block();
  if (!op.ok()) return ErrorStatus(op.error());
  return op.resolved();
}

absl::Status Engine::SetInputs(std::vector<InputValue> values) {
  return impl_->SetInputs(std::move(values));
}

EngineStats Engine::Stats() const { return impl_->Stats(); }

}  // namespace turbine
