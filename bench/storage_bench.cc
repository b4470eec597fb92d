// storage_bench.cc — the storage layer's benchmarks (names: docs/ARCHITECTURE.md, "Benchmarks") and
// the binary's main.
//
//   restored-hit               first access to a task that lives only on disk: a lookup by
//                              components (FindTask), decode and verification, no execution,
//                              in a store of 1,000,000 persisted tasks
//   persist-uncached/N         turbo-uncached/N with a RocksDB backing store, snapshots and all
//   restart-first-hit/<tasks>  open the store and an engine, answer one call from disk
//   restart-cone/<leaves>      and restart-cone-changed/<leaves>: restart_cone_bench.cc
//   set-input-trusted/<n>      SetInput of an input nothing read, in a session that trusted
//                              n restored results (0 or 1,000,000)
//
// The persisted tasks are busy(key, 1) of bench_tasks.h. Their databases are built once per
// process, untimed (storage_fixture.h); the first benchmark that needs the million-task one
// spends 15-20 s building it. Read the real (wall) time, as for engine_bench.
#include <absl/synchronization/mutex.h>
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "bench_tasks.h"
#include "storage_fixture.h"
#include "turbine/engine.h"

namespace turbine::bench {
namespace {

constexpr int64_t kRestoredTasks = 1'000'000;
constexpr int64_t kMicros[] = {1, 10, 100, 1000};
constexpr int64_t kRestartTasks[] = {1'000, 100'000, 1'000'000};
// What a daemon runs with (EngineOptions' default), spelled out because the numbers
// depend on it.
constexpr std::chrono::milliseconds kProductionSnapshotInterval{1000};

void SkipWithStatus(benchmark::State& state, const absl::Status& status) {
  state.SkipWithError(std::string(status.message()).c_str());
}

// ServedFromDisk checks that every answer `engine` gave came from the store: nothing
// executed, and at least `reads` tasks were restored.
bool ServedFromDisk(benchmark::State& state, Engine& engine, int64_t reads) {
  const EngineStats stats = engine.Stats();
  if (stats.executions != 0) {
    state.SkipWithError("a persisted task executed instead of being restored");
    return false;
  }
  if (stats.restored_tasks < static_cast<uint64_t>(reads)) {
    state.SkipWithError("fewer tasks were restored than read");
    return false;
  }
  return true;
}

// RestoredSession is a freshly opened engine on a persisted database, current on this
// thread, and how many of its tasks it has read (all of them restored on first access).
struct RestoredSession {
  std::unique_ptr<storage::PersistentEngine> persistent;
  std::optional<Engine::Scope> scope;
  int64_t reads = 0;
};

// OpenSession opens `db` the way a restarted daemon would find it. Snapshots are off:
// restored tasks are never written back, and the benchmark measures reads alone.
absl::Status OpenSession(const PersistedDb& db, RestoredSession& session) {
  session.scope.reset();
  session.persistent.reset();
  absl::StatusOr<std::unique_ptr<storage::PersistentEngine>> opened =
      OpenPersistentEngine(db.data_dir, std::chrono::milliseconds(0), /*must_exist=*/true);
  if (!opened.ok()) return opened.status();
  session.persistent = std::move(*opened);
  session.scope.emplace(session.persistent->engine());
  session.reads = 0;
  return absl::OkStatus();
}

// restored-hit: each iteration reads a task no engine of this session has touched, so it
// is found on disk by its components, decoded and verified (it read nothing, so verifying
// it is immediate). Every benchmark run opens the store afresh: its block cache starts
// cold, as after a restart, while the OS page cache is warm from the build. A session
// that has read every key is replaced, untimed.
void RestoredHit(benchmark::State& state) {
  absl::StatusOr<const PersistedDb*> db = PersistedDbWith(kRestoredTasks);
  if (!db.ok()) return SkipWithStatus(state, db.status());
  RestoredSession session;
  if (absl::Status opened = OpenSession(**db, session); !opened.ok()) {
    return SkipWithStatus(state, opened);
  }
  const KeyWalk walk((*db)->tasks);
  for (auto _ : state) {
    if (session.reads == (*db)->tasks) {
      state.PauseTiming();
      const bool served = ServedFromDisk(state, session.persistent->engine(), session.reads);
      const absl::Status reopened = served ? OpenSession(**db, session) : absl::OkStatus();
      state.ResumeTiming();
      if (!served) break;
      if (!reopened.ok()) {
        SkipWithStatus(state, reopened);
        break;
      }
    }
    if (!ReadBusy(session.persistent->engine(), walk.Key(session.reads++), kPersistedMicros)) {
      state.SkipWithError("wrong value");
      break;
    }
  }
  if (state.error_occurred()) return;
  if (!ServedFromDisk(state, session.persistent->engine(), session.reads)) return;
  state.counters["disk_bytes_per_task"] = (*db)->disk_bytes_per_task;
  state.counters["dir_bytes_per_task"] = (*db)->dir_bytes_per_task;
  state.counters["persisted_tasks"] = static_cast<double>((*db)->tasks);
}

// set-input-trusted/<n>: each iteration sets an input that nothing read, in a session that
// has served n restored results as trusted (untimed, before the loop). Every input change
// checks the input summary of every trusted result (EngineImpl::DistrustRestored), so the
// difference between n = 1,000,000 and n = 0 is that check; the rest is the input's
// synced write.
void SetInputTrusted(benchmark::State& state) {
  const int64_t trusted = state.range(0);
  absl::StatusOr<const PersistedDb*> db = PersistedDbWith(kRestoredTasks);
  if (!db.ok()) return SkipWithStatus(state, db.status());
  RestoredSession session;
  if (absl::Status opened = OpenSession(**db, session); !opened.ok()) {
    return SkipWithStatus(state, opened);
  }
  Engine& engine = session.persistent->engine();
  const KeyWalk walk((*db)->tasks);
  for (int64_t i = 0; i < trusted; ++i) {
    if (!ReadBusy(engine, walk.Key(i), kPersistedMicros)) return state.SkipWithError("wrong value");
  }
  if (engine.Stats().trusted_restored_tasks < static_cast<uint64_t>(trusted)) {
    return state.SkipWithError("the restored results were not trusted");
  }
  int64_t value = 0;
  for (auto _ : state) {
    if (absl::Status set = engine.SetInput("set-input-trusted/unread", ++value); !set.ok()) {
      SkipWithStatus(state, set);
      break;
    }
  }
  state.counters["trusted_tasks"] = static_cast<double>(engine.Stats().trusted_restored_tasks);
  state.counters["executions"] = static_cast<double>(engine.Stats().executions);
}

// persist-uncached/N: turbo-uncached/N on an engine with a RocksDB store in a fresh
// directory, snapshotting in the background as in production. Every new task first
// misses on disk (FindTask), and is written by a snapshot later. The last iteration also
// takes the snapshot a shutdown would: without it a run shorter than the snapshot
// interval would leave the writes out entirely, and with it every task created in the
// loop is written exactly once inside the timing.
void PersistUncached(benchmark::State& state) {
  const int64_t micros = state.range(0);
  const ScopedDataDir dir("persist-uncached");
  absl::StatusOr<std::unique_ptr<storage::PersistentEngine>> opened =
      OpenPersistentEngine(dir.str(), kProductionSnapshotInterval, /*must_exist=*/false);
  if (!opened.ok()) return SkipWithStatus(state, opened.status());
  Engine& engine = (*opened)->engine();
  Engine::Scope scope(engine);
  int64_t key = 0;
  for (auto _ : state) {
    if (!ReadBusy(engine, key++, micros)) {
      state.SkipWithError("wrong value");
      break;
    }
    if (key == state.max_iterations) {
      if (absl::Status flushed = engine.Flush(); !flushed.ok()) {
        SkipWithStatus(state, flushed);
        break;
      }
    }
  }
  const EngineStats stats = engine.Stats();
  state.counters["snapshots"] = static_cast<double>(stats.snapshots);
  state.counters["snapshot_ns_per_task"] =
      static_cast<double>(stats.snapshot_nanos) / static_cast<double>(std::max<int64_t>(key, 1));
}

// restart-first-hit/<tasks>: one iteration is a daemon's start and first answer: open
// the store, start an engine (default snapshot interval, so its threads start too), and
// read one persisted task. Tearing it down is untimed. The answer must come from disk.
void RestartFirstHit(benchmark::State& state) {
  absl::StatusOr<const PersistedDb*> db = PersistedDbWith(state.range(0));
  if (!db.ok()) return SkipWithStatus(state, db.status());
  const KeyWalk walk((*db)->tasks);
  int64_t restarts = 0;
  for (auto _ : state) {
    absl::StatusOr<std::unique_ptr<storage::PersistentEngine>> opened =
        OpenPersistentEngine((*db)->data_dir, kProductionSnapshotInterval, /*must_exist=*/true);
    if (!opened.ok()) {
      SkipWithStatus(state, opened.status());
      break;
    }
    Engine& engine = (*opened)->engine();
    bool right = false;
    {
      Engine::Scope scope(engine);
      right = ReadBusy(engine, walk.Key(restarts++), kPersistedMicros);
    }
    state.PauseTiming();
    const bool served = right && ServedFromDisk(state, engine, 1);
    if (!right) state.SkipWithError("wrong value");
    opened->reset();
    state.ResumeTiming();
    if (!served) break;
  }
}

// Registration sets no per-benchmark MinTime, Iterations or UseRealTime: each would add a
// suffix to the name, and docs/ARCHITECTURE.md fixes the names.
void RegisterStorageBenchmarks() {
  benchmark::RegisterBenchmark("restored-hit", RestoredHit);
  for (int64_t n : kMicros) {
    benchmark::RegisterBenchmark("persist-uncached", PersistUncached)->Arg(n);
  }
  for (int64_t tasks : kRestartTasks) {
    benchmark::RegisterBenchmark("restart-first-hit", RestartFirstHit)->Arg(tasks);
  }
  benchmark::RegisterBenchmark("set-input-trusted", SetInputTrusted)->Arg(0)->Arg(kRestoredTasks);
}

}  // namespace
}  // namespace turbine::bench

int main(int argc, char** argv) {
  // As in engine_bench: Debian's Abseil leaves absl::Mutex deadlock detection on, a
  // debugging aid whose cost is not the engine's.
  turbine::DisableMutexDeadlockDetection();
  benchmark::AddCustomContext("absl_deadlock_detection", "off");
  turbine::bench::RegisterStorageBenchmarks();
  turbine::bench::RegisterRestartConeBenchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("scratch_dir", turbine::bench::ScratchDir().string());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
