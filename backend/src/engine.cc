// engine.cc — the public Engine facade and the engine's lifecycle and statistics.
#include "turbine/engine.h"

#include <absl/container/flat_hash_map.h>
#include <absl/synchronization/mutex.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <thread>
#include <utility>

#include "cancel_state.h"
#include "engine_impl.h"
#include "persist.h"
#include "reclaim.h"

namespace turbine {
namespace internal {

namespace {

// The engine's cycle errors start with this (DescribeCycle); so do the sheet's.
constexpr std::string_view kCyclePrefix = "cycle detected";

// ChangedInputsOf is the store's log of input changes as the engine keeps it.
ChangedInputs ChangedInputsOf(const InputChangeLog& log) {
  ChangedInputs changed(log.since);
  for (const InputChange& change : log.changes) changed.Add(change.stamp, InputBitsOf(change));
  return changed;
}

int ResolveWorkerCount(int requested) {
  if (requested > 0) return std::min(requested, kMaxWorkerThreads);
  const unsigned hardware = std::thread::hardware_concurrency();
  return hardware > 0 ? static_cast<int>(hardware) : 2;
}
}  // namespace

EngineImpl::EngineImpl(const EngineOptions& options, uint64_t next_stamp, uint64_t next_task_id,
                       const InputChangeLog& changes)
    : store_(options.backing_store),
      logger_(options.logger),
      // With the input function, which registers on first use: a digest taken before an
      // input was ever read would differ from the next session's.
      functions_digest_((InputFunction(), FunctionsDigest())),
      changed_inputs_(ChangedInputsOf(changes)),
      snapshot_chunk_tasks_(options.snapshot_chunk_tasks),
      counters_(new FunctionCounters[kMaxFunctions]),
      executor_(std::make_unique<Executor>(this, ResolveWorkerCount(options.worker_threads))),
      clock_(options.clock ? options.clock : [] { return std::chrono::system_clock::now(); }),
      gc_options_(options.gc),
      memory_(options.memory),
      shared_(options.shared) {
  invalidation_target_->engine = this;
  if (shared_.tier != nullptr && shared_.unavailable_at_start) {
    const absl::Status down = absl::UnavailableError("did not answer at start");
    shared_lookups_outage_.Failed(down);
    shared_publish_outage_.Failed(down);
  }
  Today();
  // Stamps continue above everything ever persisted, so a restored reader's observed stamp
  // can never match a value this session produced.
  stamp_.store(next_stamp);
  next_task_id_.store(std::max<uint64_t>(next_task_id, 1));
  ids_reserved_.store(next_task_id_.load());  // what the store holds; none given out yet
  // Before anything is restored: what changed outside while no engine watched decides
  // which restored results are trusted.
  CheckObservations();
  // Under a memory limit the thread runs even without periodic snapshots: only what a
  // snapshot wrote can leave memory, so the evictor asks it for snapshots (want_snapshot).
  if (store_ != nullptr && (options.snapshot_interval.count() > 0 || memory_.limit_bytes > 0)) {
    snapshot_thread_ = std::thread([this, interval = options.snapshot_interval,
                                    idle_delay = options.snapshot_idle_delay,
                                    settle_delay = options.settle_delay] {
      SnapshotLoop(interval, idle_delay, settle_delay);
    });
  }
  if (store_ != nullptr && gc_options_.interval.count() > 0) {
    gc_thread_ = std::thread([this] { GcLoop(); });
  }
  if (store_ != nullptr && memory_.limit_bytes > 0) {
    evictor_thread_ = std::thread([this] { EvictorLoop(); });
  }
  if (sharing() && shared_.publish) {
    publish_thread_ = std::thread([this] { PublishLoop(); });
  }
}

void EngineImpl::Log(LogLevel level, const std::string& message) const {
  if (logger_) {
    logger_(level, message);
  } else if (level != LogLevel::kInfo) {  // a program's stderr is for what went wrong
    std::fprintf(stderr, "turbine: %s\n", message.c_str());
  }
}

EngineImpl::~EngineImpl() {
  if (evictor_thread_.joinable()) {
    evictor_signal_.Stop();
    evictor_thread_.join();
  }
  if (publish_thread_.joinable()) {
    {
      std::lock_guard lock(publish_mu_);
      stopping_publish_ = true;
    }
    publish_wake_.notify_all();
    publish_thread_.join();
  }
  {
    std::lock_guard lock(retry_mu_);
    stopping_retries_ = true;
  }
  retry_wake_.notify_all();
  if (retry_thread_.joinable()) retry_thread_.join();
  if (gc_thread_.joinable()) {
    gc_abort_.store(true);
    store_->StopReclaiming();  // a pass compacting a large store would take long to end
    gc_signal_.Stop();
    gc_thread_.join();
  }
  {
    std::unique_lock lock(invalidation_target_->mu);
    invalidation_target_->engine = nullptr;  // invalidators handed out become no-ops
  }
  if (snapshot_thread_.joinable()) {
    snapshot_signal_.Stop();
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
  bool reserved_ids = false;
  {
    std::lock_guard lock(id_reservation_mu_);
    reserved_ids = reserved_ids_;
  }
  final_snapshot_.store(true, std::memory_order_relaxed);
  if (absl::Status flushed = Flush(/*sweep_uses=*/true); !flushed.ok()) {
    Log(LogLevel::kError, "final snapshot failed, the last results are lost: " +
                              std::string(flushed.message()));
  } else if (reserved_ids) {
    // The next process continues from the ids given out, not past those reserved and never
    // used. Kept if the snapshot failed: the reservation still covers what it did not write.
    if (absl::Status released = store_->ReleaseTaskIds(next_task_id_.load()); !released.ok()) {
      Log(LogLevel::kError, "cannot release reserved task ids: " +
                                std::string(released.message()));
    }
  }
}

EngineStats EngineImpl::Stats() const {
  EngineStats stats;
  // Counts move apart from what they count (a task is counted just before it is in the
  // table): never read one as below zero.
  const auto count = [](const std::atomic<int64_t>& n) {
    return static_cast<uint64_t>(std::max<int64_t>(0, n.load()));
  };
  stats.tasks = count(counts.task_count);
  stats.cells = count(counts.cell_count);
  stats.edges = count(counts.edge_count);
  stats.executions = counts.execution_count.load();
  stats.revision = revision();
  stats.cycles_detected = counts.cycle_count.load();
  stats.restored_tasks = counts.restored_count.load();
  stats.trusted_restored_tasks = counts.trusted_count.load();
  stats.observations_checked = counts.observations_checked.load();
  stats.observations_changed = counts.observations_changed.load();
  stats.snapshots = counts.snapshot_count.load();
  stats.idle_snapshots = counts.idle_snapshot_count.load();
  stats.snapshot_nanos = counts.snapshot_nanos.load();
  stats.last_snapshot_tasks = counts.last_snapshot_tasks.load();
  stats.snapshot_tasks = counts.snapshot_tasks.load();
  stats.gc_passes = counts.gc_passes.load();
  stats.gc_removed_tasks = counts.gc_removed_tasks.load();
  stats.gc_removed_bytes = counts.gc_removed_bytes.load();
  stats.gc_nanos = counts.gc_nanos.load();
  stats.gc_phase = counts.gc_phase.load(std::memory_order_relaxed);
  stats.gc_pass_scanned_tasks = counts.gc_pass_scanned.load(std::memory_order_relaxed);
  stats.gc_pass_garbage_tasks = counts.gc_pass_garbage.load(std::memory_order_relaxed);
  stats.gc_pass_removed_tasks = counts.gc_pass_removed.load(std::memory_order_relaxed);
  stats.memory_limit_bytes = memory_.limit_bytes;
  stats.heap_bytes = counts.heap_bytes.load(std::memory_order_relaxed);
  stats.evicted_values = counts.evicted_values.load(std::memory_order_relaxed);
  stats.evicted_value_bytes = counts.evicted_value_bytes.load(std::memory_order_relaxed);
  stats.reloaded_values = counts.reloaded_values.load(std::memory_order_relaxed);
  stats.reload_failures = counts.reload_failures.load(std::memory_order_relaxed);
  stats.evicted_tasks = counts.evicted_tasks.load(std::memory_order_relaxed);
  stats.reloaded_tasks = counts.reloaded_tasks.load(std::memory_order_relaxed);
  stats.evicted_tasks_away = eviction_.evicted_away.load(std::memory_order_relaxed);
  stats.resident_bytes = counts.resident_bytes.load(std::memory_order_relaxed);
  stats.task_bytes = stats.tasks * kTaskRecordBytes;
  stats.edge_bytes = stats.edges * kEdgeBytes;
  stats.cell_bytes = stats.cells * kCellBytes;
  stats.evicted_unfreed_bytes = reclaimer_.PendingBytes();
  stats.admission_waits = counts.admission_waits.load(std::memory_order_relaxed);
  stats.admission_wait_nanos = counts.admission_wait_nanos.load(std::memory_order_relaxed);
  stats.shared_lookups = counts.shared_lookups.load();
  stats.shared_hits = counts.shared_hits.load();
  stats.shared_misses = counts.shared_misses.load();
  stats.shared_verify_failures = counts.shared_verify_failures.load();
  stats.shared_ignored = counts.shared_ignored.load();
  stats.shared_errors = counts.shared_errors.load();
  stats.shared_published = counts.shared_published.load();
  stats.shared_publish_dropped = counts.shared_publish_dropped.load();
  stats.shared_publish_queue = const_cast<EngineImpl*>(this)->SharedPublishQueue();
  for (size_t i = 0; i < stats.tasks_by_last_use.size(); ++i) {
    stats.tasks_by_last_use[i] = counts.tasks_by_last_use[i].load();
  }
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
  // Never OK (a failure stored with code 0 by a build that let TaskError carry it).
  return absl::Status(
      failure.code == absl::StatusCode::kOk ? absl::StatusCode::kUnknown : failure.code,
      failure.message);
}

}  // namespace internal

struct Engine::Counters {
  uint64_t next_stamp = 1;
  uint64_t next_task_id = 1;
  InputChangeLog changes;
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
  // Ids are never reused; at what the task table holds (2^44: five years at a hundred
  // thousand new tasks a second, less what jumps past failed reservations used: call.cc)
  // the first new task could not be held, and past it the counter is damaged. Said at
  // open, not by an abort at that task.
  if (*id >= internal::TaskTable::kMaxIds) {
    return absl::DataLossError("the backing store's task id counter is " +
                               std::to_string(*id) + ": its " +
                               std::to_string(internal::TaskTable::kMaxIds) +
                               " ids are used up, or the store is damaged");
  }
  counters.next_stamp = *stamp;
  counters.next_task_id = *id;
  absl::StatusOr<InputChangeLog> changes =
      store->ReadInputChanges(internal::ChangedInputs::kCapacity);
  if (changes.ok()) {
    counters.changes = std::move(*changes);
  } else if (changes.status().code() == absl::StatusCode::kUnimplemented) {
    counters.changes.since = *stamp - 1;  // no log: only results as of the last stamp hold
  } else {
    return absl::Status(changes.status().code(), "cannot read the backing store's input log: " +
                                                     std::string(changes.status().message()));
  }
  return counters;
}

absl::StatusOr<std::unique_ptr<Engine>> Engine::Open(EngineOptions options) {
  absl::StatusOr<Counters> counters = ReadCounters(options.backing_store);
  if (!counters.ok()) return counters.status();
  return std::unique_ptr<Engine>(new Engine(std::move(options), *counters));
}

Engine::Engine(EngineOptions options, const Counters& counters)
    : impl_(std::make_unique<internal::EngineImpl>(options, counters.next_stamp,
                                                   counters.next_task_id, counters.changes)) {}

Engine::Engine(EngineOptions options) {
  absl::StatusOr<Counters> counters = ReadCounters(options.backing_store);
  if (!counters.ok()) {
    std::fprintf(stderr, "turbine: %s; use Engine::Open to get this as a status\n",
                 std::string(counters.status().message()).c_str());
    std::abort();
  }
  impl_ =
      std::make_unique<internal::EngineImpl>(options, counters->next_stamp, counters->next_task_id,
                                             counters->changes);
}

void DisableMutexDeadlockDetection() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

Engine::~Engine() = default;

Engine::Scope::Scope(Engine& engine) : saved_(internal::tls_context) {
  // Inside a body of the same engine it changes nothing: the body's calls still record
  // what it reads, and it still may not read by blocking nor change inputs.
  internal::ExecContext* body =
      saved_.engine == engine.impl_.get() ? saved_.exec : nullptr;
  internal::tls_context = internal::ThreadContext{engine.impl_.get(), body};
}

Engine::Scope::~Scope() { internal::tls_context = saved_; }

Engine::NotStarting::NotStarting() : before_(internal::tls_not_starting) {
  internal::tls_not_starting = true;
}

Engine::NotStarting::~NotStarting() { internal::tls_not_starting = before_; }

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

namespace {

// NotInTaskBody refuses a change of inputs from inside a body: a result must follow from
// what the body read, and a body that set an input it read invalidated itself as it ran,
// for ever (a Read of it never returned).
absl::Status NotInTaskBody(const internal::EngineImpl* engine, const char* what) {
  // A body of another engine may set this one's inputs: its result does not read them.
  if (internal::tls_context.exec == nullptr || internal::tls_context.engine != engine) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      std::string("Engine::") + what +
      " called inside a task body: a result must follow from what its body read; change "
      "inputs from outside the engine's tasks");
}

}  // namespace

absl::Status Engine::SetInputs(std::vector<InputValue> values, size_t* changed) {
  if (absl::Status outside = NotInTaskBody(impl_.get(), "SetInputs"); !outside.ok()) return outside;
  return impl_->SetInputs(std::move(values), changed);
}

absl::Status Engine::DeleteInputs(std::vector<std::string> keys, size_t* changed) {
  if (absl::Status outside = NotInTaskBody(impl_.get(), "DeleteInputs"); !outside.ok()) return outside;
  return impl_->DeleteInputs(std::move(keys), changed);
}

absl::StatusOr<GcReport> Engine::CollectGarbage() {
  return impl_->CollectGarbage(impl_->gc_options());
}

absl::StatusOr<GcReport> Engine::CollectGarbage(const GcOptions& options) {
  return impl_->CollectGarbage(options);
}

EngineStats Engine::Stats() const { return impl_->Stats(); }

size_t Engine::Evict(size_t bytes) { return impl_->EvictValues(bytes); }

size_t Engine::EvictTasks(size_t bytes) {
  const size_t freed = impl_->EvictTasks(bytes);
  impl_->ReclaimEvicted();  // frees them now unless another thread's section saw them
  return freed;
}

bool Engine::HasTask(TaskId id) {
  internal::Section section;  // reclaim.h
  return id != kNoTask && impl_->Task(id) != nullptr;
}

bool Engine::CellMissing(RawVc vc) {
  if (!vc.is_cell()) return false;
  internal::Section section;  // reclaim.h
  internal::TaskState* task = impl_->Task(vc.task);
  if (task == nullptr) return false;
  internal::MutexLock lock(&task->mu);
  if (!internal::StampsCurrent(task->phase)) return false;
  if (vc.index == kOutputCellIndex) {  // the output's value, as a cell
    // A failed task's error is what a read of it gives: not missing.
    const internal::Output& out = task->output;
    return out.kind() == internal::OutputKind::kRef ||
           (out.kind() == internal::OutputKind::kValue && out.type()->id != vc.type);
  }
  return task->FindCell(vc.type, vc.index) == nullptr;
}

const ValueType* Engine::DeclaredType(RawVc vc) {
  if (vc.is_cell()) return ValueTypeById(vc.type);
  internal::Section section;  // reclaim.h
  internal::TaskState* task = vc.task == kNoTask ? nullptr : impl_->Task(vc.task);
  // A trait's name and an input's "any" name no registered type: null, as documented.
  return task == nullptr ? nullptr : FindValueType(task->fn->result_type);
}

bool Engine::StartTrace(const TraceOptions& options) { return impl_->StartTrace(options); }

Trace Engine::StopTrace() { return impl_->StopTrace(); }

Trace Engine::TakeTrace() { return impl_->TakeTrace(); }

}  // namespace turbine
