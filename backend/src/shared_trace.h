// shared_trace.h — verifying traces: the records of the shared tier (shared_tier.h).
//
// Key: "turbine:" namespace ":v1:" XXH3-128 of the task's identity, in hex. The identity
// is the same bytes the backing store keys tasks by (persist.h: function name, version,
// receiver, canonical arguments), so the function's version is part of the key. Only
// identities without Vcs are shared: a Vc names a process-local task id.
//
// Record: "TBTR" | format version (u32 LE) | payload | XXH3-64 of all before it (u64 LE).
// Payload (cereal): the full identity (a record is adopted only by the task whose identity
// it repeats, so a key collision or a misplaced record is harmless), the output (a value
// of a named type, or a reference to one of the task's own cells), the cells, and the
// dependencies in read order, each (identity, slot: cell type name or "" for the output,
// cell index, digest). A digest is XXH3-128 of the slot's value as the engine compares it:
// kind, type name and canonical bytes (an error: code and message; a reference: the
// identity of the task it points into, and the slot). Values holding Vcs have no digest and make a
// task unshareable.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "task_state.h"

namespace turbine::internal {

class EngineImpl;

inline constexpr uint32_t kTraceFormatVersion = 1;

struct TraceCell {
  std::string type_name;
  uint32_t index = 0;
  std::string bytes;
};

struct TraceDep {
  std::string identity;
  std::string slot_type;  // "" : the output
  uint32_t slot_index = 0;
  std::string digest;
};

struct TraceRecord {
  std::string identity;
  bool output_is_ref = false;  // false: a value of output_type
  std::string output_type;     // the value's type, or the referenced cell's type
  uint32_t output_ref_index = 0;
  std::string output_bytes;
  std::vector<TraceCell> cells;
  std::vector<TraceDep> deps;
};

// SharedIdentity encodes the identity of a task into `out`; false if it holds a Vc.
bool SharedIdentity(const TaskState& task, std::string* out);
// TraceKey is the shared tier's key of the task with `identity`.
std::string TraceKey(const std::string& name_space, std::string_view identity);

std::string EncodeTraceRecord(const TraceRecord& record);
// DecodeTraceRecord checks the frame, version and checksum, then decodes; false otherwise.
bool DecodeTraceRecord(std::string_view bytes, TraceRecord* record);

// SlotDigest computes the digest of `slot` of `task` (its output or one of its cells);
// false if it has none (no such cell, a value holding a Vc, a reference to a task that is
// not in memory). REQUIRES: task.mu held.
bool SlotDigest(EngineImpl& engine, const TaskState& task, RawVc slot, std::string* digest);

// BuildTrace makes the record of a clean, executed task; false if the task cannot be
// shared (see above) or changed meanwhile. Takes one task lock at a time.
bool BuildTrace(EngineImpl& engine, TaskState& task, TraceRecord* record);

// AdoptTrace turns a record's output and cells into what an execution of `context.task`
// would have produced; false if a type is unknown here or a value does not decode.
bool AdoptTrace(const TraceRecord& record, ExecContext* context);

// ResolveTraceDep finds (or creates) the task a dependency names, here, and the slot it
// read; false if its identity does not decode here or holds a Vc.
bool ResolveTraceDep(EngineImpl& engine, const TraceDep& dep, RawVc* slot);

}  // namespace turbine::internal
