// task_table.h — TaskId -> TaskState*, lock-free reads.
//
// Ids are dense (allocated by a counter), so a two-level array beats a hash map: a lookup
// is two loads. Segments are allocated on first use and freed with the table, which owns
// the tasks it holds; Remove hands one back (whole-task eviction, which frees it once no
// section can see it: reclaim.h). Thread-safety: Get, Put and Remove may race freely; Put
// for one id happens while no task has it.
#pragma once

#include <atomic>
#include <cassert>
#include <memory>

#include "reclaim.h"
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

  // Get: REQUIRES a Section open on this thread, for as long as the result is used.
  TaskState* Get(TaskId id) const {
    assert(InSection());
    size_t segment = id >> kSegmentBits;
    if (segment >= kMaxSegments) return nullptr;
    std::atomic<TaskState*>* slots = segments_[segment].load(std::memory_order_acquire);
    if (slots == nullptr) return nullptr;
    return slots[id & (kSegmentSize - 1)].load(std::memory_order_acquire);
  }

  // Put takes ownership of `task`. Returns false if the id is out of range.
  bool Put(TaskId id, std::unique_ptr<TaskState> task);
  // Remove takes the task with `id` out of the table and returns it.
  std::unique_ptr<TaskState> Remove(TaskId id);

 private:
  std::atomic<std::atomic<TaskState*>*> segments_[kMaxSegments] = {};
};

}  // namespace turbine::internal
