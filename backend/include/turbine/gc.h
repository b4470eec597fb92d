// gc.h — garbage collection of a persistent engine's store: what is garbage, and what a
// pass removed (Engine::CollectGarbage; docs/ARCHITECTURE.md, "Persistence").
//
// Garbage is a stored task that
//   - this build cannot use: its function is not registered at that version, or its
//     record does not decode;
//   - was superseded: its function is `kept_while_referenced` and no other stored task
//     refers to it or read it any more (an old fs.content of a file that changed);
//   - was not used for `retention` (a task counts as used when it is called, and when a
//     task that read it or refers to it is used);
//   - is among the least recently used while the store is over `disk_limit`;
//   - refers to a task removed for one of these reasons (its result names that task, which
//     a reader would follow);
//   - is an input that is not set (`DeleteInputs`), which no other stored task refers to
//     or read any more (as a superseded task), and which is not in memory: a pass first
//     takes such inputs that nothing in memory reads out of memory, and the next removes
//     their records.
// Inputs that are set are never garbage. A task that only *read* a removed task stays: a missing
// dependency reads as a change, so it re-executes when next verified.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include "turbine/raw_vc.h"

namespace turbine {

struct GcOptions {
  // Tasks not used for this long are garbage. Use is tracked by the day, so this counts in
  // whole days (rounded up); 0: every task not used today.
  std::chrono::seconds retention = std::chrono::hours(24 * 30);
  // While the store occupies more than this many bytes on disk, the least recently used
  // tasks are garbage too. 0: no limit.
  uint64_t disk_limit = 0;
  // Background passes run when the engine is idle: the first one a minute after it starts
  // (or `interval` after, if shorter), then every `interval`, and within ten seconds of the
  // store growing past `disk_limit`. 0: none, only Engine::CollectGarbage.
  std::chrono::milliseconds interval = std::chrono::hours(1);
  // Tasks for which this returns true are garbage too (for tests, and tools that drop part
  // of a cache on purpose). Null: none.
  std::function<bool(TaskId)> also_collect = nullptr;
  // Asked between batches: once it returns true the pass stops early with kAborted (what it
  // deleted so far stays deleted; that is always consistent). Null: never.
  std::function<bool()> stop = nullptr;
};

// GcPhase is where the pass running now is (EngineStats::gc_phase): scanning covers the
// flush before the scan and the decision after it; reclaiming is the compaction that gives
// the space back, with no count moving meanwhile.
enum class GcPhase : uint8_t { kIdle, kScanning, kDeleting, kReclaiming };

// GcReport is what one pass did. Each removed task is counted under one reason, the first
// that applied in the order above.
struct GcReport {
  // Tasks the pass looked at: those in the store when it began, and those written while it
  // ran that a later round saw.
  uint64_t scanned_tasks = 0;
  uint64_t removed_tasks = 0;
  uint64_t unusable = 0;      // function not registered, or record not readable
  uint64_t superseded = 0;    // kept_while_referenced, and no longer referred to
  uint64_t expired = 0;       // not used within the retention
  uint64_t requested = 0;     // named by also_collect
  uint64_t over_limit = 0;    // least recently used, while over the disk limit
  uint64_t dependent = 0;     // referred to a removed task
  uint64_t bytes_before = 0;  // the store on disk when the pass began
  uint64_t bytes_after = 0;   // ... once it ended, the space reclaimed
  std::chrono::nanoseconds duration{0};
  std::vector<TaskId> removed;  // the removed tasks' ids
};

}  // namespace turbine
