// service.cc — the unary RPCs and the shared call path (service.h); Graph, Why and Trace
// are in explain_rpcs.cc.
#include "service.h"

#include "bearer_token.h"

#include <absl/strings/str_cat.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "memory_by_kind.h"
#include "turbine/server/wire_value.h"
#include "turbine/text.h"
#include "watch.h"

namespace turbine::server {
namespace {

uint64_t MicrosSince(std::chrono::steady_clock::time_point start) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::steady_clock::now() - start)
                                   .count());
}

grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* context,
                                    const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

// ShutdownReactor answers the Shutdown RPC, and asks the server to stop only once the answer
// is out: stopping cancels the calls still open, and this one would be among them.
class ShutdownReactor final : public grpc::ServerUnaryReactor {
 public:
  explicit ShutdownReactor(const std::function<void()>& shutdown) : shutdown_(shutdown) {
    Finish(grpc::Status::OK);
  }
  void OnDone() override {
    shutdown_();
    delete this;
  }

 private:
  std::function<void()> shutdown_;
};

// CallReactor answers one Call. A client that cancels, or whose deadline passes, cancels
// the read, and with it an execution nobody else waits for (so does the server's shutdown,
// which cancels every call still open).
class CallReactor final : public grpc::ServerUnaryReactor, public CuttableCall {
 public:
  CallReactor(grpc::CallbackServerContext* context, ReplyBudget& budget)
      : context_(context), budget_(budget) {}
  const CancelToken& cancel() const { return cancel_; }
  // Held is the reply's bytes counted in the budget (TurbineService::HoldReply) until the
  // reply is written.
  void Held(int64_t bytes) { held_bytes_ = bytes; }
  // The read's answer comes back to TurbineService::Call, which tells the service it ended.
  void CutShort(const grpc::Status& status) override {
    cancel_.Cancel();  // before Finish: OnDone deletes this
    context_->AddTrailingMetadata("grpc-retry-pushback-ms", "-1");
    Finish(status);
  }
  void OnCancel() override { cancel_.Cancel(); }
  void OnDone() override {
    budget_.Release(held_bytes_);
    delete this;
  }

 private:
  grpc::CallbackServerContext* const context_;
  ReplyBudget& budget_;
  int64_t held_bytes_ = 0;
  CancelToken cancel_;
};

}  // namespace

grpc::Status ToGrpc(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      EscapeInvalidUtf8(std::string(status.message())));
}

void ErrorToWire(const absl::Status& status, v1::CallError* out) {
  out->set_code(static_cast<int32_t>(status.code()));
  out->set_message(
      EscapeInvalidUtf8(std::string(status.message())));  // a path in it may be any bytes
}

std::string_view RpcName(Rpc rpc) {
  switch (rpc) {
    case Rpc::kCall:
      return "Call";
    case Rpc::kCallStream:
      return "CallStream";
    case Rpc::kSetInputs:
      return "SetInputs";
    case Rpc::kWatch:
      return "Watch";
    case Rpc::kStats:
      return "Stats";
    case Rpc::kListFunctions:
      return "ListFunctions";
    case Rpc::kFlush:
      return "Flush";
    case Rpc::kShutdown:
      return "Shutdown";
    case Rpc::kCallBatches:
      return "CallBatches";
    case Rpc::kGraph:
      return "Graph";
    case Rpc::kTrace:
      return "Trace";
    case Rpc::kDeleteInputs:
      return "DeleteInputs";
    case Rpc::kCollectGarbage:
      return "CollectGarbage";
    case Rpc::kWhy:
      return "Why";
  }
  return "unknown";
}

TurbineService::TurbineService(Engine& engine, const storage::Store& store, std::string auth_token,
                               std::function<void()> on_shutdown, ReplyLimits reply_limits,
                               GcOptions gc)
    : engine_(engine),
      store_(store),
      auth_token_(std::move(auth_token)),
      on_shutdown_(std::move(on_shutdown)),
      gc_options_(std::move(gc)),
      reply_budget_(reply_limits) {
  change_listener_ = engine_.AddChangeListener([this] { OnEngineChange(); });
  ParseRequestsOurselves();
}

TurbineService::~TurbineService() { engine_.RemoveChangeListener(change_listener_); }

grpc::ServerUnaryReactor* TurbineService::Reject(grpc::CallbackServerContext* context,
                                                 const grpc::Status& status) {
  CountError(status.error_code());
  return FinishNow(context, status);
}

grpc::ServerUnaryReactor* TurbineService::RefuseForStop(grpc::CallbackServerContext* context) {
  context->AddTrailingMetadata("grpc-retry-pushback-ms", "-1");
  return Reject(context, kDraining);
}

ServiceCounters TurbineService::Counters() const {
  ServiceCounters counters;
  for (int i = 0; i < kRpcCount; ++i) counters.rpcs[i] = rpcs_[i].load(std::memory_order_relaxed);
  counters.calls = calls_.load(std::memory_order_relaxed);
  counters.hits_memory = hits_memory_.load(std::memory_order_relaxed);
  counters.hits_disk = hits_disk_.load(std::memory_order_relaxed);
  counters.hits_shared = hits_shared_.load(std::memory_order_relaxed);
  counters.executed = executed_.load(std::memory_order_relaxed);
  for (int i = 0; i < kStatusCodeCount; ++i) {
    counters.errors[i] = errors_[i].load(std::memory_order_relaxed);
  }
  counters.input_batches = input_batches_.load(std::memory_order_relaxed);
  counters.inputs_set = inputs_set_.load(std::memory_order_relaxed);
  counters.inputs_changed = inputs_changed_.load(std::memory_order_relaxed);
  counters.inputs_deleted = inputs_deleted_.load(std::memory_order_relaxed);
  counters.in_flight = pending_work_.load(std::memory_order_relaxed);
  counters.reply_bytes_queued = reply_budget_.queued();
  counters.streams_paused = reply_budget_.paused();
  {
    std::lock_guard lock(watches_mu_);
    counters.watches = watches_.size();
  }
  counters.uptime = std::chrono::steady_clock::now() - started_;
  return counters;
}

bool TurbineService::BeginWork() {
  pending_work_.fetch_add(1);
  if (!draining_.load()) return true;
  pending_work_.fetch_sub(1);
  return false;
}

void TurbineService::WaitUntilIdle(std::chrono::steady_clock::time_point deadline) const {
  while (pending_work_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

bool TurbineService::Authorized(const grpc::CallbackServerContext* context) const {
  if (auth_token_.empty()) return true;
  const auto& metadata = context->client_metadata();
  // Exactly one: with two, a proxy in front may have checked the other, and which one a
  // client meant is anyone's guess.
  if (metadata.count("authorization") != 1) return false;
  auto it = metadata.find("authorization");
  return CarriesBearerToken(std::string_view(it->second.data(), it->second.size()), auth_token_);
}

std::string TurbineService::MissingReference(const v1::Value& value) {
  switch (value.kind_case()) {
    case v1::Value::kRefValue: {
      const v1::TaskRef& ref = value.ref_value();
      if (ref.task() == kNoTask || !engine_.HasTask(ref.task())) {
        return "task " + std::to_string(ref.task()) + ", which does not exist";
      }
      RawVc vc;  // a reference that does not convert is the conversion's to refuse
      if (RefFromWire(ref, &vc).ok() && engine_.CellMissing(vc)) {
        return "cell " + Echo(ref.cell_type()) + "/" + std::to_string(ref.cell_index()) +
               " of task " + std::to_string(ref.task()) + ", which its result does not have";
      }
      return "";
    }
    case v1::Value::kListValue:
      for (const v1::Value& item : value.list_value().items()) {
        if (std::string missing = MissingReference(item); !missing.empty()) return missing;
      }
      return "";
    case v1::Value::kMapValue:
      for (const v1::MapEntry& entry : value.map_value().entries()) {
        if (std::string missing = MissingReference(entry.value()); !missing.empty()) {
          return missing;
        }
      }
      return "";
    default:
      return "";
  }
}

absl::StatusOr<PreparedCall> TurbineService::PrepareWithoutStarting(
    const v1::CallRequest& request) {
  // Graph and Why describe: a call never made shows as its task alone, and is not run by
  // the workers meanwhile (the first real call then executes it, and says so).
  Engine::NotStarting not_starting;
  return Prepare(request);
}

absl::StatusOr<PreparedCall> TurbineService::Prepare(const v1::CallRequest& request) {
  PreparedCall call;
  call.start = std::chrono::steady_clock::now();
  if (request.function().empty()) {
    return absl::InvalidArgumentError("no function named: give the function to call");
  }
  call.function = FindExported(request.function(), request.version());
  if (call.function == nullptr) {
    const bool other_version = request.version() != 0 && FindExported(request.function()) != nullptr;
    return absl::NotFoundError(other_version
                                   ? "function '" + Echo(request.function()) + "' has no version " +
                                         std::to_string(request.version())
                                   : "no function named '" + Echo(request.function()) +
                                         "' (ListFunctions shows what this daemon serves)");
  }
  const ExportedFunction& exported = *call.function;
  const FunctionHandle& fn = exported.fn;
  RawVc receiver;
  if (fn.has_receiver()) {
    if (!request.has_this_ref()) {
      return absl::InvalidArgumentError(fn.name() + " is a method of " + exported.receiver_type +
                                        ": pass its receiver as this_ref (--this)");
    }
    absl::Status status = RefFromWire(request.this_ref(), &receiver);
    if (!status.ok())
      return absl::Status(status.code(), "this_ref: " + std::string(status.message()));
    if (!engine_.HasTask(receiver.task)) {
      return absl::NotFoundError("this_ref: no task has id " + std::to_string(receiver.task));
    }
    if (engine_.CellMissing(receiver)) {
      return absl::NotFoundError("this_ref: task " + std::to_string(receiver.task) +
                                 " has no cell " + Echo(request.this_ref().cell_type()) + "/" +
                                 std::to_string(request.this_ref().cell_index()) +
                                 " (its result's refs name its cells)");
    }
    // A receiver of a known type (a cell's, or the declared result of the function whose
    // output it is) that is not the method's Self is the caller's mistake, said now, not a
    // cached failure of the call. (A trait method takes any type that implements the
    // trait, and an input or a trait's result has no type until it is read: those are
    // checked when the body reads its receiver.)
    const ValueType* self = FindValueType(exported.receiver_type);
    const ValueType* given = self == nullptr ? nullptr : engine_.DeclaredType(receiver);
    if (given != nullptr && given != self) {
      return absl::InvalidArgumentError("this_ref: " + fn.name() + " is a method of " +
                                        exported.receiver_type +
                                        ", and this_ref names a value of type " + given->name);
    }
  } else if (request.has_this_ref()) {
    return absl::InvalidArgumentError(fn.name() + " is not a method: it takes no this_ref");
  }
  for (int i = 0; i < request.args_size(); ++i) {
    if (std::string missing = MissingReference(request.args(i)); !missing.empty()) {
      // Numbered from 1, as every other message about an argument.
      return absl::NotFoundError("argument " + std::to_string(i + 1) + " refers to " + missing);
    }
  }
  absl::StatusOr<RawVc> vc =
      exported.call(exported, engine_, receiver, request.args(), &call.source);
  if (!vc.ok()) return vc.status();
  call.vc = *vc;
  return call;
}

void TurbineService::Answer(const PreparedCall& call, uint64_t id, const CancelToken& cancel,
                            std::function<void(v1::CallReply)> done) {
  CatchUpWithOutsideChanges();  // a file written before the call is seen (export.h)
  auto answer = [this, call, id, done = std::move(done)](Engine::AsyncRead read) {
    v1::CallReply reply;
    reply.set_id(id);
    RefToWire(call.vc, reply.mutable_ref());
    if (!read.status.ok()) {
      CountError(static_cast<int>(read.status.code()));
      ErrorToWire(read.status, reply.mutable_error());
    } else if (call.function->result_type == nullptr) {
      // A trait's value: its reference names the cell and so the implementing type.
      RefToWire(read.cell, reply.mutable_value()->mutable_ref_value());
    } else if (read.type != call.function->result_type) {
      CountError(static_cast<int>(absl::StatusCode::kInternal));
      reply.mutable_error()->set_code(static_cast<int32_t>(absl::StatusCode::kInternal));
      reply.mutable_error()->set_message("result has type '" + read.type->name + "', expected '" +
                                         call.function->result_type->name + "'");
    } else if (!call.function->result_to_wire(read.value.get(), reply.mutable_value())) {
      // No wire form (a user type without fields): the reference stands for the value.
      RefToWire(call.vc, reply.mutable_value()->mutable_ref_value());
    }
    v1::Source source = v1::SOURCE_MEMORY;
    if (read.shared) {
      source = v1::SOURCE_SHARED;
      hits_shared_.fetch_add(1, std::memory_order_relaxed);
    } else if (read.executed || call.source == CallSource::kCreated) {
      source = v1::SOURCE_EXECUTED;
      executed_.fetch_add(1, std::memory_order_relaxed);
    } else if (call.source == CallSource::kDisk || read.reloaded) {
      source = v1::SOURCE_DISK;
      hits_disk_.fetch_add(1, std::memory_order_relaxed);
    } else {
      hits_memory_.fetch_add(1, std::memory_order_relaxed);
    }
    reply.set_source(source);
    reply.set_micros(MicrosSince(call.start));
    RefuseIfTooLarge(&reply);
    calls_.fetch_add(1, std::memory_order_relaxed);
    done(std::move(reply));
  };
  engine_.ReadAsync(call.vc, cancel, std::move(answer));
}

int64_t ReplyMemoryBytes(const v1::CallReply& reply) {
  constexpr int64_t kAllocation = 16;  // malloc's own bytes around each object
  int64_t bytes = sizeof(v1::CallReply) + kAllocation;
  if (reply.has_value()) {
    const v1::Value& value = reply.value();
    if (value.has_list_value() || value.has_map_value()) {
      return bytes + static_cast<int64_t>(value.SpaceUsedLong()) + kAllocation;
    }
    bytes += sizeof(v1::Value) + kAllocation;
  } else if (reply.has_error()) {
    bytes += sizeof(v1::CallError) + kAllocation;
  }
  if (reply.has_ref()) bytes += sizeof(v1::TaskRef) + kAllocation;
  return bytes + static_cast<int64_t>(reply.ByteSizeLong());
}

absl::StatusOr<int64_t> TurbineService::HoldReply(const v1::CallReply& reply) {
  const int64_t bytes = ReplyMemoryBytes(reply);
  if (bytes > kAlwaysSentReplyBytes && reply_budget_.DaemonFull()) {
    CountError(static_cast<int>(absl::StatusCode::kResourceExhausted));
    return absl::ResourceExhaustedError(absl::StrCat(
        "replies their clients have not read hold ", reply_budget_.queued(),
        " bytes of turbined's memory, its bound (--reply-buffer-bytes ",
        reply_budget_.limits().daemon_bytes, "): this reply of ", bytes,
        " bytes is refused; call again once they are read"));
  }
  reply_budget_.Add(bytes);
  return bytes;
}

void TurbineService::RefuseIfTooLarge(v1::CallReply* reply) {
  // Room for what wraps a reply: its field tag and length in a ReplyBatch.
  constexpr int64_t kWrapping = 16;
  const int64_t limit = reply_budget_.limits().message_bytes - kWrapping;
  const auto bytes = static_cast<int64_t>(reply->ByteSizeLong());
  if (bytes <= limit) return;
  CountError(static_cast<int>(absl::StatusCode::kResourceExhausted));
  reply->mutable_error()->set_code(static_cast<int32_t>(absl::StatusCode::kResourceExhausted));
  reply->mutable_error()->set_message(absl::StrCat(
      "the result is ", bytes, " bytes, more than a reply of turbined may carry (",
      reply_budget_.limits().message_bytes,
      " bytes, --max-message-bytes): raise that, and the client's limit if lower; its ref can "
      "be passed on as an argument meanwhile"));
}

grpc::ServerUnaryReactor* TurbineService::Call(grpc::CallbackServerContext* context,
                                               const v1::CallRequest* request,
                                               v1::CallReply* reply) {
  CountRpc(Rpc::kCall);
  if (!Authorized(context)) return Reject(context, kUnauthenticated);
  // Before Prepare, which makes the task and starts it: a call refused for the stop must
  // not leave an execution nobody reads (it held a worker, and the stop waited for it).
  if (!BeginWork()) return RefuseForStop(context);
  absl::StatusOr<PreparedCall> call = Prepare(*request);
  if (!call.ok()) {
    EndWork();
    return Reject(context, ToGrpc(call.status()));
  }
  auto* reactor = new CallReactor(context, reply_budget_);
  TrackCall(reactor);
  Answer(*call, request->id(), reactor->cancel(), [this, reactor, reply](v1::CallReply answer) {
    if (TakeCall(reactor)) {
      absl::StatusOr<int64_t> held = HoldReply(answer);
      if (held.ok()) {
        reactor->Held(*held);
        *reply = std::move(answer);
        reactor->Finish(grpc::Status::OK);
      } else {
        reactor->Finish(ToGrpc(held.status()));
      }
      EndWork();
      return;
    }
    EndWork();
    CutCallEnded();  // the last touch of the service: it may be destroyed from here on
  });
  return reactor;
}

void TurbineService::TrackCall(CuttableCall* call) {
  std::lock_guard lock(unanswered_mu_);
  unanswered_.insert(call);
}

bool TurbineService::TakeCall(CuttableCall* call) {
  std::lock_guard lock(unanswered_mu_);
  return unanswered_.erase(call) > 0;
}

bool TurbineService::CutCallsShort() {
  absl::flat_hash_set<CuttableCall*> cut;
  {
    std::lock_guard lock(unanswered_mu_);
    cut.swap(unanswered_);
    cut_unended_ += static_cast<int64_t>(cut.size());
  }
  for (CuttableCall* call : cut) call->CutShort(kDraining);
  // After the cut: an idle stream ends in CutShort, and is no call still running.
  bool running = false;
  {
    std::lock_guard lock(unanswered_mu_);
    running = cut_unended_ > 0 || watch_reads_ > 0;
  }
  if (!cut.empty()) spdlog::info("cut {} calls and call streams short at the end of the grace", cut.size());
  // Watches never end by themselves: each is told now (a client's watch resumes once the
  // daemon is back). Held as OnEngineChange holds them: one may be ending meanwhile.
  std::vector<WatchReactor*> watches;
  {
    std::lock_guard lock(watches_mu_);
    watches = watches_;
    for (WatchReactor* watch : watches) watch->Hold();
  }
  for (WatchReactor* watch : watches) {
    watch->End(kDraining);
    watch->Release();
  }
  return running;
}

void TurbineService::CutCallEnded() {
  std::lock_guard lock(unanswered_mu_);
  if (--cut_unended_ == 0) cut_ended_.notify_all();  // under the lock: see WaitForCutCalls
}

void TurbineService::BeginWatchRead() {
  std::lock_guard lock(unanswered_mu_);
  ++watch_reads_;
}

void TurbineService::WatchReadEnded() {
  std::lock_guard lock(unanswered_mu_);
  if (--watch_reads_ == 0) cut_ended_.notify_all();  // under the lock: see WaitForCutCalls
}

void TurbineService::WaitForCutCalls() {
  std::unique_lock lock(unanswered_mu_);
  cut_ended_.wait(lock, [this] { return cut_unended_ == 0 && watch_reads_ == 0; });
}

grpc::ServerUnaryReactor* TurbineService::SetInputs(grpc::CallbackServerContext* context,
                                                    const v1::SetInputsRequest* request,
                                                    v1::SetInputsReply* reply) {
  CountRpc(Rpc::kSetInputs);
  if (!Authorized(context)) return Reject(context, kUnauthenticated);
  std::vector<InputValue> values;
  values.reserve(static_cast<size_t>(request->inputs_size()));
  for (const v1::InputEntry& entry : request->inputs()) {
    if (entry.key().empty()) {
      return Reject(context, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                          "an input key must not be empty"));
    }
    if (std::string missing = MissingReference(entry.value()); !missing.empty()) {
      return Reject(context,
                    grpc::Status(grpc::StatusCode::NOT_FOUND,
                                 "input '" + Echo(entry.key()) + "' refers to " + missing));
    }
    WireValue value;
    absl::Status converted = Wire<WireValue>::From(entry.value(), &value);
    if (!converted.ok()) {
      return Reject(context, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                          "input '" + Echo(entry.key()) +
                                              "': " + std::string(converted.message())));
    }
    values.push_back(InputValue::Of(entry.key(), std::move(value)));
  }
  if (!BeginWork()) return RefuseForStop(context);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // The batch is written durably before it applies: that waits for the disk.
  background_.Post([this, reactor, reply, values = std::move(values)]() mutable {
    size_t changed = 0;
    const size_t set = values.size();
    absl::Status status = engine_.SetInputs(std::move(values), &changed);
    if (status.ok()) {
      input_batches_.fetch_add(1, std::memory_order_relaxed);
      inputs_set_.fetch_add(set, std::memory_order_relaxed);
      inputs_changed_.fetch_add(changed, std::memory_order_relaxed);
    } else {
      CountError(static_cast<int>(status.code()));
    }
    reply->set_changed(static_cast<uint32_t>(changed));
    reactor->Finish(ToGrpc(status));
    EndWork();
  });
  return reactor;
}

grpc::ServerUnaryReactor* TurbineService::DeleteInputs(grpc::CallbackServerContext* context,
                                                       const v1::DeleteInputsRequest* request,
                                                       v1::DeleteInputsReply* reply) {
  CountRpc(Rpc::kDeleteInputs);
  if (!Authorized(context)) return Reject(context, kUnauthenticated);
  std::vector<std::string> keys(request->keys().begin(), request->keys().end());
  for (const std::string& key : keys) {
    if (key.empty()) {
      return Reject(context, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                          "an input key must not be empty"));
    }
  }
  if (!BeginWork()) return RefuseForStop(context);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // In the queue of SetInputs: batches of both apply in the order they arrived.
  background_.Post([this, reactor, reply, keys = std::move(keys)]() mutable {
    size_t deleted = 0;
    absl::Status status = engine_.DeleteInputs(std::move(keys), &deleted);
    if (status.ok()) {
      inputs_deleted_.fetch_add(deleted, std::memory_order_relaxed);
    } else {
      CountError(static_cast<int>(status.code()));
    }
    reply->set_deleted(static_cast<uint32_t>(deleted));
    reactor->Finish(ToGrpc(status));
    EndWork();
  });
  return reactor;
}

grpc::ServerUnaryReactor* TurbineService::CollectGarbage(grpc::CallbackServerContext* context,
                                                         const v1::CollectGarbageRequest*,
                                                         v1::CollectGarbageReply* reply) {
  CountRpc(Rpc::kCollectGarbage);
  if (!Authorized(context)) return Reject(context, kUnauthenticated);
  if (!BeginWork()) return RefuseForStop(context);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  collector_.Post([this, context, reactor, reply] {
    spdlog::info("garbage collection pass started (CollectGarbage)");
    // As the daemon's flags say; a shutdown stops the pass rather than wait for it.
    GcOptions options = gc_options_;
    options.stop = [this] { return draining_.load(); };
    absl::StatusOr<GcReport> report = engine_.CollectGarbage(options);
    if (report.ok()) {  // the engine's log says what it removed
      reply->set_removed_tasks(report->removed_tasks);
      reply->set_bytes_before(report->bytes_before);
      reply->set_bytes_after(report->bytes_after);
      reply->set_scanned_tasks(report->scanned_tasks);
      reply->set_unusable(report->unusable);
      reply->set_superseded(report->superseded);
      reply->set_expired(report->expired);
      reply->set_over_limit(report->over_limit);
      reply->set_dependent(report->dependent);
      reply->set_micros(static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(report->duration).count()));
    } else if (report.status().code() == absl::StatusCode::kAborted && draining_.load()) {
      // The stop ended it, as it ends every request still running: said so, as they are
      // (what the pass removed stays removed).
      spdlog::info("garbage collection pass stopped early: turbined is shutting down");
      report = absl::UnavailableError(
          "turbined is shutting down; the garbage collection pass stopped early (what it "
          "removed stays removed)");
      // Not to be retried by a client's retry policy (a pass nobody asked for, on the
      // next daemon), as no request a stop ends is.
      context->AddTrailingMetadata("grpc-retry-pushback-ms", "-1");
      CountError(static_cast<int>(absl::StatusCode::kUnavailable));
    } else {
      spdlog::warn("garbage collection failed: {}", std::string(report.status().message()));
      CountError(static_cast<int>(report.status().code()));
    }
    reactor->Finish(ToGrpc(report.status()));
    EndWork();
  });
  return reactor;
}

// The engine's phases are the protocol's, value for value (FillStats casts).
static_assert(static_cast<int>(GcPhase::kIdle) == v1::GC_PHASE_IDLE &&
              static_cast<int>(GcPhase::kScanning) == v1::GC_PHASE_SCANNING &&
              static_cast<int>(GcPhase::kDeleting) == v1::GC_PHASE_DELETING &&
              static_cast<int>(GcPhase::kReclaiming) == v1::GC_PHASE_RECLAIMING);

void TurbineService::FillStats(v1::StatsReply* reply) const {
  const EngineStats stats = engine_.Stats();
  const ServiceCounters counters = Counters();
  reply->set_tasks(stats.tasks);
  reply->set_cells(stats.cells);
  reply->set_edges(stats.edges);
  reply->set_executions(stats.executions);
  reply->set_revision(stats.revision);
  reply->set_restored_tasks(stats.restored_tasks);
  reply->set_trusted_restored_tasks(stats.trusted_restored_tasks);
  reply->set_observations_checked(stats.observations_checked);
  reply->set_observations_changed(stats.observations_changed);
  reply->set_snapshots(stats.snapshots);
  reply->set_snapshot_micros(stats.snapshot_nanos / 1000);
  const storage::StoreUsage usage = store_.Usage();
  reply->set_tasks_on_disk(usage.tasks);
  const MemoryByKind memory = EstimateMemoryByKind(stats, usage);
  reply->set_memory_task_bytes(memory.tasks);
  reply->set_memory_edge_bytes(memory.edges);
  reply->set_memory_cell_bytes(memory.cells);
  reply->set_memory_store_bytes(memory.store);
  reply->set_memory_other_bytes(memory.other);
  // What du shows for the store, as `turbine gc` reports it (the write-ahead log counts;
  // memtables are memory).
  reply->set_bytes_on_disk(store_.DiskBytes());
  reply->set_calls(counters.calls);
  reply->set_hits_memory(counters.hits_memory);
  reply->set_hits_disk(counters.hits_disk);
  reply->set_executed(counters.executed);
  reply->set_reply_bytes_queued(static_cast<uint64_t>(counters.reply_bytes_queued));
  reply->set_streams_paused(static_cast<uint64_t>(counters.streams_paused));
  reply->set_gc_passes(stats.gc_passes);
  reply->set_gc_removed_tasks(stats.gc_removed_tasks);
  reply->set_gc_removed_bytes(stats.gc_removed_bytes);
  reply->set_gc_micros(stats.gc_nanos / 1000);
  reply->set_gc_phase(static_cast<v1::GcPhase>(stats.gc_phase));
  reply->set_gc_pass_scanned_tasks(stats.gc_pass_scanned_tasks);
  reply->set_gc_pass_removed_tasks(stats.gc_pass_removed_tasks);
  reply->set_gc_pass_garbage_tasks(stats.gc_pass_garbage_tasks);
  reply->set_tasks_used_today(stats.tasks_by_last_use[0]);
  reply->set_tasks_used_1_7d(stats.tasks_by_last_use[1]);
  reply->set_tasks_used_8_30d(stats.tasks_by_last_use[2]);
  reply->set_tasks_used_older(stats.tasks_by_last_use[3]);
  reply->set_hits_shared(counters.hits_shared);
  reply->set_shared_lookups(stats.shared_lookups);
  reply->set_shared_hits(stats.shared_hits);
  reply->set_shared_misses(stats.shared_misses);
  reply->set_shared_verify_failures(stats.shared_verify_failures);
  reply->set_shared_ignored(stats.shared_ignored);
  reply->set_shared_errors(stats.shared_errors);
  reply->set_shared_published(stats.shared_published);
  reply->set_shared_publish_dropped(stats.shared_publish_dropped);
  reply->set_shared_publish_queue(stats.shared_publish_queue);
  reply->set_memory_limit_bytes(stats.memory_limit_bytes);
  reply->set_heap_bytes(stats.heap_bytes);
  reply->set_evicted_values(stats.evicted_values);
  reply->set_evicted_value_bytes(stats.evicted_value_bytes);
  reply->set_reloaded_values(stats.reloaded_values);
  reply->set_reload_failures(stats.reload_failures);
  reply->set_evicted_tasks(stats.evicted_tasks);
  reply->set_reloaded_tasks(stats.reloaded_tasks);
  reply->set_evicted_tasks_away(stats.evicted_tasks_away);
  reply->set_resident_bytes(stats.resident_bytes);
  reply->set_admission_waits(stats.admission_waits);
  reply->set_admission_wait_micros(stats.admission_wait_nanos / 1000);
  reply->set_evicted_unfreed_bytes(stats.evicted_unfreed_bytes);
  reply->set_uptime_seconds(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(counters.uptime).count()));
  for (const FunctionStats& fn : stats.functions) {
    v1::FunctionStats* out = reply->add_functions();
    out->set_name(fn.name);
    out->set_version(fn.version);
    out->set_calls(fn.calls);
    out->set_cache_hits(fn.cache_hits);
    out->set_executions(fn.executions);
    out->set_execution_micros(fn.execution_nanos / 1000);
  }
}

grpc::ServerUnaryReactor* TurbineService::Stats(grpc::CallbackServerContext* context,
                                                const v1::StatsRequest*, v1::StatsReply* reply) {
  CountRpc(Rpc::kStats);
  if (!Authorized(context)) return Reject(context, kUnauthenticated);
  FillStats(reply);
  return FinishNow(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* TurbineService::ListFunctions(grpc::CallbackServerContext* context,
                                                        const v1::ListFunctionsRequest*,
                                                        v1::ListFunctionsReply* reply) {
  CountRpc(Rpc::kListFunctions);
  if (!Authorized(context)) return Reject(context, kUnauthenticated);
  for (const ExportedFunction* fn : AllExported()) {
    v1::FunctionInfo* out = reply->add_functions();
    out->set_name(fn->fn.name());
    out->set_version(fn->fn.version());
    out->set_description(fn->fn.description());
    for (size_t i = 0; i < fn->param_names.size(); ++i) {
      v1::Parameter* param = out->add_params();
      param->set_name(fn->param_names[i]);
      param->set_type(fn->fn.param_types()[i]);
    }
    out->set_result_type(fn->fn.result_type());
    out->set_receiver_type(fn->receiver_type);
    out->set_session_dependent(fn->fn.session_dependent());
  }
  return FinishNow(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* TurbineService::Flush(grpc::CallbackServerContext* context,
                                                const v1::FlushRequest*, v1::FlushReply* reply) {
  CountRpc(Rpc::kFlush);
  if (!Authorized(context)) return Reject(context, kUnauthenticated);
  if (!BeginWork()) return RefuseForStop(context);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  background_.Post([this, reactor, reply] {
    // What snapshots wrote while it ran (a background one may add to it), not the last
    // snapshot's count: a flush with nothing to write said the previous one's again.
    const uint64_t before = engine_.Stats().snapshot_tasks;
    absl::Status status = engine_.Flush();
    CountError(static_cast<int>(status.code()));
    reply->set_tasks_written(engine_.Stats().snapshot_tasks - before);
    reactor->Finish(ToGrpc(status));
    EndWork();
  });
  return reactor;
}

grpc::ServerUnaryReactor* TurbineService::Shutdown(grpc::CallbackServerContext* context,
                                                   const v1::ShutdownRequest*, v1::ShutdownReply*) {
  CountRpc(Rpc::kShutdown);
  if (!Authorized(context)) return Reject(context, kUnauthenticated);
  // As a signal's stop is logged: without it the log did not say why the daemon stopped.
  spdlog::info("Shutdown requested by a client ({}): finishing in-flight calls and flushing",
               context->peer());
  return new ShutdownReactor(on_shutdown_);  // only asks; the server stops on its own thread
}

void TurbineService::StartDraining() {
  draining_.store(true);
  CutTracesShort();
}

void TurbineService::AddWatch(WatchReactor* watch) {
  std::lock_guard lock(watches_mu_);
  watches_.push_back(watch);
}

void TurbineService::RemoveWatch(WatchReactor* watch) {
  std::lock_guard lock(watches_mu_);
  std::erase(watches_, watch);
  if (watches_.empty()) watches_gone_.notify_all();
}

void TurbineService::WaitForWatchesEnded(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(watches_mu_);
  watches_gone_.wait_until(lock, deadline, [&] { return watches_.empty(); });
}

void TurbineService::OnEngineChange() {
  // Hold each watch while refreshing it outside the lock: a refresh may answer inline.
  std::vector<WatchReactor*> watches;
  {
    std::lock_guard lock(watches_mu_);
    watches = watches_;
    for (WatchReactor* watch : watches) watch->Hold();
  }
  for (WatchReactor* watch : watches) {
    watch->Refresh();
    watch->Release();
  }
}

}  // namespace turbine::server
