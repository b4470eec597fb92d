// metrics.cc — the /metrics page (metrics.h): a prometheus-cpp Collectable that reads the
// server's counters at scrape time, and the HTTP server (prometheus-cpp's Exposer) for it.
#include "metrics.h"

#include <absl/status/status.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "address.h"
#include "memory_by_kind.h"

namespace turbine::server {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

double Seconds(uint64_t nanos) { return static_cast<double>(nanos) / 1e9; }

// Family builds one metric family; Add appends a sample to it.
class Family {
 public:
  Family(std::string name, std::string help, MetricType type)
      : family_{std::move(name), std::move(help), type, {}} {}

  Family& Add(double value, std::vector<ClientMetric::Label> labels = {}) {
    ClientMetric& metric = family_.metric.emplace_back();
    metric.label = std::move(labels);
    if (family_.type == MetricType::Counter) {
      metric.counter.value = value;
    } else {
      metric.gauge.value = value;
    }
    return *this;
  }
  // AddSummary appends a summary without quantiles: a count and a sum, which is what the
  // engine keeps (rate(sum) / rate(count) is the mean over any window).
  Family& AddSummary(uint64_t count, double sum) {
    ClientMetric& metric = family_.metric.emplace_back();
    metric.summary.sample_count = count;
    metric.summary.sample_sum = sum;
    return *this;
  }
  MetricFamily Take() { return std::move(family_); }

 private:
  MetricFamily family_;
};

// ProcessStartTime is when this process started, in Unix seconds: the kernel's start time
// since boot (/proc/self/stat, field 22) placed on the wall clock. Only /proc/self is read,
// which a unit with ProcSubset=pid still sees.
std::optional<double> ProcessStartTime() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  // Field 2, the command name, is in parentheses and may hold spaces: count after it.
  const size_t after_name = line.rfind(')');
  if (after_name == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(after_name + 2));
  std::string field;
  for (int number = 3; number <= 22 && fields >> field; ++number) {
    if (number != 22) continue;
    uint64_t ticks = 0;
    if (std::from_chars(field.data(), field.data() + field.size(), ticks).ec != std::errc()) {
      return std::nullopt;
    }
    timespec since_boot{};
    timespec wall{};
    ::clock_gettime(CLOCK_BOOTTIME, &since_boot);
    ::clock_gettime(CLOCK_REALTIME, &wall);
    const double now_since_boot = static_cast<double>(since_boot.tv_sec) + since_boot.tv_nsec / 1e9;
    const double now = static_cast<double>(wall.tv_sec) + wall.tv_nsec / 1e9;
    const double started_since_boot =
        static_cast<double>(ticks) / static_cast<double>(::sysconf(_SC_CLK_TCK));
    return now - (now_since_boot - started_since_boot);
  }
  return std::nullopt;
}

// ResidentBytes is the process's resident memory (/proc/self/statm, field 2, in pages).
std::optional<double> ResidentBytes() {
  std::ifstream in("/proc/self/statm");
  uint64_t size = 0;
  uint64_t resident = 0;
  if (!(in >> size >> resident)) return std::nullopt;
  return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE));
}

}  // namespace

class Metrics::Collector final : public prometheus::Collectable {
 public:
  Collector(const Engine& engine, const TurbineService& service, const storage::Store& store)
      : engine_(engine), service_(service), store_(store), process_start_(ProcessStartTime()) {}

  std::vector<MetricFamily> Collect() const override {
    const EngineStats stats = engine_.Stats();
    const ServiceCounters counters = service_.Counters();
    const storage::StoreUsage usage = store_.Usage();
    std::vector<MetricFamily> out;
    CollectService(counters, out);
    CollectEngine(stats, out);
    CollectStore(usage, out);
    const MemoryByKind memory = EstimateMemoryByKind(stats, usage);
    out.push_back(Family("turbine_memory_bytes",
                         "The heap by what holds it, estimated: task records, dependency edges, "
                         "cells, RocksDB's memtables and block cache (store), and the rest of "
                         "the heap in use (other: larger values, buffers).",
                         MetricType::Gauge)
                      .Add(static_cast<double>(memory.tasks), {{"kind", "tasks"}})
                      .Add(static_cast<double>(memory.edges), {{"kind", "edges"}})
                      .Add(static_cast<double>(memory.cells), {{"kind", "cells"}})
                      .Add(static_cast<double>(memory.store), {{"kind", "store"}})
                      .Add(static_cast<double>(memory.other), {{"kind", "other"}})
                      .Take());
    CollectProcess(counters, out);
    return out;
  }

 private:
  static void CollectService(const ServiceCounters& counters, std::vector<MetricFamily>& out) {
    Family rpcs("turbine_rpcs_total", "RPCs received, by method.", MetricType::Counter);
    for (int i = 0; i < kRpcCount; ++i) {
      rpcs.Add(static_cast<double>(counters.rpcs[i]),
               {{"method", std::string(RpcName(static_cast<Rpc>(i)))}});
    }
    out.push_back(rpcs.Take());
    out.push_back(Family("turbine_calls_total",
                         "Function calls answered (unary, on streams, watch reads), by where "
                         "the answer came from.",
                         MetricType::Counter)
                      .Add(static_cast<double>(counters.hits_memory), {{"source", "memory"}})
                      .Add(static_cast<double>(counters.hits_disk), {{"source", "disk"}})
                      .Add(static_cast<double>(counters.hits_shared), {{"source", "shared"}})
                      .Add(static_cast<double>(counters.executed), {{"source", "executed"}})
                      .Take());
    Family errors("turbine_errors_total",
                  "Errors returned to clients, by gRPC status code: failed RPCs, failed calls "
                  "on streams, calls answered with the function's error.",
                  MetricType::Counter);
    for (int code = 1; code < kStatusCodeCount; ++code) {
      errors.Add(static_cast<double>(counters.errors[code]),
                 {{"code", absl::StatusCodeToString(static_cast<absl::StatusCode>(code))}});
    }
    out.push_back(errors.Take());
    out.push_back(
        Family("turbine_input_batches_total", "SetInputs batches applied.", MetricType::Counter)
            .Add(static_cast<double>(counters.input_batches))
            .Take());
    out.push_back(
        Family("turbine_inputs_set_total", "Inputs set by those batches.", MetricType::Counter)
            .Add(static_cast<double>(counters.inputs_set))
            .Take());
    out.push_back(Family("turbine_inputs_changed_total",
                         "Inputs set to a value different from the one they had.",
                         MetricType::Counter)
                      .Add(static_cast<double>(counters.inputs_changed))
                      .Take());
    out.push_back(Family("turbine_inputs_deleted_total",
                         "Inputs unset by DeleteInputs (only those that were set).",
                         MetricType::Counter)
                      .Add(static_cast<double>(counters.inputs_deleted))
                      .Take());
    out.push_back(Family("turbine_calls_in_flight",
                         "Calls, input batches and flushes accepted and not yet answered.",
                         MetricType::Gauge)
                      .Add(static_cast<double>(counters.in_flight))
                      .Take());
    out.push_back(Family("turbine_watches", "Open Watch streams.", MetricType::Gauge)
                      .Add(static_cast<double>(counters.watches))
                      .Take());
    out.push_back(Family("turbine_reply_bytes_queued",
                         "Bytes of memory held by replies (of call streams, unary calls, watches) waiting for their clients to read them.",
                         MetricType::Gauge)
                      .Add(static_cast<double>(counters.reply_bytes_queued))
                      .Take());
    out.push_back(Family("turbine_streams_paused",
                         "CallStreams not reading requests until their clients catch up.",
                         MetricType::Gauge)
                      .Add(static_cast<double>(counters.streams_paused))
                      .Take());
  }

  static void CollectEngine(const EngineStats& stats, std::vector<MetricFamily>& out) {
    const auto gauge = [&out](const char* name, const char* help, uint64_t value) {
      out.push_back(Family(name, help, MetricType::Gauge).Add(static_cast<double>(value)).Take());
    };
    const auto counter = [&out](const char* name, const char* help, uint64_t value) {
      out.push_back(Family(name, help, MetricType::Counter).Add(static_cast<double>(value)).Take());
    };
    gauge("turbine_tasks", "Tasks in memory.", stats.tasks);
    gauge("turbine_cells", "Cells held by the tasks in memory.", stats.cells);
    gauge("turbine_edges", "Dependency edges in memory.", stats.edges);
    gauge("turbine_revision", "The engine's revision: bumped by every input change.",
          stats.revision);
    counter("turbine_executions_total", "Task bodies run, all functions.", stats.executions);
    counter("turbine_restored_tasks_total", "Tasks loaded from the on-disk cache.",
            stats.restored_tasks);
    counter("turbine_trusted_restored_tasks_total",
            "Tasks loaded from the on-disk cache and served without verifying what they read.",
            stats.trusted_restored_tasks);
    gauge("turbine_observations_checked",
          "Observations of files and directories checked again when the daemon started.",
          stats.observations_checked);
    gauge("turbine_observations_changed",
          "Of the observations checked at start, those that changed while it was down.",
          stats.observations_changed);
    out.push_back(
        Family("turbine_shared_tasks_total",
               "The shared cache tier: tasks by what their lookup found (hit: adopted; miss: "
               "no trace; verify_failure: a dependency differs here; ignored: a malformed, "
               "oversized or foreign record; error: the tier failed or timed out).",
               MetricType::Counter)
            .Add(static_cast<double>(stats.shared_hits), {{"result", "hit"}})
            .Add(static_cast<double>(stats.shared_misses), {{"result", "miss"}})
            .Add(static_cast<double>(stats.shared_verify_failures), {{"result", "verify_failure"}})
            .Add(static_cast<double>(stats.shared_ignored), {{"result", "ignored"}})
            .Add(static_cast<double>(stats.shared_errors), {{"result", "error"}})
            .Take());
    counter("turbine_shared_published_total", "Traces published to the shared cache tier.",
            stats.shared_published);
    counter("turbine_shared_publish_dropped_total",
            "Traces not published (queue full, unshareable, or the tier failed).",
            stats.shared_publish_dropped);
    gauge("turbine_shared_publish_queue", "Traces waiting to be published.",
          stats.shared_publish_queue);
    counter("turbine_cycles_detected_total", "Reads that failed because of a dependency cycle.",
            stats.cycles_detected);
    out.push_back(Family("turbine_snapshot_duration_seconds",
                         "Time spent writing snapshots of changed results to disk.",
                         MetricType::Summary)
                      .AddSummary(stats.snapshots, Seconds(stats.snapshot_nanos))
                      .Take());
    out.push_back(
        Family("turbine_snapshot_tasks", "Tasks written per snapshot.", MetricType::Summary)
            .AddSummary(stats.snapshots, static_cast<double>(stats.snapshot_tasks))
            .Take());
    counter("turbine_idle_snapshots_total",
            "Snapshots started because the engine went idle (part of the summary's count).",
            stats.idle_snapshots);
    gauge("turbine_last_snapshot_tasks", "Tasks written by the last snapshot.",
          stats.last_snapshot_tasks);
    out.push_back(Family("turbine_gc_duration_seconds",
                         "Garbage collection passes of the store (count) and their time (sum).",
                         MetricType::Summary)
                      .AddSummary(stats.gc_passes, Seconds(stats.gc_nanos))
                      .Take());
    counter("turbine_gc_removed_tasks_total", "Tasks garbage collection removed from the store.",
            stats.gc_removed_tasks);
    counter("turbine_gc_removed_bytes_total", "Bytes on disk garbage collection freed.",
            stats.gc_removed_bytes);
    Family phase("turbine_gc_phase",
                 "The phase of the garbage collection pass running now: 1 for the current one.",
                 MetricType::Gauge);
    const std::pair<GcPhase, const char*> phases[] = {{GcPhase::kIdle, "idle"},
                                                      {GcPhase::kScanning, "scanning"},
                                                      {GcPhase::kDeleting, "deleting"},
                                                      {GcPhase::kReclaiming, "reclaiming"}};
    for (const auto& [value, name] : phases) {
      phase.Add(stats.gc_phase == value ? 1.0 : 0.0, {{"phase", name}});
    }
    out.push_back(phase.Take());
    Family pass("turbine_gc_pass_tasks",
                "The garbage collection pass running now: stored tasks its scan found (this "
                "round), garbage it decided to remove, tasks it removed so far (0 between "
                "passes).",
                MetricType::Gauge);
    pass.Add(static_cast<double>(stats.gc_pass_scanned_tasks), {{"kind", "scanned"}});
    pass.Add(static_cast<double>(stats.gc_pass_garbage_tasks), {{"kind", "garbage"}});
    pass.Add(static_cast<double>(stats.gc_pass_removed_tasks), {{"kind", "removed"}});
    out.push_back(pass.Take());
    gauge("turbine_memory_limit_bytes", "The daemon's memory limit (--memory-limit).",
          stats.memory_limit_bytes);
    gauge("turbine_heap_bytes", "The heap in use when the evictor last measured it.",
          stats.heap_bytes);
    counter("turbine_evicted_values_total",
            "Results whose values left memory for the store (still cached, on disk).",
            stats.evicted_values);
    counter("turbine_evicted_value_bytes_total", "Stored bytes of the evicted values.",
            stats.evicted_value_bytes);
    counter("turbine_reloaded_values_total", "Evicted values read back from the store.",
            stats.reloaded_values);
    counter("turbine_reload_failures_total",
            "Evicted values the store no longer had (removed by GC): executed instead.",
            stats.reload_failures);
    counter("turbine_evicted_tasks_total",
            "Whole tasks that left memory under the limit (still cached, on disk).",
            stats.evicted_tasks);
    counter("turbine_reloaded_tasks_total", "Tasks evicted whole and loaded back from the store.",
            stats.reloaded_tasks);
    gauge("turbine_evicted_tasks_away",
          "Tasks evicted whole, neither loaded back nor removed by GC since.",
          stats.evicted_tasks_away);
    gauge("turbine_evicted_unfreed_bytes",
          "Records of tasks evicted whole and not freed yet (a thread may still see them).",
          stats.evicted_unfreed_bytes);
    gauge("turbine_resident_bytes",
          "The resident set when the evictor last measured it (what --memory-limit bounds).",
          stats.resident_bytes);
    out.push_back(Family("turbine_admission_wait_seconds",
                         "Calls that waited while new tasks outran snapshots over the memory "
                         "limit (count) and the time they waited (sum).",
                         MetricType::Summary)
                      .AddSummary(stats.admission_waits, Seconds(stats.admission_wait_nanos))
                      .Take());
    Family by_use("turbine_store_tasks_by_last_use",
                  "Tasks on disk by how long ago they were last used, as the last garbage "
                  "collection pass found them.",
                  MetricType::Gauge);
    const char* const ages[] = {"today", "1-7d", "8-30d", "older"};
    for (size_t i = 0; i < stats.tasks_by_last_use.size(); ++i) {
      by_use.Add(static_cast<double>(stats.tasks_by_last_use[i]), {{"age", ages[i]}});
    }
    out.push_back(by_use.Take());

    Family calls("turbine_function_calls_total", "Calls of a function's tasks.",
                 MetricType::Counter);
    Family hits("turbine_function_cache_hits_total",
                "Calls that found the task already existing (in memory or on disk).",
                MetricType::Counter);
    Family executions("turbine_function_executions_total", "Times a function's body ran.",
                      MetricType::Counter);
    Family seconds("turbine_function_execution_seconds_total",
                   "Wall time inside a function's bodies, awaits included.", MetricType::Counter);
    for (const FunctionStats& fn : stats.functions) {
      const std::vector<ClientMetric::Label> labels = {{"function", fn.name},
                                                       {"version", std::to_string(fn.version)}};
      calls.Add(static_cast<double>(fn.calls), labels);
      hits.Add(static_cast<double>(fn.cache_hits), labels);
      executions.Add(static_cast<double>(fn.executions), labels);
      seconds.Add(Seconds(fn.execution_nanos), labels);
    }
    out.push_back(calls.Take());
    out.push_back(hits.Take());
    out.push_back(executions.Take());
    out.push_back(seconds.Take());
  }

  static void CollectStore(const storage::StoreUsage& usage, std::vector<MetricFamily>& out) {
    out.push_back(Family("turbine_store_disk_bytes",
                         "Size of the RocksDB cache on disk: table files (sst) and the "
                         "write-ahead log (wal).",
                         MetricType::Gauge)
                      .Add(static_cast<double>(usage.table_file_bytes), {{"files", "sst"}})
                      .Add(static_cast<double>(usage.log_file_bytes), {{"files", "wal"}})
                      .Take());
    out.push_back(Family("turbine_store_memory_bytes",
                         "Memory RocksDB holds: unflushed writes (memtable) and cached blocks "
                         "(block_cache).",
                         MetricType::Gauge)
                      .Add(static_cast<double>(usage.memtable_bytes), {{"kind", "memtable"}})
                      .Add(static_cast<double>(usage.block_cache_bytes), {{"kind", "block_cache"}})
                      .Take());
    out.push_back(Family("turbine_store_tasks", "Tasks in the on-disk cache (an estimate).",
                         MetricType::Gauge)
                      .Add(static_cast<double>(usage.tasks))
                      .Take());
  }

  void CollectProcess(const ServiceCounters& counters, std::vector<MetricFamily>& out) const {
    out.push_back(
        Family("turbine_uptime_seconds", "Time since the server started.", MetricType::Gauge)
            .Add(std::chrono::duration<double>(counters.uptime).count())
            .Take());
    if (process_start_) {
      out.push_back(Family("process_start_time_seconds",
                           "Start time of the process since unix epoch in seconds.",
                           MetricType::Gauge)
                        .Add(*process_start_)
                        .Take());
    }
    if (std::optional<double> resident = ResidentBytes()) {
      out.push_back(Family("process_resident_memory_bytes", "Resident memory size in bytes.",
                           MetricType::Gauge)
                        .Add(*resident)
                        .Take());
    }
  }

  const Engine& engine_;
  const TurbineService& service_;
  const storage::Store& store_;
  const std::optional<double> process_start_;
};

absl::StatusOr<std::string> CheckMetricsAddress(const std::string& address, bool insecure) {
  return CheckHttpAddress(
      {.what = "metrics address",
       .example = "127.0.0.1:9464",
       .refusal = "refusing to serve metrics off this machine: they have no TLS and no token, "
                  "so anyone on the network could read them"},
      address, insecure);
}

absl::StatusOr<std::unique_ptr<Metrics>> Metrics::Start(const std::string& address,
                                                        const Engine& engine,
                                                        const TurbineService& service,
                                                        const storage::Store& store) {
  std::unique_ptr<Metrics> metrics(new Metrics);
  metrics->collector_ = std::make_shared<Collector>(engine, service, store);
  try {
    // A scrape is small and fast, but each connection holds a thread until it is done: a
    // few that send nothing must not hold them all, and a silent one goes after 5 s.
    metrics->exposer_ = std::make_unique<prometheus::Exposer>(std::vector<std::string>{
        "listening_ports", address, "num_threads", "8", "request_timeout_ms", "5000"});
  } catch (const std::exception& e) {
    return absl::UnavailableError("cannot serve metrics on " + address +
                                  " (in use, or not allowed): " + e.what());
  }
  metrics->exposer_->RegisterCollectable(metrics->collector_);
  const std::vector<int> ports = metrics->exposer_->GetListeningPorts();
  if (ports.size() != 1 || ports[0] <= 0) {
    return absl::UnavailableError("cannot serve metrics on " + address);
  }
  metrics->address_ = address.substr(0, address.rfind(':')) + ":" + std::to_string(ports[0]);
  return metrics;
}

Metrics::~Metrics() {
  if (address_.empty()) return;  // Start failed: nothing is listening
  StopHttpServer(address_, [this] { exposer_.reset(); });
}

}  // namespace turbine::server
