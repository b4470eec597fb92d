// call_stream.cc — CallStream and CallBatches: many calls in flight on one bidirectional
// stream, one call per message or many.
//
// Requests are read one after another without waiting for answers; each answer is
// written as soon as it is ready (so replies come out of order, matched by id). gRPC
// allows one write at a time, so ready replies queue; on CallBatches everything queued
// goes out as one ReplyBatch, and the replies of the calls of one request batch that
// answer at once (cached ones) are written together. A batch's calls are started one by one
// under the same flow control as a stream's requests (below). The stream finishes once the client
// stopped sending and every call it sent was answered. Requests are read as bytes and
// parsed here (request_parsing.h): one that does not parse is that call's INVALID_ARGUMENT.
//
// Flow control (reply_budget.h): while the client leaves replies unread, the queue grows to
// its limit and then no further request is read until the client catches up.
//
// A stream still open when a stopping daemon's grace ends is finished UNAVAILABLE
// "turbined is shutting down" (CutShort), answered or not: the answers still to come back
// are dropped, and the reactor stays until they have (OnDone and the last answer agree on
// who deletes it). One that ends within the grace ends so too if the stop refused any of
// its calls.
#include <absl/base/thread_annotations.h>

#include <algorithm>
#include <array>
#include <mutex>
#include <optional>
#include <shared_mutex>

#include <deque>
#include <string_view>
#include <type_traits>
#include <utility>

#include "reply_budget.h"
#include "request_parsing.h"
#include "service.h"

namespace turbine::server {
namespace {

// StartBatchCalls starts at most this many of a batch's calls per turn of its lock.
constexpr size_t kMostCallsPerStart = 256;

// A ReplyBatch holds at most this many bytes of replies (one larger reply goes alone):
// a batch is built in memory before it is written, and the client parses it whole.
constexpr int64_t kReplyBatchBytes = 1 << 20;

// Reply is v1::CallReply on CallStream (one reply per message) and v1::ReplyBatch on
// CallBatches.
template <class Reply>
class CallStreamReactor final : public grpc::ServerBidiReactor<grpc::ByteBuffer, Reply>,
                                public CuttableCall {
  static constexpr bool kBatched = std::is_same_v<Reply, v1::ReplyBatch>;
  using Base = grpc::ServerBidiReactor<grpc::ByteBuffer, Reply>;
  using Base::Finish;
  using Base::StartRead;
  using Base::StartWrite;

 public:
  CallStreamReactor(TurbineService& service, grpc::CallbackServerContext* context)
      : service_(service), context_(context), budget_(service.reply_budget()) {
    service_.CountRpc(kBatched ? Rpc::kCallBatches : Rpc::kCallStream);
    if (!service_.Authorized(context)) {
      service_.CountError(grpc::StatusCode::UNAUTHENTICATED);
      std::lock_guard lock(mu_);
      reads_done_ = true;
      finished_ = true;
      Finish(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing or wrong auth token"));
      return;
    }
    if (service_.Draining()) {
      // Refused whole, as a unary call is: answering each of its calls UNAVAILABLE would
      // read as those calls failing, not the daemon stopping.
      service_.CountError(grpc::StatusCode::UNAVAILABLE);
      std::lock_guard lock(mu_);
      reads_done_ = true;
      finished_ = true;
      context_->AddTrailingMetadata("grpc-retry-pushback-ms", "-1");  // no retry: it stops
      Finish(kDraining);
      return;
    }
    service_.TrackCall(this);
    StartRead(&raw_request_);
  }

  void CutShort(const grpc::Status& status) override {
    TurbineService& service = service_;
    bool ended = false;
    {
      std::lock_guard lock(mu_);
      cut_ = true;
      finished_ = true;  // by this Finish, not DoneLocked's
      reads_done_ = true;
      broken_ = true;  // replies from here on are dropped
      ended = answers_pending_ == 0 && !starting_;
      if (std::exchange(paused_, false)) budget_.StreamResumed();
      if (!writing_) DropQueuedLocked();
    }
    cancel_.Cancel();  // the pending answers come back (dropped) as their reads end
    context_->AddTrailingMetadata("grpc-retry-pushback-ms", "-1");
    Finish(status);  // OnDone may delete this from here on, if no answer is pending
    if (ended) service.CutCallEnded();
  }

  void OnReadDone(bool ok) override {
    {
      std::lock_guard lock(mu_);
      if (cut_) return;  // finished: no further read
    }
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
    if constexpr (kBatched) {
      if (std::optional<grpc::Status> refused = SplitBatch()) {  // nothing more is read
        Finish(*refused);
        return;
      }
      {
        std::lock_guard lock(mu_);
        // Cut while the batch was split: CutShort counted on no start to come.
        if (cut_) return;
        starting_ = true;
      }
      StartBatchCalls();  // then reads the next request, or pauses
      return;
    }
    if (std::optional<grpc::Status> done = Handle(raw_request_)) {
      Finish(*done);
      return;
    }
    // `raw_request_` is free again: Prepare copied what it needs. While paused, nothing here
    // reads; a write or an answer that frees room resumes (ResumeLocked). Reads start under
    // mu_ (gRPC runs no reaction inline): CutShort, which finishes the stream, cannot come
    // between the decision and the read.
    std::lock_guard lock(mu_);
    if (cut_) return;
    if (ReadAllowedLocked()) {
      StartRead(&raw_request_);
    } else {
      paused_ = true;
      budget_.StreamPaused();
    }
  }

  void OnWriteDone(bool ok) override {
    std::optional<grpc::Status> done;
    Resume resume = Resume::kNo;
    {
      std::lock_guard lock(mu_);
      ReleaseWrittenLocked();
      if (!ok) {
        broken_ = true;    // the client is gone: drop the rest, finish when idle
        cancel_.Cancel();  // and stop computing answers for it
      }
      if (!replies_.empty() && !broken_) {
        WriteQueuedLocked();
      } else {
        DropQueuedLocked();
        writing_ = false;
        done = DoneLocked();
      }
      resume = ResumeLocked();
    }
    if (done) Finish(*done);
    if (resume == Resume::kStartCalls) StartBatchCalls();
  }

  // The client cancelled the stream or its deadline passed: its calls' reads end, and
  // executions only they waited for are cancelled.
  void OnCancel() override { cancel_.Cancel(); }
  void OnDone() override {
    bool last = false;
    {
      std::lock_guard lock(mu_);
      grpc_done_ = true;
      last = answers_pending_ == 0 && !starting_;
      // gRPC's last use of it: freed now, as the reactor may outlive the server.
      raw_request_.Clear();
    }
    if (last) delete this;  // otherwise the last answer does, once cut short
  }

 private:
  // SplitBatch takes the batch in `raw_request_` apart into batch_calls_. Returns the
  // stream's final status if the batch is refused. Called only with no batch call left to
  // start, so nothing else touches the batch meanwhile.
  std::optional<grpc::Status> SplitBatch() {
    batch_ = FlattenRequest(raw_request_);
    std::vector<std::string_view> calls;
    if (absl::Status split = SplitCallBatch(batch_, &calls); !split.ok()) {
      service_.CountError(static_cast<int>(split.code()));
      return RefuseBatch(ToGrpc(split));
    }
    std::lock_guard lock(mu_);
    batch_calls_ = std::move(calls);
    next_call_ = 0;
    return std::nullopt;
  }

  // StartBatchCalls starts the calls of the batch not started yet, each only while the
  // reply budget allows it as it would allow reading a request (reply_budget.h): a batch of
  // thousands of calls is held back as a stream of as many requests is. Their replies are
  // held while it goes, so that the calls answered at once leave in one ReplyBatch. Out of
  // budget, it writes what it holds and pauses: a write or an answer that frees room starts
  // it again (ResumeLocked; an answer, on an engine worker, through the service's thread for
  // it). With the batch all started, or its stream cancelled, it reads the next request.
  // REQUIRES: starting_ set by the caller (one thread at a time runs this), mu_ not held.
  void StartBatchCalls() {
    TurbineService& service = service_;  // `this` may be deleted before the last use
    std::array<std::string_view, kMostCallsPerStart> calls;
    for (;;) {
      size_t count = 0;
      std::optional<grpc::Status> done;
      bool cut_ended = false;
      bool last = false;
      {
        std::lock_guard lock(mu_);
        const bool left = !cut_ && !broken_ && !cancel_.cancelled() &&
                          next_call_ < batch_calls_.size();
        if (left && ReadAllowedLocked()) {
          holding_writes_ = true;
          count = std::min(CallsAllowedLocked(), batch_calls_.size() - next_call_);
          for (size_t i = 0; i < count; ++i) calls[i] = batch_calls_[next_call_++];
        } else {
          if (!left) {  // all started, or their replies would be dropped or not wanted
            batch_calls_.clear();
            next_call_ = 0;
          }
          holding_writes_ = false;
          if (!writing_ && !replies_.empty() && !broken_) {
            writing_ = true;
            WriteQueuedLocked();
          }
          starting_ = false;
          if (left || (!cut_ && !ReadAllowedLocked())) {
            paused_ = true;
            budget_.StreamPaused();
          } else if (!cut_) {
            StartRead(&raw_request_);  // under mu_: see OnReadDone
          }
          done = DoneLocked();
          cut_ended = cut_ && answers_pending_ == 0;
          last = grpc_done_ && answers_pending_ == 0;
        }
      }
      if (count == 0) {
        if (done) Finish(*done);
        if (cut_ended) service.CutCallEnded();  // the last touch of the service
        if (last) delete this;
        return;
      }
      // Never the stream's end: DoneLocked waits while calls are being started.
      for (size_t i = 0; i < count; ++i) (void)Handle(calls[i]);
    }
  }

  // RefuseBatch ends the stream: it reads no more, and finishes once the calls it started
  // have answered (DoneLocked; their replies are dropped).
  std::optional<grpc::Status> RefuseBatch(grpc::Status status) {
    std::lock_guard lock(mu_);
    reads_done_ = true;
    broken_ = true;
    refused_ = status;
    cancel_.Cancel();
    return DoneLocked();
  }

  // Handle starts the call in `bytes`, or queues its error.
  template <class Bytes>
  std::optional<grpc::Status> Handle(const Bytes& bytes) {
    absl::StatusOr<PreparedCall> call;
    uint64_t id = 0;
    if (absl::Status parsed = ParseRequest(bytes, &request_); parsed.ok()) {
      id = request_.id();
      call = service_.Prepare(request_);
    } else {
      id = UnparsedCallId(bytes);
      call = parsed;
    }
    bool stopping = false;
    if (call.ok() && !service_.BeginWork()) {
      call = absl::UnavailableError(kDraining.error_message());
      stopping = true;
    }
    if (!call.ok()) {
      service_.CountError(static_cast<int>(call.status().code()));
      v1::CallReply reply;
      reply.set_id(id);
      ErrorToWire(call.status(), reply.mutable_error());
      const int64_t reply_bytes = ReplyMemoryBytes(reply);
      std::lock_guard lock(mu_);
      refused_for_stop_ = refused_for_stop_ || stopping;
      return QueueLocked(std::move(reply), reply_bytes);
    } else {
      {
        std::lock_guard lock(mu_);
        if (cut_) {  // finished meanwhile: CutShort counted no answer to come
          service_.EndWork();
          return std::nullopt;
        }
        ++answers_pending_;
      }
      // Runs on an engine worker, which gRPC does not wait for: once mu_ is released, the
      // stream can finish (here or in OnWriteDone) and OnDone delete this reactor. So
      // nothing of `this` is touched after that, not even `service_`, unless this answer
      // is the last one of a stream already done. (A resumed read keeps the stream alive:
      // it cannot finish before that read completes.)
      service_.Answer(*call, id, cancel_, [this, &service = service_](v1::CallReply reply) {
        std::optional<grpc::Status> done;
        bool cut_ended = false;
        bool last = false;
        Resume resume = Resume::kNo;
        const int64_t reply_bytes = ReplyMemoryBytes(reply);  // not under mu_: a list is walked
        {
          std::lock_guard lock(mu_);
          --answers_pending_;
          done = QueueLocked(std::move(reply), reply_bytes);
          resume = ResumeLocked();
          cut_ended = cut_ && answers_pending_ == 0 && !starting_;
          last = grpc_done_ && answers_pending_ == 0 && !starting_;
        }
        if (resume == Resume::kStartCalls) {
          service.StartBatchCallsLater([this] { StartBatchCalls(); });  // not on this worker
        }
        if (done) Finish(*done);
        service.EndWork();
        if (cut_ended) service.CutCallEnded();  // the last touch of the service
        if (last) delete this;
      });
      return std::nullopt;
    }
  }

  // CallsAllowedLocked is how many of a batch's calls may start now, one lock for them all:
  // as many as could each answer with the largest reply so far within the stream's budget
  // (and the calls computing), at most kMostCallsPerStart. One until the first reply.
  // REQUIRES: ReadAllowedLocked().
  size_t CallsAllowedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (largest_reply_ == 0) return 1;
    const int64_t expected = queued_bytes_ + answers_pending_ * largest_reply_;
    const int64_t room = std::min<int64_t>((budget_.limits().stream_bytes - expected) / largest_reply_,
                                           kMaxCallsComputing - answers_pending_);
    return static_cast<size_t>(std::clamp<int64_t>(room, 1, kMostCallsPerStart));
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

  // ResumeLocked ends a pause that is no longer needed: it reads the next request (under
  // mu_, see OnReadDone), or says the caller is to go on starting the batch's calls
  // (StartBatchCalls, after releasing mu_).
  enum class Resume : uint8_t { kNo, kRead, kStartCalls };
  Resume ResumeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!paused_ || cut_ || !ReadAllowedLocked()) return Resume::kNo;
    paused_ = false;
    budget_.StreamResumed();
    if (next_call_ < batch_calls_.size() && !broken_) {
      starting_ = true;
      return Resume::kStartCalls;
    }
    StartRead(&raw_request_);
    return Resume::kRead;
  }

  // ReleaseWrittenLocked forgets what the finished write carried.
  void ReleaseWrittenLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if constexpr (kBatched) {
      Release(writing_bytes_);
      writing_bytes_ = 0;
      outgoing_.Clear();
    } else {
      Release(replies_.front().bytes);
      replies_.pop_front();
    }
  }

  void DropQueuedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const QueuedReply& queued : replies_) Release(queued.bytes);
    replies_.clear();
  }

  void Release(int64_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    queued_bytes_ -= bytes;
    budget_.Release(bytes);
  }

  // QueueLocked queues a reply, or drops it if the client is gone; returns DoneLocked().
  // `bytes` is ReplyMemoryBytes(reply).
  std::optional<grpc::Status> QueueLocked(v1::CallReply reply, int64_t bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (broken_) return DoneLocked();
    queued_bytes_ += bytes;
    largest_reply_ = std::max(largest_reply_, bytes);
    budget_.Add(bytes);
    replies_.push_back({std::move(reply), bytes});
    if (!writing_ && !holding_writes_) {
      writing_ = true;
      WriteQueuedLocked();
    }
    return std::nullopt;
  }

  // WriteQueuedLocked starts the next write: the front reply, or on CallBatches as many
  // queued replies as fit in one batch. REQUIRES: writing_ set by the caller.
  void WriteQueuedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if constexpr (kBatched) {
      // Within the message limit too, counting each reply's tag and length in the batch.
      constexpr int64_t kWrapping = 6;
      const int64_t most = std::min(kReplyBatchBytes, budget_.limits().message_bytes - 16);
      int64_t batch_bytes = 0;
      while (!replies_.empty()) {
        const auto wire_bytes = static_cast<int64_t>(replies_.front().reply.ByteSizeLong());
        if (batch_bytes > 0 && batch_bytes + wire_bytes + kWrapping > most) break;
        batch_bytes += wire_bytes + kWrapping;
        writing_bytes_ += replies_.front().bytes;
        *outgoing_.add_replies() = std::move(replies_.front().reply);
        replies_.pop_front();
      }
      StartWrite(&outgoing_);
    } else {
      // With more replies queued behind this one, let gRPC hold it and send several in one
      // frame: the next write flushes it, so nothing waits for long.
      grpc::WriteOptions options;
      if (replies_.size() > 1) options.set_buffer_hint();
      StartWrite(&replies_.front().reply, options);
    }
  }

  // DoneLocked tells, once, that the stream is done: the client stopped sending and every
  // call was answered and written. The caller then calls Finish with the status after
  // releasing mu_, and touches nothing of `this` afterwards (OnDone may delete it).
  std::optional<grpc::Status> DoneLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || !reads_done_ || answers_pending_ > 0 || writing_ || starting_) {
      return std::nullopt;
    }
    finished_ = true;
    if (!service_.TakeCall(this)) return std::nullopt;  // CutShort finishes it
    if (refused_) return *refused_;
    if (broken_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the client went away");
    if (!refused_for_stop_) return grpc::Status::OK;
    context_->AddTrailingMetadata("grpc-retry-pushback-ms", "-1");  // as every kDraining
    return kDraining;
  }

  TurbineService& service_;
  grpc::CallbackServerContext* const context_;
  ReplyBudget& budget_;
  const CancelToken cancel_;  // one for every call on the stream
  grpc::ByteBuffer raw_request_;
  v1::CallRequest request_;
  std::mutex mu_;  // std, not absl: TSan sees it (Debian's Abseil is uninstrumented)
  // Replies not yet written; on CallStream the front one is being written.
  // A reply waiting for its write, and what it holds in memory (ReplyMemoryBytes), which the
  // budget counts.
  struct QueuedReply {
    v1::CallReply reply;
    int64_t bytes;
  };
  std::deque<QueuedReply> replies_ ABSL_GUARDED_BY(mu_);
  // CallBatches: the batch being written, and its bytes (still counted as queued).
  v1::ReplyBatch outgoing_ ABSL_GUARDED_BY(mu_);
  int64_t writing_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // Replies queued or being written, counted in budget_ too.
  int64_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t largest_reply_ ABSL_GUARDED_BY(mu_) = 0;  // queued on this stream so far
  int answers_pending_ ABSL_GUARDED_BY(mu_) = 0;
  bool paused_ ABSL_GUARDED_BY(mu_) = false;  // not reading: the budget is spent
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool cut_ ABSL_GUARDED_BY(mu_) = false;        // finished by CutShort
  bool grpc_done_ ABSL_GUARDED_BY(mu_) = false;  // OnDone was called
  // CallBatches: the calls of one request batch are being started; replies wait for all.
  bool holding_writes_ ABSL_GUARDED_BY(mu_) = false;
  // CallBatches: the request batch (flattened; rewritten only when all its calls started),
  // its calls, the next one to start, and whether a thread is starting them
  // (StartBatchCalls), which keeps the reactor alive.
  std::string batch_;
  std::vector<std::string_view> batch_calls_ ABSL_GUARDED_BY(mu_);
  size_t next_call_ ABSL_GUARDED_BY(mu_) = 0;
  bool starting_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> refused_ ABSL_GUARDED_BY(mu_);  // a batch that was refused
  // A call came while the daemon stopped and was refused: the stream, though every call
  // has its reply, ends as one the stop cut short (kDraining), so that a client that
  // reads only its status learns of the stop.
  bool refused_for_stop_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::ServerBidiReactor<grpc::ByteBuffer, v1::CallReply>* TurbineService::OpenCallStream(
    grpc::CallbackServerContext* context) {
  return new CallStreamReactor<v1::CallReply>(*this, context);
}

grpc::ServerBidiReactor<grpc::ByteBuffer, v1::ReplyBatch>* TurbineService::OpenCallBatches(
    grpc::CallbackServerContext* context) {
  return new CallStreamReactor<v1::ReplyBatch>(*this, context);
}

}  // namespace turbine::server
