#include "trace_file.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

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
  if (!closed_) {
    spdlog::error("trace file {} is incomplete: its end could not be written", path_);
  } else {
    spdlog::info("trace file {} written: {} events{}", path_, events_written_,
                 dropped_ > 0 ? " (" + std::to_string(dropped_) + " dropped)" : "");
  }
}

void TraceFile::Append(const Trace& trace, bool last) {
  dropped_ += trace.dropped;
  std::string text;
  bool first = first_event_;
  std::vector<uint64_t> named;  // tracks this chunk names, named again if it is dropped
  for (const TraceEvent& event : trace.events) {
    text.append(first ? "\n" : ",\n");
    first = false;
    AppendChromeTraceEvent(event, origin_nanos_, &text);
    const uint64_t track = ChromeTraceTrack(event);
    if (named_tracks_.insert(track).second) {
      named.push_back(track);
      text.append(",\n");
      AppendChromeTrackName(track, &text);
    }
  }
  if (last) text.append("\n]\n");
  if (text.empty()) return;
  if (WriteAll(fd_, text)) {
    size_ += static_cast<off_t>(text.size());
    first_event_ = first;
    events_written_ += trace.events.size();
    closed_ = last;
    if (std::exchange(failing_, false)) {
      spdlog::info("the trace file {} is written again; {} events were dropped meanwhile",
                   path_, dropped_failing_);
    }
    dropped_failing_ = 0;
    return;
  }
  const int error = errno;
  // Back to the last whole event: a later write goes on from there.
  if (::ftruncate(fd_, size_) != 0 || ::lseek(fd_, size_, SEEK_SET) < 0) {
    spdlog::error("cannot take back a failed write to the trace file {}: {}", path_,
                  std::strerror(errno));
  }
  for (uint64_t track : named) named_tracks_.erase(track);
  // The end alone may still fit, and without it the file is no JSON array.
  if (last && WriteAll(fd_, "\n]\n")) closed_ = true;
  dropped_ += trace.events.size();
  dropped_failing_ += trace.events.size();
  if (!std::exchange(failing_, true)) {
    spdlog::error("cannot write the trace file {}: {}; its events are dropped until it can be",
                  path_, std::strerror(error));
  }
}

}  // namespace turbine::server
