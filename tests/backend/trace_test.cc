// Engine::StartTrace / StopTrace: one event per execution, with why it ran, nested as the
// bodies ran; nothing recorded while off.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "turbine/engine.h"

namespace {

using turbine::Input;
using turbine::Task;
using turbine::TraceEvent;

Task<int64_t> LeafImpl(std::string key) { co_return (co_await Input<int64_t>(key)) + 1; }
inline const turbine::Function<LeafImpl> leaf{"test.trace.leaf", 1};

Task<int64_t> RootImpl() { co_return (co_await leaf("a")) * (co_await leaf("b")); }
inline const turbine::Function<RootImpl> root{"test.trace.root", 1};

const TraceEvent* Find(const turbine::Trace& trace, const std::string& function,
                       const std::string& args) {
  for (const TraceEvent& event : trace.events) {
    if (event.function == function && event.args == args) return &event;
  }
  return nullptr;
}

TEST(Trace, RecordsEachExecutionWithItsReasonAndNesting) {
  turbine::Engine engine({.worker_threads = 1});
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInputs({turbine::InputValue::Of("a", int64_t{1}),
                                turbine::InputValue::Of("b", int64_t{2})})
                  .ok());
  ASSERT_TRUE(engine.StartTrace());
  EXPECT_FALSE(engine.StartTrace()) << "one trace at a time";
  ASSERT_EQ(*engine.Read(root()), 6);
  turbine::Trace first = engine.StopTrace();
  ASSERT_EQ(first.events.size(), 3u);
  EXPECT_EQ(first.dropped, 0u);
  const TraceEvent* top = Find(first, "test.trace.root", "");
  const TraceEvent* a = Find(first, "test.trace.leaf", R"("a")");
  ASSERT_TRUE(top && a);
  EXPECT_EQ(top->reason, "first execution");
  EXPECT_EQ(top->task, root().raw().task);
  EXPECT_GT(top->duration_nanos, 0);
  // A leaf the root's read ran inline (on its thread) lies inside the root's slice; one a
  // worker ran meanwhile (the leaf's hint) is on the worker's track.
  EXPECT_GT(a->thread, 0u);
  for (const TraceEvent& leaf_event : first.events) {
    if (&leaf_event == top || leaf_event.thread != top->thread) continue;
    EXPECT_GE(leaf_event.start_nanos, top->start_nanos);
    EXPECT_LE(leaf_event.start_nanos + leaf_event.duration_nanos,
              top->start_nanos + top->duration_nanos);
  }
  // Events are in the order they ended: the leaves before the root.
  EXPECT_EQ(first.events.back().function, "test.trace.root");

  ASSERT_TRUE(engine.SetInput("b", int64_t{4}).ok());
  ASSERT_TRUE(engine.StartTrace());
  ASSERT_EQ(*engine.Read(root()), 10);
  turbine::Trace second = engine.StopTrace();
  ASSERT_EQ(second.events.size(), 2u) << "leaf(a) was verified, not executed";
  const TraceEvent* b = Find(second, "test.trace.leaf", R"("b")");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->reason, "dependency changed: turbine.input(\"b\") @" +
                           std::to_string(turbine::Input<int64_t>("b").raw().task));
  EXPECT_EQ(Find(second, "test.trace.root", "")->reason,
            "dependency changed: test.trace.leaf(\"b\") @" + std::to_string(b->task));
}

TEST(Trace, RecordsNothingWhileOffAndCountsWhatItDrops) {
  turbine::Engine engine({.worker_threads = 1});
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInputs({turbine::InputValue::Of("a", int64_t{1}),
                                turbine::InputValue::Of("b", int64_t{2})})
                  .ok());
  ASSERT_EQ(*engine.Read(root()), 6);
  EXPECT_TRUE(engine.StopTrace().events.empty());

  ASSERT_TRUE(engine.StartTrace({.max_events = 1}));
  ASSERT_TRUE(engine.SetInputs({turbine::InputValue::Of("a", int64_t{5}),
                                turbine::InputValue::Of("b", int64_t{6})})
                  .ok());
  ASSERT_EQ(*engine.Read(root()), 42);
  turbine::Trace trace = engine.StopTrace();
  EXPECT_EQ(trace.events.size(), 1u);
  EXPECT_EQ(trace.dropped, 2u);
}

}  // namespace
