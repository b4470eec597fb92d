// engine_counts.h — the counters behind Engine::Stats(): each is bumped where the thing it
// counts happens (relaxed, for most), and read without a lock. Counts of what exists (tasks,
// cells, edges) move apart from it for a moment: Stats() never reads one below zero.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "turbine/gc.h"

namespace turbine::internal {

struct EngineCounts {
  // The graph.
  std::atomic<int64_t> task_count{0};
  std::atomic<int64_t> cell_count{0};
  std::atomic<int64_t> edge_count{0};
  std::atomic<uint64_t> execution_count{0};
  std::atomic<uint64_t> cycle_count{0};
  std::atomic<uint64_t> restored_count{0};  // tasks loaded from the backing store
  std::atomic<uint64_t> trusted_count{0};   // of those, served without verifying (TrustRestored)
  std::atomic<uint64_t> observations_checked{0};  // at open (CheckObservations)
  std::atomic<uint64_t> observations_changed{0};
  // Snapshots.
  std::atomic<uint64_t> snapshot_count{0};
  std::atomic<uint64_t> idle_snapshot_count{0};
  std::atomic<uint64_t> snapshot_nanos{0};
  std::atomic<uint64_t> last_snapshot_tasks{0};
  std::atomic<uint64_t> snapshot_tasks{0};
  // Garbage collection (gc.cc): the passes so far, and the one running now.
  std::atomic<uint64_t> gc_passes{0};
  std::atomic<uint64_t> gc_removed_tasks{0};
  std::atomic<uint64_t> gc_removed_bytes{0};
  std::atomic<uint64_t> gc_nanos{0};
  std::atomic<GcPhase> gc_phase{GcPhase::kIdle};
  std::atomic<uint64_t> gc_pass_scanned{0};
  std::atomic<uint64_t> gc_pass_garbage{0};
  std::atomic<uint64_t> gc_pass_removed{0};
  std::array<std::atomic<uint64_t>, 4> tasks_by_last_use{};
  // Memory (evict.cc).
  std::atomic<uint64_t> heap_bytes{0};
  std::atomic<uint64_t> evicted_values{0};
  std::atomic<uint64_t> evicted_value_bytes{0};
  std::atomic<uint64_t> reloaded_values{0};
  std::atomic<uint64_t> reload_failures{0};
  std::atomic<uint64_t> evicted_tasks{0};
  std::atomic<uint64_t> reloaded_tasks{0};  // loaded back after an eviction in this process
  std::atomic<uint64_t> admission_waits{0};
  std::atomic<uint64_t> admission_wait_nanos{0};
  std::atomic<uint64_t> resident_bytes{0};
  // The shared tier (shared_trace.cc).
  std::atomic<uint64_t> shared_lookups{0};
  std::atomic<uint64_t> shared_hits{0};
  std::atomic<uint64_t> shared_misses{0};
  std::atomic<uint64_t> shared_verify_failures{0};
  std::atomic<uint64_t> shared_ignored{0};
  std::atomic<uint64_t> shared_errors{0};
  std::atomic<uint64_t> shared_published{0};
  std::atomic<uint64_t> shared_publish_dropped{0};
};

}  // namespace turbine::internal
