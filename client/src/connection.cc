#include "connection.h"

#include <absl/strings/str_cat.h>

#include <utility>

namespace turbine::client::detail {
namespace {

std::shared_ptr<grpc::Channel> MakeChannel(const ConnectOptions& options) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  return grpc::CreateCustomChannel(options.address, grpc::InsecureChannelCredentials(), args);
}

}  // namespace

Connection::Connection(ConnectOptions options_in)
    : options(std::move(options_in)),
      channel(MakeChannel(options)),
      turbine(v1::Turbine::NewStub(channel)),
      health(grpc::health::v1::Health::NewStub(channel)) {}

void Connection::PrepareContext(grpc::ClientContext& context, bool with_deadline) const {
  if (!options.token.empty()) {
    context.AddMetadata("authorization", absl::StrCat("Bearer ", options.token));
  }
  if (with_deadline) {
    context.set_deadline(std::chrono::system_clock::now() + options.deadline);
  }
}

absl::Status Connection::ToStatus(const grpc::Status& status) const {
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED &&
      channel->GetState(/*try_to_connect=*/false) != GRPC_CHANNEL_READY) {
    return absl::UnavailableError(absl::StrCat("no connection to ", options.address, " within ",
                                               options.deadline.count(), " ms"));
  }
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

CallResult ResultFromReply(const v1::CallReply& reply) {
  CallResult result;
  switch (reply.result_case()) {
    case v1::CallReply::kValue:
      result.value = reply.value();
      break;
    case v1::CallReply::kError: {
      // An error with code OK would read as success; it is still an error.
      auto code = static_cast<absl::StatusCode>(reply.error().code());
      if (code == absl::StatusCode::kOk) code = absl::StatusCode::kUnknown;
      result.value = absl::Status(code, reply.error().message());
      break;
    }
    case v1::CallReply::RESULT_NOT_SET:
      result.value = absl::InternalError("the daemon sent a reply with neither value nor error");
      break;
  }
  result.ref = reply.ref();
  result.source = reply.source();
  result.micros = reply.micros();
  result.id = reply.id();
  return result;
}

}  // namespace turbine::client::detail
