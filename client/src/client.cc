#include "turbine/client/client.h"

#include <absl/strings/str_cat.h>

#include <filesystem>
#include <utility>

#include "connection.h"

namespace turbine::client {

std::string DefaultAddress(std::string_view data_dir) {
  // Absolute, so the address names the same socket whatever directory gRPC resolves from.
  std::filesystem::path socket =
      (std::filesystem::absolute(std::filesystem::path(data_dir)) / "turbined.sock")
          .lexically_normal();
  return absl::StrCat("unix:", socket.string());
}

v1::CallRequest MakeCallRequest(std::string_view function, std::vector<v1::Value> args,
                                std::optional<v1::TaskRef> this_ref) {
  v1::CallRequest request;
  request.set_function(std::string(function));
  for (v1::Value& arg : args) *request.add_args() = std::move(arg);
  if (this_ref) *request.mutable_this_ref() = std::move(*this_ref);
  return request;
}

void Cancellation::Cancel() {
  std::lock_guard lock(mu_);
  cancelled_ = true;
  if (context_ != nullptr) context_->TryCancel();
}

bool Cancellation::cancelled() const {
  std::lock_guard lock(mu_);
  return cancelled_;
}

void Cancellation::Attach(grpc::ClientContext* context) {
  std::lock_guard lock(mu_);
  context_ = context;
  if (cancelled_) context_->TryCancel();
}

void Cancellation::Detach() {
  std::lock_guard lock(mu_);
  context_ = nullptr;
}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(ConnectOptions options) {
  if (options.address.empty()) options.address = DefaultAddress();
  if (options.deadline <= std::chrono::milliseconds::zero()) {
    return absl::InvalidArgumentError("ConnectOptions.deadline must be positive");
  }
  if (options.max_message_bytes <= 0) {
    return absl::InvalidArgumentError("ConnectOptions.max_message_bytes must be positive");
  }
  return std::unique_ptr<Client>(
      new Client(std::make_shared<const detail::Connection>(std::move(options))));
}

Client::Client(std::shared_ptr<const detail::Connection> connection)
    : connection_(std::move(connection)) {}

Client::~Client() = default;

const ConnectOptions& Client::options() const { return connection_->options; }

absl::StatusOr<CallResult> Client::Call(std::string_view function, std::vector<v1::Value> args,
                                        std::optional<v1::TaskRef> this_ref) {
  return Call(MakeCallRequest(function, std::move(args), std::move(this_ref)));
}

absl::StatusOr<CallResult> Client::Call(const v1::CallRequest& request) {
  grpc::ClientContext context;
  connection_->PrepareContext(context, /*with_deadline=*/true);
  v1::CallReply reply;
  grpc::Status status = connection_->turbine->Call(&context, request, &reply);
  if (!status.ok()) return connection_->ToStatus(status);
  return detail::ResultFromReply(reply);
}

absl::StatusOr<uint32_t> Client::SetInputs(std::vector<std::pair<std::string, v1::Value>> inputs) {
  v1::SetInputsRequest request;
  for (auto& [key, value] : inputs) {
    v1::InputEntry* entry = request.add_inputs();
    entry->set_key(std::move(key));
    *entry->mutable_value() = std::move(value);
  }
  grpc::ClientContext context;
  connection_->PrepareContext(context, /*with_deadline=*/true);
  v1::SetInputsReply reply;
  grpc::Status status = connection_->turbine->SetInputs(&context, request, &reply);
  if (!status.ok()) return connection_->ToStatus(status);
  return reply.changed();
}

absl::StatusOr<uint32_t> Client::DeleteInputs(std::vector<std::string> keys) {
  v1::DeleteInputsRequest request;
  for (std::string& key : keys) request.add_keys(std::move(key));
  grpc::ClientContext context;
  connection_->PrepareContext(context, /*with_deadline=*/true);
  v1::DeleteInputsReply reply;
  grpc::Status status = connection_->turbine->DeleteInputs(&context, request, &reply);
  if (!status.ok()) return connection_->ToStatus(status);
  return reply.deleted();
}

absl::StatusOr<v1::StatsReply> Client::Stats() {
  grpc::ClientContext context;
  connection_->PrepareContext(context, /*with_deadline=*/true);
  v1::StatsReply reply;
  grpc::Status status = connection_->turbine->Stats(&context, v1::StatsRequest(), &reply);
  if (!status.ok()) return connection_->ToStatus(status);
  return reply;
}

absl::StatusOr<std::vector<v1::FunctionInfo>> Client::ListFunctions() {
  grpc::ClientContext context;
  connection_->PrepareContext(context, /*with_deadline=*/true);
  v1::ListFunctionsReply reply;
  grpc::Status status =
      connection_->turbine->ListFunctions(&context, v1::ListFunctionsRequest(), &reply);
  if (!status.ok()) return connection_->ToStatus(status);
  return std::vector<v1::FunctionInfo>(reply.functions().begin(), reply.functions().end());
}

absl::StatusOr<uint64_t> Client::Flush() {
  grpc::ClientContext context;
  connection_->PrepareContext(context, /*with_deadline=*/true);
  v1::FlushReply reply;
  grpc::Status status = connection_->turbine->Flush(&context, v1::FlushRequest(), &reply);
  if (!status.ok()) return connection_->ToStatus(status);
  return reply.tasks_written();
}

absl::StatusOr<v1::CollectGarbageReply> Client::CollectGarbage() {
  grpc::ClientContext context;
  connection_->PrepareContext(context, /*with_deadline=*/true);
  v1::CollectGarbageReply reply;
  grpc::Status status =
      connection_->turbine->CollectGarbage(&context, v1::CollectGarbageRequest(), &reply);
  if (!status.ok()) return connection_->ToStatus(status);
  return reply;
}

absl::Status Client::Shutdown() {
  grpc::ClientContext context;
  connection_->PrepareContext(context, /*with_deadline=*/true);
  v1::ShutdownReply reply;
  grpc::Status status = connection_->turbine->Shutdown(&context, v1::ShutdownRequest(), &reply);
  return connection_->ToStatus(status);
}

absl::Status Client::Ping() {
  grpc::ClientContext context;
  connection_->PrepareContext(context, /*with_deadline=*/true);
  grpc::health::v1::HealthCheckRequest request;  // service "": the server as a whole
  grpc::health::v1::HealthCheckResponse reply;
  grpc::Status status = connection_->health->Check(&context, request, &reply);
  if (!status.ok()) return connection_->ToStatus(status);
  if (reply.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
    return absl::UnavailableError(
        absl::StrCat("turbined at ", connection_->options.address, " is up but reports ",
                     grpc::health::v1::HealthCheckResponse::ServingStatus_Name(reply.status())));
  }
  return absl::OkStatus();
}

absl::Status Client::Watch(const v1::CallRequest& request,
                           const std::function<bool(const CallResult&)>& on_value,
                           Cancellation* cancel) {
  grpc::ClientContext context;
  // No deadline: a watch lasts as long as its caller wants it.
  connection_->PrepareContext(context, /*with_deadline=*/false);
  if (cancel != nullptr) cancel->Attach(&context);
  std::unique_ptr<grpc::ClientReader<v1::CallReply>> reader =
      connection_->turbine->Watch(&context, request);
  bool stopped_by_caller = false;
  v1::CallReply reply;
  while (reader->Read(&reply)) {
    if (!on_value(detail::ResultFromReply(reply))) {
      stopped_by_caller = true;
      context.TryCancel();
      break;
    }
  }
  // Finish may only be called once Read has returned false; after TryCancel that is soon.
  while (reader->Read(&reply)) {
  }
  grpc::Status status = reader->Finish();
  if (cancel != nullptr) {
    cancel->Detach();
    stopped_by_caller = stopped_by_caller || cancel->cancelled();
  }
  if (stopped_by_caller) return absl::OkStatus();
  return connection_->ToStatus(status);
}

absl::StatusOr<std::unique_ptr<CallStream>> Client::OpenCallStream(
    CallStream::ReplyCallback on_reply) {
  return CallStream::Open(connection_, std::move(on_reply));
}

}  // namespace turbine::client
