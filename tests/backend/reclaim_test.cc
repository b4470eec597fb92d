// Sections (backend/src/reclaim.h), the part of whole-task eviction that says which threads
// may still be looking at a task record: each thread owns a counter while it lives.
#include "reclaim.h"

#include <gtest/gtest.h>

#include <thread>

namespace turbine::internal {
namespace {

TEST(Sections, NestAndOnlyTheOutermostMovesTheCounter) {
  const uint64_t before = [] {
    Section first;  // registers this thread's counter
    return tls_section.counter->value.load();
  }();
  EXPECT_EQ(before % 2, 1u);
  SectionCounter* counter = tls_section.counter;
  {
    Section outer;
    EXPECT_TRUE(InSection());
    const uint64_t inside = counter->value.load();
    EXPECT_EQ(inside % 2, 1u);
    {
      Section inner;
      EXPECT_EQ(counter->value.load(), inside);
    }
    EXPECT_EQ(counter->value.load(), inside);
  }
  EXPECT_FALSE(InSection());
  EXPECT_EQ(counter->value.load() % 2, 0u);
}

// A thread_local destroyed after the thread's counter went back (destructors run in the
// reverse order of construction) may still read the engine. Its section must use a counter
// the thread owns again, not the one it gave back, which another thread may take at any
// moment: a reclaimer watching that counter would take the other thread's section for this
// one's, and free too early.
bool late_counter_owned = false;
SectionCounter* counter_in_late_destructor = nullptr;

struct LateReader {
  ~LateReader() {
    Section section;
    counter_in_late_destructor = tls_section.counter;
    late_counter_owned = tls_section.counter->in_use.load();
  }
};

TEST(Sections, ASectionOpenedAfterTheCounterWentBackUsesAnOwnedCounter) {
  std::thread thread([] {
    thread_local LateReader late;  // constructed first, so destroyed last
    (void)&late;
    Section section;
  });
  thread.join();
  ASSERT_NE(counter_in_late_destructor, nullptr);
  EXPECT_TRUE(late_counter_owned) << "a section used a counter the thread had given back";
  // It stays the exiting thread's: no later thread shares it.
  std::thread next([] {
    Section section;
    EXPECT_NE(tls_section.counter, counter_in_late_destructor);
  });
  next.join();
}

}  // namespace
}  // namespace turbine::internal
