// call_stream.cc — CallStream: many calls in flight on one bidirectional stream.
//
// Requests are read one after another without waiting for answers; each answer is
// written as soon as it is ready (so replies come out of order, matched by id). gRPC
// allows one write at a time, so ready replies queue. The stream finishes once the client
// stopped sending and every call it sent was answered.
#include <absl/base/thread_annotations.h>

#include <mutex>
#include <optional>
#include <shared_mutex>

#include <deque>

#include "service.h"

namespace turbine::server {
namespace {

class CallStreamReactor final
    : public grpc::ServerBidiReactor<v1::CallRequest, v1::CallReply> {
 public:
  CallStreamReactor(TurbineService& service, grpc::CallbackServerContext* context)
      : service_(service) {
    if (!service_.Authorized(context)) {
      std::lock_guard lock(mu_);
      reads_done_ = true;
      finished_ = true;
      Finish(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing or wrong auth token"));
      return;
    }
    StartRead(&request_);
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
    const uint64_t id = request_.id();
    absl::StatusOr<PreparedCall> call = service_.Prepare(request_);
    if (call.ok() && !service_.BeginWork()) {
      call = absl::UnavailableError("turbined is shutting down");
    }
    if (!call.ok()) {
      v1::CallReply reply;
      reply.set_id(id);
      reply.mutable_error()->set_code(static_cast<int32_t>(call.status().code()));
      reply.mutable_error()->set_message(std::string(call.status().message()));
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
      // nothing of `this` is touched after that, not even `service_`.
      service_.Answer(*call, id, cancel_, [this, &service = service_](v1::CallReply reply) {
        std::optional<grpc::Status> done;
        {
          std::lock_guard lock(mu_);
          --answers_pending_;
          done = QueueLocked(std::move(reply));
        }
        if (done) Finish(*done);
        service.EndWork();
      });
    }
    StartRead(&request_);  // `request_` is free again: Prepare copied what it needs
  }

  void OnWriteDone(bool ok) override {
    std::optional<grpc::Status> done;
    {
      std::lock_guard lock(mu_);
      replies_.pop_front();
      if (!ok) {
        broken_ = true;    // the client is gone: drop the rest, finish when idle
        cancel_.Cancel();  // and stop computing answers for it
      }
      if (!replies_.empty() && !broken_) {
        WriteFrontLocked();
      } else {
        replies_.clear();
        writing_ = false;
        done = DoneLocked();
      }
    }
    if (done) Finish(*done);
  }

  // The client cancelled the stream or its deadline passed: its calls' reads end, and
  // executions only they waited for are cancelled.
  void OnCancel() override { cancel_.Cancel(); }
  void OnDone() override { delete this; }

 private:
  // QueueLocked queues a reply, or drops it if the client is gone; returns DoneLocked().
  std::optional<grpc::Status> QueueLocked(v1::CallReply reply) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (broken_) return DoneLocked();
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
  const CancelToken cancel_;  // one for every call on the stream
  v1::CallRequest request_;
  std::mutex mu_;  // std, not absl: TSan sees it (Debian's Abseil is uninstrumented)
  std::deque<v1::CallReply> replies_ ABSL_GUARDED_BY(mu_);  // front: being written
  int answers_pending_ ABSL_GUARDED_BY(mu_) = 0;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::ServerBidiReactor<v1::CallRequest, v1::CallReply>* TurbineService::CallStream(
    grpc::CallbackServerContext* context) {
  return new CallStreamReactor(*this, context);
}

}  // namespace turbine::server
