// task_eviction_fixture.h — what the whole-task eviction tests share: a chain of tasks
// reading an input (Leaf, Mid, Root), values and references to them (Text, Pointer,
// Length, Moving), counters of their runs, and a daemon whose evictor runs only when a test
// says so.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "persisted_engine.h"
#include "temp_dir.h"
#include "turbine/engine.h"

namespace turbine::testing::eviction {

using turbine::Input;
using turbine::Task;
using turbine::Vc;

inline std::atomic<int> leaf_runs{0};
inline std::atomic<int> mid_runs{0};
inline std::atomic<int> root_runs{0};
inline std::atomic<int> text_runs{0};

inline Task<int64_t> LeafImpl(int64_t n) {
  leaf_runs.fetch_add(1);
  co_return co_await Input<int64_t>("whole.x") * 10 + n;
}
inline const turbine::Function<LeafImpl> leaf{"test.whole.leaf", 1};

inline Task<int64_t> MidImpl(int64_t n) {
  mid_runs.fetch_add(1);
  co_return co_await leaf(n) + 1;
}
inline const turbine::Function<MidImpl> mid{"test.whole.mid", 1};

inline Task<int64_t> RootImpl(int64_t n) {
  root_runs.fetch_add(1);
  co_return co_await mid(n) * 2;
}
inline const turbine::Function<RootImpl> root{"test.whole.root", 1};

inline int64_t Expected(int64_t x, int64_t n) { return (x * 10 + n + 1) * 2; }

// Text(n) is a value; Pointer(n) answers with a reference to it, as fs.read does to
// fs.content: a read follows the reference without making Pointer a reader of Text.
inline Task<std::string> TextImpl(int64_t n) {
  text_runs.fetch_add(1);
  co_return "text " + std::to_string(n);
}
inline const turbine::Function<TextImpl> text{"test.whole.text", 1};

inline Task<Vc<std::string>> PointerImpl(int64_t n) { co_return text(n); }
inline const turbine::Function<PointerImpl> pointer{"test.whole.pointer", 1};

// Length(n) reads through Pointer(n).
inline std::atomic<int> length_runs{0};
inline Task<int64_t> LengthImpl(int64_t n) {
  length_runs.fetch_add(1);
  co_return static_cast<int64_t>((co_await pointer(n)).size());
}
inline const turbine::Function<LengthImpl> length{"test.whole.length", 1};

// Moving(n) refers to a Text chosen by an input; MovingLength(n) reads through it.
inline Task<Vc<std::string>> MovingImpl(int64_t n) {
  co_return text(co_await Input<int64_t>("whole.x") * 100 + n);
}
inline const turbine::Function<MovingImpl> moving{"test.whole.moving", 1};
inline std::atomic<int> moving_length_runs{0};
inline Task<int64_t> MovingLengthImpl(int64_t n) {
  moving_length_runs.fetch_add(1);
  co_return static_cast<int64_t>((co_await moving(n)).size());
}
inline const turbine::Function<MovingLengthImpl> moving_length{"test.whole.moving_length", 1};

// CellOf(n) answers with a cell of its own.
inline Task<Vc<int64_t>> CellOfImpl(int64_t n) { co_return turbine::Cell(n * 3); }
inline const turbine::Function<CellOfImpl> cell_of{"test.whole.cell_of", 1};

// Sometimes(n) is a large value while "whole.mode" is 0, and an error after.
inline Task<std::string> SometimesImpl(int64_t n) {
  const int64_t mode = co_await Input<int64_t>("whole.mode");  // not in the if: GCC 12
  if (mode != 0) turbine::Fail("no value now");
  co_return std::string(64 << 10, static_cast<char>('a' + n));
}
inline const turbine::Function<SometimesImpl> sometimes{"test.whole.sometimes", 1};

// Keeper reads "whole.x" and depends on the world: a session-dependent task with a result
// never leaves memory whole, so neither does the input it reads.
inline Task<int64_t> KeeperImpl() { co_return co_await Input<int64_t>("whole.x"); }
inline const turbine::Function<KeeperImpl> keeper{
    "test.whole.keeper", 1, "keeps whole.x in memory", {.session_dependent = true}};

// YReader reads "whole.y", which nothing keeps in memory.
inline std::atomic<int> y_reader_runs{0};
inline Task<int64_t> YReaderImpl() {
  y_reader_runs.fetch_add(1);
  co_return co_await Input<int64_t>("whole.y") + 1;
}
inline const turbine::Function<YReaderImpl> y_reader{"test.whole.y_reader", 1};

// Snapshots only when the test flushes; the evictor never runs on its own (the heap is
// never over the limit): the test evicts with Engine::EvictTasks when it chooses.
inline turbine::EngineOptions Options() {
  return turbine::EngineOptions{
      .worker_threads = 2,
      .snapshot_interval = {},
      .gc = {.interval = {}},
      .memory = {.limit_bytes = size_t{1} << 40, .usage = [] { return size_t{0}; }}};
}

class TaskEviction : public ::testing::Test {
 protected:
  void SetUp() override {
    leaf_runs = 0;
    mid_runs = 0;
    root_runs = 0;
    text_runs = 0;
    ASSERT_TRUE(daemon.engine.SetInput("whole.x", int64_t{1}).ok());
  }
  // KeepXInMemory keeps "whole.x" in memory, for tests that count the other tasks leaving.
  void KeepXInMemory() { ASSERT_TRUE(daemon.engine.Read(keeper()).ok()); }
  int Runs() const { return leaf_runs + mid_runs + root_runs; }
  turbine::EngineStats Stats() { return daemon.engine.Stats(); }

  turbine::testing::TempDir dir;
  turbine::testing::PersistedEngine<> daemon{dir.str(), Options()};
};

// PlusOne(v) reads the value `v` refers to.
inline std::atomic<int> plus_one_runs{0};
inline Task<int64_t> PlusOneImpl(Vc<int64_t> value) {
  plus_one_runs.fetch_add(1);
  co_return co_await value + 1;
}
inline const turbine::Function<PlusOneImpl> plus_one{"test.whole.plus_one", 1};

}  // namespace turbine::testing::eviction
