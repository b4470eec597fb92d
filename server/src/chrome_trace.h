// chrome_trace.h — an engine Trace in the Chrome Trace Event format, which Perfetto UI
// (ui.perfetto.dev) and chrome://tracing open.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "turbine/trace.h"

namespace turbine::server {

// ChromeTraceJson: {"traceEvents":[...],"displayTimeUnit":"ms","otherData":{...}}. Each
// execution is a complete slice ("ph":"X") on its worker thread's track, named after the
// function, with the task id, arguments and reason in `args`; snapshots are slices on
// their own track. Times are microseconds from the first event. A body that another
// body's read ran inline nests inside it on the same track. The text stays within
// `max_bytes`: the events that would take it past are left out (with the trace's own
// dropped ones, they are the `dropped` it reports); `written` (if not null) gets how many
// events it holds. `cut_short` (a shutdown ended it early) is said in `otherData` too, so
// the file says so, not only the reply.
std::string ChromeTraceJson(const Trace& trace, size_t max_bytes = SIZE_MAX,
                            size_t* written = nullptr, bool cut_short = false);

// The parts, for a trace streamed to a file (trace_file.h): one event as a JSON object
// (times in microseconds from `origin_nanos`, steady clock), the track it goes on (its
// thread; snapshots and garbage collection passes have a track each), and the metadata
// event naming a track.
void AppendChromeTraceEvent(const TraceEvent& event, int64_t origin_nanos, std::string* out);
uint64_t ChromeTraceTrack(const TraceEvent& event);
void AppendChromeTrackName(uint64_t track, std::string* out);

}  // namespace turbine::server
