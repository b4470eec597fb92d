// task_table.h — TaskId -> TaskState*, lock-free reads.
//
// Ids are allocated by a counter and never reused, so a store that lives for months reaches
// ids far beyond what one process holds at once, and a process holds ids scattered over
// that range (the tasks it restored). A three-level radix table serves both: a lookup is
// four loads, a leaf covers 1,024 ids in 8 KB (a task restored alone costs that much, not
// the 512 KB a flat segment took), and ids go up to 2^44 (a hundred thousand new tasks a
// second for five years). The top and middle levels are plain pointer arrays zeroed by
// calloc, whose large blocks are untouched pages until written, and read and written
// through std::atomic_ref (an array of std::atomic would have to be constructed, entry by
// entry, touching every page). Levels are
// allocated on first use and freed with the table, which owns the tasks it holds; Remove
// hands one back (whole-task eviction, which frees it once no section can see it:
// reclaim.h). Thread-safety: Get, Put and Remove may race freely; Put for one id happens
// while no task has it.
#pragma once

#include <atomic>
#include <cassert>
#include <memory>

#include "reclaim.h"
#include "task_state.h"

namespace turbine::internal {

class TaskTable {
 public:
  static constexpr int kLeafBits = 10;
  static constexpr int kMiddleBits = 14;
  static constexpr int kTopBits = 20;
  static constexpr uint64_t kMaxIds = uint64_t{1} << (kTopBits + kMiddleBits + kLeafBits);

  TaskTable();
  ~TaskTable();
  TaskTable(const TaskTable&) = delete;
  TaskTable& operator=(const TaskTable&) = delete;

  // Get: REQUIRES a Section open on this thread, for as long as the result is used.
  TaskState* Get(TaskId id) const {
    assert(InSection());
    if (id >= kMaxIds) return nullptr;
    Middle* middle = std::atomic_ref(top_[id >> (kMiddleBits + kLeafBits)])
                         .load(std::memory_order_acquire);
    if (middle == nullptr) return nullptr;
    Leaf* leaf = std::atomic_ref(middle->leaves[(id >> kLeafBits) & (kMiddleSize - 1)])
                     .load(std::memory_order_acquire);
    if (leaf == nullptr) return nullptr;
    return leaf->tasks[id & (kLeafSize - 1)].load(std::memory_order_acquire);
  }

  // ForEach calls `visit(id, task)` for every task in the table, in id order, stepping with
  // NextFrom: over the leaves that exist, not over every id ever allocated (a months-old
  // store's ids run to hundreds of millions). REQUIRES: as Get.
  template <class Visit>
  void ForEach(Visit&& visit) const {
    for (TaskId id = 0; TaskState* task = NextFrom(&id); ++id) visit(id, task);
  }

  // NextFrom returns the task with the smallest id at or after `*id` and sets `*id` to that
  // id; null past the last task. Skips missing levels whole. REQUIRES: as Get.
  TaskState* NextFrom(TaskId* id) const;

  // Put takes ownership of `task`. Returns false if the id is out of range.
  bool Put(TaskId id, std::unique_ptr<TaskState> task);
  // Remove takes the task with `id` out of the table and returns it.
  std::unique_ptr<TaskState> Remove(TaskId id);

 private:
  static constexpr size_t kLeafSize = size_t{1} << kLeafBits;
  static constexpr size_t kMiddleSize = size_t{1} << kMiddleBits;
  static constexpr size_t kTopSize = size_t{1} << kTopBits;
  struct Leaf {
    std::atomic<TaskState*> tasks[kLeafSize];
  };
  struct Middle {  // from calloc: null pointers, used through std::atomic_ref
    Leaf* leaves[kMiddleSize];
  };
  // The slot of `id`, or null when its levels are not there (`create`: allocated then).
  std::atomic<TaskState*>* Slot(TaskId id, bool create);

  Middle** const top_;  // kTopSize entries, from calloc, used through std::atomic_ref
  std::atomic<size_t> top_end_{0};  // past the last top entry set: walks stop there
};

}  // namespace turbine::internal
