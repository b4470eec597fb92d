// Session-dependent tasks across restarts: a result that depends on the outside world is
// re-validated once per session (executed again, then cut off by equality), because the
// world may have changed while no engine was watching it.
#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <string>

#include "persisted_engine.h"
#include "temp_dir.h"
#include "turbine/engine.h"

namespace {

using turbine::Task;

// The outside world: values the engine cannot see change.
std::mutex world_mu;
std::map<std::string, int64_t> world;

int64_t WorldValue(const std::string& key) {
  std::lock_guard lock(world_mu);
  return world[key];
}
void SetWorld(const std::string& key, int64_t value) {
  std::lock_guard lock(world_mu);
  world[key] = value;
}

Task<int64_t> ObserveImpl(std::string key) { co_return WorldValue(key); }
inline const turbine::Function<ObserveImpl> observe{
    "test.session.observe", 1, "a value of the world", {.session_dependent = true}};

Task<int64_t> DoubledImpl(std::string key) { co_return 2 * (co_await observe(key)); }
inline const turbine::Function<DoubledImpl> doubled{"test.session.doubled", 1};

// SquaredImpl does not depend on the world; it must not be re-executed after a restart.
Task<int64_t> SquaredImpl(int64_t n) { co_return n * n; }
inline const turbine::Function<SquaredImpl> squared{"test.session.squared", 1};

uint64_t Executions(const turbine::Engine& engine, const std::string& function) {
  for (const turbine::FunctionStats& fn : engine.Stats().functions) {
    if (fn.name == function) return fn.executions;
  }
  return 0;
}

using Daemon = turbine::testing::PersistedEngine<>;

TEST(SessionDependent, ReValidatedOncePerSessionAndCutOffWhenUnchanged) {
  turbine::testing::TempDir dir;
  SetWorld("a", 21);
  {
    Daemon d(dir.str());
    ASSERT_EQ(*d.engine.Read(doubled("a")), 42);
    ASSERT_EQ(*d.engine.Read(squared(9)), 81);
  }
  {
    Daemon d(dir.str());  // nothing changed while it was down
    EXPECT_EQ(*d.engine.Read(doubled("a")), 42);
    EXPECT_EQ(*d.engine.Read(squared(9)), 81);
    EXPECT_EQ(Executions(d.engine, "test.session.observe"), 1u) << "re-validated";
    EXPECT_EQ(Executions(d.engine, "test.session.doubled"), 0u) << "cut off: equal result";
    EXPECT_EQ(Executions(d.engine, "test.session.squared"), 0u) << "not session-dependent";

    EXPECT_EQ(*d.engine.Read(doubled("a")), 42);
    EXPECT_EQ(Executions(d.engine, "test.session.observe"), 1u) << "once per session";
  }
}

TEST(SessionDependent, AChangeMadeWhileTheEngineWasDownIsSeen) {
  turbine::testing::TempDir dir;
  SetWorld("b", 5);
  {
    Daemon d(dir.str());
    ASSERT_EQ(*d.engine.Read(doubled("b")), 10);
  }
  SetWorld("b", 6);
  {
    Daemon d(dir.str());
    EXPECT_EQ(*d.engine.Read(doubled("b")), 12);
    EXPECT_EQ(Executions(d.engine, "test.session.observe"), 1u);
    EXPECT_EQ(Executions(d.engine, "test.session.doubled"), 1u);
  }
  {
    Daemon d(dir.str());  // the new result was persisted
    EXPECT_EQ(*d.engine.Read(doubled("b")), 12);
    EXPECT_EQ(Executions(d.engine, "test.session.doubled"), 0u);
  }
}

}  // namespace
