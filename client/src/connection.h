// connection.h — what a Client and its CallStreams share: the options, the channel to the
// daemon and its stubs, plus the conversions at the gRPC edge.
//
// Thread-safety: all methods may be called from any thread; gRPC channels and stubs are
// thread-safe.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <grpcpp/grpcpp.h>

#include <memory>
#include <mutex>

#include "channel_watcher.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "turbine/client/call_result.h"
#include "turbine/client/client.h"
#include "turbine/v1/turbine.grpc.pb.h"

namespace turbine::client::detail {

// Link is one gRPC channel to the daemon (one connection at a time) with its stubs. A call
// keeps the link it started on until it ends.
struct Link {
  explicit Link(std::shared_ptr<grpc::Channel> channel);
  ~Link();

 private:
  // Declared before the channel, so destroyed after it: the channel's shutdown wakes the
  // watcher's thread (channel_watcher.h).
  std::unique_ptr<ChannelWatcher> watcher_;

 public:
  const std::shared_ptr<grpc::Channel> channel;
  const std::unique_ptr<v1::Turbine::Stub> turbine;
  const std::unique_ptr<grpc::health::v1::Health::Stub> health;
};

class Connection {
 public:
  // Create checks `options` (kInvalidArgument) and reads the TLS files, if any.
  static absl::StatusOr<std::shared_ptr<const Connection>> Create(ConnectOptions options);
  Connection(ConnectOptions options, std::shared_ptr<grpc::ChannelCredentials> credentials);

  // CurrentLink is the link for a new call. If the last attempt to connect failed, it is
  // first replaced by a new link, which connects when called on (connection.cc says why).
  std::shared_ptr<const Link> CurrentLink() const;

  // PrepareContext adds the token, wait-for-ready and, for unary calls, the deadline.
  void PrepareContext(grpc::ClientContext& context, bool with_deadline) const;
  // ToStatus converts code for code, except that a deadline which passed while `link` never
  // reached the daemon becomes kUnavailable: callers (and the CLI's exit codes) then have
  // one code for "not reachable". A TLS handshake that failed says so, and why it likely
  // did.
  absl::Status ToStatus(const grpc::Status& status, const Link& link) const;

  const ConnectOptions options;

 private:
  std::shared_ptr<const Link> NewLink() const;

  const std::shared_ptr<grpc::ChannelCredentials> credentials_;
  mutable std::mutex mu_;
  mutable std::shared_ptr<const Link> link_;  // guarded by mu_
};

CallResult ResultFromReply(const v1::CallReply& reply);

}  // namespace turbine::client::detail
