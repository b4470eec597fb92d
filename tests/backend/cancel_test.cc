// Cancellation: an execution whose every caller is gone stops at its next check, stores
// nothing, and runs again for the next caller; one somebody still waits for keeps running.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "turbine/engine.h"
#include "turbine/internal/test_seams.h"

namespace {

using turbine::CancelToken;
using turbine::Engine;
using turbine::Task;

// Spin stands for a long body: it runs until the test releases it or it is cancelled.
std::atomic<int> spin_starts{0};
std::atomic<int> spin_cancelled{0};
std::atomic<bool> spin_release{false};

Task<int64_t> SpinImpl(int64_t key) {
  spin_starts.fetch_add(1);
  spin_starts.notify_all();
  for (;;) {
    // Released is read before the check: a cancellation made before the release is seen.
    const bool released = spin_release.load();
    if (turbine::Cancelled()) {
      spin_cancelled.fetch_add(1);
      turbine::ThrowIfCancelled();
    }
    if (released) co_return key;
  }
}
inline const turbine::Function<SpinImpl> spin{"test.cancel.spin", 1};

Task<int64_t> OuterImpl(int64_t key) { co_return 1 + co_await spin(key); }
inline const turbine::Function<OuterImpl> outer{"test.cancel.outer", 1};

Task<int64_t> ConstImpl(int64_t key) { co_return key; }
inline const turbine::Function<ConstImpl> constant{"test.cancel.constant", 1};

void ResetSpin() {
  spin_starts = 0;
  spin_cancelled = 0;
  spin_release = false;
}

void WaitForStarts(int starts) {
  for (int seen = spin_starts.load(); seen < starts; seen = spin_starts.load()) {
    spin_starts.wait(seen);
  }
}

// StartRead begins a cancellable read; the future holds its result.
std::future<Engine::AsyncRead> StartRead(Engine& engine, turbine::RawVc vc,
                                         const CancelToken& token) {
  auto answer = std::make_shared<std::promise<Engine::AsyncRead>>();
  std::future<Engine::AsyncRead> result = answer->get_future();
  engine.ReadAsync(vc, token,
                   [answer](Engine::AsyncRead read) { answer->set_value(std::move(read)); });
  return result;
}

TEST(Cancel, AnExecutionWhoseOnlyCallerCancelsStopsAndRunsAgainForTheNext) {
  ResetSpin();
  Engine engine(turbine::EngineOptions{.worker_threads = 2});
  Engine::Scope scope(engine);
  CancelToken token;
  std::future<Engine::AsyncRead> read = StartRead(engine, spin(1).raw(), token);
  WaitForStarts(1);
  token.Cancel();
  const Engine::AsyncRead cancelled = read.get();
  EXPECT_EQ(cancelled.status.code(), absl::StatusCode::kCancelled) << cancelled.status;
  EXPECT_EQ(spin_cancelled.load(), 1) << "the body saw its cancellation";

  // Nothing was stored: the next caller runs the body again and gets its value.
  spin_release = true;
  absl::StatusOr<int64_t> again = engine.Read(spin(1));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, 1);
  EXPECT_EQ(spin_starts.load(), 2);
}

TEST(Cancel, AnExecutionWithAnotherCallerKeepsRunning) {
  ResetSpin();
  Engine engine(turbine::EngineOptions{.worker_threads = 2});
  Engine::Scope scope(engine);
  CancelToken first;
  CancelToken second;
  std::future<Engine::AsyncRead> first_read = StartRead(engine, spin(2).raw(), first);
  std::future<Engine::AsyncRead> second_read = StartRead(engine, spin(2).raw(), second);
  WaitForStarts(1);
  first.Cancel();
  spin_release = true;
  const Engine::AsyncRead answer = second_read.get();
  ASSERT_TRUE(answer.status.ok()) << answer.status;
  EXPECT_EQ(*static_cast<const int64_t*>(answer.value.get()), 2);
  // The first read ends cancelled, or with the value if its thread was the one running
  // the body (it could not leave before the body did).
  const Engine::AsyncRead gone = first_read.get();
  EXPECT_TRUE(gone.status.ok() || gone.status.code() == absl::StatusCode::kCancelled)
      << gone.status;
  EXPECT_EQ(spin_cancelled.load(), 0);
  EXPECT_EQ(spin_starts.load(), 1);
}

// A task awaited by another task's execution counts that execution as its caller: cancel
// the outer read and the inner body stops too. (One worker: with two, the other could start
// spin from its hint before outer awaits it, and a task nobody awaited yet has no caller to
// lose; it runs to its end.)
TEST(Cancel, CancellationReachesWhatTheCancelledExecutionWaitsFor) {
  ResetSpin();
  Engine engine(turbine::EngineOptions{.worker_threads = 1});
  Engine::Scope scope(engine);
  CancelToken token;
  std::future<Engine::AsyncRead> read = StartRead(engine, outer(3).raw(), token);
  WaitForStarts(1);
  token.Cancel();
  EXPECT_EQ(read.get().status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(spin_cancelled.load(), 1);

  spin_release = true;
  absl::StatusOr<int64_t> again = engine.Read(outer(3));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, 4);
}

// A read cancelled before it starts ends at once, and the hint to start its task (queued
// when the task was created) starts nothing.
TEST(Cancel, AReadCancelledBeforeItRunsStartsNothing) {
  ResetSpin();
  Engine engine(turbine::EngineOptions{.worker_threads = 1});
  Engine::Scope scope(engine);
  CancelToken token;
  token.Cancel();
  EXPECT_EQ(StartRead(engine, spin(4).raw(), token).get().status.code(),
            absl::StatusCode::kCancelled);
  // The next call moves spin's hint to the queue; the one worker takes items in order, so
  // once this read is answered the hint was taken (and dropped).
  EXPECT_TRUE(StartRead(engine, constant(5).raw(), CancelToken()).get().status.ok());
  EXPECT_EQ(spin_starts.load(), 0);
}

// A cancellation that lands after a read has seen its caller not cancelled, and before it
// counts itself as a caller of the task it reads, still ends the read. The seam puts the
// cancellation there: it finds the execution counted nowhere (it is between two reads), so
// only the read itself can notice. Before, the read parked on spin, which kept running for
// another caller, and the cancelled execution stayed suspended until spin ended.
std::atomic<turbine::TaskId> seam_target{turbine::kNoTask};
std::atomic<const CancelToken*> seam_cancels{nullptr};
std::atomic<int> watched_ended{0};

Task<int64_t> WatchedImpl(int64_t key) {
  struct Ended {
    ~Ended() { watched_ended.fetch_add(1); }
  } ended;  // the frame goes when the body ends, however it ends
  co_return 1 + co_await spin(key);
}
inline const turbine::Function<WatchedImpl> watched{"test.cancel.watched", 1};

// Within tells whether `done()` became true within `limit`.
template <class Done>
bool Within(std::chrono::seconds limit, Done done) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

TEST(Cancel, ACancellationJustBeforeAReadCountsItselfStillEndsTheRead) {
  ResetSpin();
  Engine engine(turbine::EngineOptions{.worker_threads = 2});
  Engine::Scope scope(engine);
  CancelToken keeps;
  std::future<Engine::AsyncRead> kept = StartRead(engine, spin(7).raw(), keeps);
  WaitForStarts(1);

  CancelToken token;
  seam_target = spin(7).raw().task;
  seam_cancels = &token;
  turbine::internal::seams::before_counting_caller = [](turbine::TaskId awaited) {
    if (awaited != seam_target.load()) return;
    if (const CancelToken* cancel = seam_cancels.exchange(nullptr)) cancel->Cancel();
  };
  watched_ended = 0;
  std::future<Engine::AsyncRead> read = StartRead(engine, watched(7).raw(), token);
  const bool answered = read.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
  const bool ended = Within(std::chrono::seconds(20), [] { return watched_ended.load() != 0; });
  const bool spin_was_running = spin_cancelled.load() == 0;
  turbine::internal::seams::before_counting_caller = nullptr;
  spin_release = true;
  EXPECT_TRUE(answered);
  EXPECT_TRUE(ended) << "the cancelled execution waited for a task that ran for someone else";
  EXPECT_EQ(seam_cancels.load(), nullptr) << "the seam never cancelled";
  EXPECT_EQ(read.get().status.code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(spin_was_running);

  const Engine::AsyncRead other = kept.get();
  ASSERT_TRUE(other.status.ok()) << other.status;
  EXPECT_EQ(*static_cast<const int64_t*>(other.value.get()), 7);
}

// A read that notices its caller's cancellation itself (the cancellation has set the flag
// and not yet taken the read's count off) takes the count off as the cancellation would
// have: spin, left with no caller, is cancelled. Before, the read took the last count off
// without cancelling spin, the cancellation then found nothing to take, and spin ran on
// for nobody. The seams hold the cancellation between its flag and its counts while the
// read goes through.
std::atomic<CancelToken*> seam_token{nullptr};
std::atomic<std::thread*> seam_canceller{nullptr};

TEST(Cancel, AReadThatSeesItsCancellationFirstStillCancelsWhatNobodyElseWaitsFor) {
  ResetSpin();
  Engine engine(turbine::EngineOptions{.worker_threads = 2});
  Engine::Scope scope(engine);
  const turbine::RawVc spinning = spin(8).raw();  // its hint starts it, for no caller
  // The next call moves spin's hint to the queue (AReadCancelledBeforeItRunsStartsNothing).
  EXPECT_TRUE(StartRead(engine, constant(9).raw(), CancelToken()).get().status.ok());
  WaitForStarts(1);

  CancelToken token;
  seam_target = spinning.task;
  seam_token = &token;
  turbine::internal::seams::after_cancel_flag = [] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the read goes first
  };
  turbine::internal::seams::before_counting_caller = [](turbine::TaskId awaited) {
    if (awaited != seam_target.load()) return;
    CancelToken* cancel = seam_token.exchange(nullptr);
    if (cancel == nullptr) return;
    seam_canceller = new std::thread([cancel] { cancel->Cancel(); });
    while (!cancel->cancelled()) std::this_thread::yield();
  };
  std::future<Engine::AsyncRead> read = StartRead(engine, spinning, token);
  const bool answered = read.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
  Within(std::chrono::seconds(20), [] { return spin_cancelled.load() != 0; });
  const int cancelled = spin_cancelled.load();
  turbine::internal::seams::before_counting_caller = nullptr;
  turbine::internal::seams::after_cancel_flag = nullptr;
  spin_release = true;
  if (std::thread* canceller = seam_canceller.exchange(nullptr)) {
    canceller->join();
    delete canceller;
  }
  EXPECT_EQ(seam_token.load(), nullptr) << "the seam never cancelled";
  ASSERT_TRUE(answered);
  EXPECT_EQ(read.get().status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(cancelled, 1) << "spin ran on with no caller";
}

}  // namespace

namespace {

// Walk(depth, key) starts its four children before awaiting any (as tree.dir does), then
// awaits them in order; at depth 0 it is a spin.
Task<int64_t> WalkImpl(int64_t depth, int64_t key);
inline const turbine::Function<WalkImpl> walk{"test.cancel.walk", 1};
Task<int64_t> WalkImpl(int64_t depth, int64_t key) {
  if (depth == 0) co_return co_await spin(key);
  std::vector<turbine::Vc<int64_t>> children;
  for (int64_t i = 0; i < 4; ++i) children.push_back(walk(depth - 1, key * 4 + i));
  int64_t total = 0;
  for (const turbine::Vc<int64_t>& child : children) total += co_await child;
  co_return total;
}

// Cancelling a walk stops all of it: the tasks each cancelled execution started and had not
// awaited yet are cancelled with it, whether running or still queued. Before, those had no
// caller to lose: every spin a worker had started spun on, and each walk started its own
// children, so the whole tree ran after its caller left.
TEST(Cancel, WhatACancelledExecutionStartedAndDidNotAwaitStopsToo) {
  ResetSpin();
  Engine engine(turbine::EngineOptions{.worker_threads = 2});
  Engine::Scope scope(engine);
  CancelToken token;
  std::future<Engine::AsyncRead> read = StartRead(engine, walk(2, 100).raw(), token);
  WaitForStarts(2);  // both workers spin
  token.Cancel();
  EXPECT_EQ(read.get().status.code(), absl::StatusCode::kCancelled);
  // Every spin that started ends cancelled. A walk not cancelled yet may still start a
  // child (cancellation goes down the tree as each execution ends), which is cancelled in
  // turn: wait until no spin has started for 300 ms.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int started = spin_starts.load();
  auto quiet_since = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() < deadline) {
    if (spin_starts.load() != started) {
      started = spin_starts.load();
      quiet_since = std::chrono::steady_clock::now();
    }
    if (spin_cancelled.load() == started &&
        std::chrono::steady_clock::now() - quiet_since > std::chrono::milliseconds(300)) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(spin_cancelled.load(), spin_starts.load()) << "spins running after the cancel";
  EXPECT_LT(spin_starts.load(), 16) << "the whole walk ran";

  spin_release = true;
  absl::StatusOr<int64_t> again = engine.Read(walk(2, 100));
  ASSERT_TRUE(again.ok()) << again.status();
  int64_t expected = 0;
  for (int64_t leaf = 0; leaf < 16; ++leaf) expected += 100 * 16 + leaf;
  EXPECT_EQ(*again, expected);
}

}  // namespace

namespace {

// Chain(n) starts Chain(n - 1) and never awaits it, then waits for a spin all of them
// share, through Group(n / 256): a chain of running executions, each the only one to have
// started the next. (Through groups, so that no task has more than a few hundred waiters:
// a cancelled caller is looked for among its task's waiters one by one.)
Task<int64_t> GroupImpl(int64_t group) { co_return group + co_await spin(-1); }
inline const turbine::Function<GroupImpl> group{"test.cancel.group", 1};
std::atomic<int64_t> chain_starts{0};
Task<int64_t> ChainImpl(int64_t n);
inline const turbine::Function<ChainImpl> chain{"test.cancel.chain", 1};
Task<int64_t> ChainImpl(int64_t n) {
  chain_starts.fetch_add(1);
  if (n > 0) (void)chain(n - 1);
  co_return co_await group(n / 256);
}

// Cancelling the head of a long chain of started executions cancels all of it, in time
// linear in its length. Before, each cancelled execution's started tasks were cancelled by
// a nested call, and 100,000 links overflowed the stack (a crash of the whole process);
// and each link's body, as it ended, went down the rest of the chain again (5,000 links:
// 11.5 s, 20,000: 227 s; now 0.09 s and 1.7 s for 100,000 in a Debug build).
TEST(Cancel, ALongChainOfStartedExecutionsIsCancelledWithoutRecursion) {
  ResetSpin();
  chain_starts = 0;
  constexpr int64_t kLinks = 100'000;
  Engine engine(turbine::EngineOptions{.worker_threads = 2});
  Engine::Scope scope(engine);
  CancelToken token;
  std::future<Engine::AsyncRead> read = StartRead(engine, chain(kLinks).raw(), token);
  Within(std::chrono::seconds(60), [] { return chain_starts.load() > kLinks; });
  ASSERT_EQ(chain_starts.load(), kLinks + 1);
  token.Cancel();
  EXPECT_EQ(read.get().status.code(), absl::StatusCode::kCancelled);
  // The last link let the spin go: nothing waits for it any more.
  Within(std::chrono::seconds(20), [] { return spin_cancelled.load() != 0; });
  EXPECT_EQ(spin_cancelled.load(), 1);
}

}  // namespace

namespace {

// Heedless(key) starts Spin(key), waits for the test without looking at its cancellation,
// then starts Spin(key + 1) and returns: cancelled, it finishes all the same.
std::atomic<bool> heedless_go{false};
Task<int64_t> HeedlessImpl(int64_t key) {
  (void)spin(key);
  while (!heedless_go.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  (void)spin(key + 1);
  co_return key;
}
inline const turbine::Function<HeedlessImpl> heedless{"test.cancel.heedless", 1};

// A cancelled execution that finishes all the same leaves nothing it started running with
// no caller: what it started before its cancellation is cancelled with it, what it started
// after when it ends.
TEST(Cancel, WhatAHeedlessCancelledExecutionStartsAfterItsCancellationStopsWhenItEnds) {
  ResetSpin();
  heedless_go = false;
  Engine engine(turbine::EngineOptions{.worker_threads = 3});
  Engine::Scope scope(engine);
  CancelToken token;
  std::future<Engine::AsyncRead> read = StartRead(engine, heedless(20).raw(), token);
  WaitForStarts(1);  // spin(20)
  token.Cancel();
  heedless_go = true;
  read.get();  // a read running it inline may end with its value: it finished
  // Its result is kept (it finished); once a read has it, its end has cancelled spin(21),
  // queued (never to start) or started (to stop at its next look).
  absl::StatusOr<int64_t> finished = engine.Read(heedless(20));
  ASSERT_TRUE(finished.ok()) << finished.status();
  Within(std::chrono::seconds(20), [] { return spin_cancelled.load() == spin_starts.load(); });
  EXPECT_EQ(spin_cancelled.load(), spin_starts.load()) << "a spin runs on with no caller";
  spin_release = true;
}

}  // namespace

namespace {

// Reads of one task cancelled one at a time, in an order that takes them from the middle,
// the ends and between: each ends cancelled at once, and the others stay parked until their
// own cancellation (the waiters are a list linked both ways, searched from both ends).
TEST(Cancel, ReadsOfOneTaskCancelledInAnyOrderEachEndAndLeaveTheRestWaiting) {
  ResetSpin();
  constexpr int kReads = 101;
  Engine engine(turbine::EngineOptions{.worker_threads = 2});
  Engine::Scope scope(engine);
  std::vector<CancelToken> tokens(kReads);
  std::vector<std::future<Engine::AsyncRead>> reads;
  for (int i = 0; i < kReads; ++i) reads.push_back(StartRead(engine, spin(11).raw(), tokens[i]));
  WaitForStarts(1);
  // The first read claimed the task and runs it: it ends with the task. The others wait,
  // parked on it, and are cancelled here in an order 37 steps apart (37 is prime to 100).
  std::vector<bool> cancelled(kReads, false);
  cancelled[0] = true;
  for (int step = 0; step < kReads - 1; ++step) {
    const int i = 1 + (step * 37 + 50) % (kReads - 1);
    tokens[i].Cancel();
    cancelled[i] = true;
    ASSERT_EQ(reads[i].wait_for(std::chrono::seconds(20)), std::future_status::ready) << i;
    EXPECT_EQ(reads[i].get().status.code(), absl::StatusCode::kCancelled) << i;
    if (step % 10 == 0) {
      for (int j = 0; j < kReads; ++j) {
        if (!cancelled[j]) {
          EXPECT_EQ(reads[j].wait_for(std::chrono::seconds(0)), std::future_status::timeout) << j;
        }
      }
    }
  }
  // The last caller gone, the spin is cancelled; released, a new read gets its value.
  tokens[0].Cancel();
  EXPECT_EQ(reads[0].get().status.code(), absl::StatusCode::kCancelled);
  Within(std::chrono::seconds(20), [] { return spin_cancelled.load() == 1; });
  EXPECT_EQ(spin_cancelled.load(), 1);
  spin_release = true;
  absl::StatusOr<int64_t> again = engine.Read(spin(11));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, 11);
}

}  // namespace
