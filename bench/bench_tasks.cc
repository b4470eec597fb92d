// bench_tasks.cc — bodies of the benchmark task functions.
#include "bench_tasks.h"

#include <benchmark/benchmark.h>

#include <chrono>
#include <vector>

namespace turbine::bench {

int64_t SpinFor(int64_t micros) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(micros);
  int64_t polls = 1;
  while (std::chrono::steady_clock::now() < deadline) ++polls;
  return polls;
}

Task<int64_t> BusyImpl(int64_t key, int64_t micros) {
  benchmark::DoNotOptimize(SpinFor(micros));
  co_return key;
}

Task<int64_t> NoopImpl(int64_t key) { co_return key; }

bool ReadBusy(Engine& engine, int64_t key, int64_t micros) {
  absl::StatusOr<int64_t> value = engine.Read(busy(key, micros));
  benchmark::DoNotOptimize(value);
  return value.ok() && *value == key;
}

bool Prewarm(Engine& engine, int64_t count, int64_t micros) {
  std::vector<Vc<int64_t>> vcs;
  vcs.reserve(static_cast<size_t>(count));
  for (int64_t key = 0; key < count; ++key) vcs.push_back(busy(key, micros));
  for (int64_t key = 0; key < count; ++key) {
    absl::StatusOr<int64_t> value = engine.Read(vcs[static_cast<size_t>(key)]);
    if (!value.ok() || *value != key) return false;
  }
  return true;
}

}  // namespace turbine::bench
