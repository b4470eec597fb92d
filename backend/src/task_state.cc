// task_state.cc — small queries on a task's results.
#include "task_state.h"

#include <algorithm>
#include <cstdint>

namespace turbine::internal {

bool Output::SameAs(const Output& other) const {
  if (kind != other.kind) return false;
  switch (kind) {
    case OutputKind::kNone:
      return true;
    case OutputKind::kRef:
      return ref == other.ref;
    case OutputKind::kError:
      return error() == other.error();
    case OutputKind::kValue:
      // An evicted value (null) equals nothing: what cannot be compared counts as changed.
      return type == other.type &&
             (value == other.value || (value != nullptr && other.value != nullptr &&
                                       type->equal(value.get(), other.value.get())));
  }
  return false;
}

std::unique_ptr<TaskState> TaskState::Create(TaskId id, uint64_t hash, const FunctionInfo* fn,
                                            RawVc receiver, void* args) {
  void* memory = ::operator new(ArgsOffset(*fn) + fn->args_size);
  // The tuple first: if moving it throws, there is no record whose destructor would end a
  // tuple that never began.
  if (fn->move_args_to != nullptr) {
    try {
      fn->move_args_to(args, static_cast<char*>(memory) + ArgsOffset(*fn));
    } catch (...) {
      ::operator delete(memory);
      throw;
    }
  }
  return std::unique_ptr<TaskState>(new (memory) TaskState(id, hash, fn, receiver));
}

TaskState::~TaskState() {
  if (fn->destroy_args_at != nullptr) fn->destroy_args_at(args());
}

void TaskState::operator delete(TaskState* task, std::destroying_delete_t) {
  task->~TaskState();
  ::operator delete(task);
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
  if (output.kind == OutputKind::kValue && output.value == nullptr) return true;
  return std::ranges::any_of(cells(), [](const CellSlot& cell) { return cell.value == nullptr; });
}

}  // namespace turbine::internal
