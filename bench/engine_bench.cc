// engine_bench.cc — the engine's overhead benchmarks (names: docs/ARCHITECTURE.md, "Benchmarks")
// and the binary's main.
//
// N in a name is the microseconds of busy work in the task body. Every benchmark run
// builds its own Engine, so no cache survives from one benchmark (or one run of the same
// benchmark at another iteration count) into the next. Calls come from the benchmark
// thread, which holds an Engine::Scope. Read the real (wall) time: in the parallel mode
// the work happens on the engine's workers, not on the benchmark thread.
#include <absl/container/flat_hash_map.h>
#include <absl/synchronization/mutex.h>
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <utility>
#include <vector>

#include "alloc_counter.h"
#include "bench_tasks.h"
#include "memory_bench.h"
#include "turbine/engine.h"

namespace turbine::bench {
namespace {

constexpr int64_t kMicros[] = {1, 10, 100, 1000};

void ReportAllocsPerOp(benchmark::State& state, const AllocTotals& totals) {
  state.counters["allocs_per_op"] = benchmark::Counter(static_cast<double>(totals.allocations),
                                                       benchmark::Counter::kAvgIterations);
}

// direct/N: the body alone, the floor every engine mode is compared against.
void Direct(benchmark::State& state) {
  const int64_t micros = state.range(0);
  for (auto _ : state) benchmark::DoNotOptimize(SpinFor(micros));
}

// turbo-cached-same-keys/N: a hit on the one task in the cache.
void CachedSameKeys(benchmark::State& state) {
  const int64_t micros = state.range(0);
  Engine engine;
  Engine::Scope scope(engine);
  if (!Prewarm(engine, 1, micros)) {
    state.SkipWithError("prewarm failed");
    return;
  }
  AllocRegion allocs;
  for (auto _ : state) {
    if (!ReadBusy(engine, 0, micros)) {
      state.SkipWithError("wrong value");
      break;
    }
  }
  ReportAllocsPerOp(state, allocs.Stop());
}

// turbo-cached-different-keys/N: a hit on a different cached task every iteration. All
// `tasks` tasks are computed before the timer starts; each batch of iterations is one pass
// over them in creation order, so a key comes back only after every other key was hit.
// Batching (rather than a fixed iteration count) keeps the name free of an
// "iterations:" suffix and stops the runner from re-prewarming for tiny trial runs.
void CachedDifferentKeys(benchmark::State& state, int64_t tasks) {
  const int64_t micros = state.range(0);
  Engine engine;
  Engine::Scope scope(engine);
  if (!Prewarm(engine, tasks, micros)) {
    state.SkipWithError("prewarm failed");
    return;
  }
  AllocRegion allocs;
  while (state.KeepRunningBatch(tasks)) {
    for (int64_t key = 0; key < tasks; ++key) {
      if (!ReadBusy(engine, key, micros)) {
        state.SkipWithError("wrong value");
        break;
      }
    }
  }
  ReportAllocsPerOp(state, allocs.Stop());
  state.counters["cached_tasks"] = static_cast<double>(tasks);
}

// turbo-uncached/N: every iteration creates, schedules, runs, completes and reads a task
// that has never existed. The reading thread usually runs it inline.
void Uncached(benchmark::State& state) {
  const int64_t micros = state.range(0);
  Engine engine;
  Engine::Scope scope(engine);
  int64_t key = 0;
  for (auto _ : state) {
    if (!ReadBusy(engine, key++, micros)) {
      state.SkipWithError("wrong value");
      break;
    }
  }
}

// turbo-uncached-traced/N: turbo-uncached with a trace running (Engine::StartTrace), as
// under `turbined --trace-file`: each execution also builds its event (function, arguments,
// reason) and appends it. The events are taken every 16,384 iterations, inside the timed
// loop (the daemon's writer thread does that on its own time), so memory stays bounded.
void UncachedTraced(benchmark::State& state) {
  const int64_t micros = state.range(0);
  Engine engine;
  Engine::Scope scope(engine);
  engine.StartTrace();
  int64_t key = 0;
  for (auto _ : state) {
    if (!ReadBusy(engine, key++, micros)) {
      state.SkipWithError("wrong value");
      break;
    }
    if ((key & 0x3fff) == 0) engine.TakeTrace();
  }
  engine.StopTrace();
}

// turbo-uncached-parallel/N: call every task first (workers start on them at once), then
// read them all; time per op is the batch's wall time over its size.
void UncachedParallel(benchmark::State& state) {
  const int64_t micros = state.range(0);
  const int64_t batch = state.max_iterations;
  Engine engine;
  Engine::Scope scope(engine);
  std::vector<Vc<int64_t>> vcs;
  vcs.reserve(static_cast<size_t>(batch));  // outside the timer: the loop must not grow it
  while (state.KeepRunningBatch(batch)) {
    for (int64_t key = 0; key < batch; ++key) vcs.push_back(busy(key, micros));
    for (int64_t key = 0; key < batch; ++key) {
      absl::StatusOr<int64_t> value = engine.Read(vcs[static_cast<size_t>(key)]);
      if (!value.ok() || *value != key) {
        state.SkipWithError("wrong value");
        break;
      }
    }
  }
}

// noop-cached-hit: a hit on a task whose body does nothing (so prewarming is free).
void NoopCachedHit(benchmark::State& state) {
  Engine engine;
  Engine::Scope scope(engine);
  if (!engine.Read(noop(0)).ok()) {
    state.SkipWithError("prewarm failed");
    return;
  }
  AllocRegion allocs;
  for (auto _ : state) {
    absl::StatusOr<int64_t> value = engine.Read(noop(0));
    benchmark::DoNotOptimize(value);
    if (!value.ok() || *value != 0) {
      state.SkipWithError("wrong value");
      break;
    }
  }
  ReportAllocsPerOp(state, allocs.Stop());
}

// BusyKey has the shape of a busy task's arguments, for the hash-map baselines.
struct BusyKey {
  int64_t key;
  int64_t micros;
  bool operator==(const BusyKey&) const = default;
  template <class H>
  friend H AbslHashValue(H h, const BusyKey& k) {
    return H::combine(std::move(h), k.key, k.micros);
  }
};

// baseline/hash-map-lookup: one find of the one key in the map — the physical floor of
// turbo-cached-same-keys. allocs_per_op doubles as a check that the harness allocates
// nothing inside the timed loop.
void HashMapLookup(benchmark::State& state) {
  absl::flat_hash_map<BusyKey, int64_t> map;
  map[BusyKey{0, 1}] = 0;
  BusyKey probe{0, 1};
  AllocRegion allocs;
  for (auto _ : state) {
    benchmark::DoNotOptimize(probe);  // the compiler must not hoist the find out of the loop
    auto it = map.find(probe);
    benchmark::DoNotOptimize(it->second);
  }
  ReportAllocsPerOp(state, allocs.Stop());
}

// baseline/hash-map-lookup-different-keys/M: a find of a different key each iteration in
// a map of M entries — the floor of turbo-cached-different-keys with M tasks cached.
void HashMapLookupDifferentKeys(benchmark::State& state) {
  const int64_t entries = state.range(0);
  absl::flat_hash_map<BusyKey, int64_t> map;
  map.reserve(static_cast<size_t>(entries));
  for (int64_t key = 0; key < entries; ++key) map[BusyKey{key, 1}] = key;
  int64_t key = 0;
  AllocRegion allocs;
  for (auto _ : state) {
    auto it = map.find(BusyKey{key, 1});
    benchmark::DoNotOptimize(it->second);
    if (++key == entries) key = 0;
  }
  ReportAllocsPerOp(state, allocs.Stop());
}

// Gate runs until nobody waits for it: the task many reads wait on in cancel-fan-in.
std::atomic<int> gate_starts{0};
Task<int64_t> GateImpl(int64_t key) {
  gate_starts.fetch_add(1);
  while (!Cancelled()) SpinFor(10);
  ThrowIfCancelled();
  co_return key;
}
inline const Function<GateImpl> gate{"bench.gate", 1};

// cancel-fan-in/N: N reads of one running task, each with its own token, cancelled in the
// order they came; the time is that of the N cancellations (items: reads). Each finds its
// read among the task's waiters, looked for from both ends (waiter_list.h): from the head
// alone, each search went the whole list, and 50,000 took 6 s.
void CancelFanIn(benchmark::State& state) {
  const int64_t reads = state.range(0);
  for (auto _ : state) {
    state.PauseTiming();
    gate_starts = 0;
    std::atomic<int64_t> ended{0};
    {
      Engine engine(EngineOptions{.worker_threads = 2});
      Engine::Scope scope(engine);
      std::vector<CancelToken> tokens(static_cast<size_t>(reads));
      for (CancelToken& token : tokens) {
        engine.ReadAsync(gate(0).raw(), token, [&ended](Engine::AsyncRead) { ++ended; });
      }
      while (gate_starts.load() == 0) std::this_thread::yield();
      state.ResumeTiming();
      for (CancelToken& token : tokens) token.Cancel();
      state.PauseTiming();
      while (ended.load() < reads) std::this_thread::yield();
    }
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * reads);
}

// DifferentKeysCache is how many tasks turbo-cached-different-keys/N prewarms: about two
// seconds of body time (split over the workers), so a 1 ms body still prewarms quickly.
int64_t DifferentKeysCache(int64_t micros) {
  return std::clamp<int64_t>(2'000'000 / micros, 2'000, 200'000);
}

// Registration sets no per-benchmark MinTime, Iterations or UseRealTime: each adds a
// suffix ("/min_time:0.500", "/real_time") to the name, and docs/ARCHITECTURE.md fixes the names.
// Real time is reported regardless (JSON `real_time`); UseRealTime would only change how
// the runner picks the iteration count.
void RegisterEngineBenchmarks() {
  for (int64_t n : kMicros) {
    benchmark::RegisterBenchmark("direct", Direct)->Arg(n);
    benchmark::RegisterBenchmark("turbo-cached-same-keys", CachedSameKeys)->Arg(n);
    benchmark::RegisterBenchmark("turbo-cached-different-keys", CachedDifferentKeys,
                                 DifferentKeysCache(n))
        ->Arg(n);
    benchmark::RegisterBenchmark("turbo-uncached", Uncached)->Arg(n);
    benchmark::RegisterBenchmark("turbo-uncached-traced", UncachedTraced)->Arg(n);
    benchmark::RegisterBenchmark("turbo-uncached-parallel", UncachedParallel)->Arg(n);
  }
  // "cached different-keys with 1M tasks in the cache".
  benchmark::RegisterBenchmark("turbo-cached-different-keys", CachedDifferentKeys, 1'000'000)
      ->Args({1, 1'000'000})
      ->ArgNames({"", "cache"});
  benchmark::RegisterBenchmark("baseline/hash-map-lookup", HashMapLookup);
  benchmark::RegisterBenchmark("baseline/hash-map-lookup-different-keys",
                               HashMapLookupDifferentKeys)
      ->Arg(1'000'000);
  benchmark::RegisterBenchmark("noop-cached-hit", NoopCachedHit);
  benchmark::RegisterBenchmark("cancel-fan-in", CancelFanIn)->Arg(50'000);
}

}  // namespace
}  // namespace turbine::bench

int main(int argc, char** argv) {
  // Debian builds Abseil without NDEBUG, which leaves absl::Mutex deadlock detection on by
  // default: every lock and every Mutex destructor then goes through one global graph whose
  // cost grows with the number of live mutexes (one per task). That is a debugging aid, not
  // engine overhead, and a process-wide choice (turbined makes the same one).
  turbine::DisableMutexDeadlockDetection();
  benchmark::AddCustomContext("absl_deadlock_detection", "off");
  turbine::bench::RegisterEngineBenchmarks();
  turbine::bench::RegisterMemoryBenchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
