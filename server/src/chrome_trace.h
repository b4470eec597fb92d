// chrome_trace.h — an engine Trace in the Chrome Trace Event format, which Perfetto UI
// (ui.perfetto.dev) and chrome://tracing open.
#pragma once

#include <string>

#include "turbine/trace.h"

namespace turbine::server {

// ChromeTraceJson: {"traceEvents":[...],"displayTimeUnit":"ms","otherData":{...}}. Each
// execution is a complete slice ("ph":"X") on its worker thread's track, named after the
// function, with the task id, arguments and reason in `args`; snapshots are slices on
// their own track. Times are microseconds from the first event. A body that another
// body's read ran inline nests inside it on the same track.
std::string ChromeTraceJson(const Trace& trace);

}  // namespace turbine::server
