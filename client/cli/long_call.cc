#include "long_call.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <optional>

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

  void Show(Clock::duration elapsed, uint64_t finished) {
    if (!enabled_) return;
    const double seconds = std::chrono::duration<double>(elapsed).count();
    std::fprintf(stderr, "\r\033[Kturbine: %.1f s, %llu tasks finished by the daemon", seconds,
                 static_cast<unsigned long long>(finished));
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

}  // namespace

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
      line.Show(now - start, last_count - *first_count);
    }
  }
  line.Clear();
  return answer.get();
}

}  // namespace turbine::cli
