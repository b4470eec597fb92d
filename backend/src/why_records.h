// why_records.h — the plain records of the engine's rings of recent executions and input
// changes (why.cc): filled as a change commits, turned into text only when asked.
#pragma once

#include <cstdint>

#include "deps_and_cells.h"
#include "task_state.h"
#include "turbine/internal/function_info.h"
#include "turbine/why.h"

namespace turbine::internal {

// OutputDigest stands for an output in the rings of why.cc without keeping it: the XXH3
// of a value or of an error's message, or the task a reference points at.
struct OutputDigest {
  OutputKind kind = OutputKind::kNone;
  uint64_t bits = 0;
};
OutputDigest DigestOf(const Output& output);
// DigestOfCell digests a cell's value as an output value's (none for no cell, or a value
// evicted from memory).
OutputDigest DigestOfCell(const CellSlot* cell);

// ExecutionEntry is one execution in the ring of recent ones (why.cc): plain data, filled
// as the execution commits, turned into text only when somebody asks.
struct ExecutionEntry {
  uint64_t sequence = 0;  // 0: an empty slot
  TaskId task = kNoTask;
  const FunctionInfo* fn = nullptr;
  int64_t end_unix_micros = 0;
  int64_t nanos = 0;
  ExecutionReason reason = ExecutionReason::kNone;
  TaskId cause = kNoTask;
  bool failed = false;
  bool output_changed = false;
  bool adopted = false;  // the shared tier's result taken after verifying it: nothing ran
  OutputDigest before;
  OutputDigest after;
};

// InputChangeEntry is one changed input in the ring of recent input changes.
struct InputChangeEntry {
  uint64_t sequence = 0;  // 0: an empty slot
  TaskId task = kNoTask;  // the input's task
  int64_t unix_micros = 0;
  OutputDigest before;
  OutputDigest after;
};

}  // namespace turbine::internal
