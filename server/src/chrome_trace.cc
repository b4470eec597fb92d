#include "chrome_trace.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "turbine/text.h"

namespace turbine::server {
namespace {

constexpr uint64_t kSnapshotTrack = 0;  // thread numbers start at 1

void AppendJsonString(const std::string& text, std::string* out) {
  const std::string valid = EscapeInvalidUtf8(text);  // JSON text must be UTF-8
  out->push_back('"');
  for (const char c : valid) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
          out->append(escaped);
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

void AppendMicros(int64_t nanos, std::string* out) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", static_cast<double>(nanos) / 1000.0);
  out->append(text);
}

}  // namespace

std::string ChromeTraceJson(const Trace& trace) {
  int64_t origin = INT64_MAX;
  for (const TraceEvent& event : trace.events) origin = std::min(origin, event.start_nanos);
  std::string out = "{\"traceEvents\":[";
  std::set<uint64_t> tracks;
  bool first = true;
  for (const TraceEvent& event : trace.events) {
    if (!first) out.push_back(',');
    first = false;
    const bool execution = event.kind == TraceEvent::Kind::kExecution;
    const uint64_t track = execution ? event.thread : kSnapshotTrack;
    tracks.insert(track);
    out.append("\n{\"name\":");
    AppendJsonString(execution ? event.function : "snapshot", &out);
    out.append(execution ? ",\"cat\":\"execution\"" : ",\"cat\":\"snapshot\"");
    out.append(",\"ph\":\"X\",\"pid\":1,\"tid\":" + std::to_string(track) + ",\"ts\":");
    AppendMicros(event.start_nanos - origin, &out);
    out.append(",\"dur\":");
    AppendMicros(event.duration_nanos, &out);
    out.append(",\"args\":{");
    if (execution) {
      out.append("\"task\":" + std::to_string(event.task) + ",\"args\":");
      AppendJsonString(event.args, &out);
      out.append(",");
    }
    out.append("\"reason\":");
    AppendJsonString(event.reason, &out);
    out.append(event.failed ? ",\"failed\":true}}" : ",\"failed\":false}}");
  }
  for (const uint64_t track : tracks) {  // names for the tracks
    if (!first) out.push_back(',');
    first = false;
    out.append("\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":" +
               std::to_string(track) + ",\"args\":{\"name\":");
    AppendJsonString(track == kSnapshotTrack ? "snapshots" : "thread " + std::to_string(track),
                     &out);
    out.append("}}");
  }
  out.append("\n],\"displayTimeUnit\":\"ms\",\"otherData\":{\"events\":" +
             std::to_string(trace.events.size()) +
             ",\"dropped\":" + std::to_string(trace.dropped) + "}}\n");
  return out;
}

}  // namespace turbine::server
