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
