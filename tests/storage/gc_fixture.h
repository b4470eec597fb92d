// gc_fixture.h — what the garbage collection tests share: task functions that count their
// executions, and helpers to run a pass and read its report.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "persisted_engine.h"
#include "turbine/engine.h"
#include "turbine/gc.h"

namespace turbine::testing::gc {

using Daemon = PersistedEngine<>;

// executions[name]: how many times the function `name` ran (Count), across tests.
inline std::map<std::string, std::atomic<int>> executions;
inline std::mutex executions_mu;
inline void Count(const std::string& name) {
  std::lock_guard lock(executions_mu);
  ++executions[name];
}
inline int Executions(const std::string& name) {
  std::lock_guard lock(executions_mu);
  return executions[name].load();
}

inline Task<int64_t> LeafImpl(int64_t n) {
  Count("leaf");
  co_return n + co_await Input<int64_t>("base");
}
inline const turbine::Function<LeafImpl> leaf{"test.gc.leaf", 1};

// InputReader(key) reads input `key`.
inline Task<int64_t> InputReaderImpl(std::string key) {
  Count("input_reader");
  co_return co_await Input<int64_t>(key);
}
inline const turbine::Function<InputReaderImpl> input_reader{"test.gc.input_reader", 1};

// Collect runs a pass and expects it to succeed.
inline GcReport Collect(turbine::Engine& engine, GcOptions options) {
  absl::StatusOr<GcReport> report = engine.CollectGarbage(options);
  EXPECT_TRUE(report.ok()) << report.status();
  return report.ok() ? *report : GcReport{};
}

// Only the tasks `ids` names are garbage (everything was used today).
inline GcOptions Only(std::set<TaskId> ids) {
  return GcOptions{.also_collect = [ids = std::move(ids)](TaskId id) { return ids.contains(id); }};
}

inline bool Removed(const GcReport& report, TaskId id) {
  return std::find(report.removed.begin(), report.removed.end(), id) != report.removed.end();
}

}  // namespace turbine::testing::gc
