// The readers of a task (dependent_set.h): one in place, more on the heap, and back.
#include "dependent_set.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "alloc_counter.h"

namespace {

using turbine::internal::Dependent;
using turbine::internal::DependentSet;

std::vector<Dependent> Contents(const DependentSet& set) {
  std::vector<Dependent> all;
  set.ForEach([&](const Dependent& d) { all.push_back(d); });
  std::sort(all.begin(), all.end(), [](const Dependent& a, const Dependent& b) {
    return a.reader != b.reader ? a.reader < b.reader : a.slot_index < b.slot_index;
  });
  return all;
}

TEST(DependentSet, OneReaderIsHeldInPlace) {
  DependentSet set;
  EXPECT_TRUE(set.empty());
  const uint64_t before = turbine::testing::ThreadAllocations();
  EXPECT_TRUE(set.insert(Dependent{7, 0, 0}));
  EXPECT_FALSE(set.insert(Dependent{7, 0, 0}));
  EXPECT_EQ(turbine::testing::ThreadAllocations(), before);
  EXPECT_EQ(set.size(), 1u);
  EXPECT_EQ(set.HeapBytes(), 0u);
  EXPECT_EQ(Contents(set), (std::vector<Dependent>{{7, 0, 0}}));
  EXPECT_TRUE(set.Any([](const Dependent& d) { return d.reader == 7; }));
  EXPECT_FALSE(set.Any([](const Dependent& d) { return d.reader == 8; }));
  EXPECT_EQ(set.erase(Dependent{7, 0, 1}), 0u);  // another slot of the same reader
  EXPECT_EQ(set.erase(Dependent{7, 0, 0}), 1u);
  EXPECT_TRUE(set.empty());
  EXPECT_EQ(set.size(), 0u);
  EXPECT_FALSE(set.Any([](const Dependent&) { return true; }));
}

TEST(DependentSet, ASecondReaderMovesThemToTheHeapAndTheLastOneBack) {
  DependentSet set;
  set.insert(Dependent{1, 0, 0});
  EXPECT_TRUE(set.insert(Dependent{1, 5, 2}));  // the same reader, another slot
  EXPECT_GT(set.HeapBytes(), 0u);
  for (uint64_t reader = 2; reader <= 100; ++reader) {
    EXPECT_TRUE(set.insert(Dependent{reader, 0, 0}));
  }
  EXPECT_FALSE(set.insert(Dependent{50, 0, 0}));
  EXPECT_EQ(set.size(), 101u);
  EXPECT_TRUE(set.Any([](const Dependent& d) { return d.reader == 100; }));
  for (uint64_t reader = 2; reader <= 100; ++reader) {
    EXPECT_EQ(set.erase(Dependent{reader, 0, 0}), 1u);
  }
  EXPECT_EQ(set.erase(Dependent{99, 0, 0}), 0u);
  EXPECT_EQ(Contents(set), (std::vector<Dependent>{{1, 0, 0}, {1, 5, 2}}));
  EXPECT_EQ(set.erase(Dependent{1, 0, 0}), 1u);
  // One left: in place again, the heap set given back.
  EXPECT_EQ(set.HeapBytes(), 0u);
  EXPECT_EQ(Contents(set), (std::vector<Dependent>{{1, 5, 2}}));
  EXPECT_TRUE(set.insert(Dependent{3, 0, 0}));  // and to the heap again
  EXPECT_EQ(set.size(), 2u);
}

// The reader in place is packed into one word: readers, types and indexes at the edges of
// what fits stay exact, and one that does not fit (a cell of index 8 or more) goes to the
// heap alone and comes back out.
TEST(DependentSet, ReadersAtTheEdgesOfThePackingStayExact) {
  const uint64_t last_id = (uint64_t{1} << 44) - 1;
  for (const Dependent& d : {Dependent{last_id, 0xFFFF, 7}, Dependent{1, 0, 0},
                             Dependent{last_id, 1, 0}, Dependent{2, 0xFFFF, 0}}) {
    DependentSet set;
    const uint64_t before = turbine::testing::ThreadAllocations();
    EXPECT_TRUE(set.insert(d));
    EXPECT_EQ(turbine::testing::ThreadAllocations(), before) << d.reader;
    EXPECT_EQ(Contents(set), (std::vector<Dependent>{d}));
    EXPECT_FALSE(set.insert(d));
    EXPECT_EQ(set.erase(d), 1u);
    EXPECT_TRUE(set.empty());
  }
  DependentSet set;
  const Dependent far_cell{5, 3, 8};
  EXPECT_TRUE(set.insert(far_cell));
  EXPECT_GT(set.HeapBytes(), 0u);
  EXPECT_FALSE(set.insert(far_cell));
  EXPECT_EQ(set.size(), 1u);
  EXPECT_EQ(Contents(set), (std::vector<Dependent>{far_cell}));
  EXPECT_TRUE(set.insert(Dependent{6, 0, 0}));
  EXPECT_EQ(set.erase(far_cell), 1u);
  EXPECT_EQ(set.HeapBytes(), 0u) << "the one left fits in place";
  EXPECT_EQ(Contents(set), (std::vector<Dependent>{{6, 0, 0}}));
  EXPECT_TRUE(set.insert(far_cell));
  EXPECT_EQ(set.erase(Dependent{6, 0, 0}), 1u);
  EXPECT_GT(set.HeapBytes(), 0u) << "the one left does not fit";
  EXPECT_EQ(set.erase(far_cell), 1u);
  EXPECT_TRUE(set.empty());
  EXPECT_EQ(set.HeapBytes(), 0u);
}

}  // namespace
