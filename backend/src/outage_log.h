// outage_log.h — what to say about a service that fails now and then (the shared tier):
// the first failure, each new reason while it lasts, and that it works again; not every
// failure, and nothing while it works.
#pragma once

#include <absl/status/status.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace turbine::internal {

class OutageLog {
 public:
  // Failed notes a failure and tells whether it is news: the first since the service last
  // worked, or a reason not told yet during this outage (its credentials were refused after
  // its connection was lost, say). A failure that did not try ("retrying later") is never
  // a new reason, and at most kReasons are told per outage.
  bool Failed(const absl::Status& status) {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string reason = status.ToString();
    if (!failing_.exchange(true, std::memory_order_relaxed)) {
      told_.assign(1, reason);
      return true;
    }
    if (told_.size() >= kReasons || std::string_view(reason).ends_with("(retrying later)") ||
        std::find(told_.begin(), told_.end(), reason) != told_.end()) {
      return false;
    }
    told_.push_back(reason);
    return true;
  }

  // Worked notes a success and tells whether the service had failed (that it works again
  // is news). Without a lock while it works: a lookup calls it every time.
  bool Worked() {
    if (!failing_.load(std::memory_order_relaxed)) return false;
    std::lock_guard<std::mutex> lock(mu_);
    told_.clear();
    return failing_.exchange(false, std::memory_order_relaxed);
  }

 private:
  static constexpr size_t kReasons = 8;
  std::atomic<bool> failing_{false};
  std::mutex mu_;
  std::vector<std::string> told_;  // guarded by mu_: the reasons told in this outage
};

}  // namespace turbine::internal
