// stop_signal.h — how an engine's background thread (snapshots, garbage collection, the
// evictor) sleeps between ticks, is woken early, and learns that the engine is going.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace turbine::internal {

class StopSignal {
 public:
  // Sleep waits `timeout`, or less if Wake or Stop is called meanwhile (or a Wake came
  // since the last sleep: it is not lost). False once Stop was called.
  bool Sleep(std::chrono::steady_clock::duration timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [this] { return stopped_ || woken_; });
    woken_ = false;
    return !stopped_;
  }
  void Wake() {
    {
      std::lock_guard lock(mu_);
      woken_ = true;
    }
    cv_.notify_all();
  }
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopped_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
  bool woken_ = false;
};

}  // namespace turbine::internal
