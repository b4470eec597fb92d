// outage_log.h — what to say about a service that fails now and then (the shared tier):
// the first failure, each new reason while it lasts, and that it works again; not every
// failure, and nothing while it works. "Works again" waits for a second without failures:
// a cluster coming back answers some slots before others, and a log that said "available"
// and "unavailable" at each alternation wrote a thousand lines a second.
#pragma once

#include <absl/status/status.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace turbine::internal {

class OutageLog {
 public:
  // `now_millis`: a steady clock in milliseconds (tests give their own).
  explicit OutageLog(std::function<int64_t()> now_millis = SteadyMillis)
      : now_millis_(std::move(now_millis)) {}

  // Failed notes a failure and tells whether it is news: the first since the service last
  // worked, or a reason not told yet during this outage (its credentials were refused after
  // its connection was lost, say). A reason is a kind of failure, its code, a timeout
  // being one more way of not answering: the messages of one outage name one node and
  // then another, a refused connection and then a timeout (one cluster going down told
  // four times). A failure that did not try ("retrying later") is never a new reason, and
  // at most kReasons are told per outage.
  bool Failed(const absl::Status& status) {
    std::lock_guard<std::mutex> lock(mu_);
    last_failure_millis_.store(now_millis_(), std::memory_order_relaxed);
    const absl::StatusCode reason = status.code() == absl::StatusCode::kDeadlineExceeded
                                        ? absl::StatusCode::kUnavailable
                                        : status.code();
    if (!failing_.exchange(true, std::memory_order_relaxed)) {
      told_.assign(1, reason);
      return true;
    }
    if (told_.size() >= kReasons ||
        std::string_view(status.message().data(), status.message().size())
            .ends_with("(retrying later)") ||
        std::find(told_.begin(), told_.end(), reason) != told_.end()) {
      return false;
    }
    told_.push_back(reason);
    return true;
  }

  // Worked notes a success and tells whether the outage is over (news): the service had
  // failed, and has not for kSettleMillis. Until then the outage goes on, and a failure in
  // it is no news: while some operations keep failing (a slot no node serves), that is one
  // outage for as long as it lasts. Without a lock while it works, nor while the outage
  // goes on: a lookup calls it every time.
  bool Worked() {
    if (!failing_.load(std::memory_order_relaxed)) return false;
    if (now_millis_() - last_failure_millis_.load(std::memory_order_relaxed) < kSettleMillis) {
      return false;
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (now_millis_() - last_failure_millis_.load(std::memory_order_relaxed) < kSettleMillis) {
      return false;  // failed again meanwhile
    }
    told_.clear();
    return failing_.exchange(false, std::memory_order_relaxed);
  }

  static constexpr int64_t kSettleMillis = 1000;

 private:
  static int64_t SteadyMillis() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  static constexpr size_t kReasons = 8;
  const std::function<int64_t()> now_millis_;
  std::atomic<int64_t> last_failure_millis_{0};  // written under mu_
  std::atomic<bool> failing_{false};
  std::mutex mu_;
  std::vector<absl::StatusCode> told_;  // guarded by mu_: the reasons told in this outage
};

}  // namespace turbine::internal
