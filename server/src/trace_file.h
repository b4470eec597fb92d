// trace_file.h — turbined --trace-file: the engine's trace, from start to shutdown, streamed
// to a file in the Chrome Trace Event format (its JSON array form), which Perfetto UI and
// chrome://tracing open.
#pragma once

#include <absl/status/statusor.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "turbine/engine.h"

namespace turbine::server {

class TraceFile {
 public:
  // How often what the engine recorded is appended to the file: at most this much is lost
  // when the daemon is killed.
  static constexpr std::chrono::milliseconds kWriteInterval{500};

  // Start creates (or truncates) `path`, writes the opening "[" and starts the engine's
  // trace. Errors: kInvalidArgument if the file cannot be created, kFailedPrecondition if
  // a trace is already running.
  static absl::StatusOr<std::unique_ptr<TraceFile>> Start(Engine& engine, const std::string& path);
  ~TraceFile();  // Finish()
  TraceFile(const TraceFile&) = delete;
  TraceFile& operator=(const TraceFile&) = delete;

  // Finish stops the trace, appends the events not yet written and the closing "]": the
  // file is then one JSON array. Idempotent.
  void Finish();

  uint64_t events_written() const { return events_written_; }

 private:
  TraceFile(Engine& engine, int fd, std::string path);
  void WriteLoop();
  // Append writes the events recorded since the last call, with one write(2). A write that
  // fails (a full disk) is taken back to the last whole event and its events are dropped;
  // the next one tries again, so the file stays one JSON array and resumes by itself.
  void Append(const Trace& trace, bool last);

  Engine& engine_;
  const int fd_;
  const std::string path_;
  const int64_t origin_nanos_;  // steady clock at Start: times in the file count from it
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mu_
  bool finished_ = false;  // guarded by mu_
  // Owned by the writing thread (then by Finish, after it joined).
  bool first_event_ = true;
  std::set<uint64_t> named_tracks_;
  uint64_t events_written_ = 0;
  uint64_t dropped_ = 0;           // by the engine (its buffer was full) or by failed writes
  uint64_t dropped_failing_ = 0;   // by failed writes since the last that succeeded
  off_t size_ = 1;                 // what the file holds, all whole: "[" and events
  bool failing_ = false;           // the last write failed
  bool closed_ = false;            // the closing "]" was written
  std::thread writer_;
};

}  // namespace turbine::server
