// memory_by_kind.h — the daemon's memory by kind, as Stats and the metrics report it.
#pragma once

#include <cstdint>

#include "turbine/stats.h"
#include "turbine/storage/store.h"

namespace turbine::server {

// MemoryByKind estimates the heap by what holds it: the engine's tasks, edges and cells
// (from their counts, EngineStats), RocksDB's memtables and block cache, and the rest of
// the heap in use (larger values, buffers, everything else), 0 if the estimates exceed it.
struct MemoryByKind {
  uint64_t tasks = 0;
  uint64_t edges = 0;
  uint64_t cells = 0;
  uint64_t store = 0;
  uint64_t other = 0;
};

inline MemoryByKind EstimateMemoryByKind(const EngineStats& stats,
                                         const storage::StoreUsage& usage) {
  MemoryByKind memory{.tasks = stats.task_bytes,
                      .edges = stats.edge_bytes,
                      .cells = stats.cell_bytes,
                      .store = usage.memtable_bytes + usage.block_cache_bytes};
  const uint64_t known = memory.tasks + memory.edges + memory.cells + memory.store;
  memory.other = stats.heap_bytes > known ? stats.heap_bytes - known : 0;
  return memory;
}

}  // namespace turbine::server
