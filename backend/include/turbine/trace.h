// trace.h — what the engine did, slice by slice (Engine::StartTrace / StopTrace).
//
// While a trace runs, every execution of a task body, every snapshot and every garbage
// collection pass becomes one TraceEvent. Off, it costs one relaxed load and a predictable branch
// per execution (and nothing on a cache hit); on, one short locked append per execution. Events
// past `max_events` are counted, not kept.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "turbine/raw_vc.h"

namespace turbine {

struct TraceEvent {
  enum class Kind : uint8_t { kExecution, kSnapshot, kGc, kEviction };
  Kind kind = Kind::kExecution;
  TaskId task = kNoTask;  // kExecution
  std::string function;   // kExecution
  std::string args;       // kExecution: in short (short_text.h)
  // Why it ran: the reason of why.h ("first execution", "invalidated", "restart
  // re-validation", "dependency changed: <function>(<args>) @<task>", ...); for a snapshot,
  // the tasks written; for a garbage collection pass, what it removed; for an eviction
  // pass, the values it evicted.
  std::string reason;
  uint64_t thread = 0;       // a small number per OS thread, stable for the process
  int64_t start_nanos = 0;   // steady clock
  int64_t duration_nanos = 0;
  bool failed = false;       // the body raised an error (or the snapshot failed)
};

struct Trace {
  std::vector<TraceEvent> events;  // in the order they ended
  uint64_t dropped = 0;            // past max_events
};

struct TraceOptions {
  size_t max_events = 1'000'000;
};

}  // namespace turbine
