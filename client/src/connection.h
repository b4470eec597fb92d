// connection.h — what a Client and its CallStreams share: the channel, the stubs and the
// options, plus the conversions at the gRPC edge.
//
// Thread-safety: immutable after construction; gRPC channels and stubs are thread-safe.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <grpcpp/grpcpp.h>

#include <memory>

#include "grpc/health/v1/health.grpc.pb.h"
#include "turbine/client/call_result.h"
#include "turbine/client/client.h"
#include "turbine/v1/turbine.grpc.pb.h"

namespace turbine::client::detail {

struct Connection {
  // Create checks `options` (kInvalidArgument) and reads the TLS files, if any.
  static absl::StatusOr<std::shared_ptr<const Connection>> Create(ConnectOptions options);
  Connection(ConnectOptions options, std::shared_ptr<grpc::ChannelCredentials> credentials);

  // PrepareContext adds the token, wait-for-ready and, for unary calls, the deadline.
  void PrepareContext(grpc::ClientContext& context, bool with_deadline) const;
  // ToStatus converts code for code, except that a deadline which passed while the channel
  // never reached the daemon becomes kUnavailable: callers (and the CLI's exit codes) then
  // have one code for "not reachable". A TLS handshake that failed says so, and why it
  // likely did.
  absl::Status ToStatus(const grpc::Status& status) const;

  const ConnectOptions options;
  const std::shared_ptr<grpc::Channel> channel;
  const std::unique_ptr<v1::Turbine::Stub> turbine;
  const std::unique_ptr<grpc::health::v1::Health::Stub> health;
};

CallResult ResultFromReply(const v1::CallReply& reply);

}  // namespace turbine::client::detail
