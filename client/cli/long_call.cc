#include "long_call.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
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

// Progress is what counts as the daemon getting on with a long request, read from Stats.
struct Progress {
  // Whether this reading shows progress since the one before.
  std::function<bool(const v1::StatsReply&)> advanced;
  // The live line's text, once Stats has answered.
  std::function<std::string()> line;
  // What the wait ends with after `silence` without progress: `answered` says whether Stats
  // ever answered, `stats_error` is its last failure.
  std::function<absl::Status(std::chrono::milliseconds silence, bool answered,
                             const absl::Status& stats_error)>
      give_up;
};

// AwaitWithProgress makes `request` (which has no deadline of its own) and reads Stats
// twice a second until it is answered, or until `progress` saw none for `silence_limit`:
// then it cancels the request and gives up. On a terminal, a request that takes longer
// than a second shows a live line on stderr, erased when it ends.
template <class Reply>
absl::StatusOr<Reply> AwaitWithProgress(
    const Session& session, Clock::duration silence_limit,
    const std::function<absl::StatusOr<Reply>(client::Cancellation*)>& request,
    const Progress& progress) {
  // Stats is read with a deadline of the poll's length at least: with --timeout-ms 1 each
  // reading failed, and a daemon that answered looked silent. Only a deadline shorter than
  // that needs a client of its own, which is a second connection: by default the request
  // and the polls share one (a daemon at its --max-connections bound with one free had the
  // call wait for a second that never came, and give up as if the daemon did nothing).
  const auto poll_deadline =
      std::chrono::duration_cast<std::chrono::milliseconds>(2 * kPollInterval);
  absl::StatusOr<std::unique_ptr<client::Client>> poller = absl::UnavailableError("unused");
  if (session.client->options().deadline < poll_deadline) {
    client::ConnectOptions poll_options = session.client->options();
    poll_options.deadline = poll_deadline;
    poller = client::Client::Connect(poll_options);
  }
  client::Client& stats_client = poller.ok() ? **poller : *session.client;
  client::Cancellation cancel;
  std::future<absl::StatusOr<Reply>> answer =
      std::async(std::launch::async, [&] { return request(&cancel); });
  const Clock::time_point start = Clock::now();
  Clock::time_point last_progress = start;
  bool answered = false;
  absl::Status stats_error = absl::OkStatus();  // the last Stats failure
  ProgressLine line;
  // Stats is first read before any wait: the first answer is the baseline later ones are
  // compared with, and the silence counts from it. (Read after the first wait, it left a
  // --timeout-ms shorter than the wait no chance: every call gave up at the first poll.)
  for (bool first = true; first || answer.wait_for(kPollInterval) == std::future_status::timeout;
       first = false) {
    absl::StatusOr<v1::StatsReply> stats = stats_client.Stats();
    const Clock::time_point now = Clock::now();
    if (stats.ok()) {
      const bool baseline = !answered;
      answered = true;
      if (progress.advanced(*stats) || baseline) last_progress = now;
    } else {
      stats_error = stats.status();
    }
    // Answered while Stats was read: that is the end, however long the silence.
    if (answer.wait_for(std::chrono::seconds(0)) == std::future_status::ready) break;
    if (now - last_progress >= silence_limit) {
      cancel.Cancel();
      answer.wait();
      line.Clear();
      return progress.give_up(
          std::chrono::duration_cast<std::chrono::milliseconds>(silence_limit), answered,
          stats_error);
    }
    if (now - start >= kQuietStart && answered) line.Show(now - start, progress.line());
  }
  line.Clear();
  return answer.get();
}

}  // namespace

absl::StatusOr<v1::CollectGarbageReply> CollectGarbageWhileAnswered(const Session& session) {
  // Every answer is progress: the pass runs in the daemon as long as the daemon does.
  v1::StatsReply last;
  const Progress progress{
      .advanced =
          [&](const v1::StatsReply& stats) {
            last = stats;
            return true;
          },
      .line = [&] { return GcProgress(last); },
      .give_up =
          [](std::chrono::milliseconds silence, bool answered, const absl::Status& stats_error) {
            // A daemon that never answered is unreachable (with --wait, the request waits
            // for one rather than failing at once): a plain deadline would say so too. One
            // that answered and then went silent is past the deadline.
            if (!answered && !stats_error.ok()) return stats_error;
            return absl::DeadlineExceededError(absl::StrCat(
                "the daemon did not answer for ", silence.count(),
                " ms during the garbage collection pass (--timeout-ms); the pass may still "
                "be running: ",
                stats_error.message()));
          }};
  // Two polls at least: one Stats slower than a short --timeout-ms never ends the wait.
  return AwaitWithProgress<v1::CollectGarbageReply>(
      session, std::max<Clock::duration>(session.client->options().deadline, 2 * kPollInterval),
      [&](client::Cancellation* cancel) { return session.client->CollectGarbage(cancel); },
      progress);
}

absl::StatusOr<client::CallResult> CallWhileProgressing(const Session& session,
                                                         const v1::CallRequest& request) {
  // Progress is the daemon's count of finished executions moving (all callers together).
  std::optional<uint64_t> first_count;
  uint64_t last_count = 0;
  const Progress progress{
      .advanced =
          [&](const v1::StatsReply& stats) {
            if (!first_count.has_value()) first_count = last_count = stats.executions();
            if (stats.executions() == last_count) return false;
            last_count = stats.executions();
            return true;
          },
      .line =
          [&] {
            return absl::StrCat(last_count - first_count.value_or(last_count),
                                " tasks finished by the daemon");
          },
      .give_up =
          [](std::chrono::milliseconds silence, bool answered, const absl::Status& stats_error) {
            // A daemon that never answered is unreachable, as a plain deadline would say.
            if (!answered && !stats_error.ok()) return stats_error;
            return absl::DeadlineExceededError(absl::StrCat(
                "no progress for ", silence.count(),
                " ms: the daemon finished no task meanwhile (--timeout-ms bounds a call's "
                "silence)"));
          }};
  return AwaitWithProgress<client::CallResult>(
      session, session.client->options().deadline,
      [&](client::Cancellation* cancel) { return session.client->Call(request, cancel); },
      progress);
}

}  // namespace turbine::cli
