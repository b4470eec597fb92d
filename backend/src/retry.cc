// retry.cc — a task whose execution failed with a transient error executes again.
//
// UNAVAILABLE and RESOURCE_EXHAUSTED say the failure may go away by itself (a file read that
// met EIO or ran out of descriptors, a service that was down): caching it would keep the
// error after the cause is gone, until something else changed. Such a task is invalidated
// a second after it failed, as a file watcher invalidates a task whose file changed: it
// executes again at its next read, and what read it is dirty. Nothing runs by itself in
// between; a Watch stream, told of the change, reads again and so retries once a second
// for as long as the failure lasts. Its readers are verified, never trusted, after a
// restart or a reload (CommitExecution counts the failure as the unchecked world). An
// input the store could not read is read again instead (RetryInput), every second until
// it can be.
#include <chrono>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

#include "engine_impl.h"
#include "reclaim.h"

namespace turbine::internal {
namespace {

constexpr auto kRetryDelay = std::chrono::seconds(1);

}  // namespace

bool IsTransientFailure(const Output& output) {
  if (output.kind() != OutputKind::kError) return false;
  const absl::StatusCode code = output.error().code;
  return code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kResourceExhausted;
}

void EngineImpl::ScheduleRetry(TaskId id) {
  std::lock_guard lock(retry_mu_);
  if (stopping_retries_) return;
  if (!retry_thread_.joinable()) {
    try {
      retry_thread_ = std::thread([this] { RetryLoop(); });
    } catch (const std::system_error& error) {
      // Out of threads or memory, the kind of failure being retried: the task keeps its
      // failure until something else changes, and the next one tries again.
      Log(LogLevel::kWarning,
          std::string("cannot start the thread that retries transient failures: ") +
              error.what());
      return;
    }
  }
  retries_.push_back({std::chrono::steady_clock::now() + kRetryDelay, id});
  retry_wake_.notify_all();
}

void EngineImpl::RetryInput(TaskState& input) {
  // An input has no body to execute again: what failed was reading it from the store.
  const std::string& key = InputKeyOf(input);
  Output output;
  uint64_t unused_stamp = 0;
  InputFromStore(key, store_->ReadInput(key), &output, &unused_stamp);
  if (IsTransientFailure(output)) {
    ScheduleRetry(input.id);
    return;
  }
  {
    // As SetInputs does: a value set meanwhile is not replaced by an older one, and the
    // readers are dirty before a snapshot can stand for the new stamp.
    MutexLock writer(&input_writer_mu_);
    MutexLock batch(&input_batch_mu);  // a change of an input, as a batch's
    std::vector<TaskId> readers;
    {
      MutexLock lock(&input.mu);
      if (!IsTransientFailure(input.output)) return;  // set meanwhile
      input.output = std::move(output);
      input.output_changed_at = NextStamp();  // its readers read the failure: a change
      input.dependents.ForEach([&](const Dependent& d) { readers.push_back(d.reader); });
    }
    MarkDirty(std::move(readers));
  }
  NotifyChange();
}

void EngineImpl::RetryLoop() {
  std::unique_lock lock(retry_mu_);
  while (!stopping_retries_) {
    if (retries_.empty()) {
      retry_wake_.wait(lock);
      continue;
    }
    const auto now = std::chrono::steady_clock::now();
    if (retries_.front().due > now) {
      retry_wake_.wait_until(lock, retries_.front().due);
      continue;
    }
    std::vector<TaskId> due;
    while (!retries_.empty() && retries_.front().due <= now) {
      due.push_back(retries_.front().id);
      retries_.pop_front();
    }
    lock.unlock();
    {
      Section section;  // reclaim.h: the inputs found below stay allocated
      std::erase_if(due, [this](TaskId id) {
        TaskState* task = tasks_.Get(id);
        if (task == nullptr) return false;  // evicted: a reload finds its record dirty
        if (task->fn->kind == FunctionKind::kInput) {
          RetryInput(*task);
          return true;
        }
        // Executed again meanwhile, for another reason, and no longer failing: nothing to
        // retry (a forced execution would only run it once more).
        MutexLock lock(&task->mu);
        return !IsTransientFailure(task->output);
      });
    }
    if (!due.empty()) InvalidateMany(std::move(due), ExecutionReason::kRetry);
    lock.lock();
  }
}

}  // namespace turbine::internal
