#include "chrome_trace.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "turbine/text.h"

namespace turbine::server {
namespace {

constexpr uint64_t kSnapshotTrack = 0;  // thread numbers start at 1
constexpr uint64_t kGcTrack = 1'000'000'000;  // past any thread number
constexpr uint64_t kEvictionTrack = kGcTrack + 1;

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

uint64_t ChromeTraceTrack(const TraceEvent& event) {
  switch (event.kind) {
    case TraceEvent::Kind::kExecution:
      return event.thread;
    case TraceEvent::Kind::kSnapshot:
      return kSnapshotTrack;
    case TraceEvent::Kind::kGc:
      return kGcTrack;
    case TraceEvent::Kind::kEviction:
      return kEvictionTrack;
  }
  return kSnapshotTrack;
}

void AppendChromeTraceEvent(const TraceEvent& event, int64_t origin_nanos, std::string* out) {
  const bool execution = event.kind == TraceEvent::Kind::kExecution;
  const bool gc = event.kind == TraceEvent::Kind::kGc;
  const bool eviction = event.kind == TraceEvent::Kind::kEviction;
  out->append("{\"name\":");
  AppendJsonString(execution  ? event.function
                   : gc       ? "gc"
                   : eviction ? "eviction"
                              : "snapshot",
                   out);
  out->append(execution  ? ",\"cat\":\"execution\""
              : gc       ? ",\"cat\":\"gc\""
              : eviction ? ",\"cat\":\"eviction\""
                         : ",\"cat\":\"snapshot\"");
  out->append(",\"ph\":\"X\",\"pid\":1,\"tid\":" + std::to_string(ChromeTraceTrack(event)) +
              ",\"ts\":");
  AppendMicros(event.start_nanos - origin_nanos, out);
  out->append(",\"dur\":");
  AppendMicros(event.duration_nanos, out);
  out->append(",\"args\":{");
  if (execution) {
    out->append("\"task\":" + std::to_string(event.task) + ",\"args\":");
    AppendJsonString(event.args, out);
    out->append(",");
  }
  out->append("\"reason\":");
  AppendJsonString(event.reason, out);
  out->append(event.failed ? ",\"failed\":true}}" : ",\"failed\":false}}");
}

void AppendChromeTrackName(uint64_t track, std::string* out) {
  out->append("{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":" + std::to_string(track) +
              ",\"args\":{\"name\":");
  AppendJsonString(track == kSnapshotTrack   ? "snapshots"
                   : track == kGcTrack       ? "garbage collection"
                   : track == kEvictionTrack ? "memory eviction"
                                             : "thread " + std::to_string(track),
                   out);
  out->append("}}");
}

std::string ChromeTraceJson(const Trace& trace, size_t max_bytes, size_t* written,
                            bool cut_short) {
  // What the track names and the end take, at most, beside the events: a track's name is
  // under 100 bytes, and the end under 100 with its numbers.
  constexpr size_t kTrackNameBytes = 128;
  constexpr size_t kEndBytes = 256;
  int64_t origin = INT64_MAX;
  for (const TraceEvent& event : trace.events) origin = std::min(origin, event.start_nanos);
  std::string out = "{\"traceEvents\":[";
  std::set<uint64_t> tracks;
  size_t events = 0;
  for (const TraceEvent& event : trace.events) {
    const size_t before = out.size();
    out.append(events == 0 ? "\n" : ",\n");
    AppendChromeTraceEvent(event, origin, &out);
    const uint64_t track = ChromeTraceTrack(event);
    const size_t names = (tracks.size() + (tracks.contains(track) ? 0 : 1)) * kTrackNameBytes;
    if (out.size() + names + kEndBytes > max_bytes) {
      out.resize(before);  // this one and the rest do not fit
      break;
    }
    tracks.insert(track);
    ++events;
  }
  bool first = events == 0;
  for (const uint64_t track : tracks) {  // names for the tracks
    out.append(first ? "\n" : ",\n");
    first = false;
    AppendChromeTrackName(track, &out);
  }
  const uint64_t dropped = trace.dropped + (trace.events.size() - events);
  out.append("\n],\"displayTimeUnit\":\"ms\",\"otherData\":{\"events\":" +
             std::to_string(events) + ",\"dropped\":" + std::to_string(dropped) +
             (cut_short ? ",\"cut_short\":true" : "") + "}}\n");
  if (written != nullptr) *written = events;
  return out;
}

}  // namespace turbine::server
