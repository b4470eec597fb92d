// shared_trace.h — verifying traces: the records of the shared tier (shared_tier.h).
//
// Stable names. A task id is process-local, so wherever a trace would hold one (a receiver
// or a Vc argument in an identity, a Vc inside a value, an output that refers to another
// task) it holds the referenced task's stable identity instead, recursively: a stable
// encoding is (canonical bytes with each Vc's task id replaced by a placeholder 1..n, the
// byte positions of the placeholders, the n referenced tasks' stable identities). A task's
// stable identity is the stable encoding of the bytes the store keys it by (persist.h:
// function name, version, receiver, canonical arguments). Naming stops at kMaxNameDepth
// levels of references and kMaxNameBytes of names: a task beyond them stays local. A
// reader turns a stable identity back into a task by finding or creating each referenced
// task here by its identity (never by the writer's id) and putting its local id where the
// placeholder was.
//
// Key: "turbine:" namespace ":v2:" XXH3-128 of the task's stable identity, in hex, so the
// function's version is part of the key.
//
// Record: "TBTR" | format version (u32 LE) | payload | XXH3-64 of all before it (u64 LE).
// Payload (cereal): the full stable identity (a record is adopted only by the task whose
// identity it repeats, so a key collision or a misplaced record is harmless), the output
// (a value of a named type, or a reference to a cell of the task's own or to a slot of
// another task named by its stable identity), the cells, and the dependencies in read
// order, each (stable identity, slot: cell type name or "" for the output, cell index,
// digest). Values are stable encodings. A digest is XXH3-128 of the slot's value as the
// engine compares it: kind, type name and the value's stable encoding (an error: code and
// message; a reference: the stable identity of the task it points into, and the slot).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "task_state.h"

namespace turbine::internal {

class EngineImpl;

inline constexpr uint32_t kTraceFormatVersion = 3;
// Bounds of a stable name: levels of references, and bytes.
inline constexpr int kMaxNameDepth = 8;
inline constexpr size_t kMaxNameBytes = 64 * 1024;

struct TraceCell {
  std::string type_name;
  uint32_t index = 0;
  std::string bytes;
};

struct TraceDep {
  // The stable identity of the task read; "" for a machine-local task (a file's content
  // under its inode and times) reached through the previous dependency's reference: its
  // identity means nothing on another machine, where that reference leads matters.
  std::string identity;
  std::string slot_type;  // "" : the output
  uint32_t slot_index = 0;
  std::string digest;
};

struct TraceRecord {
  std::string identity;
  bool output_is_ref = false;  // false: a value of output_type
  std::string output_type;     // the value's type, or the referenced cell's type ("": output)
  uint32_t output_ref_index = 0;
  // A value: its stable encoding. A reference: "" for a cell of the task's own, else the
  // stable identity of the task it points into.
  std::string output_bytes;
  std::vector<TraceCell> cells;
  std::vector<TraceDep> deps;
};

// SharedIdentity encodes the stable identity of `task` into `out`; false if a task it
// refers to cannot be named (beyond the bounds, or not found: with `may_load` false only
// tasks in memory are looked at). Reads only a task's immutable fields: takes no lock;
// with `may_load`, the caller must hold no task lock (the store may be read).
bool SharedIdentity(EngineImpl& engine, const TaskState& task, bool may_load, std::string* out);
// TraceKey is the shared tier's key of the task with `identity`.
std::string TraceKey(const std::string& name_space, std::string_view identity);

std::string EncodeTraceRecord(const TraceRecord& record);
// DecodeTraceRecord checks the frame, version and checksum, then decodes; false otherwise.
bool DecodeTraceRecord(std::string_view bytes, TraceRecord* record);

// SlotDigest computes the digest of `slot` of `task` (its output or one of its cells);
// false if it has none (no such cell, a reference to a task that cannot be named from
// memory). REQUIRES: task.mu held.
bool SlotDigest(EngineImpl& engine, const TaskState& task, RawVc slot, std::string* digest);

// BuildTrace makes the record of a clean, executed task; false if the task cannot be
// shared (see above) or changed meanwhile. Takes one task lock at a time.
bool BuildTrace(EngineImpl& engine, TaskState& task, TraceRecord* record);

// AdoptTrace turns a record's output and cells into what an execution of `context.task`
// would have produced, finding or creating here the tasks they refer to; false if a type
// or function is unknown here or a value does not decode.
bool AdoptTrace(EngineImpl& engine, const TraceRecord& record, ExecContext* context);

// ResolveTraceDep finds (or creates) the task a dependency names, here, and the slot it
// read; false if its identity does not decode here. `previous` is the slot the previous
// dependency resolved to, read clean just before (none for the first): a dependency
// without an identity is where that slot's reference leads here.
bool ResolveTraceDep(EngineImpl& engine, const TraceDep& dep, RawVc previous, RawVc* slot);

}  // namespace turbine::internal
