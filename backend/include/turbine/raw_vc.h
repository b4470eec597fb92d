// raw_vc.h — TaskId and RawVc, the untyped address of a task output or a cell.
//
// A RawVc is a plain value (16 bytes, trivially copyable) and is safe to copy between
// threads. It names either a task's output ("the result of task 12, whatever it is") or a
// cell ("the 0th value of type demo.Point that task 12 produced in its last execution").
#pragma once

#include <cstdint>

#include "turbine/hash.h"

namespace turbine {

// TaskId identifies a task for the lifetime of an engine (and, with a backing store, across
// restarts). 0 means "no task".
using TaskId = uint64_t;
inline constexpr TaskId kNoTask = 0;

// ValueTypeId is the process-local id of a registered value type (see value_type.h). 0 is
// reserved: in a RawVc it marks the task-output slot.
using ValueTypeId = uint32_t;
inline constexpr ValueTypeId kOutputSlot = 0;

// kOutputCellIndex is the cell index where a task that returns a plain value keeps it, so
// that explicit cells of the same type, numbered from 0, never collide with it.
inline constexpr uint32_t kOutputCellIndex = 0xFFFFFFFFu;

struct RawVc {
  TaskId task = kNoTask;
  ValueTypeId type = kOutputSlot;  // kOutputSlot: the task's output; otherwise a cell type
  uint32_t index = 0;              // cell index among the task's cells of `type`

  static constexpr RawVc Output(TaskId task) { return RawVc{task, kOutputSlot, 0}; }
  static constexpr RawVc Cell(TaskId task, ValueTypeId type, uint32_t index) {
    return RawVc{task, type, index};
  }

  constexpr bool is_none() const { return task == kNoTask; }
  constexpr bool is_output() const { return task != kNoTask && type == kOutputSlot; }
  constexpr bool is_cell() const { return task != kNoTask && type != kOutputSlot; }
  // A resolved Vc points at a cell: its value type is known without running anything.
  constexpr bool is_resolved() const { return is_cell(); }

  friend constexpr bool operator==(const RawVc&, const RawVc&) = default;
  friend constexpr auto operator<=>(const RawVc&, const RawVc&) = default;
};

// StableTypeHash is the XXH3 hash of a value type's stable name (0 for kOutputSlot).
uint64_t StableTypeHash(ValueTypeId type);

// A RawVc hashes the same in every process: the cell type enters by its name's hash, not by
// its process-local id, so a task keyed by a Vc argument keeps its hash across restarts.
inline uint64_t HashValue(const RawVc& vc, uint64_t seed) {
  seed = HashScalar(vc.task, seed);
  seed = HashScalar(vc.index, seed);
  return vc.type == kOutputSlot ? seed : HashScalar(StableTypeHash(vc.type), seed);
}

template <class H>
H AbslHashValue(H h, const RawVc& vc) {
  return H::combine(std::move(h), vc.task, vc.type, vc.index);
}

}  // namespace turbine
