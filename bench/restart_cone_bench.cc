// restart_cone_bench.cc — restarts over one root and a cone of N tasks below it.
//
//   restart-cone/<leaves>          open the store and an engine, read the root: nothing
//                                  changed since the last session
//   restart-cone-changed/<leaves>  the same after a session that only set the input under
//                                  one leaf (so one path of the cone must execute)
//
// The cone: cone(lo, n) sums leaves lo..lo+n-1, 16 children per node, about 1.07 N tasks;
// leaf 0 is the input "restart-cone/bias". Each database is built once per process,
// untimed. One iteration is a daemon's start and first answer; tearing it down (and its
// last snapshot) is untimed.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "storage_fixture.h"
#include "turbine/engine.h"

namespace turbine::bench {

Task<int64_t> ConeImpl(int64_t lo, int64_t n);
inline const Function<ConeImpl> cone{"bench.cone", 1};
Task<int64_t> ConeImpl(int64_t lo, int64_t n) {
  if (n == 1) {
    if (lo != 0) co_return lo;
    co_return co_await Input<int64_t>("restart-cone/bias");
  }
  const int64_t part = (n + 15) / 16;
  std::vector<Vc<int64_t>> children;
  for (int64_t start = lo; start < lo + n; start += part) {
    children.push_back(cone(start, std::min(part, lo + n - start)));
  }
  int64_t total = 0;
  for (Vc<int64_t>& child : children) total += co_await child;
  co_return total;
}

namespace {

constexpr int64_t kConeLeaves[] = {1'000, 100'000, 1'000'000};
constexpr std::chrono::milliseconds kProductionSnapshotInterval{1000};

int64_t ConeSum(int64_t leaves, int64_t bias) { return leaves * (leaves - 1) / 2 + bias; }

// ConeDb is a built database and the bias its input holds now.
struct ConeDb {
  std::unique_ptr<ScopedDataDir> dir;
  int64_t bias = 0;
};

absl::StatusOr<ConeDb*> ConeDbWith(int64_t leaves, const std::string& variant) {
  static std::map<std::pair<int64_t, std::string>, ConeDb> built;
  ConeDb& db = built[{leaves, variant}];
  if (db.dir != nullptr) return &db;
  const auto start = std::chrono::steady_clock::now();
  db.dir = std::make_unique<ScopedDataDir>("restart-cone");
  absl::StatusOr<std::unique_ptr<storage::PersistentEngine>> opened =
      OpenPersistentEngine(db.dir->str(), kProductionSnapshotInterval, /*must_exist=*/false);
  if (!opened.ok()) return opened.status();
  Engine& engine = (*opened)->engine();
  {
    Engine::Scope scope(engine);
    if (absl::Status set = engine.SetInput("restart-cone/bias", int64_t{0}); !set.ok()) return set;
    absl::StatusOr<int64_t> sum = engine.Read(cone(0, leaves));
    if (!sum.ok()) return sum.status();
    if (*sum != ConeSum(leaves, 0)) return absl::InternalError("the cone summed wrong");
  }
  // Everything snapshotted and compacted, as restart-first-hit's databases are: the log
  // replay a restart after a big last snapshot pays (seconds for a million tasks) is
  // another measurement.
  if (absl::Status flushed = engine.Flush(); !flushed.ok()) return flushed;
  if (absl::Status compacted = (*opened)->store().CompactAll(); !compacted.ok()) return compacted;
  opened->reset();
  std::fprintf(stderr, "storage_bench: built a cone of %lld leaves in %.1f s\n",
               static_cast<long long>(leaves),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return &db;
}

void SkipWithStatus(benchmark::State& state, const absl::Status& status) {
  state.SkipWithError(std::string(status.message()).c_str());
}

// RestartCone: with `change`, each iteration is preceded (untimed) by a session that sets
// the input under leaf 0 and stops.
void RestartCone(benchmark::State& state, bool change) {
  const int64_t leaves = state.range(0);
  absl::StatusOr<ConeDb*> db = ConeDbWith(leaves, change ? "changed" : "unchanged");
  if (!db.ok()) return SkipWithStatus(state, db.status());
  EngineStats last;
  for (auto _ : state) {
    if (change) {
      state.PauseTiming();
      absl::StatusOr<std::unique_ptr<storage::PersistentEngine>> setter = OpenPersistentEngine(
          (*db)->dir->str(), kProductionSnapshotInterval, /*must_exist=*/true);
      absl::Status set = setter.ok() ? (*setter)->engine().SetInput("restart-cone/bias",
                                                                    ++(*db)->bias)
                                     : setter.status();
      setter = nullptr;
      state.ResumeTiming();
      if (!set.ok()) {
        SkipWithStatus(state, set);
        break;
      }
    }
    absl::StatusOr<std::unique_ptr<storage::PersistentEngine>> opened =
        OpenPersistentEngine((*db)->dir->str(), kProductionSnapshotInterval, /*must_exist=*/true);
    if (!opened.ok()) {
      SkipWithStatus(state, opened.status());
      break;
    }
    Engine& engine = (*opened)->engine();
    absl::StatusOr<int64_t> sum;
    {
      Engine::Scope scope(engine);
      sum = engine.Read(cone(0, leaves));
    }
    state.PauseTiming();
    last = engine.Stats();
    opened->reset();
    state.ResumeTiming();
    if (!sum.ok() || *sum != ConeSum(leaves, (*db)->bias)) {
      state.SkipWithError("wrong value");
      break;
    }
  }
  state.counters["restored_tasks"] = static_cast<double>(last.restored_tasks);
  state.counters["trusted_tasks"] = static_cast<double>(last.trusted_restored_tasks);
  state.counters["executions"] = static_cast<double>(last.executions);
}

}  // namespace

void RegisterRestartConeBenchmarks() {
  for (int64_t leaves : kConeLeaves) {
    benchmark::RegisterBenchmark("restart-cone", RestartCone, false)->Arg(leaves);
  }
  for (int64_t leaves : kConeLeaves) {
    benchmark::RegisterBenchmark("restart-cone-changed", RestartCone, true)->Arg(leaves);
  }
}

}  // namespace turbine::bench
