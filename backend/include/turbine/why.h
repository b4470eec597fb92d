// why.h — why a task's current value was computed (Engine::Why), and the engine's recent
// executions with their reasons (Engine::RecentExecutions).
//
// What the engine keeps for it, on the execution path only (a cache hit pays nothing):
// per task, the reason of its last execution and the dependency that caused it (in
// TaskState, next to its counters); per engine, two bounded rings, the last
// kRecentExecutions executions (duration, reason, whether the output changed and digests of
// the output before and after) and the last kRecentInputChanges input changes (value
// digests before and after). Details that have left a ring are reported as "no longer
// recorded"; the per-task reason and cause are kept as long as the task is in memory.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "turbine/raw_vc.h"

namespace turbine {

inline constexpr size_t kRecentExecutions = 4096;
inline constexpr size_t kRecentInputChanges = 1024;

enum class ExecutionReason : uint8_t {
  kNone = 0,           // not executed in this process (restored from the store, or never run)
  kFirst,              // no earlier result, in memory or in the store
  kDependencyChanged,  // a slot its last execution read changed; `cause` is that task
  kInvalidated,        // its Invalidator fired: the outside world it read changed
  kRestart,            // session-dependent and restored from the store: re-validated
  kGarbageCollected,   // a task its result referred to, or its own evicted value, was
                       // garbage collected
  kCycle,              // a cycle it was on was found changed once its head finished
  kRetry,              // its last execution failed with a transient error (UNAVAILABLE,
                       // RESOURCE_EXHAUSTED), which is not kept
};

// ReasonName: "first execution", "dependency changed", ... (stable, for JSON too).
std::string_view ReasonName(ExecutionReason reason);

// ExecutionRecord is one recent execution of a task body, newest first in
// RecentExecutions. Digests are XXH3 of the value (16 hex digits), "error: ..." for an error,
// "ref fn(args) @id" for a reference to another task's output, "" when there was none.
struct ExecutionRecord {
  uint64_t sequence = 0;  // 1, 2, ... per engine, in the order executions ended
  TaskId task = kNoTask;
  std::string function;
  std::string args;             // in short (short_text.h)
  int64_t end_unix_micros = 0;  // wall clock when it ended
  int64_t duration_nanos = 0;
  ExecutionReason reason = ExecutionReason::kNone;
  TaskId cause = kNoTask;   // kDependencyChanged: the task whose slot changed
  std::string cause_text;   // "fn(args) @id", or "@id" if it is not in memory
  std::string reason_text;  // one line for people: the reason and its cause
  bool failed = false;
  bool output_changed = false;  // false: an early cutoff, its readers need not execute
  std::string output_before;
  std::string output_after;
};

// WhyStep is one task on the way from the asked task down to the root causes. Steps come
// depth first: a step's causes follow it with depth + 1.
struct WhyStep {
  enum class Kind : uint8_t {
    kExecuted,  // executed in this process; `reason` says why
    kInput,     // an input: the recorded change of its value, if any
    kRestored,  // restored from the store and not executed since the engine started
    kNotRun,    // never executed (nor restored): nothing read it yet
    kGone,      // a dependency that no longer exists (garbage collected, version bump)
    kCutoff,    // executed after its reader's last execution but came out equal: the
                // reader did not re-execute (an early cutoff)
    kShared,    // adopted from the shared cache tier: another daemon computed it, and what
                // it read was verified here
  };
  uint32_t depth = 0;
  Kind kind = Kind::kExecuted;
  TaskId task = kNoTask;
  std::string function;
  uint32_t version = 0;
  std::string args;
  TaskId receiver = kNoTask;  // a method's `this` (its task); kNoTask: a plain function
  ExecutionReason reason = ExecutionReason::kNone;
  TaskId cause = kNoTask;
  bool dirty = false;  // its value is out of date now: the next read refreshes it
  uint32_t executions = 0;
  int64_t end_unix_micros = 0;  // of its last execution; 0: not recorded any more
  int64_t duration_nanos = 0;
  bool output_changed = false;  // its last execution changed its output (when recorded)
  std::string output_before;    // digests as in ExecutionRecord; inputs: the value's
  std::string output_after;
  std::string text;  // one line for people
};

struct WhyReport {
  TaskId root = kNoTask;
  std::vector<WhyStep> steps;
  bool truncated = false;  // max_steps left causes out
};

struct WhyOptions {
  size_t max_steps = 64;
  // Early cutoffs reported per task at most (dependencies that executed later than the
  // task and came out equal).
  size_t max_cutoffs_per_task = 8;
};

}  // namespace turbine
