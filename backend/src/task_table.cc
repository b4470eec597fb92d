// task_table.cc — level allocation and teardown of the task table.
#include "task_table.h"

#include <cassert>
#include <cstdlib>
#include <new>

namespace turbine::internal {
namespace {

// ZeroedArray allocates `n` zero-filled T (null pointers, or structs of them: implicit-
// lifetime types, which calloc creates): calloc maps a large block as fresh pages, so what
// is never written costs no memory.
template <class T>
T* ZeroedArray(size_t n) {
  void* bytes = std::calloc(n, sizeof(T));
  if (bytes == nullptr) throw std::bad_alloc();
  return static_cast<T*>(bytes);
}

// Install publishes `fresh` in `slot` unless another thread did first; returns what the
// slot holds then, and frees `fresh` if it lost.
template <class T, class Free>
T* Install(std::atomic_ref<T*> slot, T* fresh, Free free) {
  T* seen = nullptr;
  if (slot.compare_exchange_strong(seen, fresh, std::memory_order_acq_rel)) return fresh;
  free(fresh);
  return seen;
}

}  // namespace

// The top and middle levels are pointer arrays that calloc zeroed (a zero pointer is null
// on every platform this builds for), accessed atomically in place. Leaves, small and
// written at once, are value-initialized.
static_assert(std::atomic_ref<void*>::is_always_lock_free);

TaskTable::TaskTable() : top_(ZeroedArray<Middle*>(kTopSize)) {}

std::atomic<TaskState*>* TaskTable::Slot(TaskId id, bool create) {
  if (id >= kMaxIds) return nullptr;
  std::atomic_ref top(top_[id >> (kMiddleBits + kLeafBits)]);
  Middle* middle = top.load(std::memory_order_acquire);
  if (middle == nullptr) {
    if (!create) return nullptr;
    // The walks' end first: a thread that finds this middle installed may put a task in
    // it before this one returns, and a walk must not stop short of that task. A walk that
    // sees the end before the middle skips the empty entry.
    const size_t end = (id >> (kMiddleBits + kLeafBits)) + 1;
    for (size_t seen = top_end_.load(); seen < end && !top_end_.compare_exchange_weak(seen, end);) {
    }
    middle = Install(top, ZeroedArray<Middle>(1), [](Middle* lost) { std::free(lost); });
  }
  std::atomic_ref leaves(middle->leaves[(id >> kLeafBits) & (kMiddleSize - 1)]);
  Leaf* leaf = leaves.load(std::memory_order_acquire);
  if (leaf == nullptr) {
    if (!create) return nullptr;
    leaf = Install(leaves, new Leaf(), [](Leaf* lost) { delete lost; });
  }
  return &leaf->tasks[id & (kLeafSize - 1)];
}

TaskState* TaskTable::NextFrom(TaskId* id) const {
  assert(InSection());
  constexpr int kTopShift = kMiddleBits + kLeafBits;
  const size_t end = top_end_.load(std::memory_order_acquire);
  for (TaskId from = *id; from < kMaxIds && (from >> kTopShift) < end;) {
    Middle* middle = std::atomic_ref(top_[from >> kTopShift]).load(std::memory_order_acquire);
    if (middle == nullptr) {
      from = ((from >> kTopShift) + 1) << kTopShift;
      continue;
    }
    const Leaf* leaf = std::atomic_ref(middle->leaves[(from >> kLeafBits) & (kMiddleSize - 1)])
                           .load(std::memory_order_acquire);
    if (leaf != nullptr) {
      for (size_t i = from & (kLeafSize - 1); i < kLeafSize; ++i) {
        if (TaskState* task = leaf->tasks[i].load(std::memory_order_acquire)) {
          *id = (from & ~TaskId{kLeafSize - 1}) | i;
          return task;
        }
      }
    }
    from = ((from >> kLeafBits) + 1) << kLeafBits;
  }
  return nullptr;
}

bool TaskTable::Put(TaskId id, std::unique_ptr<TaskState> task) {
  std::atomic<TaskState*>* slot = Slot(id, /*create=*/true);
  if (slot == nullptr) return false;
  slot->store(task.release(), std::memory_order_release);
  return true;
}

std::unique_ptr<TaskState> TaskTable::Remove(TaskId id) {
  std::atomic<TaskState*>* slot = Slot(id, /*create=*/false);
  if (slot == nullptr) return nullptr;
  return std::unique_ptr<TaskState>(slot->exchange(nullptr, std::memory_order_acq_rel));
}

TaskTable::~TaskTable() {
  for (size_t t = 0, end = top_end_.load(); t < end; ++t) {
    Middle* middle = std::atomic_ref(top_[t]).load(std::memory_order_acquire);
    if (middle == nullptr) continue;
    for (Leaf*& leaves : middle->leaves) {
      Leaf* leaf = std::atomic_ref(leaves).load(std::memory_order_acquire);
      if (leaf == nullptr) continue;
      for (std::atomic<TaskState*>& task : leaf->tasks) delete task.load(std::memory_order_relaxed);
      delete leaf;
    }
    std::free(middle);
  }
  std::free(top_);
}

}  // namespace turbine::internal
