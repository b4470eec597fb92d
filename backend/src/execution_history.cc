// execution_history.cc — the rings of recent executions and input changes.
#include "execution_history.h"

#include <algorithm>
#include <chrono>

namespace turbine::internal {
namespace {

int64_t NowUnixMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

ExecutionHistory::ExecutionHistory()
    : executions_(new ExecutionEntry[kRecentExecutions]),
      input_changes_(new InputChangeEntry[kRecentInputChanges]) {}

void ExecutionHistory::Record(ExecutionEntry entry) {
  entry.end_unix_micros = NowUnixMicros();
  std::lock_guard lock(mu_);
  executions_[entry.sequence % kRecentExecutions] = entry;
}

void ExecutionHistory::RecordInputChanges(const std::vector<InputChangeEntry>& changes) {
  const int64_t now = NowUnixMicros();
  std::lock_guard lock(mu_);
  for (InputChangeEntry change : changes) {
    change.sequence = ++input_change_sequence_;
    change.unix_micros = now;
    input_changes_[change.sequence % kRecentInputChanges] = change;
  }
}

bool ExecutionHistory::EntryOf(uint64_t sequence, ExecutionEntry* entry) const {
  std::lock_guard lock(mu_);
  const ExecutionEntry& slot = executions_[sequence % kRecentExecutions];
  if (slot.sequence != sequence) return false;
  *entry = slot;
  return true;
}

void ExecutionHistory::TasksExecutedSince(uint64_t after, uint64_t last,
                                          std::vector<TaskId>* tasks) const {
  // Older ones are gone from the ring: no need to look for them one by one.
  const uint64_t oldest_kept = last >= kRecentExecutions ? last - kRecentExecutions + 1 : 1;
  std::lock_guard lock(mu_);
  for (uint64_t sequence = std::max(after + 1, oldest_kept); sequence <= last; ++sequence) {
    const ExecutionEntry& slot = executions_[sequence % kRecentExecutions];
    if (slot.sequence == sequence && !slot.adopted) tasks->push_back(slot.task);
  }
}

bool ExecutionHistory::LatestInputChange(TaskId task, InputChangeEntry* entry,
                                         bool* forgotten) const {
  std::lock_guard lock(mu_);
  *forgotten = input_change_sequence_ > kRecentInputChanges;
  bool found = false;
  for (size_t i = 0; i < kRecentInputChanges; ++i) {
    const InputChangeEntry& change = input_changes_[i];
    if (change.sequence == 0 || change.task != task) continue;
    if (!found || change.sequence > entry->sequence) *entry = change;
    found = true;
  }
  return found;
}

std::vector<ExecutionEntry> ExecutionHistory::Executions(size_t max) const {
  std::vector<ExecutionEntry> entries;
  {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < kRecentExecutions; ++i) {
      if (executions_[i].sequence != 0) entries.push_back(executions_[i]);
    }
  }
  std::sort(entries.begin(), entries.end(), [](const ExecutionEntry& a, const ExecutionEntry& b) {
    return a.sequence > b.sequence;
  });
  if (entries.size() > max) entries.resize(max);
  return entries;
}

}  // namespace turbine::internal
