// task_state.cc — small queries on a task's results.
#include "task_state.h"

#include <algorithm>
#include <cstdint>
#include <new>

namespace turbine::internal {

bool Output::SameAs(const Output& other) const {
  if (kind_ != other.kind_) return false;
  switch (kind_) {
    case OutputKind::kNone:
      return true;
    case OutputKind::kRef:
      return ref_ == other.ref_;
    case OutputKind::kError:
      return error() == other.error();
    case OutputKind::kValue: {
      // An evicted value (null) equals nothing: what cannot be compared counts as changed.
      const void* value = data();
      const void* other_value = other.data();
      return type() == other.type() &&
             (value == other_value ||
              (value != nullptr && other_value != nullptr && type()->equal(value, other_value)));
    }
  }
  return false;
}

namespace {

// The allocation: aligned for the tuple (at its start) and the record. Plain operator new
// unless the tuple needs more than it gives: the aligned form goes through a slower
// allocator path.
bool OverAligned(const FunctionInfo& fn) {
  return std::max(fn.args_align, alignof(TaskState)) > __STDCPP_DEFAULT_NEW_ALIGNMENT__;
}

void* Allocate(const FunctionInfo& fn, size_t size) {
  if (OverAligned(fn)) return ::operator new(size, std::align_val_t{fn.args_align});
  return ::operator new(size);
}

void Free(const FunctionInfo& fn, void* memory) {
  if (OverAligned(fn)) {
    ::operator delete(memory, std::align_val_t{fn.args_align});
  } else {
    ::operator delete(memory);
  }
}

}  // namespace

std::unique_ptr<TaskState> TaskState::Create(TaskId id, uint64_t hash, const FunctionInfo* fn,
                                            RawVc receiver, void* args) {
  const size_t prefix = PrefixBytes(*fn);
  char* memory = static_cast<char*>(Allocate(*fn, prefix + sizeof(TaskState)));
  // The tuple first: if moving it throws, there is no record whose destructor would end a
  // tuple that never began.
  if (fn->move_args_to != nullptr) {
    try {
      fn->move_args_to(args, memory);
    } catch (...) {
      Free(*fn, memory);
      throw;
    }
  }
  if (fn->has_receiver) new (memory + prefix - sizeof(RawVc)) RawVc(receiver);
  return std::unique_ptr<TaskState>(new (memory + prefix) TaskState(id, hash, fn));
}

TaskState::~TaskState() {
  if (fn->destroy_args_at != nullptr) fn->destroy_args_at(args());
}

void TaskState::operator delete(TaskState* task, std::destroying_delete_t) {
  const FunctionInfo& fn = *task->fn;
  void* memory = task->args();
  task->~TaskState();
  Free(fn, memory);
}

const CellSlot* TaskState::FindCell(ValueTypeId type, uint32_t index) const {
  for (const CellSlot& cell : cells()) {
    if (cell.type == type && cell.index == index) return &cell;
  }
  return nullptr;
}

uint64_t TaskState::SlotChangedAt(RawVc slot) const {
  if (slot.is_output() || slot.index == kOutputCellIndex) return output_changed_at;
  const CellSlot* cell = FindCell(slot.type, slot.index);
  return cell != nullptr ? cell->changed_at : UINT64_MAX;
}

bool TaskState::HasEvictedValues() const {
  if (output.kind() == OutputKind::kValue && output.data() == nullptr) return true;
  return std::ranges::any_of(cells(), [](const CellSlot& cell) { return cell.value == nullptr; });
}

}  // namespace turbine::internal
