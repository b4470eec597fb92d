// deps_and_cells.cc — building and freeing the block.
#include "deps_and_cells.h"

#include <new>

namespace turbine::internal {

DepsAndCells::DepsAndCells(std::span<const Dep> deps, std::span<CellSlot> cells) {
  if (deps.empty() && cells.empty()) return;
  void* memory =
      ::operator new(sizeof(Header) + cells.size() * sizeof(CellSlot) + deps.size() * sizeof(Dep));
  block_ = new (memory) Header{static_cast<uint32_t>(deps.size()),
                               static_cast<uint32_t>(cells.size())};
  CellSlot* cell = CellsBegin();
  for (CellSlot& from : cells) new (cell++) CellSlot(std::move(from));
  Dep* dep = DepsBegin();
  for (const Dep& from : deps) new (dep++) Dep(from);
}

void DepsAndCells::Free() {
  if (block_ == nullptr) return;
  for (CellSlot& cell : cells()) cell.~CellSlot();
  // Dep is trivially destructible.
  block_->~Header();
  ::operator delete(block_);
  block_ = nullptr;
}

}  // namespace turbine::internal
