// execution_history.h — the engine's two bounded rings of what happened, for `why` and
// for servers telling a computed answer from a cached one: the last kRecentExecutions
// executions and the last kRecentInputChanges input changes (turbine/why.h). A slot per
// sequence number modulo the ring's size; an entry that has left its ring is "no longer
// recorded". Filled on the execution path only: a cache hit touches none of it.
#pragma once

#include <absl/base/thread_annotations.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "why_records.h"

namespace turbine::internal {

class ExecutionHistory {
 public:
  ExecutionHistory();

  // NextSequence numbers an execution about to commit (1, 2, ...).
  uint64_t NextSequence() { return sequence_.fetch_add(1, std::memory_order_relaxed) + 1; }
  // Sequence is the number of the last execution numbered so far.
  uint64_t Sequence() const { return sequence_.load(std::memory_order_relaxed); }

  // Record puts a committed execution into the ring (its end time is filled in here);
  // RecordInputChanges numbers and records the changes of one SetInputs batch.
  void Record(ExecutionEntry entry);
  void RecordInputChanges(const std::vector<InputChangeEntry>& changes);

  // EntryOf copies the entry of execution `sequence`, if the ring still holds it.
  bool EntryOf(uint64_t sequence, ExecutionEntry* entry) const;
  // TasksExecutedSince appends the tasks of executions `after` + 1 to `last` that the ring
  // still holds and that ran a body (not adopted), oldest first, under one lock.
  void TasksExecutedSince(uint64_t after, uint64_t last, std::vector<TaskId>* tasks) const;
  // LatestInputChange copies the newest recorded change of input task `task`. When it
  // finds none, `forgotten` says whether the ring has let older changes go (any input's),
  // so that one of `task` may have been among them.
  bool LatestInputChange(TaskId task, InputChangeEntry* entry, bool* forgotten) const;
  // Executions copies every execution the ring holds, newest first, at most `max`.
  std::vector<ExecutionEntry> Executions(size_t max) const;

 private:
  std::atomic<uint64_t> sequence_{0};
  mutable std::mutex mu_;
  const std::unique_ptr<ExecutionEntry[]> executions_;       // kRecentExecutions
  const std::unique_ptr<InputChangeEntry[]> input_changes_;  // kRecentInputChanges
  uint64_t input_change_sequence_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace turbine::internal
