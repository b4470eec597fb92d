#include "turbine/client/call_stream.h"

#include <absl/strings/str_cat.h>
#include <google/protobuf/io/coded_stream.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <utility>

#include "connection.h"

namespace turbine::client {
namespace detail {

// Requests sent while a write is in flight go out together, as one CallBatch of at most
// this many calls and this many bytes (framing counted): a message must fit the daemon's
// --max-message-bytes, which the client does not know; 64 KiB fits a daemon set that low,
// and still carries thousands of small calls.
constexpr int kBatchCalls = 4096;
constexpr size_t kBatchBytes = 64 << 10;
// What a CallBatch holds besides its calls, at most: room kept under a message's limit.
constexpr size_t kBatchFraming = 64;

// BatchBytes is how large a batch grows: 64 KiB, or less for a client whose own limit is
// lower (Send refuses a call larger than that limit).
size_t BatchBytes(int max_message_bytes) {
  const size_t limit = static_cast<size_t>(max_message_bytes);
  return limit > kBatchFraming ? std::min(kBatchBytes, limit - kBatchFraming) : 1;
}

// CallStreamReactor drives one CallBatches RPC with gRPC's callback API. One read is always
// pending; writes go out one at a time (gRPC allows one in flight): what was sent while one
// was in flight waits in a queue and leaves as the next batch, so calls pipelined faster
// than the network takes them share messages, and a lone call leaves at once. A hold
// keeps the RPC open until no more writes can come (Close, Cancel, or the stream ended);
// then it half-closes and the daemon ends the stream once it has answered everything.
//
// Its lock is a std::mutex, not absl::Mutex: Debian's Abseil is built with deadlock
// detection on (a global graph update per lock, on the path of every streamed call) and
// without ThreadSanitizer instrumentation.
//
// The CallStream owns its reactor and destroys it on its owner's thread once OnDone has
// run: never on a gRPC thread. Destroying the reactor may destroy the last reference to the
// channel (the Client may be gone), and a channel destroyed on one of gRPC's callback
// threads makes gRPC 1.51 join that thread from itself and then use its freed completion
// queue (an abort: "ref_counted.h: assertion failed: prior > 0").
class CallStreamReactor final : public grpc::ClientBidiReactor<v1::CallBatch, v1::ReplyBatch> {
 public:
  CallStreamReactor(std::shared_ptr<const Connection> connection,
                    CallStream::ReplyCallback on_reply)
      : connection_(std::move(connection)),
        link_(connection_->CurrentLink()),
        on_reply_(std::move(on_reply)),
        batch_bytes_(BatchBytes(connection_->options.max_message_bytes)) {}

  void Start() {
    connection_->PrepareContext(context_, /*with_deadline=*/false);
    link_->turbine->async()->CallBatches(&context_, this);
    AddHold();
    StartRead(&incoming_);
    StartCall();
  }

  absl::StatusOr<uint64_t> Send(v1::CallRequest request) {
    uint64_t id;
    {
      std::lock_guard lock(mu_);
      if (closing_) return absl::FailedPreconditionError("the call stream is closed");
      if (broken_) {
        if (done_ && !final_status_.ok()) return connection_->ToStatus(final_status_, *link_);
        return absl::FailedPreconditionError("the daemon ended the call stream");
      }
      // Sent, a request larger than a message may be would end the stream and every call
      // on it (gRPC: "Sent message larger than max"): refused alone.
      if (const size_t bytes = request.ByteSizeLong();
          bytes + kBatchFraming > static_cast<size_t>(connection_->options.max_message_bytes)) {
        return absl::ResourceExhaustedError(
            absl::StrCat("the call is ", bytes, " bytes, more than this client sends in a message ",
                         "(ConnectOptions.max_message_bytes ",
                         connection_->options.max_message_bytes, "); the stream goes on"));
      }
      if (request.id() == 0) request.set_id(next_id_++);
      id = request.id();
      if (writing_) {
        queued_.push_back(std::move(request));
        return id;
      }
      writing_ = true;
      outgoing_.Clear();
      *outgoing_.add_calls() = std::move(request);
    }
    StartWrite(&outgoing_);
    return id;
  }

  std::optional<CallResult> Next() {
    if (on_reply_) return std::nullopt;
    std::unique_lock lock(mu_);
    changed_.wait(lock, [this] { return !replies_.empty() || reads_done_; });
    if (replies_.empty()) return std::nullopt;
    CallResult result = std::move(replies_.front());
    replies_.pop_front();
    return result;
  }

  absl::Status Close() {
    StopWriting(/*drop_queued=*/false);
    // From inside the reply callback, waiting would wait for itself: the stream ends only
    // after the callback returns (gRPC reads the next reply then).
    if (delivering_ == this) return absl::OkStatus();
    std::unique_lock lock(mu_);
    if (!changed_.wait_for(lock, connection_->options.deadline, [this] { return done_; })) {
      lock.unlock();
      context_.TryCancel();
      AwaitDone();
      return absl::DeadlineExceededError("the daemon did not answer every call on the stream");
    }
    return connection_->ToStatus(final_status_, *link_);
  }

  void Cancel() {
    context_.TryCancel();
    StopWriting(/*drop_queued=*/true);
  }

  void AwaitDone() {
    std::unique_lock lock(mu_);
    changed_.wait(lock, [this] { return done_; });
  }

 private:
  void OnWriteDone(bool ok) override {
    bool write_next = false;
    bool half_close = false;
    {
      std::lock_guard lock(mu_);
      if (!ok) {
        broken_ = true;  // OnDone will say why
        queued_.clear();
      }
      if (!queued_.empty()) {
        TakeBatchLocked();
        write_next = true;
      } else {
        writing_ = false;
        half_close = TakeHalfCloseTurn();
      }
    }
    if (write_next) StartWrite(&outgoing_);
    if (half_close) HalfClose();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      bool half_close;
      {
        std::lock_guard lock(mu_);
        reads_done_ = true;
        broken_ = true;  // the daemon ended the stream: writes would go nowhere
        queued_.clear();
        half_close = TakeHalfCloseTurn();
      }
      changed_.notify_all();
      if (half_close) HalfClose();
      return;
    }
    if (on_reply_) {
      delivering_ = this;
      for (const v1::CallReply& reply : incoming_.replies()) on_reply_(ResultFromReply(reply));
      delivering_ = nullptr;
    } else {
      {
        std::lock_guard lock(mu_);
        for (const v1::CallReply& reply : incoming_.replies()) {
          replies_.push_back(ResultFromReply(reply));
        }
      }
      changed_.notify_all();
    }
    StartRead(&incoming_);  // after delivering: one callback at a time, in arrival order
  }

  // TakeBatchLocked moves the queued requests that fit in one batch into outgoing_.
  // REQUIRES: mu_ held, queued_ not empty.
  void TakeBatchLocked() {
    outgoing_.Clear();
    size_t bytes = 0;
    while (!queued_.empty() && outgoing_.calls_size() < kBatchCalls) {
      // The call, its length (a varint) and its field's tag, as CallBatch holds it.
      const size_t call_bytes = queued_.front().ByteSizeLong();
      const size_t size =
          call_bytes + 1 + google::protobuf::io::CodedOutputStream::VarintSize64(call_bytes);
      if (bytes > 0 && bytes + size > batch_bytes_) break;
      bytes += size;
      *outgoing_.add_calls() = std::move(queued_.front());
      queued_.pop_front();
    }
  }

  void OnDone(const grpc::Status& status) override {
    // Last callback. The waiters are woken under the lock: once done_ is seen, the
    // CallStream may destroy the reactor, so nothing here touches it after the unlock.
    std::lock_guard lock(mu_);
    final_status_ = status;
    broken_ = true;
    reads_done_ = true;
    done_ = true;
    changed_.notify_all();
  }

  void StopWriting(bool drop_queued) {
    bool half_close;
    {
      std::lock_guard lock(mu_);
      closing_ = true;
      if (drop_queued) queued_.clear();
      half_close = TakeHalfCloseTurn();
    }
    if (half_close) HalfClose();
  }

  // TakeHalfCloseTurn is true for exactly one caller, once no write can follow.
  // REQUIRES: mu_ held.
  bool TakeHalfCloseTurn() {
    if (half_closed_ || writing_ || !(closing_ || broken_)) return false;
    half_closed_ = true;
    return true;
  }

  void HalfClose() {
    StartWritesDone();
    RemoveHold();
  }

  // The stream whose reply callback this thread is running, if any.
  static thread_local const CallStreamReactor* delivering_;

  const std::shared_ptr<const Connection> connection_;
  const std::shared_ptr<const Link> link_;  // the stream's channel, for as long as it lasts
  const CallStream::ReplyCallback on_reply_;
  const size_t batch_bytes_;  // BatchBytes
  grpc::ClientContext context_;
  // The read buffer; only the read chain (one read at a time) touches it.
  v1::ReplyBatch incoming_;
  // The batch being written; only its writer (whoever set writing_) touches it.
  v1::CallBatch outgoing_;

  // mu_ guards everything below; changed_ signals new replies, the end, and done_.
  std::mutex mu_;
  std::condition_variable changed_;
  std::deque<v1::CallRequest> queued_;
  std::deque<CallResult> replies_;
  uint64_t next_id_ = 1;
  bool writing_ = false;
  bool closing_ = false;     // Close or Cancel: no more Sends
  bool broken_ = false;      // the RPC failed or ended: no more writes can go out
  bool reads_done_ = false;  // no more replies will come
  bool half_closed_ = false;
  bool done_ = false;  // OnDone ran
  grpc::Status final_status_;
};

thread_local const CallStreamReactor* CallStreamReactor::delivering_ = nullptr;

}  // namespace detail

std::unique_ptr<CallStream> CallStream::Open(std::shared_ptr<const detail::Connection> connection,
                                             ReplyCallback on_reply) {
  auto reactor =
      std::make_unique<detail::CallStreamReactor>(std::move(connection), std::move(on_reply));
  reactor->Start();
  return std::unique_ptr<CallStream>(new CallStream(std::move(reactor)));
}

CallStream::CallStream(std::unique_ptr<detail::CallStreamReactor> reactor)
    : reactor_(std::move(reactor)) {}

CallStream::~CallStream() {
  reactor_->Cancel();  // a no-op on a stream already closed
  reactor_->AwaitDone();
  // reactor_ is destroyed here, on this thread (CallStreamReactor says why).
}

absl::StatusOr<uint64_t> CallStream::Send(v1::CallRequest request) {
  return reactor_->Send(std::move(request));
}

std::optional<CallResult> CallStream::Next() { return reactor_->Next(); }

absl::Status CallStream::Close() { return reactor_->Close(); }

void CallStream::Cancel() { reactor_->Cancel(); }

}  // namespace turbine::client
