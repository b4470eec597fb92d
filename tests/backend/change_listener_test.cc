// change_listener_test.cc — Engine::AddChangeListener: what a listener may do from inside
// its call (set inputs, remove itself), and that removing one waits for its calls on other
// threads. Before, listeners ran under the engine's listener lock: removing one from inside
// a call waited for that lock for ever, and a nested notification took it again.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>

#include "turbine/engine.h"

namespace {

TEST(ChangeListeners, AListenerSetsAnotherInput) {
  turbine::Engine engine;
  std::atomic<int> calls{0};
  engine.AddChangeListener([&] {
    // A derived input, set once per change of "source".
    if (calls.fetch_add(1) % 2 == 0) {
      EXPECT_TRUE(engine.SetInput("derived", int64_t{calls.load()}).ok());
    }
  });
  ASSERT_TRUE(engine.SetInput("source", int64_t{1}).ok());
  EXPECT_EQ(calls.load(), 2);  // the change of "source", then the nested one of "derived"
  turbine::Engine::Scope scope(engine);
  absl::StatusOr<int64_t> derived = engine.Read(turbine::Input<int64_t>("derived"));
  ASSERT_TRUE(derived.ok()) << derived.status();
  EXPECT_EQ(*derived, 1);
}

TEST(ChangeListeners, AListenerRemovesItself) {
  turbine::Engine engine;
  std::atomic<int> calls{0};
  uint64_t id = 0;
  id = engine.AddChangeListener([&] {
    calls.fetch_add(1);
    engine.RemoveChangeListener(id);  // one change is all it wants
  });
  std::atomic<int> others{0};
  engine.AddChangeListener([&] { others.fetch_add(1); });
  ASSERT_TRUE(engine.SetInput("a", int64_t{1}).ok());
  ASSERT_TRUE(engine.SetInput("a", int64_t{2}).ok());
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(others.load(), 2);
}

// The one removed is called after the remover in the same notification: it is not called
// then, and the removal does not wait for that call, which would never begin.
TEST(ChangeListeners, AListenerRemovesOneCalledAfterIt) {
  turbine::Engine engine;
  uint64_t second = 0;
  std::atomic<int> first_calls{0};
  std::atomic<int> second_calls{0};
  engine.AddChangeListener([&] {
    if (first_calls.fetch_add(1) == 0) engine.RemoveChangeListener(second);
  });
  second = engine.AddChangeListener([&] { second_calls.fetch_add(1); });
  ASSERT_TRUE(engine.SetInput("a", int64_t{1}).ok());
  ASSERT_TRUE(engine.SetInput("a", int64_t{2}).ok());
  EXPECT_EQ(first_calls.load(), 2);
  EXPECT_EQ(second_calls.load(), 0);
}

// HeldListener is a listener whose call, once entered, waits until it is released.
struct HeldListener {
  std::atomic<bool> entered{false};
  std::atomic<bool> release{false};
  std::atomic<bool> finished{false};

  std::function<void()> Listener() {
    return [this] {
      entered.store(true);
      while (!release.load()) std::this_thread::yield();
      finished.store(true);
    };
  }
  // EnterOnAnotherThread sets an input of `engine` on a new thread and returns once the
  // held call has begun there.
  std::thread EnterOnAnotherThread(turbine::Engine& engine) {
    std::thread changer([&engine] { EXPECT_TRUE(engine.SetInput("a", int64_t{1}).ok()); });
    while (!entered.load()) std::this_thread::yield();
    return changer;
  }
};

TEST(ChangeListeners, RemovingOneWaitsForItsCallOnAnotherThread) {
  turbine::Engine engine;
  HeldListener held;
  const uint64_t id = engine.AddChangeListener(held.Listener());
  std::thread changer = held.EnterOnAnotherThread(engine);
  std::atomic<bool> removed{false};
  std::thread remover([&] {
    engine.RemoveChangeListener(id);
    removed.store(true);
    EXPECT_TRUE(held.finished.load());  // its call ended before the removal returned
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(removed.load());  // still in its call
  held.release.store(true);
  remover.join();
  changer.join();
  EXPECT_TRUE(removed.load());
  // Removed: a later change does not call it.
  held.entered.store(false);
  ASSERT_TRUE(engine.SetInput("a", int64_t{2}).ok());
  EXPECT_FALSE(held.entered.load());
}

// Inside a listener of another engine, a removal still waits: only its own engine's
// listeners could be waiting for it in turn.
TEST(ChangeListeners, RemovingOneFromAnotherEnginesListenerWaitsForItsCall) {
  turbine::Engine engine;
  turbine::Engine other;
  HeldListener held;
  const uint64_t id = engine.AddChangeListener(held.Listener());
  std::atomic<bool> removed{false};
  other.AddChangeListener([&] {
    engine.RemoveChangeListener(id);
    removed.store(true);
    EXPECT_TRUE(held.finished.load());
  });
  std::thread changer = held.EnterOnAnotherThread(engine);
  std::thread remover([&] { EXPECT_TRUE(other.SetInput("b", int64_t{1}).ok()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(removed.load());  // still in its call on the changer's thread
  held.release.store(true);
  remover.join();
  changer.join();
  EXPECT_TRUE(removed.load());
}

}  // namespace
