// client.h — the C++ client of turbined, the Turbine daemon.
//
//   ConnectOptions options;                       // default: DefaultAddress("./.turbine")
//   std::unique_ptr<Client> client = Client::Connect(options).value();
//   absl::StatusOr<CallResult> r = client->Call("demo.fib", {Int(30)});
//   if (!r.ok())          -> the call did not get through (daemon down, unknown function,
//                            bad arguments, deadline): r.status()
//   if (!r->value.ok())   -> the function ran and raised an error: r->value.status()
//   else                  -> *r->value, with r->ref and r->source (memory, disk, shared, executed)
//
// Every unary call carries the deadline of ConnectOptions and the token, if any. gRPC
// status codes become absl::StatusCodes one to one; in addition, a deadline that passes
// before the daemon was ever reached is reported as kUnavailable, so "the daemon is not
// there" is always kUnavailable. A failed TLS handshake is kUnavailable too, with a message
// that starts "TLS handshake with <address> failed" and says the likely cause.
//
// A Client outlives its daemon: when the daemon stops and starts again (same address), the
// next call connects anew. While no daemon answers, calls fail at once with kUnavailable,
// unless ConnectOptions::wait_for_ready makes them wait (up to their deadline) for one. A
// Watch resumes by itself after a restart.
//
// Thread-safety: a Client may be used from any number of threads at once; its calls share
// one channel (one connection).
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "turbine/client/call_result.h"
#include "turbine/client/call_stream.h"
#include "turbine/v1/turbine.pb.h"

namespace grpc {
class ClientContext;
}  // namespace grpc

namespace turbine::client {

namespace detail {
struct Connection;
}  // namespace detail

inline constexpr char kDefaultDataDir[] = "./.turbine";

// DefaultAddress is where turbined listens by default for `data_dir`:
// "unix:" + absolute(data_dir) + "/turbined.sock".
std::string DefaultAddress(std::string_view data_dir = kDefaultDataDir);

// DaemonAnswered tells whether an error came from the daemon over a connection that was
// up (a kUnavailable from a daemon whose store cannot write, say) rather than from failing
// to reach it. Only kUnavailable errors are told apart; false for the others.
bool DaemonAnswered(const absl::Status& status);

// TlsOptions: TLS to a TCP address (turbined's --tls-cert; its unix sockets never use TLS).
// Files are PEM, read once by Client::Connect.
struct TlsOptions {
  // The CA certificates the daemon's certificate must be signed by. Empty: the system's
  // trusted roots.
  std::string ca_file = {};
  // Mutual TLS (turbined's --tls-client-ca): this client's certificate chain and private
  // key, both or neither.
  std::string cert_file = {};
  std::string key_file = {};
  // The name the daemon's certificate must carry, when it is not the host of the address
  // (connecting by IP address, or through a tunnel). Empty: the host of the address.
  std::string server_name = {};
};

// kDefaultDeadline bounds every unary call, CallStream::Close and a Watch's reconnecting.
inline constexpr std::chrono::milliseconds kDefaultDeadline{30'000};

struct ConnectOptions {
  // "unix:/path/to/turbined.sock" or "host:port". Empty: DefaultAddress().
  std::string address = {};
  // Sent as "authorization: Bearer <token>" on every call when not empty. Without `tls`
  // the channel is not encrypted: over TCP, send a token on loopback only. Printable ASCII
  // (0x20 to 0x7E) only, as a header value must be: Connect refuses a token with a line
  // break, a tab or a non-ASCII byte (kInvalidArgument).
  std::string token = {};
  // TLS (TCP addresses only); nullopt: plain text.
  std::optional<TlsOptions> tls = {};
  // Deadline of every unary call (Call, SetInputs, Stats, ListFunctions, Flush, Shutdown,
  // Ping). Streams have none, they live as long as their user: CallStream::Close waits at
  // most this long for the replies still owed, and a Watch whose daemon went away waits at
  // most this long for it to come back.
  std::chrono::milliseconds deadline = kDefaultDeadline;
  // false: a call made while the daemon cannot be reached fails at once with kUnavailable.
  // true: it waits for the daemon, up to its deadline (then kUnavailable too), e.g. for a
  // daemon that is starting or restarting.
  bool wait_for_ready = false;
  // Largest message sent or received; the daemon has its own limit.
  int max_message_bytes = 64 << 20;
};

// MakeCallRequest builds the request Call, Watch and CallStream::Send take.
v1::CallRequest MakeCallRequest(std::string_view function, std::vector<v1::Value> args,
                                std::optional<v1::TaskRef> this_ref = {});

// Cancellation stops a blocking Watch from another thread (a signal thread, a UI). It is
// one-shot: once cancelled, every Watch given it returns at once.
// Thread-safety: Cancel() may be called from any thread, any number of times.
class Cancellation {
 public:
  Cancellation() = default;
  Cancellation(const Cancellation&) = delete;
  Cancellation& operator=(const Cancellation&) = delete;

  void Cancel();
  bool cancelled() const;

 private:
  friend class Client;
  // Attach points Cancel() at the context of the running Watch. REQUIRES: Detach() before
  // the context is destroyed.
  void Attach(grpc::ClientContext* context);
  void Detach();

  // A std::mutex rather than absl::Mutex: ThreadSanitizer sees it (Debian's Abseil is not
  // instrumented).
  mutable std::mutex mu_;
  grpc::ClientContext* context_ = nullptr;  // guarded by mu_
  bool cancelled_ = false;                  // guarded by mu_
};

class Client {
 public:
  // Connect creates the channel. It does not wait for the daemon: the first call that
  // cannot reach it fails with kUnavailable. Errors: kInvalidArgument for bad options,
  // among them a TLS file that cannot be read (the message names it) and TLS to a unix
  // socket.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(ConnectOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Call calls `function` (its highest version) with `args`, on `this_ref` for methods.
  absl::StatusOr<CallResult> Call(std::string_view function, std::vector<v1::Value> args,
                                  std::optional<v1::TaskRef> this_ref = {});
  // This Call takes a full request, e.g. to ask for a specific version.
  absl::StatusOr<CallResult> Call(const v1::CallRequest& request);
  // This Call has no deadline: it lasts until answered or until `cancel` is cancelled
  // (kCancelled), for a caller that decides by itself when to give up (the CLI gives up
  // on a call during which the daemon stopped making progress).
  absl::StatusOr<CallResult> Call(const v1::CallRequest& request, Cancellation* cancel);

  // SetInputs sets all `inputs` atomically and durably; returns how many changed value.
  absl::StatusOr<uint32_t> SetInputs(std::vector<std::pair<std::string, v1::Value>> inputs);

  // DeleteInputs unsets `keys` atomically and durably; returns how many were set.
  absl::StatusOr<uint32_t> DeleteInputs(std::vector<std::string> keys);

  absl::StatusOr<v1::StatsReply> Stats();
  absl::StatusOr<std::vector<v1::FunctionInfo>> ListFunctions();
  // Graph gives the dependency cone of a call's task as the daemon holds it now.
  absl::StatusOr<v1::GraphReply> Graph(const v1::GraphRequest& request);
  // Why tells why a call's task holds its current value, down to the root causes.
  absl::StatusOr<v1::WhyReply> Why(const v1::WhyRequest& request);
  // Trace records what the daemon executes for `seconds` (0: 10) and returns the trace, in
  // the Chrome Trace Event format; its deadline is `seconds` plus the usual one.
  absl::StatusOr<v1::TraceReply> Trace(uint32_t seconds);
  // Flush makes the daemon write a snapshot now; returns how many tasks it wrote.
  absl::StatusOr<uint64_t> Flush();
  // CollectGarbage makes the daemon run a garbage collection pass of its store now; returns
  // what it removed once the space is reclaimed (a pass of a large store can take longer
  // than the default deadline: see ConnectOptions::deadline).
  absl::StatusOr<v1::CollectGarbageReply> CollectGarbage();
  // This CollectGarbage has no deadline: it lasts until answered or until `cancel` is
  // cancelled (kCancelled; the daemon's pass goes on). Stats() tells meanwhile how far the
  // pass is (gc_phase, gc_pass_scanned_tasks, gc_pass_removed_tasks), which is how the CLI
  // waits for a pass of any length while the daemon answers.
  absl::StatusOr<v1::CollectGarbageReply> CollectGarbage(Cancellation* cancel);
  // Shutdown asks the daemon to stop gracefully; it returns once the daemon has accepted.
  absl::Status Shutdown();
  // Ping asks the standard health service: OK once the daemon serves, kUnavailable while it
  // starts (NOT_SERVING) or when it cannot be reached.
  absl::Status Ping();

  // Watch calls `on_value` with the current result of `request`, then again each time it
  // changes, until `on_value` returns false, `cancel` is cancelled (both: OK) or the stream
  // ends (its status). Blocks the calling thread; `on_value` runs on it.
  //
  // When the connection breaks (the daemon restarts), Watch waits up to the deadline for
  // the daemon to answer again and watches on; the result at that point is delivered if it
  // differs from the last one delivered, so no change made meanwhile is missed and none is
  // delivered twice. A daemon that does not come back in time ends it with kUnavailable.
  // A daemon whose memory for unread replies is full (other clients not reading theirs)
  // ends the watch of a large value asking it to come back later: Watch waits as asked
  // (1 s, doubling while it is refused again, up to 30 s, each wait times a random 0.5 to
  // 1.5) and watches on, just as after a restart. Before the first result, a Watch waits
  // for no daemon as a call does: kUnavailable at once, or with wait_for_ready once none
  // served within the deadline.
  absl::Status Watch(const v1::CallRequest& request,
                     const std::function<bool(const CallResult&)>& on_value,
                     Cancellation* cancel = nullptr);

  // OpenCallStream opens a pipelined stream (see call_stream.h). With `on_reply`, replies
  // go to it; without, read them with CallStream::Next(). The stream keeps the connection
  // alive: it may outlive this Client.
  absl::StatusOr<std::unique_ptr<CallStream>> OpenCallStream(
      CallStream::ReplyCallback on_reply = nullptr);

  const ConnectOptions& options() const;

 private:
  explicit Client(std::shared_ptr<const detail::Connection> connection);
  // WaitForDaemon waits until the daemon's health service says SERVING (OK), `until`
  // passes (kUnavailable) or `cancel` is cancelled (kCancelled).
  absl::Status WaitForDaemon(std::chrono::steady_clock::time_point until, Cancellation* cancel);

  std::shared_ptr<const detail::Connection> connection_;
};

}  // namespace turbine::client
