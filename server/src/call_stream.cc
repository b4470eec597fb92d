// call_stream.cc — CallStream: many calls in flight on one bidirectional stream.
//
// Requests are read one after another without waiting for answers; each answer is
// written as soon as it is ready (so replies come out of order, matched by id). gRPC
// allows one write at a time, so ready replies queue. The stream finishes once the client
// stopped sending and every call it sent was answered. Requests are read as bytes and
// parsed here (request_parsing.h): one that does not parse is that call's INVALID_ARGUMENT.
//
// Flow control (reply_budget.h): while the client leaves replies unread, the queue grows to
// its limit and then no further request is read until the client catches up.
#include <absl/base/thread_annotations.h>

#include <algorithm>
#include <mutex>
#include <optional>
#include <shared_mutex>

#include <deque>

#include "reply_budget.h"
#include "request_parsing.h"
#include "service.h"

namespace turbine::server {
namespace {

class CallStreamReactor final : public grpc::ServerBidiReactor<grpc::ByteBuffer, v1::CallReply> {
 public:
  CallStreamReactor(TurbineService& service, grpc::CallbackServerContext* context)
      : service_(service), budget_(service.reply_budget()) {
    if (!service_.Authorized(context)) {
      std::lock_guard lock(mu_);
      reads_done_ = true;
      finished_ = true;
      Finish(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing or wrong auth token"));
      return;
    }
    StartRead(&raw_request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client closed its side, or the stream broke
      std::optional<grpc::Status> done;
      {
        std::lock_guard lock(mu_);
        reads_done_ = true;
        done = DoneLocked();
      }
      if (done) Finish(*done);
      return;
    }
    Handle();
    bool read_next = false;
    {
      std::lock_guard lock(mu_);
      read_next = ReadAllowedLocked();
      if (!read_next) {
        paused_ = true;
        budget_.StreamPaused();
      }
    }
    // `raw_request_` is free again: Prepare copied what it needs. While paused, nothing here
    // reads; a write or an answer that frees room resumes (ResumeLocked).
    if (read_next) StartRead(&raw_request_);
  }

  void OnWriteDone(bool ok) override {
    std::optional<grpc::Status> done;
    bool resume = false;
    {
      std::lock_guard lock(mu_);
      PopFrontLocked();
      if (!ok) {
        broken_ = true;    // the client is gone: drop the rest, finish when idle
        cancel_.Cancel();  // and stop computing answers for it
      }
      if (!replies_.empty() && !broken_) {
        WriteFrontLocked();
      } else {
        while (!replies_.empty()) PopFrontLocked();
        writing_ = false;
        done = DoneLocked();
      }
      resume = ResumeLocked();
    }
    if (resume) StartRead(&raw_request_);
    if (done) Finish(*done);
  }

  // The client cancelled the stream or its deadline passed: its calls' reads end, and
  // executions only they waited for are cancelled.
  void OnCancel() override { cancel_.Cancel(); }
  void OnDone() override { delete this; }

 private:
  // Handle starts the call in `request_`, or queues its error.
  void Handle() {
    absl::StatusOr<PreparedCall> call;
    uint64_t id = 0;
    if (absl::Status parsed = ParseRequest(raw_request_, &request_); parsed.ok()) {
      id = request_.id();
      call = service_.Prepare(request_);
    } else {
      id = UnparsedCallId(raw_request_);
      call = parsed;
    }
    if (call.ok() && !service_.BeginWork()) {
      call = absl::UnavailableError("turbined is shutting down");
    }
    if (!call.ok()) {
      v1::CallReply reply;
      reply.set_id(id);
      ErrorToWire(call.status(), reply.mutable_error());
      std::optional<grpc::Status> done;
      {
        std::lock_guard lock(mu_);
        done = QueueLocked(std::move(reply));
      }
      if (done) Finish(*done);
    } else {
      {
        std::lock_guard lock(mu_);
        ++answers_pending_;
      }
      // Runs on an engine worker, which gRPC does not wait for: once mu_ is released, the
      // stream can finish (here or in OnWriteDone) and OnDone delete this reactor. So
      // nothing of `this` is touched after that, not even `service_`. (A resumed read
      // keeps the stream alive: it cannot finish before that read completes.)
      service_.Answer(*call, id, cancel_, [this, &service = service_](v1::CallReply reply) {
        std::optional<grpc::Status> done;
        bool resume = false;
        {
          std::lock_guard lock(mu_);
          --answers_pending_;
          done = QueueLocked(std::move(reply));
          resume = ResumeLocked();
        }
        if (resume) StartRead(&raw_request_);
        if (done) Finish(*done);
        service.EndWork();
      });
    }
  }

  // ReadAllowedLocked tells whether the next request may be read now (reply_budget.h).
  bool ReadAllowedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (broken_) return true;  // replies are dropped: read on, to see the stream end
    const int computing_cap = largest_reply_ == 0 ? kFirstCallsComputing : kMaxCallsComputing;
    if (answers_pending_ >= computing_cap) return false;
    // The calls still computing will answer at once, likely as large as the largest so far.
    const int64_t expected = queued_bytes_ + answers_pending_ * largest_reply_;
    if (expected >= budget_.limits().stream_bytes) return false;
    return expected == 0 || !budget_.DaemonFull();
  }

  // ResumeLocked ends a pause that is no longer needed; the caller then calls StartRead
  // after releasing mu_.
  bool ResumeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!paused_ || !ReadAllowedLocked()) return false;
    paused_ = false;
    budget_.StreamResumed();
    return true;
  }

  void PopFrontLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const auto bytes = static_cast<int64_t>(replies_.front().ByteSizeLong());
    queued_bytes_ -= bytes;
    budget_.Release(bytes);
    replies_.pop_front();
  }

  // QueueLocked queues a reply, or drops it if the client is gone; returns DoneLocked().
  std::optional<grpc::Status> QueueLocked(v1::CallReply reply) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (broken_) return DoneLocked();
    const auto bytes = static_cast<int64_t>(reply.ByteSizeLong());
    queued_bytes_ += bytes;
    largest_reply_ = std::max(largest_reply_, bytes);
    budget_.Add(bytes);
    replies_.push_back(std::move(reply));
    if (!writing_) {
      writing_ = true;
      WriteFrontLocked();
    }
    return std::nullopt;
  }

  void WriteFrontLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    // With more replies queued behind this one, let gRPC hold it and send several in one
    // frame: the next write flushes it, so nothing waits for long.
    grpc::WriteOptions options;
    if (replies_.size() > 1) options.set_buffer_hint();
    StartWrite(&replies_.front(), options);
  }

  // DoneLocked tells, once, that the stream is done: the client stopped sending and every
  // call was answered and written. The caller then calls Finish with the status after
  // releasing mu_, and touches nothing of `this` afterwards (OnDone may delete it).
  std::optional<grpc::Status> DoneLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || !reads_done_ || answers_pending_ > 0 || writing_) return std::nullopt;
    finished_ = true;
    return broken_ ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "the client went away")
                   : grpc::Status::OK;
  }

  TurbineService& service_;
  ReplyBudget& budget_;
  const CancelToken cancel_;  // one for every call on the stream
  grpc::ByteBuffer raw_request_;
  v1::CallRequest request_;
  std::mutex mu_;  // std, not absl: TSan sees it (Debian's Abseil is uninstrumented)
  std::deque<v1::CallReply> replies_ ABSL_GUARDED_BY(mu_);  // front: being written
  int64_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // of replies_, counted in budget_ too
  int64_t largest_reply_ ABSL_GUARDED_BY(mu_) = 0;  // queued on this stream so far
  int answers_pending_ ABSL_GUARDED_BY(mu_) = 0;
  bool paused_ ABSL_GUARDED_BY(mu_) = false;  // not reading: the budget is spent
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::ServerBidiReactor<grpc::ByteBuffer, v1::CallReply>* TurbineService::OpenCallStream(
    grpc::CallbackServerContext* context) {
  return new CallStreamReactor(*this, context);
}

}  // namespace turbine::server
