// Inputs are the user's data: durable once SetInputs returns, back after a restart, and
// never lost to a SIGKILL after the acknowledgement.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "persisted_engine.h"
#include "temp_dir.h"
#include "turbine/engine.h"
#include "turbine/storage/rocks_backing_store.h"
#include "turbine/storage/store.h"

namespace {

using turbine::Input;
using turbine::Task;
using turbine::storage::RocksBackingStore;
using turbine::storage::Store;
using turbine::storage::StoreOptions;

Task<std::string> GreetImpl() {
  const std::string greeting = co_await Input<std::string>("greeting");
  const int64_t times = co_await Input<int64_t>("times");
  std::string out;
  for (int64_t i = 0; i < times; ++i) out += greeting;
  co_return out;
}
inline const turbine::Function<GreetImpl> greet{"test.persist.greet", 1};

Task<int64_t> CounterImpl() { co_return co_await Input<int64_t>("counter"); }
inline const turbine::Function<CounterImpl> counter{"test.persist.counter", 1};

using Persisted = turbine::testing::PersistedEngine<>;

TEST(InputPersistence, InputsComeBackAfterARestart) {
  turbine::testing::TempDir dir;
  {
    Persisted p(dir.str());
    ASSERT_TRUE(p.engine
                    .SetInputs({turbine::InputValue::Of("greeting", std::string("hi ")),
                                turbine::InputValue::Of("times", int64_t{2})})
                    .ok());
    turbine::Engine::Scope scope(p.engine);
    ASSERT_EQ(*p.engine.Read(greet()), "hi hi ");
  }
  Persisted p(dir.str());
  turbine::Engine::Scope scope(p.engine);
  EXPECT_EQ(*p.engine.Read(greet()), "hi hi ");  // no SetInput in this process

  // A restored input behaves like any other: equal values change nothing, new ones do.
  const uint64_t executions = p.engine.Stats().executions;
  ASSERT_TRUE(p.engine.SetInput("times", int64_t{2}).ok());
  EXPECT_EQ(*p.engine.Read(greet()), "hi hi ");
  EXPECT_EQ(p.engine.Stats().executions, executions);
  ASSERT_TRUE(p.engine.SetInput("times", int64_t{3}).ok());
  EXPECT_EQ(*p.engine.Read(greet()), "hi hi hi ");
}

TEST(InputPersistence, ADeletedInputReadsAsNeverSetBeforeAndAfterARestart) {
  turbine::testing::TempDir dir;
  {
    Persisted p(dir.str());
    ASSERT_TRUE(p.engine.SetInput("counter", int64_t{4}).ok());
    ASSERT_EQ(*p.engine.Read(counter()), 4);
    size_t changed = 0;
    ASSERT_TRUE(p.engine.DeleteInputs({"counter", "never.set"}, &changed).ok());
    EXPECT_EQ(changed, 1u);  // only "counter" was set
    // Its reader was invalidated like by a change, and sees what an unset input reads as.
    absl::StatusOr<int64_t> value = p.engine.Read(counter());
    ASSERT_FALSE(value.ok());
    EXPECT_EQ(value.status().message(), "input 'counter' is not set");
    ASSERT_TRUE(p.engine.DeleteInputs({"counter"}, &changed).ok());
    EXPECT_EQ(changed, 0u);  // deleting again changes nothing
  }
  {
    Persisted p(dir.str());
    absl::StatusOr<int64_t> value = p.engine.Read(counter());
    ASSERT_FALSE(value.ok());  // the deletion was durable
    EXPECT_EQ(value.status().message(), "input 'counter' is not set");
    ASSERT_TRUE(p.engine.SetInput("counter", int64_t{5}).ok());
    EXPECT_EQ(*p.engine.Read(counter()), 5);
  }
  Persisted p(dir.str());
  EXPECT_EQ(*p.engine.Read(counter()), 5);  // set again after the deletion: back for good
}

TEST(InputPersistence, TheStampCounterSurvivesARestart) {
  turbine::testing::TempDir dir;
  {
    auto store = std::move(*Store::Open(StoreOptions{.data_dir = dir.str()}));
    RocksBackingStore backing(store.get());
    EXPECT_EQ(*backing.NextStamp(), 1u);
    ASSERT_TRUE(backing.WriteInputs({{"k", turbine::StoredInput{"i64", "", 76}}}, 77).ok());
  }
  auto store = std::move(*Store::Open(StoreOptions{.data_dir = dir.str()}));
  RocksBackingStore backing(store.get());
  EXPECT_EQ(*backing.NextStamp(), 77u);
}

TEST(InputPersistence, AStoredValueOfAnUnknownTypeIsAnErrorNotACrash) {
  turbine::testing::TempDir dir;
  {
    auto store = std::move(*Store::Open(StoreOptions{.data_dir = dir.str()}));
    RocksBackingStore backing(store.get());
    ASSERT_TRUE(backing
                    .WriteInputs({{"counter", turbine::StoredInput{"no.such.type", "xx", 5}}}, 6)
                    .ok());
  }
  Persisted p(dir.str());
  turbine::Engine::Scope scope(p.engine);
  absl::StatusOr<int64_t> value = p.engine.Read(counter());
  ASSERT_FALSE(value.ok());
  EXPECT_NE(value.status().message().find("no.such.type"), std::string::npos);
  ASSERT_TRUE(p.engine.SetInput("counter", int64_t{9}).ok());  // and it can be replaced
  EXPECT_EQ(*p.engine.Read(counter()), 9);
}

// A child process sets "counter" to 1, 2, 3, ... and reports each acknowledged value on a
// pipe; the parent SIGKILLs it at a random point and checks that a restarted engine sees at
// least the last acknowledged value. Repeated, so kills land at many different moments.
TEST(InputPersistence, AnAcknowledgedInputSurvivesSigkill) {
  for (int round = 0; round < 12; ++round) {
    turbine::testing::TempDir dir;
    int report[2];
    ASSERT_EQ(::pipe(report), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::close(report[0]);
      Persisted p(dir.str());
      for (int64_t value = 1;; ++value) {
        if (!p.engine.SetInput("counter", value).ok()) ::_exit(3);
        if (::write(report[1], &value, sizeof(value)) != sizeof(value)) ::_exit(4);
      }
    }
    ::close(report[1]);
    const int64_t kill_after = 1 + (round * 7) % 23;  // acknowledged writes before the kill
    int64_t acknowledged = 0;
    while (acknowledged < kill_after) {
      ASSERT_EQ(::read(report[0], &acknowledged, sizeof(acknowledged)),
                static_cast<ssize_t>(sizeof(acknowledged)));
    }
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    // Acknowledgements still in the pipe were durable too: count them.
    int64_t later = 0;
    while (::read(report[0], &later, sizeof(later)) == static_cast<ssize_t>(sizeof(later))) {
      acknowledged = later;
    }
    ::close(report[0]);
    ASSERT_TRUE(WIFSIGNALED(status)) << "round " << round;

    Persisted p(dir.str());
    turbine::Engine::Scope scope(p.engine);
    absl::StatusOr<int64_t> value = p.engine.Read(counter());
    ASSERT_TRUE(value.ok()) << value.status() << " round " << round;
    EXPECT_GE(*value, acknowledged) << "round " << round;
    EXPECT_LE(*value, acknowledged + 1) << "round " << round;  // at most the one in flight
  }
}

}  // namespace
