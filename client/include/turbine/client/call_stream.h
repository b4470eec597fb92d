// call_stream.h — many calls in flight on one bidirectional stream (rpc CallBatches).
//
//   auto stream = client->OpenCallStream();
//   for (int i = 0; i < 1000; ++i) (*stream)->Send(MakeCallRequest("demo.fib", {Int(i)}));
//   for (int i = 0; i < 1000; ++i) std::optional<CallResult> r = (*stream)->Next();  // by r->id
//   absl::Status s = (*stream)->Close();
//
// Next waits for a reply as long as the stream may still send one: a loop of Next until
// nullopt ends only after Close (or once the stream failed).
//
// Send never waits for a reply, nor for the network: requests queue in memory, and those
// sent while the previous message is being written leave together in one CallBatch (up to
// 4,096 calls or 64 KiB), so pipelined calls are batched without asking. Replies arrive as
// the daemon finishes them, batched the same way and not in request order; CallResult::id
// says which request each answers.
//
// Thread-safety: Send, Close and Cancel may be called from any thread, also from the reply
// callback. Next is for one reader thread at a time.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <functional>
#include <memory>
#include <optional>

#include "turbine/client/call_result.h"
#include "turbine/v1/turbine.pb.h"

namespace turbine::client {

namespace detail {
struct Connection;
class CallStreamReactor;
}  // namespace detail

class CallStream {
 public:
  // ReplyCallback receives each reply on a gRPC thread, one at a time, in arrival order. It
  // must not block: the next reply is read only after it returns.
  using ReplyCallback = std::function<void(CallResult)>;

  // The destructor cancels the stream if it was not closed, and waits until gRPC is done
  // with it. Destroy the stream (and the Client) from your own threads, never from a reply
  // callback: what gRPC runs on must not be torn down from within.
  ~CallStream();
  CallStream(const CallStream&) = delete;
  CallStream& operator=(const CallStream&) = delete;

  // Send queues `request`. A request with id 0 gets the next free id (1, 2, ...); do not
  // mix chosen and assigned ids. Returns the id the reply will carry. Errors:
  // kFailedPrecondition after Close or Cancel, or the stream's error once it failed;
  // kResourceExhausted for a request larger than ConnectOptions.max_message_bytes allows
  // (not sent: it would end the stream), the stream going on.
  absl::StatusOr<uint64_t> Send(v1::CallRequest request);

  // Next blocks for the next reply; nullopt once the stream has ended and every reply was
  // read (Close() then tells why it ended). REQUIRES: opened without a callback.
  std::optional<CallResult> Next();

  // Close says no more requests will come, waits for the replies still owed (at most the
  // connection's deadline, then it cancels) and returns the stream's final status: also
  // UNAVAILABLE "turbined is shutting down" after every reply came, when the daemon
  // stopped meanwhile and refused some of the calls (each said so in its reply). Called
  // from the reply callback, it cannot wait (the stream ends only after the callback
  // returns): it says no more requests will come and returns OK at once, and the replies
  // still owed go on arriving at the callback until the stream ends by itself.
  absl::Status Close();

  // Cancel abandons the stream at once: replies still owed will not come.
  void Cancel();

 private:
  friend class Client;  // opens streams (Client::OpenCallStream)
  static std::unique_ptr<CallStream> Open(std::shared_ptr<const detail::Connection> connection,
                                          ReplyCallback on_reply);
  explicit CallStream(std::unique_ptr<detail::CallStreamReactor> reactor);

  // Destroyed with the CallStream, on its owner's thread, after gRPC's last callback on it.
  std::unique_ptr<detail::CallStreamReactor> reactor_;
};

}  // namespace turbine::client
