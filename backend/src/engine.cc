// engine.cc — the public Engine facade and the engine's lifecycle and statistics.
#include "turbine/engine.h"

#include <absl/synchronization/mutex.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "cancel_state.h"
#include "engine_impl.h"
#include "persist.h"

namespace turbine {
namespace internal {

namespace {

// The engine's cycle errors start with this (DescribeCycle); so do the sheet's.
constexpr std::string_view kCyclePrefix = "cycle detected";

int ResolveWorkerCount(int requested) {
  if (requested > 0) return std::min(requested, kMaxWorkerThreads);
  const unsigned hardware = std::thread::hardware_concurrency();
  return hardware > 0 ? static_cast<int>(hardware) : 2;
}
}  // namespace

EngineImpl::EngineImpl(const EngineOptions& options, uint64_t next_stamp, uint64_t next_task_id)
    : store_(options.backing_store),
      logger_(options.logger),
      counters_(new FunctionCounters[kMaxFunctions]),
      executor_(std::make_unique<Executor>(this, ResolveWorkerCount(options.worker_threads))) {
  invalidation_target_->engine = this;
  // Stamps continue above everything ever persisted, so a restored reader's observed stamp
  // can never match a value this session produced.
  stamp_.store(next_stamp);
  next_task_id_.store(std::max<uint64_t>(next_task_id, 1));
  if (store_ != nullptr && options.snapshot_interval.count() > 0) {
    snapshot_thread_ = std::thread(
        [this, interval = options.snapshot_interval, idle_delay = options.snapshot_idle_delay] {
          SnapshotLoop(interval, idle_delay);
        });
  }
}

void EngineImpl::Log(LogLevel level, const std::string& message) const {
  if (logger_) {
    logger_(level, message);
  } else {
    std::fprintf(stderr, "turbine: %s\n", message.c_str());
  }
}

void EngineImpl::SnapshotLoop(std::chrono::milliseconds interval,
                              std::chrono::milliseconds idle_delay) {
  using Clock = std::chrono::steady_clock;
  const bool idle_snapshots = idle_delay.count() > 0;
  const auto tick = idle_snapshots ? std::min(interval, idle_delay) : interval;
  auto last_snapshot = Clock::now();
  // Idleness is read off counters the engine keeps anyway, so the hot path pays nothing
  // for it: no execution during a whole tick and no refresh running now.
  uint64_t executions_before = execution_count.load(std::memory_order_relaxed);
  bool failing = false;  // said once when snapshots start failing, once when they recover
  std::unique_lock lock(snapshot_mu_);
  while (!snapshot_stop_.wait_for(lock, tick, [this] { return stopping_snapshots_; })) {
    lock.unlock();
    const uint64_t executions = execution_count.load(std::memory_order_relaxed);
    const bool idle =
        idle_snapshots && executions == executions_before && refreshes_in_flight.load() == 0;
    executions_before = executions;
    const bool due = idle || Clock::now() - last_snapshot >= interval;
    bool empty = false;
    {
      MutexLock queue(&persist_mu_);
      empty = persist_queue_.empty();
    }
    if (due && !empty) {
      last_snapshot = Clock::now();
      // On failure the engine keeps serving from memory and what failed stays queued: the
      // next snapshot retries it (a full disk fails each one until there is space). Said
      // once when snapshots start failing, once when they recover.
      if (absl::Status flushed = Flush(); !flushed.ok() && !failing) {
        failing = true;
        Log(LogLevel::kError,
            "snapshot failed, retrying every snapshot: " + std::string(flushed.message()));
      } else if (flushed.ok() && failing) {
        failing = false;
        Log(LogLevel::kInfo, "snapshots succeed again");
      }
      // Counted after the snapshot, so whoever sees the count also sees its tasks.
      idle_snapshot_count.fetch_add(idle ? 1 : 0, std::memory_order_relaxed);
    }
    lock.lock();
  }
}

EngineImpl::~EngineImpl() {
  {
    std::unique_lock lock(invalidation_target_->mu);
    invalidation_target_->engine = nullptr;  // invalidators handed out become no-ops
  }
  if (snapshot_thread_.joinable()) {
    {
      std::lock_guard lock(snapshot_mu_);
      stopping_snapshots_ = true;
    }
    snapshot_stop_.notify_all();
    snapshot_thread_.join();
  }
  // Refreshes parked on each other finish once their dependencies do; wait for them so
  // no coroutine outlives the tasks it points at. Running bodies see themselves cancelled,
  // so a long one that asks ends early.
  stopping_.store(true);
  while (refreshes_in_flight.load() > 0) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  executor_.reset();
  if (absl::Status flushed = Flush(); !flushed.ok()) {
    Log(LogLevel::kError, "final snapshot failed: " + std::string(flushed.message()));
  }
}

void EngineImpl::QueuePersist(TaskState& task) {
  if (task.persist_queued) return;
  task.persist_queued = true;
  MutexLock lock(&persist_mu_);
  persist_queue_.push_back(task.id);
}

absl::Status EngineImpl::Flush() {
  if (store_ == nullptr) return absl::OkStatus();
  MutexLock flushing(&flush_mu_);
  const auto start = std::chrono::steady_clock::now();
  std::vector<TaskId> queue;
  {
    MutexLock lock(&persist_mu_);
    queue.swap(persist_queue_);
  }
  // Encode under each task's lock, write with no engine lock held. Only clean results are
  // written: a task that is not clean now queues itself again once it is (`unwritten`).
  std::vector<StoredTask> records;
  records.reserve(queue.size());
  std::string scratch;
  for (TaskId id : queue) {
    TaskState* task = tasks_.Get(id);
    if (task == nullptr) continue;
    MutexLock lock(&task->mu);
    task->persist_queued = false;
    if (task->phase != Phase::kClean || task->output.kind == OutputKind::kNone) continue;
    StoredTask& record = records.emplace_back();
    record.id = id;
    record.hash = task->hash;
    record.stored = task->persisted;
    // Encoded into a reused buffer and then copied once: appending field by field to the
    // record's own string would reallocate it several times.
    scratch.clear();
    EncodeIdentity(*task->fn, task->receiver, task->args, &scratch);
    record.identity = scratch;
    // An input's value lives in the inputs table (written durably by SetInputs).
    if (task->fn->kind != FunctionKind::kInput) {
      scratch.clear();
      EncodeResult(*task, &scratch);
      record.result = scratch;
    }
    // Set before the write, which only Flush (serialized by flush_mu_) reads; undone below
    // if the write fails.
    task->persisted = true;
    task->unwritten = false;
  }
  // Nothing to write: the counters on disk already cover every id and stamp on disk.
  if (records.empty()) return absl::OkStatus();
  // Counters are read after the records: every id and stamp in them is below these.
  absl::Status written = store_->WriteSnapshot(records, next_task_id_.load(), stamp_.load() + 1);
  if (written.ok()) {
    snapshot_count.fetch_add(1, std::memory_order_relaxed);
    last_snapshot_tasks.store(records.size(), std::memory_order_relaxed);
    snapshot_tasks.fetch_add(records.size(), std::memory_order_relaxed);
    snapshot_nanos.fetch_add(
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  std::chrono::steady_clock::now() - start)
                                  .count()),
        std::memory_order_relaxed);
    return written;
  }
  for (const StoredTask& record : records) {  // not written: try again next time
    if (TaskState* task = tasks_.Get(record.id)) {
      MutexLock lock(&task->mu);
      task->persisted = record.stored;
      task->unwritten = true;
      QueuePersist(*task);
    }
  }
  return written;
}

EngineStats EngineImpl::Stats() const {
  EngineStats stats;
  stats.tasks = static_cast<uint64_t>(task_count.load());
  stats.cells = static_cast<uint64_t>(cell_count.load());
  stats.edges = static_cast<uint64_t>(edge_count.load());
  stats.executions = execution_count.load();
  stats.revision = revision();
  stats.cycles_detected = cycle_count.load();
  stats.restored_tasks = restored_count.load();
  stats.snapshots = snapshot_count.load();
  stats.idle_snapshots = idle_snapshot_count.load();
  stats.snapshot_nanos = snapshot_nanos.load();
  stats.last_snapshot_tasks = last_snapshot_tasks.load();
  stats.snapshot_tasks = snapshot_tasks.load();
  for (const FunctionInfo* fn : AllFunctions()) {
    const FunctionCounters& c = counters_[fn->id];
    const uint64_t calls = c.calls.load(std::memory_order_relaxed);
    const uint64_t executions = c.executions.load(std::memory_order_relaxed);
    // A task restored from disk as somebody's dependency can execute without being called.
    if (calls == 0 && executions == 0) continue;
    const uint64_t misses = c.misses.load(std::memory_order_relaxed);
    stats.functions.push_back(
        FunctionStats{.name = fn->name,
                      .version = fn->version,
                      .calls = calls,
                      .cache_hits = calls >= misses ? calls - misses : 0,
                      .executions = executions,
                      .execution_nanos = c.execution_nanos.load(std::memory_order_relaxed)});
  }
  return stats;
}

void ThrowTaskError(const TaskFailure& failure) {
  if (&failure == CancelledFailure().get()) throw CancelledError();
  throw TaskError(failure.message, failure.code);
}

bool IsCycleError(const TaskFailure& failure) {
  return failure.code == absl::StatusCode::kFailedPrecondition &&
         failure.message.starts_with(kCyclePrefix);
}

absl::Status ReadErrorStatus(const TaskFailure& failure) {
  return absl::Status(failure.code, failure.message);
}

}  // namespace internal

struct Engine::Counters {
  uint64_t next_stamp = 1;
  uint64_t next_task_id = 1;
};

absl::StatusOr<Engine::Counters> Engine::ReadCounters(BackingStore* store) {
  Counters counters;  // 1 and 1 without a store
  if (store == nullptr) return counters;
  absl::StatusOr<uint64_t> stamp = store->NextStamp();
  absl::StatusOr<uint64_t> id = stamp.ok() ? store->NextTaskId() : stamp;
  if (!id.ok()) {
    return absl::Status(id.status().code(), "cannot read the backing store's counters: " +
                                                std::string(id.status().message()));
  }
  counters.next_stamp = *stamp;
  counters.next_task_id = *id;
  return counters;
}

absl::StatusOr<std::unique_ptr<Engine>> Engine::Open(EngineOptions options) {
  absl::StatusOr<Counters> counters = ReadCounters(options.backing_store);
  if (!counters.ok()) return counters.status();
  return std::unique_ptr<Engine>(new Engine(std::move(options), *counters));
}

Engine::Engine(EngineOptions options, const Counters& counters)
    : impl_(std::make_unique<internal::EngineImpl>(options, counters.next_stamp,
                                                   counters.next_task_id)) {}

Engine::Engine(EngineOptions options) {
  absl::StatusOr<Counters> counters = ReadCounters(options.backing_store);
  if (!counters.ok()) {
    std::fprintf(stderr, "turbine: %s; use Engine::Open to get this as a status\n",
                 std::string(counters.status().message()).c_str());
    std::abort();
  }
  impl_ =
      std::make_unique<internal::EngineImpl>(options, counters->next_stamp, counters->next_task_id);
}

void DisableMutexDeadlockDetection() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

Engine::~Engine() = default;

Engine::Scope::Scope(Engine& engine) : saved_(internal::tls_context) {
  internal::tls_context = internal::ThreadContext{engine.impl_.get(), nullptr};
}

Engine::Scope::~Scope() { internal::tls_context = saved_; }

void Engine::CheckNotInTaskBody() {
  if (internal::tls_context.exec != nullptr) {
    std::fprintf(stderr, "turbine: Engine::Read called inside a task body; use co_await there\n");
    std::abort();
  }
}

absl::StatusOr<RawVc> Engine::Resolve(RawVc vc) {
  CheckNotInTaskBody();
  Scope scope(*this);
  internal::ReadOp op(vc, nullptr, internal::ReadOp::Mode::kResolve);
  op.Block();
  if (!op.ok()) return internal::ReadErrorStatus(op.error());
  return op.resolved();
}

absl::StatusOr<RawVc> Engine::CallErased(FunctionHandle fn, RawVc receiver, const void* args_type,
                                         void* args, CallSource* source) {
  if (!fn.valid()) return absl::InvalidArgumentError("Engine::Call: the handle names no function");
  const internal::FunctionInfo& info = *fn.info_;
  if (info.args_type != args_type) {
    return absl::InvalidArgumentError("Engine::Call: " + info.name +
                                      " takes other parameter types than the tuple given");
  }
  if (info.has_receiver && receiver.is_none()) {
    return absl::InvalidArgumentError("Engine::Call: " + info.name + " needs a receiver");
  }
  if (!info.has_receiver && !receiver.is_none()) {
    return absl::InvalidArgumentError("Engine::Call: " + info.name + " takes no receiver");
  }
  return impl_->Call(info, receiver, args, source);
}

absl::Status Engine::Flush() { return impl_->Flush(); }

absl::Status Engine::SetInputs(std::vector<InputValue> values, size_t* changed) {
  return impl_->SetInputs(std::move(values), changed);
}

absl::Status Engine::DeleteInputs(std::vector<std::string> keys, size_t* changed) {
  return impl_->DeleteInputs(std::move(keys), changed);
}

EngineStats Engine::Stats() const { return impl_->Stats(); }

}  // namespace turbine
