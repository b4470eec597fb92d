// service.h — the turbine.v1.Turbine gRPC service, on the callback API.
//
// Reactions never block: a call whose answer is clean in memory is answered on the gRPC
// thread; everything else is finished by the engine's workers (Engine::ReadAsync). Work
// that must wait for the disk (SetInputs, DeleteInputs, Flush) runs on one background thread,
// garbage collection on another.
#pragma once

#include <absl/base/thread_annotations.h>
#include <absl/container/flat_hash_set.h>
#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <grpcpp/grpcpp.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "background_queue.h"
#include "reply_budget.h"
#include "turbine/engine.h"
#include "turbine/server/export.h"
#include "turbine/storage/store.h"
#include "turbine/v1/turbine.grpc.pb.h"

namespace turbine::server {

class WatchReactor;
class TraceReactor;

// PreparedCall is a call whose function was found and whose arguments converted: the
// task exists (or is being computed); what remains is reading its value.
struct PreparedCall {
  const ExportedFunction* function = nullptr;
  RawVc vc;
  CallSource source = CallSource::kMemory;
  std::chrono::steady_clock::time_point start;
};

// ToGrpc and ErrorToWire carry a status to the client; bytes of its message that are not
// UTF-8 (a file name in it) are escaped as \xHH.
grpc::Status ToGrpc(const absl::Status& status);
// The refusals every RPC may give.
inline const grpc::Status kDraining(grpc::StatusCode::UNAVAILABLE, "turbined is shutting down");

// CuttableCall is a call a stopping daemon can end before it is answered (a unary Call, or
// a CallStream / CallBatches stream): TurbineService::CutCallsShort.
class CuttableCall {
 public:
  // CutShort finishes the call with `status` at once and cancels its reads, telling gRPC
  // clients that retry UNAVAILABLE not to (the retry would meet a closed socket and report
  // that instead). Once its reads have all ended, the service hears CutCallEnded.
  virtual void CutShort(const grpc::Status& status) = 0;

 protected:
  ~CuttableCall() = default;
};
inline const grpc::Status kUnauthenticated(grpc::StatusCode::UNAUTHENTICATED,
                                           "missing or wrong auth token (metadata "
                                           "'authorization: Bearer <token>')");
void ErrorToWire(const absl::Status& status, v1::CallError* out);

// Rpc names the service's methods, for counting them.
enum class Rpc : int {
  kCall,
  kCallStream,
  kSetInputs,
  kWatch,
  kStats,
  kListFunctions,
  kFlush,
  kShutdown,
  kCallBatches,
  kGraph,
  kTrace,
  kDeleteInputs,
  kCollectGarbage,
  kWhy,
};
inline constexpr int kRpcCount = 14;
std::string_view RpcName(Rpc rpc);

// kStatusCodeCount: gRPC (and absl) status codes are 0 (OK) to 16.
inline constexpr int kStatusCodeCount = 17;

// ServiceCounters is a reading of the service's counters (for Stats and the metrics);
// each is read on its own, so they need not add up to the same instant.
struct ServiceCounters {
  std::array<uint64_t, kRpcCount> rpcs{};  // RPCs received, by method
  uint64_t calls = 0;                      // calls answered (unary, streamed, watch reads)
  uint64_t hits_memory = 0;                // ... of them, from memory
  uint64_t hits_disk = 0;                  // ... restored from disk
  uint64_t hits_shared = 0;                // ... adopted from the shared tier
  uint64_t executed = 0;                   // ... executed for the call
  // Errors returned to clients, by status code: failed RPCs, failed calls on a stream,
  // and calls answered with the function's error.
  std::array<uint64_t, kStatusCodeCount> errors{};
  uint64_t input_batches = 0;   // SetInputs batches applied
  uint64_t inputs_set = 0;      // inputs in them
  uint64_t inputs_changed = 0;  // ... whose value changed
  uint64_t inputs_deleted = 0;  // inputs unset by DeleteInputs (that were set)
  int64_t in_flight = 0;        // accepted calls and batches not yet answered
  uint64_t watches = 0;         // open Watch streams
  int64_t reply_bytes_queued = 0;  // replies waiting for their clients (reply_budget.h)
  int64_t streams_paused = 0;      // CallStreams not reading until their clients catch up
  std::chrono::steady_clock::duration uptime{};
};

// ReplyMemoryBytes is about what a reply holds in memory: its message objects (the reply,
// its value or error, its ref, each element of a list or map: each its own allocation) and
// their strings. Its size on the wire is no measure of that: a small reply is 16 bytes
// there and about 150 here, a list of small integers 3 bytes an element there and about
// 60 here, and the limits (reply_budget.h) counted wire bytes, so a client that stopped
// reading such replies had the daemon hold 12 to 20 times them. Protobuf's own count
// (SpaceUsedLong, by reflection) made cached calls on CallBatches about 15% slower, so
// it is asked only of lists and maps; anything else is its objects and its wire bytes.
int64_t ReplyMemoryBytes(const v1::CallReply& reply);

class TurbineService final : public v1::Turbine::CallbackService {
 public:
  // `gc` is what a CollectGarbage pass collects (the daemon's flags).
  TurbineService(Engine& engine, const storage::Store& store, std::string auth_token,
                 std::function<void()> on_shutdown, ReplyLimits reply_limits = {},
                 GcOptions gc = {});
  ~TurbineService() override;

  // Prepare finds the function and calls it (a lookup; nothing is awaited). Errors are the
  // request's: NOT_FOUND, INVALID_ARGUMENT.
  absl::StatusOr<PreparedCall> Prepare(const v1::CallRequest& request);
  // PrepareWithoutStarting is Prepare for a call that is only described (Graph, Why): a
  // task it creates is not started (Engine::NotStarting).
  absl::StatusOr<PreparedCall> PrepareWithoutStarting(const v1::CallRequest& request);
  // MissingReference says what `value` refers to that does not exist ("task 7, which does
  // not exist", or a cell its task's finished result lacks), or is empty. (Task 0 is
  // refused by the conversion, as naming no task.)
  std::string MissingReference(const v1::Value& value);
  // Answer reads the call's value and hands the finished reply to `done`: inline when the
  // value is clean, otherwise later on an engine worker. Cancelling `cancel` (the client is
  // gone) ends the read with CANCELLED and cancels what only it waited for.
  void Answer(const PreparedCall& call, uint64_t id, const CancelToken& cancel,
              std::function<void(v1::CallReply)> done);
  // RefuseIfTooLarge turns a reply too large to send (ReplyLimits::message_bytes) into
  // its RESOURCE_EXHAUSTED error, keeping its id, ref and source.
  void RefuseIfTooLarge(v1::CallReply* reply);
  // HoldReply counts a reply a unary Call or a Watch is about to write in the daemon's
  // reply budget (reply_budget.h), where it stays until its write is done: a client that
  // stops reading leaves its replies in the daemon, as a CallStream's. Returns the bytes to
  // release then, or, when replies not read already fill the budget and this one is larger
  // than kAlwaysSentReplyBytes, the RESOURCE_EXHAUSTED to answer instead (counted): a
  // client that makes calls and reads none of their replies cannot take the daemon's
  // memory, while small replies still go.
  static constexpr int64_t kAlwaysSentReplyBytes = 64 << 10;
  absl::StatusOr<int64_t> HoldReply(const v1::CallReply& reply);
  bool Authorized(const grpc::CallbackServerContext* context) const;

  // Draining: calls already accepted finish; new ones are refused with UNAVAILABLE. A trace
  // running is cut short (answered CANCELLED with what it recorded). Watches and call
  // streams are left to CutCallsShort (a client's watch waits for the daemon to come back).
  void StartDraining();
  // TraceEnded is a trace's reactor telling it is done (OnDone).
  void TraceEnded(TraceReactor* reactor);
  // CutTracesShort ends the running trace, and any started from now on, at once.
  void CutTracesShort();
  // WaitUntilIdle waits until no accepted call is pending, or until `deadline`.
  void WaitUntilIdle(std::chrono::steady_clock::time_point deadline) const;
  // CutCallsShort answers every Call still running, and finishes every call stream and
  // watch still open, UNAVAILABLE "turbined is shutting down", and cancels their reads: for after
  // the grace period, so that a client is told the daemon stops rather than gRPC's "Cancelling all
  // calls". Their reads end by themselves, and their answers (dropped) still reach the service:
  // WaitForCutCalls waits for those (and for the watches' reads), and the service must not be
  // destroyed before it returns. Returns whether any was still running (a call cut, or a watch's
  // read under way).
  bool CutCallsShort();
  // WaitForWatchesEnded waits, until `deadline`, for the watches CutCallsShort ended to be
  // done (their status sent): gRPC's shutdown right after would cancel one whose status
  // was not out yet, and its client would read "Cancelling all calls".
  void WaitForWatchesEnded(std::chrono::steady_clock::time_point deadline);
  void WaitForCutCalls();
  // TrackCall puts a call or call stream among those CutCallsShort ends. TakeCall takes it
  // out before it finishes by itself; false if CutCallsShort took it already, which then
  // finishes it. CutCallEnded: the reads of a call cut short all ended (once per call cut).
  void TrackCall(CuttableCall* call);
  bool TakeCall(CuttableCall* call);
  void CutCallEnded();
  // BeginWatchRead / WatchReadEnded count a watch's reads in flight, which WaitForCutCalls
  // waits for too: a watch ended by the stop may have a read whose body ignores its
  // cancellation, and its answer reaches the service when the body returns.
  void BeginWatchRead();
  void WatchReadEnded();
  // Draining says whether the daemon is stopping (new calls and watches are refused).
  bool Draining() const { return draining_.load(); }
  // BeginWork counts an accepted call (false while draining); EndWork ends it.
  bool BeginWork();
  void EndWork() { pending_work_.fetch_sub(1); }

  // Counting: each is one relaxed atomic increment.
  void CountRpc(Rpc rpc) { rpcs_[static_cast<int>(rpc)].fetch_add(1, std::memory_order_relaxed); }
  void CountError(int code) {
    if (code > 0 && code < kStatusCodeCount) errors_[code].fetch_add(1, std::memory_order_relaxed);
  }
  ServiceCounters Counters() const;
  // FillStats is the Stats RPC's answer (the status page shows the same).
  void FillStats(v1::StatsReply* reply) const;
  // StartDescribe is the Graph RPC without gRPC: it finds the call's task and walks its
  // dependencies on the background thread, then hands the graph (or the error) to `done`.
  // Errors of the request itself (NOT_FOUND, INVALID_ARGUMENT; UNAVAILABLE while draining)
  // are returned at once and `done` is not called.
  absl::Status StartDescribe(const v1::GraphRequest& request,
                             std::function<void(absl::StatusOr<v1::GraphReply>)> done);

  // Watches register here to hear about changes (watch.cc).
  void AddWatch(WatchReactor* watch);
  void RemoveWatch(WatchReactor* watch);

  // Unary RPCs.
  grpc::ServerUnaryReactor* Call(grpc::CallbackServerContext* context,
                                 const v1::CallRequest* request, v1::CallReply* reply) override;
  grpc::ServerUnaryReactor* SetInputs(grpc::CallbackServerContext* context,
                                      const v1::SetInputsRequest* request,
                                      v1::SetInputsReply* reply) override;
  grpc::ServerUnaryReactor* DeleteInputs(grpc::CallbackServerContext* context,
                                         const v1::DeleteInputsRequest* request,
                                         v1::DeleteInputsReply* reply) override;
  grpc::ServerUnaryReactor* CollectGarbage(grpc::CallbackServerContext* context,
                                           const v1::CollectGarbageRequest* request,
                                           v1::CollectGarbageReply* reply) override;
  grpc::ServerUnaryReactor* Stats(grpc::CallbackServerContext* context,
                                  const v1::StatsRequest* request, v1::StatsReply* reply) override;
  grpc::ServerUnaryReactor* ListFunctions(grpc::CallbackServerContext* context,
                                          const v1::ListFunctionsRequest* request,
                                          v1::ListFunctionsReply* reply) override;
  grpc::ServerUnaryReactor* Flush(grpc::CallbackServerContext* context,
                                  const v1::FlushRequest* request, v1::FlushReply* reply) override;
  grpc::ServerUnaryReactor* Shutdown(grpc::CallbackServerContext* context,
                                     const v1::ShutdownRequest* request,
                                     v1::ShutdownReply* reply) override;
  grpc::ServerUnaryReactor* Graph(grpc::CallbackServerContext* context,
                                  const v1::GraphRequest* request, v1::GraphReply* reply) override;
  grpc::ServerUnaryReactor* Trace(grpc::CallbackServerContext* context,
                                  const v1::TraceRequest* request, v1::TraceReply* reply) override;
  grpc::ServerUnaryReactor* Why(grpc::CallbackServerContext* context, const v1::WhyRequest* request,
                                v1::WhyReply* reply) override;
  // Streaming RPCs (call_stream.cc, watch.cc). A CallStream reads raw requests and parses
  // each itself (request_parsing.h).
  grpc::ServerBidiReactor<grpc::ByteBuffer, v1::CallReply>* OpenCallStream(
      grpc::CallbackServerContext* context);
  grpc::ServerBidiReactor<grpc::ByteBuffer, v1::ReplyBatch>* OpenCallBatches(
      grpc::CallbackServerContext* context);
  grpc::ServerWriteReactor<v1::CallReply>* Watch(grpc::CallbackServerContext* context,
                                                 const v1::CallRequest* request) override;

  Engine& engine() { return engine_; }
  ReplyBudget& reply_budget() { return reply_budget_; }
  // StartBatchCallsLater runs `start` (a CallBatches stream going on with the calls of its
  // batch) on a thread of its own: an engine worker's answer resumes it, and a worker must
  // not start calls (the memory limit's admission does not apply to workers, and they have
  // bodies to run).
  void StartBatchCallsLater(std::function<void()> start) { batch_starts_.Post(std::move(start)); }

 private:
  template <class Request, class Reply>
  using UnaryHandler = grpc::ServerUnaryReactor* (TurbineService::*)(grpc::CallbackServerContext*,
                                                                     const Request*, Reply*);
  // Registers every method with raw requests, parsed by request_parsing.h
  // so that one that does not parse is INVALID_ARGUMENT saying why (request_parsing.cc).
  void ParseRequestsOurselves();
  template <class Request, class Reply>
  void ParseUnaryRequests(int index, Rpc rpc, UnaryHandler<Request, Reply> handler);

  void OnEngineChange();
  // RefuseForStop refuses a unary request that came during a stop (kDraining), telling
  // the client's retry policy not to send it again, on this daemon as it stops or on the
  // next one, as every request a stop ends does.
  grpc::ServerUnaryReactor* RefuseForStop(grpc::CallbackServerContext* context);
  // Reject finishes a unary RPC with an error, counting it.
  grpc::ServerUnaryReactor* Reject(grpc::CallbackServerContext* context,
                                   const grpc::Status& status);

  Engine& engine_;
  const storage::Store& store_;               // for Stats: what the cache occupies
  const std::string auth_token_;  // empty: no token needed
  std::function<void()> on_shutdown_;
  const GcOptions gc_options_;
  BackgroundQueue background_;
  // Garbage collection passes, which take long: on a thread of their own, so that input
  // batches and flushes never wait for one.
  BackgroundQueue collector_;
  ReplyBudget reply_budget_;
  uint64_t change_listener_ = 0;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();

  std::atomic<bool> draining_{false};
  std::atomic<int64_t> pending_work_{0};
  // The trace running, if any (one at a time), so that a shutdown can cut it short.
  std::mutex trace_mu_;
  TraceReactor* trace_ ABSL_GUARDED_BY(trace_mu_) = nullptr;
  bool cut_traces_short_ ABSL_GUARDED_BY(trace_mu_) = false;

  // Counters, for Stats and the metrics.
  std::atomic<uint64_t> calls_{0};
  std::atomic<uint64_t> hits_memory_{0};
  std::atomic<uint64_t> hits_disk_{0};
  std::atomic<uint64_t> hits_shared_{0};
  std::atomic<uint64_t> executed_{0};
  std::array<std::atomic<uint64_t>, kRpcCount> rpcs_{};
  std::array<std::atomic<uint64_t>, kStatusCodeCount> errors_{};
  std::atomic<uint64_t> input_batches_{0};
  std::atomic<uint64_t> inputs_set_{0};
  std::atomic<uint64_t> inputs_changed_{0};
  std::atomic<uint64_t> inputs_deleted_{0};

  // Calls and call streams accepted and not finished: whoever takes one out finishes it,
  // once.
  std::mutex unanswered_mu_;
  absl::flat_hash_set<CuttableCall*> unanswered_ ABSL_GUARDED_BY(unanswered_mu_);
  // Calls CutCallsShort answered whose reads have not all ended yet.
  int64_t cut_unended_ ABSL_GUARDED_BY(unanswered_mu_) = 0;
  int64_t watch_reads_ ABSL_GUARDED_BY(unanswered_mu_) = 0;  // in flight
  std::condition_variable cut_ended_;
  mutable std::mutex watches_mu_;  // std, not absl: visible to TSan
  std::vector<WatchReactor*> watches_ ABSL_GUARDED_BY(watches_mu_);
  std::condition_variable watches_gone_;  // notified when watches_ becomes empty
  // Last: destroyed first, so a start still queued runs with the rest of the service there.
  BackgroundQueue batch_starts_;
};

}  // namespace turbine::server
