// Invalidators: a session-dependent task reads the outside world, and whoever watches that
// world tells the engine when it changed. The task then executes again on its next read,
// and its readers follow only if its result changed.
#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "turbine/engine.h"

namespace {

using turbine::Task;

// World stands in for the file system: values the engine cannot see change.
struct World {
  std::mutex mu;
  std::map<std::string, int64_t> values;
  std::map<std::string, turbine::Invalidator> watchers;

  int64_t Get(const std::string& key) {
    std::lock_guard lock(mu);
    return values[key];
  }
  void Set(const std::string& key, int64_t value) {
    std::lock_guard lock(mu);
    values[key] = value;
  }
  // Change sets a value and fires the watcher of its key, as a file watcher would.
  void Change(const std::string& key, int64_t value) {
    turbine::Invalidator watcher;
    {
      std::lock_guard lock(mu);
      values[key] = value;
      watcher = watchers[key];
    }
    watcher.Invalidate();
  }
};
World world;

Task<int64_t> ObserveImpl(std::string key) {
  {
    std::lock_guard lock(world.mu);
    world.watchers[key] = turbine::CurrentInvalidator();
  }
  co_return world.Get(key);
}
inline const turbine::Function<ObserveImpl> observe{
    "test.invalidator.observe", 1, "a value of the world", {.session_dependent = true}};

Task<int64_t> ParityImpl(std::string key) { co_return (co_await observe(key)) % 2; }
inline const turbine::Function<ParityImpl> parity{"test.invalidator.parity", 1};

Task<int64_t> NotSessionDependentImpl() {
  turbine::CurrentInvalidator();
  co_return 0;
}
inline const turbine::Function<NotSessionDependentImpl> not_session_dependent{
    "test.invalidator.not_session_dependent", 1};

// Gated's first execution stops after reading the world, until the test changed it.
std::latch body_read_world(1);
std::latch world_changed(1);
std::atomic<bool> first_run{true};

Task<int64_t> GatedImpl(std::string key) {
  {
    std::lock_guard lock(world.mu);
    world.watchers[key] = turbine::CurrentInvalidator();
  }
  const int64_t value = world.Get(key);
  if (first_run.exchange(false)) {
    body_read_world.count_down();
    world_changed.wait();  // the world changes under the running body
  }
  co_return value;
}
inline const turbine::Function<GatedImpl> gated{
    "test.invalidator.gated", 1, "", {.session_dependent = true}};

uint64_t Executions(const turbine::Engine& engine, const std::string& function) {
  for (const turbine::FunctionStats& fn : engine.Stats().functions) {
    if (fn.name == function) return fn.executions;
  }
  return 0;
}

TEST(Invalidator, AChangeIsSeenOnlyOnceTheWatcherFires) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  world.Set("a", 1);
  ASSERT_EQ(*engine.Read(observe("a")), 1);

  world.Set("a", 2);  // the engine was not told
  EXPECT_EQ(*engine.Read(observe("a")), 1);
  EXPECT_EQ(Executions(engine, "test.invalidator.observe"), 1u);

  world.Change("a", 3);
  EXPECT_EQ(*engine.Read(observe("a")), 3);
  EXPECT_EQ(Executions(engine, "test.invalidator.observe"), 2u);
  EXPECT_EQ(*engine.Read(observe("a")), 3);  // cached again
  EXPECT_EQ(Executions(engine, "test.invalidator.observe"), 2u);
}

TEST(Invalidator, ReadersReExecuteOnlyWhenTheResultChanged) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  world.Set("b", 1);
  ASSERT_EQ(*engine.Read(parity("b")), 1);

  world.Change("b", 1);  // fired, but the value is the same: cut off
  EXPECT_EQ(*engine.Read(parity("b")), 1);
  EXPECT_EQ(Executions(engine, "test.invalidator.observe"), 2u);
  EXPECT_EQ(Executions(engine, "test.invalidator.parity"), 1u);

  world.Change("b", 4);  // changed: the reader follows
  EXPECT_EQ(*engine.Read(parity("b")), 0);
  EXPECT_EQ(Executions(engine, "test.invalidator.parity"), 2u);
}

TEST(Invalidator, FiringWhileTheTaskRunsMakesItRunAgain) {
  turbine::Engine engine(turbine::EngineOptions{.worker_threads = 2});
  turbine::Engine::Scope scope(engine);
  world.Set("c", 1);
  std::thread changer([] {
    body_read_world.wait();
    world.Change("c", 7);
    world_changed.count_down();
  });
  // The first execution returns the old value, but it went stale while it ran, so the
  // read waits for a second execution that sees the change.
  EXPECT_EQ(*engine.Read(gated("c")), 7);
  changer.join();
  EXPECT_EQ(Executions(engine, "test.invalidator.gated"), 2u);
}

TEST(Invalidator, OnlySessionDependentFunctionsHaveOne) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  absl::StatusOr<int64_t> result = engine.Read(not_session_dependent());
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("session-dependent"), std::string::npos)
      << result.status();
}

TEST(Invalidator, InvalidateAllFiresEachTaskAndEqualityNamesTheTask) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  world.Set("all1", 1);
  world.Set("all2", 2);
  ASSERT_EQ(*engine.Read(observe("all1")), 1);
  ASSERT_EQ(*engine.Read(observe("all2")), 2);
  std::vector<turbine::Invalidator> both;
  {
    std::lock_guard lock(world.mu);
    both = {world.watchers["all1"], world.watchers["all2"]};
  }
  EXPECT_FALSE(both[0] == both[1]);
  EXPECT_TRUE(both[0] == turbine::Invalidator(both[0]));

  world.Set("all1", 10);
  world.Set("all2", 20);
  turbine::Invalidator::InvalidateAll(both);
  EXPECT_EQ(*engine.Read(observe("all1")), 10);
  EXPECT_EQ(*engine.Read(observe("all2")), 20);
  EXPECT_EQ(Executions(engine, "test.invalidator.observe"), 4u);
}

TEST(Invalidator, OutlivingItsEngineIsHarmless) {
  turbine::Invalidator survivor;
  {
    turbine::Engine engine;
    turbine::Engine::Scope scope(engine);
    world.Set("gone", 1);
    ASSERT_EQ(*engine.Read(observe("gone")), 1);
    std::lock_guard lock(world.mu);
    survivor = world.watchers["gone"];
  }
  // The engine is gone: firing must do nothing (AddressSanitizer checks the "nothing").
  survivor.Invalidate();
  turbine::Invalidator::InvalidateAll({survivor, survivor});
}

}  // namespace
