// explain_rpcs.cc — the RPCs that explain what the daemon did: Graph and Why (a task's
// dependencies and why it holds its value) and Trace (what ran for a while), with their
// wire conversions. Part of TurbineService (service.h).
#include <absl/container/flat_hash_set.h>
#include <grpcpp/alarm.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>

#include "chrome_trace.h"
#include "service.h"
#include "turbine/text.h"

namespace turbine::server {
namespace {

// kMaxGraphNodes bounds a Graph reply whatever its max_nodes asks (the default is 10,000).
constexpr uint32_t kMaxGraphNodes = 100'000;

v1::TaskPhase PhaseToWire(TaskPhase phase) {
  switch (phase) {
    case TaskPhase::kNew:
      return v1::TASK_PHASE_NEW;
    case TaskPhase::kDirty:
      return v1::TASK_PHASE_DIRTY;
    case TaskPhase::kRunning:
      return v1::TASK_PHASE_RUNNING;
    case TaskPhase::kClean:
      return v1::TASK_PHASE_CLEAN;
  }
  return v1::TASK_PHASE_UNSPECIFIED;
}

// WhyToWire fills the reply with the steps that fit in `max_bytes`: a reply larger than
// gRPC may send is not sent at all. Steps past that are cut as `max_steps` cuts them.
void WhyToWire(const WhyReport& why, int64_t max_bytes, v1::WhyReply* out) {
  // Room for the root and truncated fields, and for each step its tag and length.
  constexpr int64_t kOtherFields = 64;
  constexpr int64_t kStepFraming = 8;
  out->set_root(why.root);
  out->set_truncated(why.truncated);
  int64_t bytes = kOtherFields;
  for (const WhyStep& step : why.steps) {
    v1::WhyStep* wire = out->add_steps();
    wire->set_depth(step.depth);
    // The enums share their order with why.h, one ahead for the wire's UNSPECIFIED.
    wire->set_kind(static_cast<v1::WhyStepKind>(static_cast<int>(step.kind) + 1));
    wire->set_task(step.task);
    wire->set_function(step.function);
    wire->set_version(step.version);
    wire->set_args(EscapeInvalidUtf8(step.args));  // a file name in it may be any bytes
    wire->set_reason(static_cast<v1::WhyReason>(static_cast<int>(step.reason)));
    wire->set_cause(step.cause);
    wire->set_receiver(step.receiver);
    wire->set_dirty(step.dirty);
    wire->set_executions(step.executions);
    wire->set_end_unix_micros(step.end_unix_micros);
    wire->set_duration_micros(static_cast<uint64_t>(step.duration_nanos / 1000));
    wire->set_output_changed(step.output_changed);
    wire->set_output_before(EscapeInvalidUtf8(step.output_before));
    wire->set_output_after(EscapeInvalidUtf8(step.output_after));
    wire->set_text(EscapeInvalidUtf8(step.text));
    bytes += static_cast<int64_t>(wire->ByteSizeLong()) + kStepFraming;
    if (bytes > max_bytes) {
      out->mutable_steps()->RemoveLast();
      out->set_truncated(true);
      break;
    }
  }
}

// GraphToWire fills the reply with the nodes that fit in `max_bytes` (breadth first, so
// the nearest ones; in two thirds of it when they do not all fit) and the edges between
// them: a reply larger than gRPC may send is not sent at all.
void GraphToWire(const DependencyGraph& graph, int64_t max_bytes, v1::GraphReply* out) {
  // Room for the root and flags, and for each node or edge its tag and length.
  constexpr int64_t kOtherFields = 64;
  constexpr int64_t kFraming = 8;
  out->set_root(graph.root);
  out->set_truncated(graph.truncated);
  int64_t bytes = kOtherFields;
  absl::flat_hash_set<uint64_t> shown;
  const auto cut = [&] {
    out->set_truncated(true);
    out->set_cut_to_message_size(true);
  };
  for (const GraphNode& node : graph.nodes) {
    v1::GraphNode* wire = out->add_nodes();
    wire->set_task(node.task);
    wire->set_function(node.function);
    wire->set_version(node.version);
    wire->set_args(EscapeInvalidUtf8(node.args));  // a file name in it may be any bytes
    if (!node.receiver.is_none()) RefToWire(node.receiver, wire->mutable_receiver());
    wire->set_phase(PhaseToWire(node.phase));
    wire->set_failed(node.failed);
    wire->set_session_dependent(node.session_dependent);
    wire->set_from_disk(node.from_disk);
    wire->set_from_shared(node.from_shared);
    wire->set_executions(node.executions);
    wire->set_last_execution_micros(node.last_execution_micros);
    wire->set_cells(node.cells);
    wire->set_depth(node.depth);
    const int64_t node_bytes = static_cast<int64_t>(wire->ByteSizeLong()) + kFraming;
    // Nodes take at most two thirds, so that the edges between them fit too.
    if (bytes + node_bytes > max_bytes / 3 * 2) {
      out->mutable_nodes()->RemoveLast();
      cut();
      break;
    }
    bytes += node_bytes;
    shown.insert(node.task);
  }
  for (const GraphEdge& edge : graph.edges) {
    if (!shown.contains(edge.reader) || !shown.contains(edge.slot.task)) continue;
    v1::GraphEdge* wire = out->add_edges();
    wire->set_reader(edge.reader);
    RefToWire(edge.slot, wire->mutable_slot());
    bytes += static_cast<int64_t>(wire->ByteSizeLong()) + kFraming;
    if (bytes > max_bytes) {
      out->mutable_edges()->RemoveLast();
      cut();
      break;
    }
  }
}

}  // namespace

// TraceReactor answers Trace: the engine records until the alarm rings, then the reply
// carries what it recorded. A shutdown (CutShort) rings it early: the reply carries what it
// has, marked `cut_short`. A client that goes away does too, and is answered CANCELLED.
class TraceReactor final : public grpc::ServerUnaryReactor {
 public:
  TraceReactor(TurbineService& service, Engine& engine, v1::TraceReply* reply)
      : service_(service), engine_(engine), reply_(reply) {}
  void Start(std::chrono::seconds duration) {
    alarm_.Set(std::chrono::system_clock::now() + duration, [this](bool rang) { End(rang); });
  }
  void CutShort() {
    by_shutdown_.store(true);
    alarm_.Cancel();
  }
  void OnCancel() override { alarm_.Cancel(); }
  void OnDone() override {
    service_.TraceEnded(this);
    delete this;
  }

 private:
  void End(bool rang) {
    const turbine::Trace trace = engine_.StopTrace();
    // The reply must fit in one message (--max-message-bytes), or gRPC would refuse to send
    // any of it: events past that are dropped like those past the engine's limit. Room is
    // left for the reply's other fields.
    constexpr int64_t kOtherFields = 64;
    const int64_t room = service_.reply_budget().limits().message_bytes - kOtherFields;
    size_t events = 0;
    reply_->set_chrome_trace_json(
        ChromeTraceJson(trace, static_cast<size_t>(std::max<int64_t>(room, 0)), &events,
                        /*cut_short=*/!rang));
    reply_->set_events(events);
    reply_->set_dropped(trace.dropped + (trace.events.size() - events));
    if (events < trace.events.size()) {
      spdlog::warn("trace: {} of {} events fit in a reply of {} bytes (--max-message-bytes); "
                   "the rest are counted as dropped",
                   events, trace.events.size(), service_.reply_budget().limits().message_bytes);
    }
    reply_->set_cut_short(!rang);
    Finish(rang || by_shutdown_.load()
               ? grpc::Status::OK
               : grpc::Status(grpc::StatusCode::CANCELLED, "the trace was cut short"));
  }

  TurbineService& service_;
  Engine& engine_;
  v1::TraceReply* reply_;
  grpc::Alarm alarm_;
  std::atomic<bool> by_shutdown_{false};
};

grpc::ServerUnaryReactor* TurbineService::Graph(grpc::CallbackServerContext* context,
                                                const v1::GraphRequest* request,
                                                v1::GraphReply* reply) {
  CountRpc(Rpc::kGraph);
  if (!Authorized(context)) return Reject(context, kUnauthenticated);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::Status started =
      StartDescribe(*request, [this, reactor, reply](absl::StatusOr<v1::GraphReply> graph) {
        if (graph.ok()) *reply = *std::move(graph);
        reactor->Finish(ToGrpc(graph.status()));
      });
  if (!started.ok()) {
    // Refused for the stop: not to be sent again, as RefuseForStop says.
    if (started.message() == kDraining.error_message()) {
      context->AddTrailingMetadata("grpc-retry-pushback-ms", "-1");
    }
    reactor->Finish(ToGrpc(started));
  }
  return reactor;
}

absl::Status TurbineService::StartDescribe(
    const v1::GraphRequest& request, std::function<void(absl::StatusOr<v1::GraphReply>)> done) {
  absl::StatusOr<PreparedCall> call = PrepareWithoutStarting(request.call());
  if (!call.ok()) {
    CountError(static_cast<int>(call.status().code()));
    return call.status();
  }
  DescribeOptions options;
  if (request.has_max_depth()) options.max_depth = request.max_depth();
  // At most kMaxGraphNodes, whatever is asked: the reply is built in memory at once.
  if (request.max_nodes() != 0) options.max_nodes = std::min(request.max_nodes(), kMaxGraphNodes);
  if (!BeginWork()) {
    CountError(static_cast<int>(absl::StatusCode::kUnavailable));
    return absl::UnavailableError(kDraining.error_message());
  }
  // The walk may load tasks from the store: it waits on the disk, so not on this thread.
  // In arrival order with SetInputs, so a graph asked for after a change shows it.
  background_.Post([this, done = std::move(done), vc = call->vc, options] {
    CatchUpWithOutsideChanges();  // a file written before the request is dirty in it
    absl::StatusOr<DependencyGraph> graph = engine_.Describe(vc, options);
    if (graph.ok()) {
      v1::GraphReply reply;
      GraphToWire(*graph, reply_budget_.limits().message_bytes, &reply);
      done(std::move(reply));
    } else {
      CountError(static_cast<int>(graph.status().code()));
      done(graph.status());
    }
    EndWork();
  });
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* TurbineService::Why(grpc::CallbackServerContext* context,
                                              const v1::WhyRequest* request, v1::WhyReply* reply) {
  CountRpc(Rpc::kWhy);
  if (!Authorized(context)) return Reject(context, kUnauthenticated);
  absl::StatusOr<PreparedCall> call = PrepareWithoutStarting(request->call());
  if (!call.ok()) return Reject(context, ToGrpc(call.status()));
  WhyOptions options;
  if (request->max_steps() != 0) options.max_steps = request->max_steps();
  if (!BeginWork()) return RefuseForStop(context);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // As Graph: it may load tasks from the store, and comes after the SetInputs before it.
  background_.Post([this, reactor, reply, vc = call->vc, options] {
    CatchUpWithOutsideChanges();  // a file written before the request is dirty in it
    absl::StatusOr<WhyReport> why = engine_.Why(vc, options);
    if (why.ok()) {
      WhyToWire(*why, reply_budget_.limits().message_bytes, reply);
    } else {
      CountError(static_cast<int>(why.status().code()));
    }
    reactor->Finish(ToGrpc(why.status()));
    EndWork();
  });
  return reactor;
}

grpc::ServerUnaryReactor* TurbineService::Trace(grpc::CallbackServerContext* context,
                                                const v1::TraceRequest* request,
                                                v1::TraceReply* reply) {
  CountRpc(Rpc::kTrace);
  if (!Authorized(context)) return Reject(context, kUnauthenticated);
  if (request->seconds() > 3600) {
    return Reject(context, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                        "a trace lasts at most 3600 seconds"));
  }
  // Counted as work until it is answered: a shutdown cuts it short (StartDraining), and
  // waits for the answer to go out before it closes the connections.
  if (!BeginWork()) return RefuseForStop(context);
  if (!engine_.StartTrace()) {
    EndWork();
    return Reject(context,
                  grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                               "a trace is already running: another Trace, or the daemon's "
                               "--trace-file, which records from start to stop; one at "
                               "a time"));
  }
  auto* reactor = new TraceReactor(*this, engine_, reply);
  const uint32_t seconds = request->seconds() == 0 ? 10 : request->seconds();
  spdlog::info("trace started (Trace): recording for {} s", seconds);
  bool cut_short;
  {
    std::lock_guard lock(trace_mu_);
    trace_ = reactor;
    cut_short = cut_traces_short_;  // draining began since BeginWork
  }
  // It stays alive until it finished: this RPC counts as work, which TraceEnded ends.
  reactor->Start(std::chrono::seconds(seconds));
  if (cut_short) reactor->CutShort();
  return reactor;
}


void TurbineService::CutTracesShort() {
  // Cut short under the lock: TraceEnded, which clears trace_ before its reactor is
  // deleted, takes it too. It runs from OnDone, which gRPC calls once the reply is sent,
  // never from within Cancel.
  std::lock_guard lock(trace_mu_);
  cut_traces_short_ = true;
  if (trace_ != nullptr) trace_->CutShort();
}

void TurbineService::TraceEnded(TraceReactor* reactor) {
  {
    // Only its own: a trace started as this one finished may be the running one now.
    std::lock_guard lock(trace_mu_);
    if (trace_ == reactor) trace_ = nullptr;
  }
  EndWork();
}

}  // namespace turbine::server
