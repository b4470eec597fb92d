// engine.h — the in-process incremental computation engine.
//
//   turbine::Engine engine;                        // worker pool = hardware threads
//   turbine::Engine::Scope scope(engine);          // calls on this thread use `engine`
//   absl::StatusOr<int64_t> v = engine.Read(fib(30));
//   engine.SetInput("x", int64_t{4});             // readers of input "x" become dirty
//
// The engine memoizes tasks (function, receiver, arguments), records which task read which
// output or cell, and recomputes only what an input change affects, cutting off
// propagation when a recomputed value comes out equal. Reads are strongly consistent: they
// return only once everything the value depends on is clean.
//
// Thread-safety: every method may be called from any thread. The engine must outlive the
// Vcs it handed out only as far as they are used.
#pragma once

#include <absl/status/statusor.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "turbine/backing_store.h"
#include "turbine/cancel.h"
#include "turbine/dependency_graph.h"
#include "turbine/function.h"
#include "turbine/gc.h"
#include "turbine/shared_tier.h"
#include "turbine/stats.h"
#include "turbine/trace.h"
#include "turbine/vc.h"
#include "turbine/why.h"

namespace turbine {
namespace internal {
struct InvalidationTarget;  // the engine an Invalidator reaches, cleared when it dies
class EngineImpl;
}  // namespace internal

// LogLevel and Logger: where the engine reports what goes wrong in the background (a
// snapshot that could not be written) and, at kInfo, what it did (the check at open, a GC
// pass, recovery from a fault). The default writes warnings and errors as "turbine: ..." to
// stderr and drops kInfo; a daemon routes everything to its own log.
enum class LogLevel : uint8_t { kInfo, kWarning, kError };
using Logger = std::function<void(LogLevel level, std::string_view message)>;

// kMaxWorkerThreads bounds EngineOptions::worker_threads: more would only exhaust the
// process's threads (a larger request is clamped; turbined refuses it).
inline constexpr int kMaxWorkerThreads = 1024;

// MemoryOptions bound the engine's resident memory (docs/ARCHITECTURE.md, "Memory"). With a
// backing store and a limit, a background thread measures the process's resident set and,
// while it is over the limit, evicts the values of large results that the store holds (the
// task stays in memory, clean, with its stamps, and its next read loads the value back from
// the store, never executing because of it), then whole tasks the store holds as they are.
// Only what a snapshot wrote can leave memory: when many new results wait for one, a
// snapshot starts at once, and past 90% of the limit calls from outside the engine that
// would create a task wait (a second at most) until snapshots catch up (Engine::Call).
struct MemoryOptions {
  // Resident bytes the process should stay under; 0: no limit, nothing is evicted. With
  // glibc, a program that holds large values should fix the mmap threshold at start
  // (`mallopt(M_MMAP_THRESHOLD, 128 << 10)`, as turbined does): otherwise glibc keeps the
  // pages of freed large blocks, and the resident set stays over the limit with nothing
  // left to evict.
  size_t limit_bytes = 0;
  // Results whose stored form is at least this large are eviction candidates. Smaller ones
  // would free less than the task record that stays.
  size_t large_value_bytes = size_t{16} << 10;
  // How often memory is measured; a tenth of this (at least 10 ms) past half the limit or
  // while new results wait for a snapshot.
  std::chrono::milliseconds interval{200};
  // The memory in use, in bytes; null: the process's resident set (/proc/self/statm), which
  // includes the backing store's caches and memtables, the allocator's retained pages and
  // the mapped code. For tests.
  std::function<size_t()> usage = nullptr;
};

struct EngineOptions {
  // Worker threads that run task bodies; 0 means one per hardware thread. At most
  // kMaxWorkerThreads.
  int worker_threads = 0;
  // Persistent storage, or null to keep everything in memory. Not owned; must outlive the
  // engine.
  BackingStore* backing_store = nullptr;
  // With a backing store: write a snapshot of changed tasks this often (0: no background
  // snapshots, only Flush(), shutdown, and those a memory limit needs to make room: only
  // what a snapshot wrote can leave memory). A crash loses at most this interval of cached
  // results, never inputs.
  std::chrono::milliseconds snapshot_interval{1000};
  // Also snapshot as soon as the engine has been idle this long (nothing executed, nothing
  // running) with changes unwritten, so a burst of work is saved when it ends rather than
  // up to an interval later. 0: off. Only with background snapshots.
  std::chrono::milliseconds snapshot_idle_delay{100};
  // A snapshot writes at most this many tasks per write to the store (each write atomic,
  // and a record never lands without the tasks it refers to): a large snapshot's memory
  // stays small, and what one chunk wrote may leave memory before the next is written.
  size_t snapshot_chunk_tasks = 16384;
  // With background snapshots: once the engine has been idle this long, the backing store
  // writes what it keeps in memory into its files (BackingStore::Settle, from 4 MiB), so a
  // crash or a kill while idle leaves little log to replay at the next start. 0: never.
  std::chrono::milliseconds settle_delay{30000};
  // Where background errors go; null: stderr.
  Logger logger = nullptr;
  // With a backing store: garbage collection (gc.h), in the background and by
  // CollectGarbage().
  GcOptions gc = {};
  // The wall clock, by which tasks' last use is counted in days. Null: the system's. For
  // tests that let days pass.
  std::function<std::chrono::system_clock::time_point()> clock = nullptr;
  // With a backing store: the memory bound and value eviction.
  MemoryOptions memory = {};
  // A cache shared with other machines, consulted after memory and the backing store and
  // before executing (shared_tier.h). None by default.
  SharedTierOptions shared = {};
};

// InputValue is a type-erased value for Engine::SetInputs.
struct InputValue {
  std::string key;
  const ValueType* type = nullptr;
  std::shared_ptr<const void> value;

  template <class T>
  static InputValue Of(std::string key, T value) {
    return InputValue{std::move(key), &ValueTypeOf<T>(),
                      std::make_shared<const T>(std::move(value))};
  }
};

class Engine {
 public:
  // Open starts an engine on `options.backing_store` (or in memory without one), reading
  // the store's counters first: an unreadable store is an error (its status), never a
  // silent fallback to memory.
  static absl::StatusOr<std::unique_ptr<Engine>> Open(EngineOptions options);
  // The constructor is Open for engines that cannot fail: in memory, or on a store known to
  // be readable. A backing store whose counters cannot be read aborts with a message.
  explicit Engine(EngineOptions options = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Scope makes `engine` the current engine of this thread for its lifetime, so task
  // functions can be called outside task bodies. Scopes nest. Inside a body of `engine` it
  // changes nothing: the body is still running (its calls are its reads; Read and
  // SetInputs are still refused there).
  class Scope {
   public:
    explicit Scope(Engine& engine);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    internal::ThreadContext saved_;
  };

  // NotStarting, while alive, makes the calls this thread makes (outside task bodies)
  // create the tasks they name without starting them: a task that is only described
  // (`turbine graph`, `turbine why`) is not computed behind the caller's back. It runs
  // when something reads it. Nests.
  class NotStarting {
   public:
    NotStarting();
    ~NotStarting();
    NotStarting(const NotStarting&) = delete;
    NotStarting& operator=(const NotStarting&) = delete;

   private:
    bool before_;
  };

  // Read waits until `vc` is clean and returns a copy of its value, or the task's error
  // as an absl::Status with its code (error.h). REQUIRES: not called from inside a task
  // body (use co_await there).
  template <class T>
  absl::StatusOr<T> Read(Vc<T> vc) {
    CheckNotInTaskBody();
    Scope scope(*this);
    std::optional<T> value;
    internal::ReadOp op(vc.raw(), &ValueTypeOf<T>(), internal::ReadOp::Mode::kValue,
                        &internal::CopyInto<T>, &value);
    op.Block();
    if (!op.ok()) return internal::ReadErrorStatus(op.error());
    return std::move(*value);
  }

  // Call finds or creates the task fn(receiver, args...) on this engine and returns its
  // output, without running it (Read or ReadAsync it). This is how a program calls a
  // function it knows only by handle, as a server does; task bodies call functions
  // directly. `args` is a std::tuple of exactly the function's parameter types after the
  // receiver (`Function<F>::Params`), borrowed: it is moved from only when the task is new,
  // and a call that finds its task allocates nothing. `source`, if given, says where the
  // task was found. Errors (kInvalidArgument): `fn` names no function, `args` is not its
  // parameter tuple, a method without a receiver or a function with one. Under a memory
  // limit, a call that misses memory may wait while new results outrun snapshots
  // (MemoryOptions); task bodies' calls never do.
  template <class Params>
  absl::StatusOr<RawVc> Call(FunctionHandle fn, RawVc receiver, Params& args,
                             CallSource* source = nullptr) {
    return CallErased(fn, receiver, internal::ArgsTypeTag<Params>(), &args, source);
  }

  // AsyncRead is what ReadAsync delivers.
  struct AsyncRead {
    absl::Status status;                // as Read's
    std::shared_ptr<const void> value;  // the value, of `type`, when status is OK
    const ValueType* type = nullptr;
    RawVc cell;              // the cell the value was read from
    bool immediate = false;  // clean at once: nothing was verified or executed for it
    bool executed = false;   // the task read, or the one holding the value, executed
    bool reloaded = false;   // the value had been evicted and came back from the store
    bool shared = false;     // the task read was adopted from the shared tier (then never
                             // `executed`, though what it read to verify may have run)
  };
  // ReadAsync is Read for servers: it never blocks and never runs a task body on the
  // calling thread. `done` runs inline when `vc` is clean now (allocation-free then, but for a
  // copy of a small value its task holds in place: ValueType::inline_size),
  // otherwise later on a worker thread. The engine must outlive the read. With `cancel`: once
  // it is cancelled, a read still waiting ends with kCancelled, and executions only it
  // waited for are cancelled (cancel.h).
  void ReadAsync(RawVc vc, std::function<void(AsyncRead)> done);
  void ReadAsync(RawVc vc, const CancelToken& cancel, std::function<void(AsyncRead)> done);
  // The same for the Vc a task function returns.
  template <class T>
  void ReadAsync(const Vc<T>& vc, std::function<void(AsyncRead)> done) {
    ReadAsync(vc.raw(), std::move(done));
  }
  template <class T>
  void ReadAsync(const Vc<T>& vc, const CancelToken& cancel, std::function<void(AsyncRead)> done) {
    ReadAsync(vc.raw(), cancel, std::move(done));
  }

  // Resolve waits for `vc` and returns the cell it points at.
  absl::StatusOr<RawVc> Resolve(RawVc vc);

  // SetInput sets one input; SetInputs sets several atomically (one revision). Setting an
  // input to a value equal to its current one changes nothing. With a backing store the
  // batch is written durably before the engine applies it; if that write fails nothing
  // applies (`changed` is 0) and the store's error is returned (RESOURCE_EXHAUSTED for a
  // full disk): a value is never served unless it would survive a restart. Called inside a
  // task body it is refused (kFailedPrecondition): a result must follow from what its body
  // read.
  template <class T>
  absl::Status SetInput(std::string key, T value) {
    return SetInputs({InputValue::Of(std::move(key), std::move(value))});
  }
  // `changed`, if given, receives how many inputs got a different value. A key given more
  // than once takes its last value, and counts once.
  absl::Status SetInputs(std::vector<InputValue> values, size_t* changed = nullptr);
  // DeleteInputs unsets inputs atomically (one revision): their readers are invalidated
  // as by a change, and read "not set", as for an input never set. Deleting an input that
  // is not set changes nothing; `changed` counts the inputs that were set (each key once).
  // Durable before
  // it applies, as SetInputs, with the same errors.
  absl::Status DeleteInputs(std::vector<std::string> keys, size_t* changed = nullptr);

  // AddChangeListener registers `listener`, called after every SetInputs that changed a
  // value and every Invalidator firing, on the thread that made the change, with no engine
  // lock held (servers use it to push new results to watchers). It must not block. It may
  // set inputs (outside task bodies; their change calls the listeners again, it too) and
  // add or remove listeners, itself included. Returns an id for RemoveChangeListener, which
  // waits for the listener's calls on other threads to finish; called from inside a
  // listener it does not wait (no call begins after it). A listener may also run on a
  // thread that is executing a task body (an invalidation found while loading a task):
  // SetInputs there is refused.
  uint64_t AddChangeListener(std::function<void()> listener);
  void RemoveChangeListener(uint64_t id);

  // Flush writes a snapshot of every task that changed since the last one (with a backing
  // store; a no-op without). The engine also flushes when it is destroyed.
  absl::Status Flush();

  // CollectGarbage runs a garbage collection pass now (gc.h) with the engine's options, or
  // with `options`, and returns what it removed once the space is free on disk. A pass
  // holds up calls that miss memory for a few milliseconds at a time at most; calls
  // answered from memory never wait. One pass runs at a time: this waits for one running in
  // the background. kFailedPrecondition without a backing store, the store's errors
  // otherwise.
  absl::StatusOr<GcReport> CollectGarbage();
  absl::StatusOr<GcReport> CollectGarbage(const GcOptions& options);

  // Evict makes the values of large results leave memory now, until about `bytes` (their
  // stored size) are gone, sparing what was read since the last eviction once; returns what
  // it evicted. The background evictor calls it while the process is over the memory limit.
  // Only with a backing store and a memory limit (results become candidates as snapshots
  // write them; MemoryOptions).
  size_t Evict(size_t bytes);
  // EvictTasks makes whole tasks leave memory now, until about `bytes` (an estimate of
  // their records) are gone: clean tasks the store holds as they are, that no task in
  // memory reads, sparing once what was read since the last pass; and tasks that never ran
  // (only described: NotStarting), which a snapshot stores as their identity alone. The next use loads them
  // back from the store (trusted or verified, never executed for it). Returns the
  // estimate. One call looks at 65,536 tasks at most (snapshots wait meanwhile), going on
  // where the previous one stopped: with more in memory, call again for more. The
  // background evictor calls it when evicting values was not enough.
  size_t EvictTasks(size_t bytes);

  EngineStats Stats() const;

  // HasTask tells whether a task with `id` exists, in memory or in the backing store (it
  // is loaded if need be). Servers check the task references a client sends with it: an id
  // no task has yet may be given to a new task later, so it must not be cached as absent.
  bool HasTask(TaskId id);

  // CellMissing tells whether `vc` names a cell that its task's current result does not
  // have: the task is done (a task still to run may make it) and made no such cell. Servers
  // refuse such a reference as absent instead of caching a call that fails reading it.
  bool CellMissing(RawVc vc);

  // DeclaredType is the type `vc` holds when that is known without reading it: a cell's
  // type (named by the reference itself; whether its task exists is HasTask's to say), or
  // the declared result type of the function whose output `vc` is. Null when only reading
  // can tell (an input, a trait's result) or when no task has the id. Servers use it to
  // refuse a reference of the wrong type before they call anything with it.
  const ValueType* DeclaredType(RawVc vc);

  // Describe pictures what the task of `vc` depends on: the tasks its last execution read,
  // theirs, and so on (dependency_graph.h). It executes and verifies nothing, so a task
  // that never ran shows alone. Errors: kNotFound if the task exists nowhere.
  absl::StatusOr<DependencyGraph> Describe(RawVc vc, const DescribeOptions& options = {});
  template <class T>
  absl::StatusOr<DependencyGraph> Describe(const Vc<T>& vc, const DescribeOptions& options = {}) {
    return Describe(vc.raw(), options);
  }

  // StartTrace starts recording executions and snapshots (trace.h); false if a trace is
  // already running. StopTrace ends it and returns what it recorded (empty if none ran).
  bool StartTrace(const TraceOptions& options = {});
  Trace StopTrace();
  // TakeTrace returns what the running trace recorded so far and keeps recording (a daemon
  // streams a trace to a file this way); `max_events` then bounds what is held between two
  // takes.
  Trace TakeTrace();

  // Why tells why the task of `vc` holds its current value (why.h): how its last execution
  // in this process came about (first execution, the dependency that changed, an
  // invalidation, a restart re-validation, garbage collection), followed down to the root
  // causes (an input's change with the value digests before and after, a task that is gone),
  // and the dependencies that executed since but came out equal (early cutoffs). It
  // executes and verifies nothing; it may load tasks from the store. Errors: kNotFound if
  // the task exists nowhere.
  absl::StatusOr<WhyReport> Why(RawVc vc, const WhyOptions& options = {});
  template <class T>
  absl::StatusOr<WhyReport> Why(const Vc<T>& vc, const WhyOptions& options = {}) {
    return Why(vc.raw(), options);
  }

  // RecentExecutions lists up to `max` of the last kRecentExecutions task executions,
  // newest first, each with its function, arguments in short, task id, duration and why it
  // ran (why.h, ExecutionRecord). Cheap enough for a status page to poll: one short lock to
  // copy the ring, then text for the `max` newest.
  std::vector<ExecutionRecord> RecentExecutions(size_t max = 100);

 private:
  // Where the store's stamps and task ids continue; read before the engine starts.
  struct Counters;
  static absl::StatusOr<Counters> ReadCounters(BackingStore* store);
  Engine(EngineOptions options, const Counters& counters);
  absl::StatusOr<RawVc> CallErased(FunctionHandle fn, RawVc receiver, const void* args_type,
                                   void* args, CallSource* source);
  static void CheckNotInTaskBody();

  std::unique_ptr<internal::EngineImpl> impl_;
};

// Invalidator tells the engine that the outside world a session-dependent task read has
// changed (a file watcher holds one per watched file). Get it inside the task body:
//
//   Task<Bytes> ReadFileImpl(std::string path) {
//     watcher.Watch(path, turbine::CurrentInvalidator());
//     co_return ReadAll(path);
//   }
//
// Invalidate() makes the task execute again on its next read; its readers re-execute only
// if the result comes out different. Safe from any thread, any number of times; once the
// engine is destroyed it does nothing, so a watcher may outlive the engines it serves.
// Two invalidators are equal when they name the same task of the same engine.
class Invalidator {
 public:
  Invalidator() = default;
  void Invalidate() const;
  // InvalidateAll invalidates several tasks at once: one dirty-marking pass and one change
  // notification per engine, however many tasks a burst of changes touched.
  static void InvalidateAll(const std::vector<Invalidator>& invalidators);
  // MarkAll is InvalidateAll in two steps, for a watcher that debounces: the tasks are
  // dirty at once, so a call made right after a change sees it, while the engines' change
  // listeners (Watch streams, which read again when told) hear of it only when
  // TellListeners is called with the same invalidators, once per burst of changes.
  static void MarkAll(const std::vector<Invalidator>& invalidators);
  static void TellListeners(const std::vector<Invalidator>& invalidators);
  // RecheckAll is what a poll does instead, when it cannot tell what changed: each task's
  // observation (observe.h) is checked again as at open, its kind subscribing it again and
  // then looking, and only a task whose subject changed, or that holds no observation the
  // engine can check, is invalidated. A poll that finds nothing changed changes nothing.
  // It may block on the kinds' looks (a stat on a slow filesystem).
  static void RecheckAll(const std::vector<Invalidator>& invalidators);
  bool operator==(const Invalidator&) const = default;

 private:
  friend Invalidator CurrentInvalidator();
  friend class internal::EngineImpl;  // for a restored task it checks at open (observe.h)
  Invalidator(std::shared_ptr<internal::InvalidationTarget> target, TaskId task)
      : target_(std::move(target)), task_(task) {}
  // ForEachEngine calls action(engine, ids) for each live engine among the invalidators'.
  template <class Action>
  static void ForEachEngine(const std::vector<Invalidator>& invalidators, Action action);

  std::shared_ptr<internal::InvalidationTarget> target_;
  TaskId task_ = kNoTask;
};

// CurrentInvalidator returns the invalidator of the running task. Fails the task if its
// function is not session-dependent. REQUIRES: called from inside a task body.
Invalidator CurrentInvalidator();

// Input<T>(key) is the Vc of an input set with Engine::SetInput. Reading an input that was
// never set, or holds another type, is an error (and is re-read once the input is set).
template <class T>
Vc<T> Input(const std::string& key);

namespace internal {
RawVc InputVc(const std::string& key);
}  // namespace internal

// DisableMutexDeadlockDetection turns off Abseil's mutex deadlock detection for the whole
// process. Abseil built without NDEBUG (as Debian builds it) checks every lock against a
// global lock graph, several times the cost of the lock on the cache-hit path; the engine
// never nests its own locks, so the check finds nothing there. Process-wide, so it is the
// embedding program's choice: turbined and the benchmarks call it at start.
void DisableMutexDeadlockDetection();

template <class T>
Vc<T> Input(const std::string& key) {
  ValueTypeOf<T>();  // registered before a stored value of this type is decoded
  return Vc<T>(internal::InputVc(key));
}

}  // namespace turbine
