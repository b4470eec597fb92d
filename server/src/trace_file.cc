#include "trace_file.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "chrome_trace.h"

namespace turbine::server {
namespace {

int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// WriteAll writes `text` with as few write(2) calls as the kernel allows.
bool WriteAll(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TraceFile>> TraceFile::Start(Engine& engine,
                                                            const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::InvalidArgumentError("--trace-file " + path + ": " + std::strerror(errno));
  }
  if (!WriteAll(fd, "[")) {
    const int error = errno;
    ::close(fd);
    return absl::InvalidArgumentError("--trace-file " + path + ": " + std::strerror(error));
  }
  if (!engine.StartTrace()) {
    ::close(fd);
    return absl::FailedPreconditionError("--trace-file: a trace is already running");
  }
  return std::unique_ptr<TraceFile>(new TraceFile(engine, fd, path));
}

TraceFile::TraceFile(Engine& engine, int fd, std::string path)
    : engine_(engine), fd_(fd), path_(std::move(path)), origin_nanos_(SteadyNanos()) {
  writer_ = std::thread([this] { WriteLoop(); });
}

TraceFile::~TraceFile() { Finish(); }

void TraceFile::WriteLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, kWriteInterval, [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    Append(engine_.TakeTrace(), /*last=*/false);
    lock.lock();
  }
}

void TraceFile::Finish() {
  {
    std::lock_guard lock(mu_);
    if (finished_) return;
    finished_ = true;
    stopping_ = true;
  }
  wake_.notify_all();
  writer_.join();
  Append(engine_.StopTrace(), /*last=*/true);
  ::close(fd_);
  if (write_failed_) {
    spdlog::error("trace file {} is incomplete: a write failed", path_);
  } else {
    spdlog::info("trace file {} written: {} events{}", path_, events_written_,
                 dropped_ > 0 ? " (" + std::to_string(dropped_) + " dropped)" : "");
  }
}

void TraceFile::Append(const Trace& trace, bool last) {
  dropped_ += trace.dropped;
  std::string text;
  for (const TraceEvent& event : trace.events) {
    text.append(first_event_ ? "\n" : ",\n");
    first_event_ = false;
    AppendChromeTraceEvent(event, origin_nanos_, &text);
    const uint64_t track = ChromeTraceTrack(event);
    if (named_tracks_.insert(track).second) {
      text.append(",\n");
      AppendChromeTrackName(track, &text);
    }
  }
  events_written_ += trace.events.size();
  if (last) text.append("\n]\n");
  if (text.empty() || write_failed_) return;
  if (!WriteAll(fd_, text)) {
    write_failed_ = true;
    spdlog::error("cannot write the trace file {}: {}", path_, std::strerror(errno));
  }
}

}  // namespace turbine::server
