// watch.cc — the Watch RPC (watch.h).
#include "watch.h"

#include <utility>

namespace turbine::server {
namespace {

// ResultKey is what decides whether a watcher sees a new message: the value or the error.
std::string ResultKey(const v1::CallReply& reply) {
  return reply.has_error() ? "e" + reply.error().SerializeAsString()
                           : "v" + reply.value().SerializeAsString();
}

}  // namespace

grpc::ServerWriteReactor<v1::CallReply>* TurbineService::Watch(
    grpc::CallbackServerContext* context, const v1::CallRequest* request) {
  return new WatchReactor(*this, context, *request);
}

WatchReactor::WatchReactor(TurbineService& service, grpc::CallbackServerContext* context,
                           const v1::CallRequest& request)
    : service_(service), context_(context), request_(request) {
  service_.CountRpc(Rpc::kWatch);
  if (!service_.Authorized(context)) {
    service_.CountError(grpc::StatusCode::UNAUTHENTICATED);
    std::lock_guard lock(mu_);
    FinishLocked(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing or wrong auth token"));
    return;
  }
  absl::StatusOr<PreparedCall> call = service_.Prepare(request);
  if (!call.ok()) {
    service_.CountError(static_cast<int>(call.status().code()));
    std::lock_guard lock(mu_);
    FinishLocked(ToGrpc(call.status()));
    return;
  }
  if (service_.Draining()) {  // a watch it could not keep: refused, not accepted
    std::lock_guard lock(mu_);
    FinishLocked(kDraining);
    return;
  }
  call_ = *call;
  // Told at once, before any result: a client whose daemon goes away before the first one
  // knows the daemon had the watch, and waits for it to come back (client.cc, Watch).
  context->AddInitialMetadata(std::string(kWatchAcceptedKey), "1");
  StartSendInitialMetadata();
  service_.AddWatch(this);
  Refresh();
}

void WatchReactor::Refresh() {
  {
    std::lock_guard lock(mu_);
    if (finished_) return;
    if (reading_) {
      read_again_ = true;
      return;
    }
    reading_ = true;
    // Counted while the watch is not finished (under mu_, which End takes): a stop that
    // finished it waits for the read (WaitForCutCalls).
    service_.BeginWatchRead();
  }
  Hold();
  call_.start = std::chrono::steady_clock::now();
  service_.Answer(call_, 0, cancel_, [this, service = &service_](v1::CallReply reply) {
    OnAnswer(std::move(reply));
    Release();                  // may delete this
    service->WatchReadEnded();  // the last touch of the service: it may be destroyed from here on
  });
}

void WatchReactor::OnAnswer(v1::CallReply reply) {
  // The call's task is gone (a pass removed it): not the call's answer. The task is made
  // again, as a new call of the request would make it, and read. On a thread of its own:
  // the read may have answered inline in Refresh, on an engine change listener's thread,
  // which must not wait (a call may wait for admission); nor may a worker start calls. The
  // read stays in progress (reading_) until then. A few times in a row at most: then the
  // error stands.
  const bool gone = reply.has_error() && !service_.engine().HasTask(call_.vc.task);
  remade_ = gone ? remade_ + 1 : 0;
  if (gone && remade_ <= 3) {
    Hold();
    service_.StartBatchCallsLater([this] {
      Remake();
      Release();  // may delete this
    });
    return;
  }
  Publish(std::move(reply));
}

void WatchReactor::Remake() {
  absl::StatusOr<PreparedCall> again = service_.Prepare(request_);
  if (!again.ok()) {
    // What a new call would be told (its receiver removed too, say).
    service_.CountError(static_cast<int>(again.status().code()));
    v1::CallReply failed;
    ErrorToWire(again.status(), failed.mutable_error());
    Publish(std::move(failed));
    return;
  }
  call_ = *std::move(again);
  {
    std::lock_guard lock(mu_);
    reading_ = false;
    read_again_ = false;
  }
  Refresh();
}

void WatchReactor::Publish(v1::CallReply reply) {
  bool again = false;
  {
    std::lock_guard lock(mu_);
    reading_ = false;
    again = std::exchange(read_again_, false);
    // Compared with the last reply queued, not with a copy of its bytes kept for the
    // purpose: a watch of a large value would hold it once more.
    const v1::CallReply* last = next_.has_value() ? &*next_ : has_result_ ? &in_flight_ : nullptr;
    if (!finished_ && (last == nullptr || ResultKey(reply) != ResultKey(*last))) {
      has_result_ = true;
      next_ = std::move(reply);
      if (!writing_) WriteNextLocked();
    }
  }
  if (again) Refresh();
}

void WatchReactor::WriteNextLocked() {
  in_flight_ = std::move(*next_);
  next_.reset();
  // Counted until written: a watcher that stops reading holds its reply in the daemon.
  absl::StatusOr<int64_t> held = service_.HoldReply(in_flight_);
  if (!held.ok()) {
    // Not kept until the watch is done: that waits for a client that may not be reading.
    // The watcher is not at fault (other clients' unread replies fill the budget): it is
    // told when to watch again, and the clients do (client.cc, Watch).
    in_flight_.Clear();
    context_->AddTrailingMetadata(std::string(kRetryAfterKey), "1000");
    FinishLocked(ToGrpc(held.status()));
    return;
  }
  held_bytes_ = *held;
  writing_ = true;
  StartWrite(&in_flight_);
}

void WatchReactor::OnWriteDone(bool ok) {
  std::lock_guard lock(mu_);
  service_.reply_budget().Release(std::exchange(held_bytes_, 0));
  writing_ = false;
  if (!ok) {
    FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the watcher went away"));
    return;
  }
  if (next_.has_value() && !finished_) WriteNextLocked();
}

void WatchReactor::OnCancel() { End(grpc::Status::CANCELLED); }

void WatchReactor::End(const grpc::Status& status) {
  cancel_.Cancel();
  std::lock_guard lock(mu_);
  FinishLocked(status);
}

void WatchReactor::FinishLocked(const grpc::Status& status) {
  if (finished_) return;
  finished_ = true;
  Finish(status);
}

void WatchReactor::OnDone() {
  service_.RemoveWatch(this);
  Release();
}

void WatchReactor::Release() {
  if (holds_.fetch_sub(1) == 1) delete this;
}

}  // namespace turbine::server
