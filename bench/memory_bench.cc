// memory_bench.cc — how much memory one cached task costs.
//
// memory/bytes-per-task creates, runs and reads kTasks (1,000,000) distinct tiny tasks
// (busy(key, 0): two int64 arguments, an int64 output) in a fresh engine and divides the
// growth of the live heap by the task count. Everything the engine keeps counts: the task
// record, the boxed arguments, the cache-map slot, the task-table slot, and the spare
// capacity of those tables at that size. Counters:
//   bytes_per_task             live operator-new bytes per task, minus the output value
//                              if it is boxed (one make_shared<const int64_t> block,
//                              measured the same way); an int64 is held in the task's
//                              record (ValueType::inline_size), so nothing is subtracted
//   bytes_per_task_incl_value  the same, with the output value
//   heap_bytes_per_task        glibc's own view (mallinfo2 in-use bytes, with chunk
//                              headers and anything allocated outside operator new)
//   allocs_per_task            operator-new calls per task, transient ones included
// Time per op is the wall time to create, run and read one task, serially, on the
// benchmark thread.
#include "memory_bench.h"

#include <benchmark/benchmark.h>
#include <malloc.h>

#include <cstdint>
#include <memory>

#include "alloc_counter.h"
#include "bench_tasks.h"
#include "turbine/engine.h"

namespace turbine::bench {
namespace {

int64_t HeapInUse() {
  const struct mallinfo2 info = mallinfo2();
  return static_cast<int64_t>(info.uordblks + info.hblkhd);
}

// OutputValueBytes is what the engine allocates to hold one int64 output: nothing when the
// record holds it in place.
int64_t OutputValueBytes() {
  if (ValueTypeOf<int64_t>().inline_size != 0) return 0;
  AllocRegion region;
  auto value = std::make_shared<const int64_t>(1);
  benchmark::DoNotOptimize(value);
  return region.Stop().net_bytes;
}

constexpr int64_t kTasks = 1'000'000;

void BytesPerTask(benchmark::State& state) {
  const int64_t tasks = kTasks;
  const int64_t value_bytes = OutputValueBytes();
  Engine engine;
  Engine::Scope scope(engine);
  const int64_t heap_before = HeapInUse();
  AllocRegion allocs;
  while (state.KeepRunningBatch(tasks)) {
    // One at a time: the read runs each task inline, so nothing queues up and no worker
    // arena is involved.
    for (int64_t key = 0; key < tasks; ++key) {
      if (!ReadBusy(engine, key, /*micros=*/0)) {
        state.SkipWithError("wrong value");
        break;
      }
    }
  }
  const AllocTotals totals = allocs.Stop();
  const int64_t heap_after = HeapInUse();
  const double n = static_cast<double>(tasks);
  state.counters["bytes_per_task"] = static_cast<double>(totals.net_bytes) / n - value_bytes;
  state.counters["bytes_per_task_incl_value"] = static_cast<double>(totals.net_bytes) / n;
  state.counters["heap_bytes_per_task"] = static_cast<double>(heap_after - heap_before) / n;
  state.counters["allocs_per_task"] = static_cast<double>(totals.allocations) / n;
  state.counters["cached_tasks"] = static_cast<double>(engine.Stats().tasks);
}

}  // namespace

void RegisterMemoryBenchmarks() {
  // One batch of kTasks iterations creates them all (time per op is time per task), and
  // takes longer than the minimum time, so the runner does not repeat it.
  benchmark::RegisterBenchmark("memory/bytes-per-task", BytesPerTask);
}

}  // namespace turbine::bench
