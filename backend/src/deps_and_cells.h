// deps_and_cells.h — what a task's last execution read and the cells it made, in one heap
// block behind one pointer.
//
// Two std::vectors in the task record took 48 bytes of every task, though most tasks make
// no cells and many read nothing; one pointer takes 8, an empty pair allocates nothing, and
// a task with both allocates once. The block is replaced whole when a result is committed
// or restored; in between only its elements change (a read that closed a cycle gets its
// stamp, eviction drops a cell's value). Not thread-safe: the task's `mu` guards it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <utility>

#include "turbine/raw_vc.h"

namespace turbine::internal {

struct CellSlot {
  ValueTypeId type = 0;
  uint32_t index = 0;
  uint64_t changed_at = 0;  // change stamp, as TaskState::output_changed_at
  std::shared_ptr<const void> value;
};

// Dep is one thing a task read: a slot (an output or a cell) and the change stamp the slot
// carried when it was read. The task is still valid while every slot carries that stamp.
struct Dep {
  RawVc slot;  // normalized: Output(task) or Cell(task, type, index)
  uint64_t observed = 0;
};

class DepsAndCells {
 public:
  DepsAndCells() = default;
  // Copies `deps` and moves the values out of `cells`. Allocates nothing when both are empty.
  DepsAndCells(std::span<const Dep> deps, std::span<CellSlot> cells);
  ~DepsAndCells() { Free(); }
  DepsAndCells(DepsAndCells&& other) noexcept : block_(std::exchange(other.block_, nullptr)) {}
  DepsAndCells& operator=(DepsAndCells&& other) noexcept {
    if (this != &other) {
      Free();
      block_ = std::exchange(other.block_, nullptr);
    }
    return *this;
  }
  DepsAndCells(const DepsAndCells&) = delete;
  DepsAndCells& operator=(const DepsAndCells&) = delete;

  std::span<Dep> deps() { return {DepsBegin(), block_ != nullptr ? block_->deps : 0}; }
  std::span<const Dep> deps() const {
    return {DepsBegin(), block_ != nullptr ? block_->deps : 0};
  }
  std::span<CellSlot> cells() { return {CellsBegin(), block_ != nullptr ? block_->cells : 0}; }
  std::span<const CellSlot> cells() const {
    return {CellsBegin(), block_ != nullptr ? block_->cells : 0};
  }

 private:
  // The block: this header, the cells, then the deps (both 8-byte aligned, as the header).
  struct Header {
    uint32_t deps = 0;
    uint32_t cells = 0;
  };
  static_assert(sizeof(Header) % alignof(CellSlot) == 0 && sizeof(CellSlot) % alignof(Dep) == 0);

  CellSlot* CellsBegin() const {
    return block_ != nullptr ? reinterpret_cast<CellSlot*>(block_ + 1) : nullptr;
  }
  Dep* DepsBegin() const {
    return block_ != nullptr ? reinterpret_cast<Dep*>(CellsBegin() + block_->cells) : nullptr;
  }
  void Free();

  Header* block_ = nullptr;
};

}  // namespace turbine::internal
