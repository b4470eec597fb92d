// stats.h — what an engine reports about itself (Engine::Stats()).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "turbine/gc.h"

namespace turbine {

struct FunctionStats {
  std::string name;
  uint32_t version = 0;
  // Lookups of this function's tasks, those made under NotStarting (Graph, Why) too: not
  // telling them apart keeps a check off the cache hit's path.
  uint64_t calls = 0;
  // Lookups that found the task already made, in memory or on disk. Not "answered without
  // executing": a task found dirty (an input it read changed) still executes.
  uint64_t cache_hits = 0;
  uint64_t executions = 0;       // times a body ran
  uint64_t execution_nanos = 0;  // wall time inside bodies, summed (includes awaits)
};

struct EngineStats {
  uint64_t tasks = 0;       // tasks in memory
  uint64_t cells = 0;       // cells held by those tasks
  uint64_t edges = 0;       // dependency edges (reader -> output or cell)
  uint64_t executions = 0;  // body runs, all functions
  uint64_t revision = 0;    // bumped by every input change
  uint64_t cycles_detected = 0;
  uint64_t restored_tasks = 0;           // loaded from the backing store
  uint64_t trusted_restored_tasks = 0;   // of those, clean without verifying what they read
  // Observations of the outside world checked at open (observe.h), and of those, the ones
  // that no longer held.
  uint64_t observations_checked = 0;
  uint64_t observations_changed = 0;
  uint64_t snapshots = 0;                // snapshots written to the backing store
  uint64_t idle_snapshots = 0;           // of those, started because the engine went idle
  uint64_t snapshot_nanos = 0;           // time spent writing them, summed
  uint64_t last_snapshot_tasks = 0;      // tasks in the last snapshot
  uint64_t snapshot_tasks = 0;           // tasks written by all snapshots, summed
  uint64_t gc_passes = 0;                // garbage collection passes completed
  uint64_t gc_removed_tasks = 0;         // tasks they removed from the store
  uint64_t gc_removed_bytes = 0;         // bytes on disk they freed
  uint64_t gc_nanos = 0;                 // time they took, summed
  // The pass running now (kIdle and 0 between passes): the tasks its scan found so far
  // (in its current round: over a disk limit a pass may look again), the garbage it decided
  // to remove and the tasks it removed so far (both in all its rounds).
  GcPhase gc_phase = GcPhase::kIdle;
  uint64_t gc_pass_scanned_tasks = 0;
  uint64_t gc_pass_garbage_tasks = 0;
  uint64_t gc_pass_removed_tasks = 0;
  // Stored tasks by days since their last use, as the last pass found them: used today,
  // 1 to 7 days ago, 8 to 30, more than 30.
  std::array<uint64_t, 4> tasks_by_last_use{};
  uint64_t memory_limit_bytes = 0;       // MemoryOptions::limit_bytes (0: none)
  uint64_t heap_bytes = 0;               // the heap in use when last measured (with a limit)
                                         // (MemoryOptions::usage when a test gives one)
  uint64_t evicted_values = 0;           // results whose values were evicted, summed
  uint64_t evicted_value_bytes = 0;      // their stored size, summed
  uint64_t reloaded_values = 0;          // evicted values read back from the store
  uint64_t reload_failures = 0;          // of those, gone or changed there: executed instead
  uint64_t evicted_tasks = 0;            // whole tasks evicted (still on disk), summed
  uint64_t reloaded_tasks = 0;           // of those, loaded back from the store since
  uint64_t evicted_tasks_away = 0;       // of those, neither loaded back nor removed by GC
  uint64_t evicted_unfreed_bytes = 0;    // their records not freed yet: a thread that may
                                         // still look at them is in a section (reclaim.h)
  uint64_t resident_bytes = 0;           // the usage the evictor compares with the limit
  // The heap the engine's own structures hold, estimated from their counts as eviction
  // estimates a task: task records (with argument tuples, slots, a small value), dependency
  // edges, cells. Larger values and everything else are the rest of heap_bytes.
  uint64_t task_bytes = 0;
  uint64_t edge_bytes = 0;
  uint64_t cell_bytes = 0;
  uint64_t admission_waits = 0;          // outside calls that waited for snapshots (evict.cc)
  uint64_t admission_wait_nanos = 0;     // the time they waited, summed
  // The shared tier (shared_tier.h); all 0 without one.
  uint64_t shared_lookups = 0;           // traces asked for (a task about to execute)
  uint64_t shared_hits = 0;              // traces adopted: every dependency had the same digest
  uint64_t shared_misses = 0;            // no trace under the task's key
  uint64_t shared_verify_failures = 0;   // a trace whose dependencies differ here: executed
  uint64_t shared_ignored = 0;           // records malformed, oversized, of another format,
                                         // or naming another task: executed
  uint64_t shared_errors = 0;            // lookups that failed (timeout, cluster down)
  uint64_t shared_published = 0;         // traces written
  uint64_t shared_publish_dropped = 0;   // traces not written (queue full, unshareable, failed)
  uint64_t shared_publish_queue = 0;     // traces waiting to be written
  std::vector<FunctionStats> functions;  // functions called or executed at least once
};

}  // namespace turbine
