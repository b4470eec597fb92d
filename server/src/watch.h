// watch.h — the Watch RPC: a call's current result, then each new one.
//
// A watch re-reads its call whenever the engine reports a change (an input batch, an
// invalidation) and writes the reply only if it differs from the last one written. Only
// the newest result waits to be written: a slow client skips intermediate values rather
// than queueing them.
#pragma once

#include <absl/base/thread_annotations.h>

#include <mutex>
#include <shared_mutex>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <optional>
#include <string>
#include <string_view>

#include "service.h"

namespace turbine::server {

// The initial metadata key a Watch the daemon accepted carries (turbine.proto, Watch).
inline constexpr std::string_view kWatchAcceptedKey = "turbine-watch-accepted";
// The trailing metadata key of a watch ended because unread replies of all clients filled
// the reply budget: the milliseconds after which the client may watch again (turbine.proto).
inline constexpr std::string_view kRetryAfterKey = "turbine-retry-after-ms";

class WatchReactor final : public grpc::ServerWriteReactor<v1::CallReply> {
 public:
  WatchReactor(TurbineService& service, grpc::CallbackServerContext* context,
               const v1::CallRequest& request);

  // Refresh re-reads the call (coalesced: one read at a time, one more if asked meanwhile).
  void Refresh();
  // End finishes the watch with `status` and cancels a read in progress.
  void End(const grpc::Status& status);
  // Hold / Release keep the reactor alive across a refresh started outside gRPC.
  void Hold() { holds_.fetch_add(1); }
  void Release();

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  void OnAnswer(v1::CallReply reply);
  // Remake makes the call's task again from the request and reads it (OnAnswer).
  void Remake();
  // Publish ends the read with `reply`: queued for the watcher if it differs from the last.
  void Publish(v1::CallReply reply);
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  TurbineService& service_;
  grpc::CallbackServerContext* const context_;
  // The call as asked, and its task as last made. A garbage collection pass may remove
  // that task (out of memory, and garbage under a disk limit or its retention): the watch
  // then makes it again from the request, as a new call would. Both are touched only by
  // the read in progress (reading_).
  const v1::CallRequest request_;
  PreparedCall call_;
  int remade_ = 0;             // times in a row the task was gone when a read answered
  CancelToken cancel_;         // cancelled when the watcher goes: ends a read in progress
  std::atomic<int> holds_{1};  // gRPC's until OnDone, plus each refresh in flight

  std::mutex mu_;  // std, not absl: TSan sees it (Debian's Abseil is uninstrumented)
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool read_again_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool has_result_ ABSL_GUARDED_BY(mu_) = false;  // a reply was written (in_flight_)
  v1::CallReply in_flight_ ABSL_GUARDED_BY(mu_);
  int64_t held_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // in_flight_'s, in the reply budget
  std::optional<v1::CallReply> next_ ABSL_GUARDED_BY(mu_);
};

}  // namespace turbine::server
