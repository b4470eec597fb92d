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

// Sum(n) reads Leaf(n) and Leaf(n + 1).
inline Task<int64_t> SumImpl(int64_t n) {
  Count("sum");
  co_return (co_await leaf(n)) + (co_await leaf(n + 1));
}
inline const turbine::Function<SumImpl> sum{"test.gc.sum", 1};

// Forward(n) refers to Leaf(n) (returns its output) without reading it.
inline Task<Vc<int64_t>> ForwardImpl(int64_t n) {
  Count("forward");
  co_return leaf(n);
}
inline const turbine::Function<ForwardImpl> forward{"test.gc.forward", 1};

// StoreForward5 is a first session: "base" 10, Forward(5) and Leaf(5) stored; their ids in
// `leaf_id` and `forward_id` (may be null).
inline void StoreForward5(const std::string& dir, TaskId* leaf_id, TaskId* forward_id = nullptr) {
  Daemon d(dir);
  ASSERT_TRUE(d.engine.SetInput("base", int64_t{10}).ok());
  ASSERT_EQ(*d.engine.Read(forward(5)), 15);
  *leaf_id = leaf(5).raw().task;
  if (forward_id != nullptr) *forward_id = forward(5).raw().task;
}

inline bool Removed(const GcReport& report, TaskId id) {
  return std::find(report.removed.begin(), report.removed.end(), id) != report.removed.end();
}

}  // namespace turbine::testing::gc
