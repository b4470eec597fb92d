// task_table.h — TaskId -> TaskState*, lock-free reads.
//
// Ids are dense (allocated by a counter), so a two-level array beats a hash map: a lookup
// is two loads. Segments are allocated on first use and freed with the table, which owns
// the tasks. Thread-safety: Get and Put may race freely; Put for one id happens once.
#pragma once

#include <atomic>
#include <memory>

#include "task_state.h"

namespace turbine::internal {

class TaskTable {
 public:
  static constexpr int kSegmentBits = 16;
  static constexpr size_t kSegmentSize = size_t{1} << kSegmentBits;
  static constexpr size_t kMaxSegments = 4096;  // 2^28 tasks

  TaskTable() = default;
  ~TaskTable();
  TaskTable(const TaskTable&) = delete;
  TaskTable& operator=(const TaskTable&) = delete;

  TaskState* Get(TaskId id) const {
    size_t segment = id >> kSegmentBits;
    if (segment >= kMaxSegments) return nullptr;
    std::atomic<TaskState*>* slots = segments_[segment].load(std::memory_order_acquire);
    if (slots == nullptr) return nullptr;
    return slots[id & (kSegmentSize - 1)].load(std::memory_order_acquire);
  }

  // Put takes ownership of `task`. Returns false if the id is out of range.
  bool Put(TaskId id, std::unique_ptr<TaskState> task);

 private:
  std::atomic<std::atomic<TaskState*>*> segments_[kMaxSegments] = {};
};

}  // namespace turbine::internal
