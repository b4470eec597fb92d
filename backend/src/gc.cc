// gc.cc — garbage collection of the backing store (turbine/gc.h says what garbage is;
// docs/ARCHITECTURE.md, "Persistence", why removing it is safe).
//
// A pass: a snapshot first (so the store has what memory knows, last-use days included);
// a scan of every stored task, in batches, as of one moment; the decision, on the graph of
// what each task refers to and read; the deletion, in batches; then the space reclaimed.
// Calls that hit memory never wait for it. Calls that miss memory wait at most while a
// batch's ids are swapped in (`store_gate_`). Snapshots and the evictor wait for one
// deletion batch at a time (`flush_mu_`), so that no record is written between taking back
// what was written meanwhile and the deletion.
#include <absl/cleanup/cleanup.h>
#include <absl/container/flat_hash_map.h>

#include <algorithm>
#include <array>
#include <queue>
#include <thread>

#include "engine_impl.h"
#include "persist.h"
#include "reclaim.h"

namespace turbine::internal {

enum class GcReason : uint8_t {
  kLive,
  kUnusable,
  kSuperseded,
  kExpired,
  kRequested,
  kOverLimit,
  kDependent,
};

// GcNode is one stored task as the pass sees it.
struct GcNode {
  TaskId id = 0;
  uint64_t bytes = 0;      // its records, uncompressed
  uint16_t day = 0;        // last used (0: the store did not know)
  uint16_t effective = 0;  // last used, counting the uses of what reads it or refers to it
  bool input = false;  // an input that is set: user data, never collected
  // A set input refers to it, directly or through other tasks: kept with the input, which
  // would otherwise name a task that exists nowhere.
  bool held_by_input = false;
  // An input that is not set: kept only while a live task links to it (gc.h).
  bool unset_input = false;
  bool kept_while_referenced = false;
  // kept_while_referenced, and no stored task linked to it as the pass found the store: a
  // version nothing asks for any more (the content of a file before its last edit), not
  // one made garbage by the removal of what read it.
  bool unlinked_when_scanned = false;
  bool deleted = false;  // by a batch of this pass: there is no taking it back
  GcReason reason = GcReason::kLive;
  uint32_t live_in = 0;  // links into it from tasks not (yet) garbage
};

// GcGraph is the store's tasks and their links: `out` lists, per node, the nodes it refers
// to (kRefBit set) and the ones it read; `referrers` the nodes that refer to it.
struct GcGraph {
  std::vector<GcNode> nodes;
  absl::flat_hash_map<TaskId, uint32_t> index;
  std::vector<uint32_t> out_begin, out;
  std::vector<uint32_t> referrers_begin, referrers;
  // While scanning: each node's links by task id (the top bit marks a reference).
  std::vector<uint32_t> raw_begin;
  std::vector<uint64_t> raw;
  uint64_t raw_bytes = 0;
};

namespace {

using Reason = GcReason;
using Node = GcNode;
using Graph = GcGraph;

constexpr size_t kScanBatch = 1024;   // records read between yields
constexpr size_t kDeleteBatch = 256;  // records deleted per hold of flush_mu_
constexpr int kMaxRounds = 4;         // passes in a row while still over the disk limit
constexpr uint32_t kRefBit = 1u << 31;

constexpr uint64_t kRawRefBit = uint64_t{1} << 63;

// Link resolves the scanned links to node indices. A reference to a task that is not
// stored leaves the referring task unusable: a reader would follow it into nothing.
void Link(Graph& graph) {
  const size_t n = graph.nodes.size();
  graph.out_begin.assign(n + 1, 0);
  std::vector<uint32_t> referrer_count(n + 1, 0);
  for (size_t i = 0; i < n; ++i) {
    graph.out_begin[i] = static_cast<uint32_t>(graph.out.size());
    const uint32_t end =
        i + 1 < n ? graph.raw_begin[i + 1] : static_cast<uint32_t>(graph.raw.size());
    for (uint32_t e = graph.raw_begin[i]; e < end; ++e) {
      const bool ref = (graph.raw[e] & kRawRefBit) != 0;
      auto found = graph.index.find(graph.raw[e] & ~kRawRefBit);
      if (found == graph.index.end()) {
        // A set input naming a task that is not stored (a process killed before a snapshot
        // wrote it) is still the user's data: kept, and a use of the reference fails.
        if (ref && !graph.nodes[i].input) graph.nodes[i].reason = Reason::kUnusable;
        continue;
      }
      graph.out.push_back(found->second | (ref ? kRefBit : 0));
      ++graph.nodes[found->second].live_in;
      if (ref) ++referrer_count[found->second];
    }
  }
  graph.out_begin[n] = static_cast<uint32_t>(graph.out.size());
  graph.raw.clear();
  graph.raw.shrink_to_fit();
  graph.referrers_begin.assign(n + 1, 0);
  for (size_t i = 0; i < n; ++i) {
    graph.referrers_begin[i + 1] = graph.referrers_begin[i] + referrer_count[i];
  }
  graph.referrers.resize(graph.referrers_begin[n]);
  std::vector<uint32_t> fill(graph.referrers_begin.begin(), graph.referrers_begin.end() - 1);
  for (size_t i = 0; i < n; ++i) {
    for (uint32_t e = graph.out_begin[i]; e < graph.out_begin[i + 1]; ++e) {
      if (graph.out[e] & kRefBit) {
        graph.referrers[fill[graph.out[e] & ~kRefBit]++] = static_cast<uint32_t>(i);
      }
    }
  }
}

// PropagateUse gives each node the latest use of itself and of everything that reads it or
// refers to it, transitively: a dependency of a task used today is in use today too.
void PropagateUse(Graph& graph, uint16_t today) {
  std::priority_queue<std::pair<uint16_t, uint32_t>> queue;
  for (uint32_t i = 0; i < graph.nodes.size(); ++i) {
    Node& node = graph.nodes[i];
    node.effective = node.day != 0 ? node.day : today;  // unknown: counted from now
    queue.emplace(node.effective, i);
  }
  while (!queue.empty()) {
    const auto [day, i] = queue.top();
    queue.pop();
    if (day != graph.nodes[i].effective) continue;  // a later use reached it since
    for (uint32_t e = graph.out_begin[i]; e < graph.out_begin[i + 1]; ++e) {
      Node& target = graph.nodes[graph.out[e] & ~kRefBit];
      if (target.effective < day) {
        target.effective = day;
        queue.emplace(day, graph.out[e] & ~kRefBit);
      }
    }
  }
}

// Marker marks garbage and what follows from it: the tasks that refer to a garbage task
// are garbage (kDependent), and a kept_while_referenced task no live task links to any
// more is garbage (kSuperseded).
class Marker {
 public:
  explicit Marker(Graph& graph) : graph_(graph) {}

  // Mark marks node `i` and everything that follows; returns the bytes newly marked.
  uint64_t Mark(uint32_t i, Reason reason) {
    uint64_t bytes = Add(i, reason);
    while (!work_.empty()) {
      const uint32_t x = work_.back();
      work_.pop_back();
      for (uint32_t e = graph_.referrers_begin[x]; e < graph_.referrers_begin[x + 1]; ++e) {
        bytes += Add(graph_.referrers[e], Reason::kDependent);
      }
      for (uint32_t e = graph_.out_begin[x]; e < graph_.out_begin[x + 1]; ++e) {
        const uint32_t t = graph_.out[e] & ~kRefBit;
        Node& target = graph_.nodes[t];
        if (--target.live_in == 0 && target.kept_while_referenced) {
          bytes += Add(t, Reason::kSuperseded);
        }
      }
    }
    return bytes;
  }

 private:
  uint64_t Add(uint32_t i, Reason reason) {
    Node& node = graph_.nodes[i];
    if (node.input || node.held_by_input || node.reason != Reason::kLive) return 0;
    node.reason = reason;
    work_.push_back(i);
    return node.bytes;
  }

  Graph& graph_;
  std::vector<uint32_t> work_;
};

// HoldWhatInputsReferTo marks what set inputs refer to, transitively (held_by_input).
void HoldWhatInputsReferTo(Graph& graph) {
  std::vector<uint32_t> work;
  for (uint32_t i = 0; i < graph.nodes.size(); ++i) {
    if (graph.nodes[i].input) work.push_back(i);
  }
  while (!work.empty()) {
    const uint32_t x = work.back();
    work.pop_back();
    for (uint32_t e = graph.out_begin[x]; e < graph.out_begin[x + 1]; ++e) {
      if ((graph.out[e] & kRefBit) == 0) continue;  // read, not referred to
      Node& target = graph.nodes[graph.out[e] & ~kRefBit];
      if (target.held_by_input || target.input) continue;
      target.held_by_input = true;
      work.push_back(graph.out[e] & ~kRefBit);
    }
  }
}

// Decide marks the garbage of `graph` (see gc.h).
void Decide(Graph& graph, const GcOptions& options, uint16_t today, uint64_t bytes_on_disk) {
  HoldWhatInputsReferTo(graph);
  Marker marker(graph);
  const size_t n = graph.nodes.size();
  for (uint32_t i = 0; i < n; ++i) {
    GcNode& node = graph.nodes[i];
    node.unlinked_when_scanned = node.kept_while_referenced && node.live_in == 0;
  }
  // Unusable nodes first (Link set their reason already): their consequences follow.
  std::vector<uint32_t> unusable;
  for (uint32_t i = 0; i < n; ++i) {
    if (graph.nodes[i].reason == Reason::kUnusable && !graph.nodes[i].input) unusable.push_back(i);
  }
  for (uint32_t i : unusable) {
    graph.nodes[i].reason = Reason::kLive;
    marker.Mark(i, Reason::kUnusable);
  }
  for (uint32_t i = 0; i < n; ++i) {
    if (graph.nodes[i].kept_while_referenced && graph.nodes[i].live_in == 0) {
      marker.Mark(i, Reason::kSuperseded);
    }
  }
  // Whole days, rounded up; a retention past the day counter's range (seconds::max() for
  // "forever") is forever, not an overflow.
  constexpr int64_t kSecondsPerDay = 86'400;
  const int64_t retention_seconds = std::max<int64_t>(0, options.retention.count());
  const int64_t retention_days = retention_seconds / kSecondsPerDay +
                                 (retention_seconds % kSecondsPerDay != 0 ? 1 : 0);
  for (uint32_t i = 0; i < n; ++i) {
    if (today - graph.nodes[i].effective > retention_days) marker.Mark(i, Reason::kExpired);
  }
  if (options.also_collect) {
    for (uint32_t i = 0; i < n; ++i) {
      if (options.also_collect(graph.nodes[i].id)) marker.Mark(i, Reason::kRequested);
    }
  }
  if (options.disk_limit == 0 || bytes_on_disk <= options.disk_limit) return;
  // Least recently used first (the older task of a day first) until under the limit, by
  // an estimate: records shrink on disk by what the store as a whole shrinks by.
  const double ratio = graph.raw_bytes == 0
                           ? 1.0
                           : std::min(1.0, static_cast<double>(bytes_on_disk) /
                                               static_cast<double>(graph.raw_bytes));
  double estimate = static_cast<double>(bytes_on_disk);
  for (const Node& node : graph.nodes) {
    if (node.reason != Reason::kLive) estimate -= ratio * static_cast<double>(node.bytes);
  }
  std::vector<uint32_t> order;
  for (uint32_t i = 0; i < n; ++i) {
    if (graph.nodes[i].reason == Reason::kLive && !graph.nodes[i].input) order.push_back(i);
  }
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    const Node& x = graph.nodes[a];
    const Node& y = graph.nodes[b];
    return x.effective != y.effective ? x.effective < y.effective : x.id < y.id;
  });
  for (uint32_t i : order) {
    if (estimate <= static_cast<double>(options.disk_limit)) break;
    estimate -= ratio * static_cast<double>(marker.Mark(i, Reason::kOverLimit));
  }
}

// Keep takes back the garbage verdict of tasks written or evicted since the scan (they are
// in use) and of everything they refer to, which must stay stored with them. A task a batch
// deleted already stays deleted (one written again since is stored by that write). What a
// task not deleted yet refers to is not deleted yet either: referrers go first, and a
// cycle goes in one batch (ReferrersFirst).
void Keep(Graph& graph, const std::vector<TaskId>& written) {
  std::vector<uint32_t> work;
  for (TaskId id : written) {
    auto found = graph.index.find(id);
    if (found != graph.index.end()) work.push_back(found->second);
  }
  while (!work.empty()) {
    const uint32_t i = work.back();
    work.pop_back();
    Node& node = graph.nodes[i];
    if (node.reason == Reason::kLive || node.reason == Reason::kUnusable) continue;
    if (node.deleted) continue;
    node.reason = Reason::kLive;
    for (uint32_t e = graph.out_begin[i]; e < graph.out_begin[i + 1]; ++e) {
      if (graph.out[e] & kRefBit) work.push_back(graph.out[e] & ~kRefBit);
    }
  }
}

// Count adds the pass's verdicts to `report`, and the kept tasks' ages to `by_age`.
void Count(const Graph& graph, uint16_t today, GcReport* report, std::array<uint64_t, 4>* by_age) {
  // The report's count of each reason, in the order of Reason.
  constexpr uint64_t GcReport::*kByReason[] = {nullptr,
                                               &GcReport::unusable,
                                               &GcReport::superseded,
                                               &GcReport::expired,
                                               &GcReport::requested,
                                               &GcReport::over_limit,
                                               &GcReport::dependent};
  by_age->fill(0);
  for (const Node& node : graph.nodes) {
    if (node.reason == Reason::kLive) {
      const int age = today - node.effective;
      ++(*by_age)[age <= 0 ? 0 : age <= 7 ? 1 : age <= 30 ? 2 : 3];
      continue;
    }
    ++(report->*kByReason[static_cast<int>(node.reason)]);
    ++report->removed_tasks;
    report->removed.push_back(node.id);
  }
}

// ReferrersFirst lists the garbage so that a task comes before the tasks it refers to: an
// in-memory task whose reference would lead nowhere is invalidated before that happens.
// A cycle of references, which only Vcs inside values can make, is listed as it comes,
// after everything else, from `*cycles_from` on: those go in one batch, so that no task of
// a cycle is deleted while another waits for a later batch (which could keep it, referring
// to the deleted one).
std::vector<uint32_t> ReferrersFirst(const Graph& graph, size_t* cycles_from) {
  std::vector<uint32_t> referrers(graph.nodes.size(), 0);  // garbage referrers not listed yet
  for (uint32_t i = 0; i < graph.nodes.size(); ++i) {
    if (graph.nodes[i].reason == Reason::kLive) continue;
    for (uint32_t e = graph.out_begin[i]; e < graph.out_begin[i + 1]; ++e) {
      if (graph.out[e] & kRefBit) ++referrers[graph.out[e] & ~kRefBit];
    }
  }
  std::vector<uint32_t> order;
  std::vector<bool> listed(graph.nodes.size(), false);
  auto list_from = [&](uint32_t start) {
    std::vector<uint32_t> work = {start};
    while (!work.empty()) {
      const uint32_t i = work.back();
      work.pop_back();
      if (listed[i]) continue;
      listed[i] = true;
      order.push_back(i);
      for (uint32_t e = graph.out_begin[i]; e < graph.out_begin[i + 1]; ++e) {
        const uint32_t t = graph.out[e] & ~kRefBit;
        if ((graph.out[e] & kRefBit) && graph.nodes[t].reason != Reason::kLive &&
            --referrers[t] == 0) {
          work.push_back(t);
        }
      }
    }
  };
  for (uint32_t i = 0; i < graph.nodes.size(); ++i) {
    if (graph.nodes[i].reason != Reason::kLive && referrers[i] == 0) list_from(i);
  }
  *cycles_from = order.size();
  for (uint32_t i = 0; i < graph.nodes.size(); ++i) {  // cycles
    if (graph.nodes[i].reason != Reason::kLive && !listed[i]) list_from(i);
  }
  return order;
}

absl::Status Aborted() { return absl::AbortedError("garbage collection stopped early"); }

}  // namespace

uint16_t EngineImpl::Today() {
  const int64_t days =
      std::chrono::duration_cast<std::chrono::hours>(clock_().time_since_epoch()).count() / 24;
  const auto today = static_cast<uint16_t>(std::clamp<int64_t>(days, 1, UINT16_MAX));
  today_.store(today, std::memory_order_relaxed);
  return today;
}

absl::StatusOr<GcReport> EngineImpl::CollectGarbage(const GcOptions& options, bool background) {
  // No section for the whole pass (it may take minutes, and no record evicted meanwhile
  // could be freed): each batch that looks tasks up opens its own.
  if (store_ == nullptr) {
    return absl::FailedPreconditionError("garbage collection needs a backing store");
  }
  MutexLock pass(&gc_mu_);
  const auto start = std::chrono::steady_clock::now();
  absl::Cleanup idle = [this] {  // what Stats shows between passes (the counts start at 0)
    counts.gc_phase.store(GcPhase::kIdle, std::memory_order_relaxed);
    counts.gc_pass_scanned.store(0, std::memory_order_relaxed);
    counts.gc_pass_garbage.store(0, std::memory_order_relaxed);
    counts.gc_pass_removed.store(0, std::memory_order_relaxed);
  };
  GcReport report;
  for (int round = 0; round < kMaxRounds; ++round) {
    counts.gc_phase.store(GcPhase::kScanning, std::memory_order_relaxed);
    counts.gc_pass_scanned.store(0, std::memory_order_relaxed);
    absl::Cleanup not_collecting = [this] {  // also if a job throws (`also_collect`, `stop`)
      MutexLock lock(&flush_mu_);
      collecting_ = false;
      kept_while_collecting_.clear();
    };
    // What memory knows reaches the store first, last-use days included: a result in
    // memory and not stored would not keep what it refers to. What the disk has no room
    // for (RoomForCache: a nearly full disk is when a pass matters most) stays in memory
    // and keeps what it refers to instead; once the pass has freed space, snapshots write
    // it. (Written into the reserve before, such results filled a 64 MiB disk: the pass
    // failed for lack of space, and the disk stayed full.)
    if (absl::Status flushed = Flush(/*sweep_uses=*/true, /*for_collection=*/true); !flushed.ok()) {
      return flushed;
    }
    absl::StatusOr<uint64_t> bytes = store_->DiskBytes();
    if (!bytes.ok()) return bytes.status();
    if (round == 0) report.bytes_before = *bytes;
    // Over the disk limit as measured, the store may only look so: right after many writes
    // its log and its tables not compacted yet hold what a compaction shrinks (300,000
    // small tasks measured 83 MB just written, 19 MB compacted), and a pass that went by
    // that collected nearly all of them. Compacted first, it is measured as it stays.
    if (round == 0 && options.disk_limit > 0 && *bytes > options.disk_limit &&
        !GcStopping(options)) {
      counts.gc_phase.store(GcPhase::kReclaiming, std::memory_order_relaxed);
      if (absl::Status reclaimed = ReclaimUnlessFull(); !reclaimed.ok()) return reclaimed;
      bytes = store_->DiskBytes();
      if (!bytes.ok()) return bytes.status();
      counts.gc_phase.store(GcPhase::kScanning, std::memory_order_relaxed);
    }
    const uint16_t today = Today();
    {
      // kept_while_collecting_ holds what the flush above left in memory.
      MutexLock lock(&flush_mu_);
      collecting_ = true;
    }
    // Unset inputs nothing in memory reads leave memory now, and their records at the next
    // pass: kept by this one, which an id taken before it may still name (a task holding
    // it reads it from the store).
    if (round == 0) EvictUnsetInputs();
    GcGraph graph;
    absl::Status scanned = ScanStore(graph, options);
    if (!scanned.ok()) return scanned;
    Link(graph);
    PropagateUse(graph, today);
    Decide(graph, options, today, *bytes);
    const uint64_t removed_before = report.removed_tasks;
    // What the rounds before removed, and what this one sees: the tasks of the first round
    // and those written since (a pass during calls removes them too).
    report.scanned_tasks = std::max(report.scanned_tasks, removed_before + graph.nodes.size());
    absl::Status deleted = DeleteGarbage(graph, options);
    std::move(not_collecting).Invoke();
    // The unset inputs that left memory above are freed now, not only by an evictor: an
    // engine with no memory limit has none, and kept every one until it was destroyed.
    ReclaimEvicted();
    if (!deleted.ok()) return deleted;
    std::array<uint64_t, 4> by_age;
    Count(graph, today, &report, &by_age);
    for (size_t i = 0; i < by_age.size(); ++i) counts.tasks_by_last_use[i].store(by_age[i]);
    // Tasks the store had no day for count from today: say so, so they age from now.
    std::vector<LastUse> unknown;
    for (const Node& node : graph.nodes) {
      if (node.reason == Reason::kLive && node.day == 0) unknown.push_back({node.id, today});
    }
    if (!unknown.empty()) {
      if (absl::Status written = store_->WriteLastUse(unknown); !written.ok()) return written;
    }
    // Reclaiming compacts the whole store (deletions are spread over all of it), so a
    // background pass leaves a small harvest to RocksDB's own compactions.
    uint64_t removed_bytes = 0;
    for (const Node& node : graph.nodes)
      removed_bytes += node.reason != Reason::kLive ? node.bytes : 0;
    const bool worth_it = !background || removed_bytes >= graph.raw_bytes / 10 ||
                          (options.disk_limit > 0 && *bytes > options.disk_limit);
    const uint64_t removed_now = report.removed_tasks - removed_before;
    if (removed_now > 0 && !worth_it) unreclaimed_removals_ += removed_now;
    if (((removed_now > 0 && worth_it) || (!background && unreclaimed_removals_ > 0)) &&
        !GcStopping(options)) {
      counts.gc_phase.store(GcPhase::kReclaiming, std::memory_order_relaxed);
      if (absl::Status reclaimed = ReclaimUnlessFull(); !reclaimed.ok()) return reclaimed;
    } else if (!background && !GcStopping(options)) {
      // Nothing to compact, but a pass asked for says what `du` will show: the store's log
      // keeps every write until the memtables holding it are written out (inputs changed
      // again and again kept hundreds of megabytes of it for a few bytes of data). A
      // compaction writes them out; so does this. If it cannot now, the log stays counted.
      (void)store_->Settle(0);
    }
    bytes = store_->DiskBytes();
    if (!bytes.ok()) return bytes.status();
    report.bytes_after = *bytes;
    // The disk limit works by an estimate of what records take on disk: short of it, look
    // again at the store as it is now.
    if (options.disk_limit == 0 || report.bytes_after <= options.disk_limit ||
        report.removed_tasks == removed_before || GcStopping(options)) {
      break;
    }
  }
  report.duration = std::chrono::steady_clock::now() - start;
  counts.gc_passes.fetch_add(1);
  counts.gc_removed_tasks.fetch_add(report.removed_tasks);
  if (report.bytes_before > report.bytes_after) {
    counts.gc_removed_bytes.fetch_add(report.bytes_before - report.bytes_after);
  }
  counts.gc_nanos.fetch_add(static_cast<uint64_t>(report.duration.count()));
  if (options.disk_limit > 0 && options.disk_limit == gc_options_.disk_limit) {
    NoteDiskLimit(report);
  }
  // Every pass asked for; a background one only when it removed something (most find
  // nothing, one an hour).
  if (!background || report.removed_tasks > 0) {
    Log(LogLevel::kInfo, "garbage collection removed " + std::to_string(report.removed_tasks) +
                             " of " + std::to_string(report.scanned_tasks) +
                             " tasks: " + std::to_string(report.bytes_before) + " -> " +
                             std::to_string(report.bytes_after) + " bytes on disk" +
                             (background ? " (a background pass)" : ""));
  }
  if (tracing()) [[unlikely]] {
    TraceEvent event;
    event.kind = TraceEvent::Kind::kGc;
    event.reason = std::string(background ? "background pass" : "pass asked for") + ": removed " +
                   std::to_string(report.removed_tasks) + " of " +
                   std::to_string(report.scanned_tasks) + " tasks, " +
                   std::to_string(report.bytes_before) + " -> " +
                   std::to_string(report.bytes_after) + " bytes on disk";
    event.start_nanos =
        std::chrono::duration_cast<std::chrono::nanoseconds>(start.time_since_epoch()).count();
    event.duration_nanos = report.duration.count();
    RecordTrace(std::move(event));
  }
  return report;
}

absl::Status EngineImpl::ScanStore(GcGraph& graph, const GcOptions& options) {
  absl::StatusOr<std::unique_ptr<TaskScan>> scan = store_->ScanTasks();
  if (!scan.ok()) return scan.status();
  for (bool more = true; more;) {
    if (GcStopping(options)) return Aborted();
    Section section;  // reclaim.h: the tasks this batch finds stay allocated
    absl::StatusOr<bool> next = (*scan)->Next(kScanBatch, [&](const StoredTask& stored) {
      if (graph.index.contains(stored.id)) return;  // a damaged record repeating an id
      const auto i = static_cast<uint32_t>(graph.nodes.size());
      graph.index.emplace(stored.id, i);
      Node& node = graph.nodes.emplace_back();
      node.id = stored.id;
      node.bytes = 16 + stored.identity.size() + stored.result.size();
      graph.raw_bytes += node.bytes;
      node.day = stored.last_used;
      if (TaskState* task = tasks_.Get(stored.id)) {
        node.day = std::max(node.day, task->used_day.load(std::memory_order_relaxed));
      }
      graph.raw_begin.push_back(static_cast<uint32_t>(graph.raw.size()));
      RecordLinks links;
      if (!ReadRecordLinks(stored.identity, stored.result, &links)) {
        node.reason = Reason::kUnusable;
        return;
      }
      node.kept_while_referenced = links.fn->kept_while_referenced;
      if (links.fn->kind == FunctionKind::kInput) {
        // Set, or unreadable (kept: the user's data may be there): never collected. Not
        // set: its record only keeps its id, for the tasks that read it.
        absl::StatusOr<std::optional<StoredInput>> value = store_->ReadInput(links.input_key);
        node.input = !value.ok() || value->has_value();
        node.unset_input = !node.input;
        node.kept_while_referenced |= node.unset_input;
        // A value holding Vcs refers to their tasks, as a result does: they stay with the
        // input (HoldWhatInputsReferTo). Its record holds only its identity.
        if (value.ok() && value->has_value()) {
          if (const ValueType* type = FindValueType((*value)->type_name)) {
            VcSink sink(&links.refs);
            (void)type->deserialize((*value)->bytes);
          }
        }
      }
      for (TaskId ref : links.refs) graph.raw.push_back(ref | kRawRefBit);
      for (TaskId dep : links.deps) graph.raw.push_back(dep);
    });
    if (!next.ok()) return next.status();
    counts.gc_pass_scanned.store(graph.nodes.size(), std::memory_order_relaxed);
    more = *next;
    std::this_thread::yield();  // a batch at a time: calls and snapshots go on meanwhile
  }
  return absl::OkStatus();
}

absl::Status EngineImpl::ReclaimUnlessFull() {
  absl::Status reclaimed = store_->Reclaim();
  if (reclaimed.ok()) unreclaimed_removals_ = 0;
  if (reclaimed.code() != absl::StatusCode::kResourceExhausted) return reclaimed;
  // No room to rewrite the store (a compaction needs about its size free): the pass goes on
  // without, deleting what it would have; the space comes back once compactions can run.
  Log(LogLevel::kWarning, "garbage collection goes on without compacting: " +
                              std::string(reclaimed.message()));
  return absl::OkStatus();
}

absl::Status EngineImpl::DeleteGarbage(GcGraph& graph, const GcOptions& options) {
  // A batch at a time under flush_mu_: snapshots and the evictor go on between batches, and
  // what they write or evict is kept (Keep, at the next batch). The order stays valid as
  // verdicts are taken back: a task kept keeps what it refers to, which comes later.
  size_t cycles_from = 0;
  const std::vector<uint32_t> garbage = ReferrersFirst(graph, &cycles_from);
  counts.gc_pass_garbage.fetch_add(garbage.size(), std::memory_order_relaxed);
  counts.gc_phase.store(GcPhase::kDeleting, std::memory_order_relaxed);
  for (size_t from = 0, to = 0; from < garbage.size(); from = to) {
    if (GcStopping(options)) return Aborted();
    to = from < cycles_from ? std::min(cycles_from, from + kDeleteBatch) : garbage.size();
    bool invalidated = false;
    absl::Status deleted = DeleteBatch(
        graph, std::span<const uint32_t>(garbage).subspan(from, to - from), &invalidated);
    // Out of flush_mu_: a listener may set inputs, which can take it.
    if (invalidated) NotifyChange();
    if (!deleted.ok()) return deleted;
    // The deletions of 600,000 tasks took a 37 MB log, which filled a nearly full disk
    // before the pass could end: written into table files as they go, they take far less.
    // A flush that fails leaves the deletions in the log: the pass goes on, and its next
    // batch says whether the disk has room for it.
    (void)store_->KeepLogSmall();
    std::this_thread::yield();
  }
  return absl::OkStatus();
}

absl::Status EngineImpl::DeleteBatch(GcGraph& graph, std::span<const uint32_t> batch,
                                     bool* invalidated) {
  Section section;  // reclaim.h: the tasks this batch finds stay allocated
  MutexLock flushing(&flush_mu_);
  Keep(graph, kept_while_collecting_);
  kept_while_collecting_.clear();
  std::vector<uint32_t> nodes;
  std::vector<uint64_t> ids;
  for (uint32_t i : batch) {
    if (graph.nodes[i].reason == Reason::kLive) continue;  // kept since the decision
    nodes.push_back(i);
    ids.push_back(graph.nodes[i].id);
  }
  if (ids.empty()) return absl::OkStatus();
  {
    // Tasks being read from the store are registered before this; those read later see
    // `deleting_`. Held for a swap: calls that miss memory wait here.
    absl::flat_hash_set<TaskId> noted(ids.begin(), ids.end());
    MutexLock gate(&store_gate_);
    deleting_.swap(noted);
  }
  absl::Cleanup forget_deleting = [this] {  // freed after the gate is released
    absl::flat_hash_set<TaskId> noted;
    MutexLock gate(&store_gate_);
    deleting_.swap(noted);
  };
  KeepUnsetInputsInUse(graph, &nodes, &ids);
  if (ids.empty()) return absl::OkStatus();
  // Every task registered from the store before the swap is in the task table now, and
  // every one registered after it counts as not stored: the tasks of this batch that are in
  // memory are all found here.
  std::vector<TaskId> invalidate;
  for (uint32_t i : nodes) {
    TaskState* task = tasks_.Get(graph.nodes[i].id);
    if (task == nullptr) continue;
    bool observed = false;
    {
      // Still in memory, and in use there; the store no longer has it: a snapshot that
      // writes it again writes all of it.
      MutexLock lock(&task->mu);
      task->persisted = false;
      observed = task->observed;
    }
    task->stored_day = 0;
    if (observed) {
      // Its observation goes with it, and results stored later may follow from it: it
      // looks again (and is stored, observation and all) before anything reads it.
      invalidate.push_back(task->id);
      continue;
    }
    // In memory it may refer to a removed task that is not in memory, which nobody could
    // load once it is deleted (in this batch or a later one: referrers go first).
    for (uint32_t e = graph.out_begin[i]; e < graph.out_begin[i + 1]; ++e) {
      const uint32_t t = graph.out[e] & ~kRefBit;
      if ((graph.out[e] & kRefBit) && graph.nodes[t].reason != Reason::kLive &&
          tasks_.Get(graph.nodes[t].id) == nullptr) {
        invalidate.push_back(task->id);
        break;
      }
    }
  }
  // So it executes again before it is read: before what it refers to is deleted, and
  // before snapshots resume (none may write it referring to what is gone).
  if (!invalidate.empty()) {
    *invalidated = true;
    InvalidateMany(std::move(invalidate), ExecutionReason::kGarbageCollected, /*notify=*/false);
  }
  // The store's deletes without the gate: they may wait for RocksDB (a stalled write), and
  // calls must not wait with them. A failed batch leaves its tasks stored with `persisted`
  // false in memory: a snapshot that writes one again writes all of it, which is always
  // safe.
  absl::Status deleted = ForgetObservations(ids);
  if (deleted.ok()) deleted = store_->DeleteTasks(ids);
  if (!deleted.ok()) return deleted;
  // A version nothing linked to (the content of a file before its last edit) is not asked
  // for again: its values leave memory with its record. Others removed while in memory
  // (picked, over the disk limit, or superseded only because what read them went) keep
  // them: in memory nothing is lost.
  std::vector<TaskId> superseded;
  for (uint32_t i : nodes) {
    if (graph.nodes[i].unlinked_when_scanned) superseded.push_back(graph.nodes[i].id);
  }
  DropValuesOfCollected(superseded);
  for (uint32_t i : nodes) graph.nodes[i].deleted = true;
  counts.gc_pass_removed.fetch_add(ids.size(), std::memory_order_relaxed);
  ForgetEvicted(ids);
  return absl::OkStatus();
}

void EngineImpl::KeepUnsetInputsInUse(GcGraph& graph, std::vector<uint32_t>* nodes,
                                      std::vector<uint64_t>* ids) {
  // Looked at after `deleting_` is set: an input loaded from the store from then on counts as
  // not stored, and is stored again (CreateTask). One in memory now keeps its record: an
  // input in memory is always stored, or a change of it would not be. (EvictUnsetInputs took
  // the unused ones out of memory before the scan; one set again since is in memory, or was
  // evicted during the pass, which keeps it.)
  Section section;
  size_t kept = 0;
  for (size_t k = 0; k < nodes->size(); ++k) {
    Node& node = graph.nodes[(*nodes)[k]];
    if (node.unset_input && tasks_.Get(node.id) != nullptr) {
      node.reason = Reason::kLive;
      continue;
    }
    (*nodes)[kept] = (*nodes)[k];
    (*ids)[kept] = (*ids)[k];
    ++kept;
  }
  nodes->resize(kept);
  ids->resize(kept);
}

void EngineImpl::NoteDiskLimit(const GcReport& report) {
  const uint64_t limit = gc_options_.disk_limit;
  const bool over = report.bytes_after > limit;
  constexpr uint64_t kLeastGrowth = 64 << 10;
  gc_size_trigger_.store(over ? report.bytes_after + std::max(kLeastGrowth, report.bytes_after / 8)
                              : limit);
  // Said once until the store is under the limit again: a limit below what the inputs and
  // an empty store take would otherwise only show as a cache that keeps nothing.
  if (over && !gc_said_over_limit_) {
    Log(LogLevel::kWarning,
        "the store is " + std::to_string(report.bytes_after) +
            " bytes on disk after garbage collection, over the disk limit of " +
            std::to_string(limit) +
            ": what is left is what the pass kept (set inputs and what they refer to, results "
            "written or used while it ran) and the store's own files, and the pass works by an "
            "estimate of what a record takes on disk, which may fall short (a raised limit "
            "keeps more results)");
  }
  gc_said_over_limit_ = over;
}

void EngineImpl::GcLoop() {
  using Clock = std::chrono::steady_clock;
  const auto interval = gc_options_.interval;
  const auto tick = std::min<Clock::duration>(interval, std::chrono::seconds(1));
  constexpr auto kSizeCheck = std::chrono::seconds(10);
  auto next_pass = Clock::now() + std::min<Clock::duration>(interval, std::chrono::minutes(1));
  auto next_size_check = Clock::now();
  // Idle as the snapshots see it: nothing executed during a whole tick, nothing running.
  uint64_t executions_before = counts.execution_count.load(std::memory_order_relaxed);
  // No pass has run yet: the loop starts as the engine opens, before anyone can ask for one.
  uint64_t unset = 0;
  gc_size_trigger_.compare_exchange_strong(unset, gc_options_.disk_limit);
  while (gc_signal_.Sleep(tick)) {
    const uint64_t executions = counts.execution_count.load(std::memory_order_relaxed);
    const bool idle = executions == executions_before && refreshes_in_flight.load() == 0;
    executions_before = executions;
    const auto now = Clock::now();
    bool due = idle && now >= next_pass;
    // Busy or not: a daemon that never rests must not grow past its disk limit for good.
    if (!due && gc_options_.disk_limit > 0 && now >= next_size_check) {
      next_size_check = now + kSizeCheck;
      absl::StatusOr<uint64_t> bytes = store_->DiskBytes();
      due = bytes.ok() && *bytes > gc_size_trigger_.load();
    }
    if (due) {
      absl::StatusOr<GcReport> report = CollectGarbage(gc_options_, /*background=*/true);
      next_pass = Clock::now() + interval;
      if (report.status().code() == absl::StatusCode::kUnimplemented) {
        // A backing store without garbage collection: nothing to do in the background.
        Log(LogLevel::kInfo,
            "no background garbage collection: " + std::string(report.status().message()));
        return;
      }
      if (!report.ok() && !gc_abort_.load()) {  // what it removed, it logged itself
        Log(LogLevel::kWarning,
            "garbage collection failed: " + std::string(report.status().message()));
      }
    }
  }
}

}  // namespace turbine::internal
