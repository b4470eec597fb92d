#include "long_call.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <future>
#include <optional>
#include <string>

namespace turbine::cli {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kPollInterval = std::chrono::milliseconds(500);
constexpr auto kQuietStart = std::chrono::seconds(1);  // no line for calls shorter than this

// ProgressLine is the live line on stderr, when stderr is a terminal.
class ProgressLine {
 public:
  ProgressLine() : enabled_(isatty(STDERR_FILENO) == 1) {}
  ~ProgressLine() { Clear(); }

  void Show(Clock::duration elapsed, const std::string& what) {
    if (!enabled_) return;
    const double seconds = std::chrono::duration<double>(elapsed).count();
    std::fprintf(stderr, "\r\033[Kturbine: %.1f s, %s", seconds, what.c_str());
    std::fflush(stderr);
    shown_ = true;
  }
  void Clear() {
    if (!shown_) return;
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
    shown_ = false;
  }

 private:
  const bool enabled_;
  bool shown_ = false;
};

// GcProgress is the live line's text for the pass `stats` shows.
std::string GcProgress(const v1::StatsReply& stats) {
  switch (stats.gc_phase()) {
    case v1::GC_PHASE_SCANNING:
      return absl::StrCat("garbage collection: scanning, ", stats.gc_pass_scanned_tasks(),
                          " stored tasks read");
    case v1::GC_PHASE_DELETING:
      return absl::StrCat("garbage collection: deleting, ", stats.gc_pass_removed_tasks(),
                          " of ", stats.gc_pass_garbage_tasks(), " garbage tasks removed (",
                          stats.gc_pass_scanned_tasks(), " stored)");
    case v1::GC_PHASE_RECLAIMING:
      return absl::StrCat("garbage collection: reclaiming the space of ",
                          stats.gc_pass_removed_tasks(), " removed tasks");
    default:
      return "garbage collection: waiting for the pass to start";
  }
}

}  // namespace

absl::StatusOr<v1::CollectGarbageReply> CollectGarbageWhileAnswered(const Session& session) {
  client::Cancellation cancel;
  std::future<absl::StatusOr<v1::CollectGarbageReply>> answer = std::async(
      std::launch::async, [&] { return session.client->CollectGarbage(&cancel); });
  // Two polls at least: one Stats slower than a short --timeout-ms never ends the wait.
  const auto silence_limit = std::max<Clock::duration>(session.client->options().deadline,
                                                       2 * kPollInterval);
  const Clock::time_point start = Clock::now();
  Clock::time_point last_answer = start;
  absl::Status stats_error = absl::OkStatus();  // why the daemon did not answer last
  ProgressLine line;
  while (answer.wait_for(kPollInterval) == std::future_status::timeout) {
    absl::StatusOr<v1::StatsReply> stats = session.client->Stats();
    const Clock::time_point now = Clock::now();
    if (stats.ok()) {
      last_answer = now;
      if (now - start >= kQuietStart) line.Show(now - start, GcProgress(*stats));
    } else {
      stats_error = stats.status();
    }
    if (now - last_answer >= silence_limit) {
      cancel.Cancel();
      answer.wait();
      line.Clear();
      // An unreachable daemon fails the request itself at once (kUnavailable): one that
      // took it and then went silent is past the deadline.
      return absl::DeadlineExceededError(absl::StrCat(
          "the daemon did not answer for ",
          std::chrono::duration_cast<std::chrono::milliseconds>(silence_limit).count(),
          " ms during the garbage collection pass (--timeout-ms); the pass may still be "
          "running: ",
          stats_error.message()));
    }
  }
  line.Clear();
  return answer.get();
}

absl::StatusOr<client::CallResult> CallWhileProgressing(const Session& session,
                                                         const v1::CallRequest& request) {
  client::Cancellation cancel;
  std::future<absl::StatusOr<client::CallResult>> answer = std::async(
      std::launch::async, [&] { return session.client->Call(request, &cancel); });
  const auto silence_limit = session.client->options().deadline;
  const Clock::time_point start = Clock::now();
  Clock::time_point last_progress = start;
  std::optional<uint64_t> first_count;
  uint64_t last_count = 0;
  absl::Status stats_error = absl::OkStatus();  // the last Stats failure, if none succeeded
  ProgressLine line;
  while (answer.wait_for(kPollInterval) == std::future_status::timeout) {
    absl::StatusOr<v1::StatsReply> stats = session.client->Stats();
    const Clock::time_point now = Clock::now();
    if (stats.ok()) {
      if (!first_count.has_value()) first_count = last_count = stats->executions();
      if (stats->executions() != last_count) {
        last_count = stats->executions();
        last_progress = now;
      }
    } else if (!first_count.has_value()) {
      stats_error = stats.status();
    }
    if (now - last_progress >= silence_limit) {
      cancel.Cancel();
      answer.wait();
      line.Clear();
      // A daemon that never answered is unreachable, as a plain deadline would say.
      if (!first_count.has_value() && !stats_error.ok()) return stats_error;
      return absl::DeadlineExceededError(absl::StrCat(
          "no progress for ",
          std::chrono::duration_cast<std::chrono::milliseconds>(silence_limit).count(),
          " ms: the daemon finished no task meanwhile (--timeout-ms bounds a call's silence)"));
    }
    if (now - start >= kQuietStart && first_count.has_value()) {
      line.Show(now - start, absl::StrCat(last_count - *first_count,
                                          " tasks finished by the daemon"));
    }
  }
  line.Clear();
  return answer.get();
}

}  // namespace turbine::cli
