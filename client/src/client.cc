#include "turbine/client/client.h"

#include <absl/strings/numbers.h>
#include <absl/strings/str_cat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>
#include <random>
#include <string_view>
#include <thread>
#include <utility>

#include "connection.h"

namespace turbine::client {

std::string DefaultAddress(std::string_view data_dir) {
  // Absolute, so the address names the same socket whatever directory gRPC resolves from.
  // A relative one whose working directory was removed has no absolute form: it stays as
  // given (the CLI refuses it before asking).
  std::error_code error;
  std::filesystem::path dir = std::filesystem::absolute(std::filesystem::path(data_dir), error);
  if (error) dir = std::filesystem::path(data_dir);
  return absl::StrCat("unix:", (dir / "turbined.sock").lexically_normal().string());
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
  absl::StatusOr<std::shared_ptr<const detail::Connection>> connection =
      detail::Connection::Create(std::move(options));
  if (!connection.ok()) return connection.status();
  return std::unique_ptr<Client>(new Client(*std::move(connection)));
}

Client::Client(std::shared_ptr<const detail::Connection> connection)
    : connection_(std::move(connection)) {}

Client::~Client() = default;

const ConnectOptions& Client::options() const { return connection_->options; }

absl::StatusOr<CallResult> Client::Call(std::string_view function, std::vector<v1::Value> args,
                                        std::optional<v1::TaskRef> this_ref) {
  return Call(MakeCallRequest(function, std::move(args), std::move(this_ref)));
}

namespace {

// The initial metadata key of a Watch the daemon accepted (turbine.proto, Watch).
constexpr char kWatchAcceptedKey[] = "turbine-watch-accepted";
// The trailing metadata key of a Watch the daemon ended for other clients' unread replies,
// and the most a watch waits between such ends (turbine.proto, Watch).
constexpr char kRetryAfterKey[] = "turbine-retry-after-ms";
constexpr std::chrono::milliseconds kMostRetryAfter{30'000};

// Unary makes one unary RPC, `rpc(link, context, reply)`, with the connection's token,
// wait-for-ready and deadline.
template <typename Reply, typename Rpc>
absl::StatusOr<Reply> Unary(const detail::Connection& connection, Rpc rpc) {
  const std::shared_ptr<const detail::Link> link = connection.CurrentLink();
  grpc::ClientContext context;
  connection.PrepareContext(context, /*with_deadline=*/true);
  Reply reply;
  const grpc::Status status = rpc(*link, &context, &reply);
  if (!status.ok()) return connection.ToStatus(status, *link);
  return reply;
}

// ResultKey is what makes a watched result new: its value or its error (as the daemon
// decides what to send).
std::string ResultKey(const v1::CallReply& reply) {
  return reply.has_error() ? "e" + reply.error().SerializeAsString()
                           : "v" + reply.value().SerializeAsString();
}

// BrokeOff says whether a Watch that had been answered ended because the daemon went away
// (or is stopping), rather than because the request or the caller ended it.
bool BrokeOff(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ||
         status.error_code() == grpc::StatusCode::CANCELLED;
}

// ConnectedOrFailed waits until the channel is connected, or has failed to connect (a
// call on it then fails at once, saying why), up to `until`; false if it is still
// connecting then. A cancellation ends the wait within a tenth of a second (true).
bool ConnectedOrFailed(grpc::Channel& channel, std::chrono::system_clock::time_point until,
                       const Cancellation* cancel) {
  grpc_connectivity_state state = channel.GetState(/*try_to_connect=*/true);
  while (state != GRPC_CHANNEL_READY && state != GRPC_CHANNEL_TRANSIENT_FAILURE &&
         state != GRPC_CHANNEL_SHUTDOWN) {
    if (cancel != nullptr && cancel->cancelled()) return true;
    const auto now = std::chrono::system_clock::now();
    if (now >= until) return false;
    channel.WaitForStateChange(state, std::min(until, now + std::chrono::milliseconds(100)));
    state = channel.GetState(/*try_to_connect=*/true);
  }
  return true;
}

// RetryAfter is the wait a daemon asked for before a watch it ended is made again (it ended
// it for other clients' unread replies), or nullopt if it asked for none.
std::optional<std::chrono::milliseconds> RetryAfter(const grpc::ClientContext& context,
                                                    const grpc::Status& status) {
  if (status.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) return std::nullopt;
  const auto& trailers = context.GetServerTrailingMetadata();
  auto found = trailers.find(kRetryAfterKey);
  if (found == trailers.end()) return std::nullopt;
  int64_t millis = 0;
  if (!absl::SimpleAtoi(std::string(found->second.data(), found->second.size()), &millis)) {
    return std::nullopt;
  }
  return std::clamp(std::chrono::milliseconds(millis), std::chrono::milliseconds(10),
                    kMostRetryAfter);
}

// Jittered is `wait` times a random factor from 0.5 to 1.5: watches refused together do not
// all come back at the same instant, to fill the budget again together.
std::chrono::milliseconds Jittered(std::chrono::milliseconds wait) {
  thread_local std::minstd_rand random(std::random_device{}());
  std::uniform_real_distribution<double> factor(0.5, 1.5);
  return std::chrono::milliseconds(static_cast<int64_t>(wait.count() * factor(random)));
}

// SleepUnlessCancelled waits for `wait`, checking the cancellation every tenth of a second;
// false if it was cancelled.
bool SleepUnlessCancelled(std::chrono::milliseconds wait, const Cancellation* cancel) {
  const auto until = std::chrono::steady_clock::now() + wait;
  while (true) {
    if (cancel != nullptr && cancel->cancelled()) return false;
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) return true;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(until - now, std::chrono::milliseconds(100)));
  }
}

}  // namespace

absl::StatusOr<CallResult> Client::Call(const v1::CallRequest& request, Cancellation* cancel) {
  const std::shared_ptr<const detail::Link> link = connection_->CurrentLink();
  grpc::ClientContext context;
  connection_->PrepareContext(context, /*with_deadline=*/false);
  cancel->Attach(&context);
  v1::CallReply reply;
  const grpc::Status status = link->turbine->Call(&context, request, &reply);
  cancel->Detach();
  if (!status.ok()) return connection_->ToStatus(status, *link);
  return detail::ResultFromReply(reply);
}

absl::StatusOr<CallResult> Client::Call(const v1::CallRequest& request) {
  absl::StatusOr<v1::CallReply> reply = Unary<v1::CallReply>(
      *connection_,
      [&](const detail::Link& link, grpc::ClientContext* context, v1::CallReply* reply) {
        return link.turbine->Call(context, request, reply);
      });
  if (!reply.ok()) return reply.status();
  return detail::ResultFromReply(*reply);
}

absl::StatusOr<uint32_t> Client::SetInputs(std::vector<std::pair<std::string, v1::Value>> inputs) {
  v1::SetInputsRequest request;
  for (auto& [key, value] : inputs) {
    v1::InputEntry* entry = request.add_inputs();
    entry->set_key(std::move(key));
    *entry->mutable_value() = std::move(value);
  }
  absl::StatusOr<v1::SetInputsReply> reply = Unary<v1::SetInputsReply>(
      *connection_,
      [&](const detail::Link& link, grpc::ClientContext* context, v1::SetInputsReply* reply) {
        return link.turbine->SetInputs(context, request, reply);
      });
  if (!reply.ok()) return reply.status();
  return reply->changed();
}

absl::StatusOr<uint32_t> Client::DeleteInputs(std::vector<std::string> keys) {
  v1::DeleteInputsRequest request;
  for (std::string& key : keys) request.add_keys(std::move(key));
  absl::StatusOr<v1::DeleteInputsReply> reply = Unary<v1::DeleteInputsReply>(
      *connection_,
      [&](const detail::Link& link, grpc::ClientContext* context, v1::DeleteInputsReply* reply) {
        return link.turbine->DeleteInputs(context, request, reply);
      });
  if (!reply.ok()) return reply.status();
  return reply->deleted();
}

absl::StatusOr<v1::StatsReply> Client::Stats() {
  return Unary<v1::StatsReply>(
      *connection_,
      [](const detail::Link& link, grpc::ClientContext* context, v1::StatsReply* reply) {
        return link.turbine->Stats(context, v1::StatsRequest(), reply);
      });
}

absl::StatusOr<v1::GraphReply> Client::Graph(const v1::GraphRequest& request) {
  return Unary<v1::GraphReply>(
      *connection_,
      [&](const detail::Link& link, grpc::ClientContext* context, v1::GraphReply* reply) {
        return link.turbine->Graph(context, request, reply);
      });
}

absl::StatusOr<v1::WhyReply> Client::Why(const v1::WhyRequest& request) {
  return Unary<v1::WhyReply>(*connection_, [&](const detail::Link& link,
                                               grpc::ClientContext* context, v1::WhyReply* reply) {
    return link.turbine->Why(context, request, reply);
  });
}

absl::StatusOr<v1::TraceReply> Client::Trace(uint32_t seconds) {
  const std::shared_ptr<const detail::Link> link = connection_->CurrentLink();
  grpc::ClientContext context;
  connection_->PrepareContext(context, /*with_deadline=*/false);
  // The daemon answers after `seconds` (10 for 0): the usual deadline starts then.
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(seconds == 0 ? 10 : seconds) +
                       connection_->options.deadline);
  v1::TraceRequest request;
  request.set_seconds(seconds);
  v1::TraceReply reply;
  grpc::Status status = link->turbine->Trace(&context, request, &reply);
  if (!status.ok()) return connection_->ToStatus(status, *link);
  return reply;
}

absl::StatusOr<std::vector<v1::FunctionInfo>> Client::ListFunctions() {
  absl::StatusOr<v1::ListFunctionsReply> reply = Unary<v1::ListFunctionsReply>(
      *connection_,
      [](const detail::Link& link, grpc::ClientContext* context, v1::ListFunctionsReply* reply) {
        return link.turbine->ListFunctions(context, v1::ListFunctionsRequest(), reply);
      });
  if (!reply.ok()) return reply.status();
  return std::vector<v1::FunctionInfo>(reply->functions().begin(), reply->functions().end());
}

absl::StatusOr<uint64_t> Client::Flush() {
  absl::StatusOr<v1::FlushReply> reply = Unary<v1::FlushReply>(
      *connection_,
      [](const detail::Link& link, grpc::ClientContext* context, v1::FlushReply* reply) {
        return link.turbine->Flush(context, v1::FlushRequest(), reply);
      });
  if (!reply.ok()) return reply.status();
  return reply->tasks_written();
}

absl::StatusOr<v1::CollectGarbageReply> Client::CollectGarbage() {
  return Unary<v1::CollectGarbageReply>(
      *connection_,
      [](const detail::Link& link, grpc::ClientContext* context, v1::CollectGarbageReply* reply) {
        return link.turbine->CollectGarbage(context, v1::CollectGarbageRequest(), reply);
      });
}

absl::StatusOr<v1::CollectGarbageReply> Client::CollectGarbage(Cancellation* cancel) {
  const std::shared_ptr<const detail::Link> link = connection_->CurrentLink();
  grpc::ClientContext context;
  connection_->PrepareContext(context, /*with_deadline=*/false);
  cancel->Attach(&context);
  v1::CollectGarbageReply reply;
  const grpc::Status status =
      link->turbine->CollectGarbage(&context, v1::CollectGarbageRequest(), &reply);
  cancel->Detach();
  if (!status.ok()) return connection_->ToStatus(status, *link);
  return reply;
}

absl::Status Client::Shutdown() {
  return Unary<v1::ShutdownReply>(
             *connection_,
             [](const detail::Link& link, grpc::ClientContext* context, v1::ShutdownReply* reply) {
               return link.turbine->Shutdown(context, v1::ShutdownRequest(), reply);
             })
      .status();
}

absl::Status Client::Ping() {
  using grpc::health::v1::HealthCheckResponse;
  absl::StatusOr<HealthCheckResponse> reply = Unary<HealthCheckResponse>(
      *connection_,
      [](const detail::Link& link, grpc::ClientContext* context, HealthCheckResponse* reply) {
        // Service "": the server as a whole.
        return link.health->Check(context, grpc::health::v1::HealthCheckRequest(), reply);
      });
  if (!reply.ok()) return reply.status();
  if (reply->status() != HealthCheckResponse::SERVING) {
    return absl::UnavailableError(absl::StrCat(
        "turbined at ", connection_->options.address, " is up but reports ",
        HealthCheckResponse::ServingStatus_Name(reply->status()), ": it is shutting down"));
  }
  return absl::OkStatus();
}

absl::Status Client::Watch(const v1::CallRequest& request,
                           const std::function<bool(const CallResult&)>& on_value,
                           Cancellation* cancel) {
  std::optional<std::string> last_delivered;  // ResultKey of the last result delivered
  bool accepted = false;  // a daemon had the watch (it said so, or sent a result)
  // While resuming: when the daemon went away.
  std::optional<std::chrono::steady_clock::time_point> gone_since;
  const std::chrono::steady_clock::time_point first_try = std::chrono::steady_clock::now();
  int refusals = 0;  // in a row, for other clients' unread replies: the wait doubles
  while (true) {
    if (!accepted && connection_->options.wait_for_ready) {
      // The watch itself has no deadline, so gRPC's wait-for-ready would wait for a daemon
      // forever: wait here instead, up to the deadline, as a unary call would.
      const absl::Status up = WaitForDaemon(first_try + connection_->options.deadline, cancel);
      if (cancel != nullptr && cancel->cancelled()) return absl::OkStatus();
      if (!up.ok()) return up;
    }
    const std::shared_ptr<const detail::Link> link = connection_->CurrentLink();
    if (!accepted && !connection_->options.wait_for_ready &&
        !ConnectedOrFailed(*link->channel,
                           std::chrono::system_clock::now() + connection_->options.deadline,
                           cancel)) {
      // The watch has no deadline, so a connection taken but never answered (a daemon at
      // its --max-connections bound) would hold it for gRPC's own connect timeout (20 s).
      return connection_->ToStatus(
          grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "no connection within the deadline"),
          *link);
    }
    grpc::ClientContext context;
    // No deadline: a watch lasts as long as its caller wants it.
    connection_->PrepareContext(context, /*with_deadline=*/false);
    context.set_wait_for_ready(false);  // the waiting is WaitForDaemon's, above and below
    if (cancel != nullptr) cancel->Attach(&context);
    std::unique_ptr<grpc::ClientReader<v1::CallReply>> reader =
        link->turbine->Watch(&context, request);
    // A daemon that accepted the watch says so before its first result (turbine.proto):
    // if it goes away before that result, the watch waits for it as for one answered.
    reader->WaitForInitialMetadata();
    if (context.GetServerInitialMetadata().count(kWatchAcceptedKey) > 0) accepted = true;
    bool stopped_by_caller = false;
    v1::CallReply reply;
    while (reader->Read(&reply)) {
      gone_since.reset();
      refusals = 0;
      // After a reconnect the daemon sends the current result first: new only if it changed
      // while the connection was down.
      accepted = true;
      std::string key = ResultKey(reply);
      if (key == last_delivered) continue;
      last_delivered = std::move(key);
      if (!on_value(detail::ResultFromReply(reply))) {
        stopped_by_caller = true;
        context.TryCancel();
        break;
      }
    }
    // Finish may only be called once Read has returned false; after TryCancel that is soon.
    while (reader->Read(&reply)) {
    }
    const grpc::Status status = reader->Finish();
    if (cancel != nullptr) {
      cancel->Detach();
      stopped_by_caller = stopped_by_caller || cancel->cancelled();
    }
    if (stopped_by_caller) return absl::OkStatus();
    // Ended for other clients' unread replies: the daemon is up and the watch was fine.
    if (std::optional<std::chrono::milliseconds> wait = RetryAfter(context, status)) {
      gone_since.reset();  // it answered: a later loss of it starts its own wait
      *wait = std::min(*wait * (1 << std::min(refusals++, 5)), kMostRetryAfter);
      if (!SleepUnlessCancelled(Jittered(*wait), cancel)) return absl::OkStatus();
      continue;
    }
    // A watch no daemon accepted fails as any call does: at once, or with wait_for_ready
    // once the daemon was not back within the deadline.
    if (!accepted && connection_->options.wait_for_ready && BrokeOff(status) &&
        std::chrono::steady_clock::now() < first_try + connection_->options.deadline) {
      continue;
    }
    if (!accepted || !BrokeOff(status)) return connection_->ToStatus(status, *link);

    if (!gone_since) gone_since = std::chrono::steady_clock::now();
    const absl::Status back = WaitForDaemon(*gone_since + connection_->options.deadline, cancel);
    if (cancel != nullptr && cancel->cancelled()) return absl::OkStatus();
    if (!back.ok()) {
      return absl::UnavailableError(
          absl::StrCat("the watch lost turbined at ", connection_->options.address,
                       " and it did not answer again within ",
                       connection_->options.deadline.count(), " ms: ", back.message()));
    }
  }
}

absl::Status Client::WaitForDaemon(std::chrono::steady_clock::time_point until,
                                   Cancellation* cancel) {
  using grpc::health::v1::HealthCheckResponse;
  const auto wall_until = std::chrono::system_clock::now() +
                          std::chrono::duration_cast<std::chrono::system_clock::duration>(
                              until - std::chrono::steady_clock::now());
  while (true) {
    const std::shared_ptr<const detail::Link> link = connection_->CurrentLink();
    grpc::ClientContext context;
    context.set_wait_for_ready(true);
    context.set_deadline(wall_until);
    if (cancel != nullptr) cancel->Attach(&context);
    // The health service's Watch: it answers at once with the serving status, then again
    // when it changes (a daemon starting or stopping says NOT_SERVING meanwhile).
    std::unique_ptr<grpc::ClientReader<HealthCheckResponse>> reader =
        link->health->Watch(&context, grpc::health::v1::HealthCheckRequest());
    bool serving = false;
    HealthCheckResponse reply;
    while (!serving && reader->Read(&reply)) {
      if (reply.status() == HealthCheckResponse::SERVING) {
        serving = true;
        context.TryCancel();
      }
    }
    while (reader->Read(&reply)) {
    }
    const grpc::Status status = reader->Finish();
    if (cancel != nullptr) cancel->Detach();
    if (serving) return absl::OkStatus();
    if (cancel != nullptr && cancel->cancelled()) return absl::CancelledError("cancelled");
    // Ended by the deadline, or the daemon stopping again: try again while there is time.
    if (std::chrono::steady_clock::now() >= until) return connection_->ToStatus(status, *link);
  }
}

absl::StatusOr<std::unique_ptr<CallStream>> Client::OpenCallStream(
    CallStream::ReplyCallback on_reply) {
  return CallStream::Open(connection_, std::move(on_reply));
}

}  // namespace turbine::client
