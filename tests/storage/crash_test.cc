// Crash safety: a writer killed with SIGKILL at any moment leaves a graph whose every
// restored result equals a fresh computation over the inputs that survived.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

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

constexpr int kInputs = 10;

std::string Key(int64_t i) { return "crash.a" + std::to_string(i); }

Task<int64_t> ValueImpl(int64_t i) { co_return co_await Input<int64_t>(Key(i)); }
inline const turbine::Function<ValueImpl> value{"test.crash.value", 1};

// Pair(i) = a_i + a_(i+1), cut off to its parity half the time to exercise early cutoff.
Task<int64_t> PairImpl(int64_t i) {
  const int64_t a = co_await value(i);
  const int64_t b = co_await value(i + 1);
  co_return i % 2 == 0 ? (a + b) % 2 : a + b;
}
inline const turbine::Function<PairImpl> pair{"test.crash.pair", 1};

Task<int64_t> ChainImpl(int64_t n);
inline const turbine::Function<ChainImpl> chain{"test.crash.chain", 1};
Task<int64_t> ChainImpl(int64_t n) {
  const int64_t here = co_await pair(n);
  if (n == 0) co_return here;
  const int64_t before = co_await chain(n - 1);
  co_return before * 3 + here;
}

int64_t FreshPair(const std::vector<int64_t>& a, int64_t i) {
  return i % 2 == 0 ? (a[i] + a[i + 1]) % 2 : a[i] + a[i + 1];
}
int64_t FreshChain(const std::vector<int64_t>& a, int64_t n) {
  return n == 0 ? FreshPair(a, 0) : FreshChain(a, n - 1) * 3 + FreshPair(a, n);
}

using Daemon = turbine::testing::PersistedEngine<>;

Task<int64_t> SquareImpl(int64_t n) { co_return n * n; }
inline const turbine::Function<SquareImpl> square{"test.crash.square", 1};

// RunThenSigkill runs `work` in a forked process on an engine over `dir` (one worker, no
// periodic snapshot), hands what it returns to the parent, and kills the process with
// SIGKILL right after: nothing but what `work` made durable itself is written. `work`
// returns 0 to fail. Returns what it returned, or 0.
uint64_t RunThenSigkill(const std::string& dir,
                        const std::function<uint64_t(turbine::Engine&)>& work) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return 0;
  const pid_t child = ::fork();
  if (child < 0) return 0;
  if (child == 0) {
    ::close(pipe_fds[0]);
    auto opened = turbine::storage::PersistentEngine::Open(
        StoreOptions{.data_dir = dir},
        turbine::EngineOptions{.worker_threads = 1, .snapshot_interval = {}});
    if (!opened.ok()) ::_exit(2);
    turbine::Engine& engine = (*opened)->engine();
    turbine::Engine::Scope scope(engine);
    const uint64_t result = work(engine);
    if (result == 0) ::_exit(3);
    if (::write(pipe_fds[1], &result, sizeof result) != sizeof result) ::_exit(4);
    for (;;) ::pause();  // killed here
  }
  ::close(pipe_fds[1]);
  uint64_t result = 0;
  if (::read(pipe_fds[0], &result, sizeof result) != static_cast<ssize_t>(sizeof result)) {
    result = 0;
  }
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(pipe_fds[0]);
  return WIFSIGNALED(status) ? result : 0;
}

// A task id a client was given names that task for good: a process killed before any
// snapshot wrote the task must not leave the id to be given to another task after it.
TEST(CrashSafety, ATaskIdGivenOutBeforeASigkillIsNeverGivenToAnotherTask) {
  turbine::testing::TempDir dir;
  const turbine::TaskId given_out = RunThenSigkill(dir.str(), [](turbine::Engine& engine) {
    // No snapshot writes square(3) before the kill.
    return engine.Read(square(3)).ok() ? square(3).raw().task : turbine::kNoTask;
  });
  ASSERT_NE(given_out, turbine::kNoTask);

  Daemon d(dir.str());
  ASSERT_EQ(*d.engine.Read(square(4)), 16);
  ASSERT_EQ(*d.engine.Read(square(3)), 9);  // not stored: made again, under a new id
  EXPECT_GT(square(4).raw().task, given_out);
  EXPECT_GT(square(3).raw().task, given_out);
}

// PlusOne(v) = *v + 1: its identity refers to another task (a Vc argument).
Task<int64_t> PlusOneImpl(turbine::Vc<int64_t> v) { co_return co_await v + 1; }
inline const turbine::Function<PlusOneImpl> plus_one{"test.crash.plus_one", 1};

// An input acknowledged with references in its value names those tasks after a SIGKILL,
// although no snapshot wrote them: what it refers to is stored with it. Before, the
// references named nothing (NOT_FOUND when read).
TEST(CrashSafety, AnInputSetToReferencesBeforeASigkillStillNamesTheirTasks) {
  turbine::testing::TempDir dir;
  const auto set_held = [](turbine::Engine& engine) -> uint64_t {
    if (!engine.Read(square(6)).ok()) return 0;  // ran: a result in memory, none stored
    // plus_one(square(7)) is new: its identity names square(7), new too (both are queued
    // for a worker; whether they ran before the kill does not matter, no snapshot ran).
    const std::vector<turbine::Vc<int64_t>> held{square(6), plus_one(square(7))};
    return engine.SetInput("crash.held", held).ok() ? 1 : 0;
  };
  ASSERT_EQ(RunThenSigkill(dir.str(), set_held), 1u);

  Daemon d(dir.str());
  // Before anything reads the input, a pass that collects all it can: the input's record
  // was stored with it, so the pass knows the input holds those tasks.
  absl::StatusOr<turbine::GcReport> collected =
      d.engine.CollectGarbage(turbine::GcOptions{.disk_limit = 1});
  ASSERT_TRUE(collected.ok()) << collected.status();
  absl::StatusOr<std::vector<turbine::Vc<int64_t>>> held =
      d.engine.Read(Input<std::vector<turbine::Vc<int64_t>>>("crash.held"));
  ASSERT_TRUE(held.ok()) << held.status();
  ASSERT_EQ(held->size(), 2u);
  absl::StatusOr<int64_t> first = d.engine.Read((*held)[0]);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*first, 36);
  absl::StatusOr<int64_t> second = d.engine.Read((*held)[1]);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, 50);
  // The same tasks as a fresh call finds, not copies under other ids.
  EXPECT_EQ((*held)[0].raw().task, square(6).raw().task);
  EXPECT_EQ((*held)[1].raw().task, plus_one(square(7)).raw().task);
}

// Slow(n) blocks while `slow_blocked` is set (in the child of the test below, forever).
std::atomic<bool> slow_blocked{false};
std::atomic<bool> slow_started{false};
Task<int64_t> SlowImpl(int64_t n) {
  slow_started = true;
  while (slow_blocked.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  co_return n * 10;
}
inline const turbine::Function<SlowImpl> slow{"test.crash.slow", 1};
// Forward(n) returns Slow(n)'s output without reading it: its record refers to Slow(n).
Task<turbine::Vc<int64_t>> ForwardImpl(int64_t n) { co_return slow(n); }
inline const turbine::Function<ForwardImpl> forward{"test.crash.forward", 1};

[[noreturn]] void Writer(const std::string& dir, int ack_fd, uint64_t seed) {
  Daemon d(dir);
  std::mt19937_64 random(seed);
  for (int64_t i = 0; i < kInputs; ++i) {
    if (!d.engine.SetInput(Key(i), int64_t{0}).ok()) ::_exit(3);
  }
  for (int64_t step = 1;; ++step) {
    if (!d.engine.SetInput(Key(random() % kInputs), int64_t(random() % 5)).ok()) ::_exit(3);
    if (!d.engine.Read(chain(kInputs - 2)).ok()) ::_exit(4);
    if (step % 3 == 0 && !d.engine.Flush().ok()) ::_exit(5);  // snapshots now and then
    if (::write(ack_fd, &step, sizeof(step)) != sizeof(step)) ::_exit(6);
  }
}

// A task that returns another task's output names that task in its record. A snapshot taken
// while the other task still runs cannot hold it; if it held the first one anyway, a crash
// right after left a reference to a task that exists nowhere, and reading it failed ("no
// task with id ...") in every later session.
TEST(CrashSafety, ARecordIsNeverWrittenBeforeATaskItRefersTo) {
  turbine::testing::TempDir dir;
  int flushed[2];
  ASSERT_EQ(::pipe(flushed), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(flushed[0]);
    slow_blocked = true;
    // One worker: it runs Forward(7) and commits it before it can start Slow(7), which
    // then never finishes in this process.
    auto opened = turbine::storage::PersistentEngine::Open(
        StoreOptions{.data_dir = dir.str()},
        turbine::EngineOptions{.worker_threads = 1, .snapshot_interval = {}});
    if (!opened.ok()) ::_exit(2);
    turbine::Engine& engine = (*opened)->engine();
    turbine::RawVc forwarded;
    {
      turbine::Engine::Scope scope(engine);
      forwarded = forward(7).raw();
    }
    engine.ReadAsync(forwarded, [](turbine::Engine::AsyncRead) {});
    while (!slow_started.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (!engine.Flush().ok()) ::_exit(3);
    const char done = 1;
    if (::write(flushed[1], &done, 1) != 1) ::_exit(4);
    for (;;) ::pause();  // killed here, the snapshot written and Slow(7) still running
  }
  ::close(flushed[1]);
  char done = 0;
  ASSERT_EQ(::read(flushed[0], &done, 1), 1);
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(flushed[0]);
  ASSERT_TRUE(WIFSIGNALED(status));

  Daemon d(dir.str());
  absl::StatusOr<int64_t> read = d.engine.Read(forward(7));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, 70);
}

TEST(CrashSafety, EveryRestoredResultEqualsAFreshComputationAfterSigkill) {
  std::mt19937_64 random(20261121);
  int restored_rounds = 0;
  for (int round = 0; round < 24; ++round) {
    turbine::testing::TempDir dir;
    int acks[2];
    ASSERT_EQ(::pipe(acks), 0);
    const uint64_t seed = random();
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::close(acks[0]);
      Writer(dir.str(), acks[1], seed);
    }
    ::close(acks[1]);
    const int64_t kill_after = 1 + static_cast<int64_t>(random() % 40);
    int64_t step = 0;
    while (step < kill_after) {
      ASSERT_EQ(::read(acks[0], &step, sizeof(step)), static_cast<ssize_t>(sizeof(step)));
    }
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    ::close(acks[0]);
    ASSERT_TRUE(WIFSIGNALED(status)) << "round " << round << ": writer exited on its own";

    Daemon d(dir.str());
    // The oracle reads the durable inputs themselves, never a restored task.
    std::vector<int64_t> inputs(kInputs);
    for (int64_t i = 0; i < kInputs; ++i) {
      absl::StatusOr<int64_t> v = d.engine.Read(Input<int64_t>(Key(i)));
      ASSERT_TRUE(v.ok()) << v.status() << " round " << round;
      inputs[i] = *v;
    }
    for (int64_t i = 0; i < kInputs; ++i) {
      EXPECT_EQ(*d.engine.Read(value(i)), inputs[i]) << "round " << round;
    }
    for (int64_t n = kInputs - 2; n >= 0; --n) {
      EXPECT_EQ(*d.engine.Read(chain(n)), FreshChain(inputs, n)) << "round " << round;
      EXPECT_EQ(*d.engine.Read(pair(n)), FreshPair(inputs, n)) << "round " << round;
    }
    restored_rounds += d.engine.Stats().restored_tasks > static_cast<uint64_t>(kInputs) ? 1 : 0;
  }
  // The test means something only if snapshots were there to restore.
  EXPECT_GT(restored_rounds, 12);
}

}  // namespace
