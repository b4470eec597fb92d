// task_table.cc — segment allocation and teardown of the task table.
#include "task_table.h"

namespace turbine::internal {

bool TaskTable::Put(TaskId id, std::unique_ptr<TaskState> task) {
  const size_t segment = id >> kSegmentBits;
  if (segment >= kMaxSegments) return false;
  std::atomic<TaskState*>* slots = segments_[segment].load(std::memory_order_acquire);
  if (slots == nullptr) {
    auto* fresh = new std::atomic<TaskState*>[kSegmentSize]();
    if (segments_[segment].compare_exchange_strong(slots, fresh, std::memory_order_acq_rel)) {
      slots = fresh;
    } else {
      delete[] fresh;  // another thread installed the segment first; `slots` holds it
    }
  }
  slots[id & (kSegmentSize - 1)].store(task.release(), std::memory_order_release);
  return true;
}

std::unique_ptr<TaskState> TaskTable::Remove(TaskId id) {
  const size_t segment = id >> kSegmentBits;
  if (segment >= kMaxSegments) return nullptr;
  std::atomic<TaskState*>* slots = segments_[segment].load(std::memory_order_acquire);
  if (slots == nullptr) return nullptr;
  return std::unique_ptr<TaskState>(
      slots[id & (kSegmentSize - 1)].exchange(nullptr, std::memory_order_acq_rel));
}

TaskTable::~TaskTable() {
  for (auto& segment : segments_) {
    std::atomic<TaskState*>* slots = segment.load(std::memory_order_acquire);
    if (slots == nullptr) continue;
    for (size_t i = 0; i < kSegmentSize; ++i) delete slots[i].load(std::memory_order_relaxed);
    delete[] slots;
  }
}

}  // namespace turbine::internal
