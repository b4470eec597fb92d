// reply_budget.h — how many bytes of replies wait for their clients, daemon-wide.
//
// A client that pipelines calls and does not read their replies would make the daemon hold
// every reply. So a CallStream reads its next request only while
//   - the replies it has queued, plus for each of its calls still being computed the
//     largest reply it has queued so far (those calls may all answer at once), stay below
//     ReplyLimits::stream_bytes;
//   - and, when that sum is not zero, the replies queued by all streams together stay
//     below daemon_bytes;
//   - and fewer than kMaxCallsComputing of its calls are being computed (kFirstCallsComputing
//     before its first reply, whose size is not known yet).
// Otherwise it stops reading until its client has taken enough replies or its calls have
// answered, and HTTP/2 flow control pushes back on the client's writes. A stream with
// nothing queued or computing always reads, so no stream waits on another's client; the
// price is that each stream may go past the daemon's limit by what one call returns.
//
// A unary Call and each Watch message hold their reply until it is written: counted here
// too, and refused past daemon_bytes when larger than a small reply
// (TurbineService::HoldReply).
#pragma once

#include <atomic>
#include <cstdint>

namespace turbine::server {

struct ReplyLimits {
  int64_t stream_bytes = 16 << 20;
  int64_t daemon_bytes = 256 << 20;
  // The largest message the daemon sends (--max-message-bytes): a reply that would not
  // fit is answered RESOURCE_EXHAUSTED instead (TurbineService::Answer), so that it fails
  // alone rather than ending its stream.
  int64_t message_bytes = 16 << 20;
};

inline constexpr int kMaxCallsComputing = 1024;
inline constexpr int kFirstCallsComputing = 4;

class ReplyBudget {
 public:
  explicit ReplyBudget(ReplyLimits limits) : limits_(limits) {}

  const ReplyLimits& limits() const { return limits_; }
  void Add(int64_t bytes) { queued_.fetch_add(bytes, std::memory_order_relaxed); }
  void Release(int64_t bytes) { queued_.fetch_sub(bytes, std::memory_order_relaxed); }
  bool DaemonFull() const {
    return queued_.load(std::memory_order_relaxed) >= limits_.daemon_bytes;
  }
  int64_t queued() const { return queued_.load(std::memory_order_relaxed); }

  // Streams that stopped reading, for Stats and the metrics.
  void StreamPaused() { paused_.fetch_add(1, std::memory_order_relaxed); }
  void StreamResumed() { paused_.fetch_sub(1, std::memory_order_relaxed); }
  int64_t paused() const { return paused_.load(std::memory_order_relaxed); }

 private:
  const ReplyLimits limits_;
  std::atomic<int64_t> queued_{0};
  std::atomic<int64_t> paused_{0};
};

}  // namespace turbine::server
