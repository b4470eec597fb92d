// Input summaries (input_summary.h): which restored results a change since their snapshot
// may have reached. Never a result that read the changed input left out; as few others as
// the 64 bits allow.
#include "input_summary.h"

#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <string>
#include <vector>

namespace {

using turbine::internal::ChangedInputs;
using turbine::internal::InputBits;
using turbine::internal::kAnyInput;
using turbine::internal::kExactChanges;
using turbine::internal::Reaches;
using turbine::internal::ReachesAny;

// KeyWithOneBitOf finds a key with two bits, one of them in `shared`, none in `avoid`.
std::string KeyWithOneBitOf(uint64_t shared, uint64_t avoid = 0) {
  for (int i = 0; i < 100'000; ++i) {
    const std::string key = "other-" + std::to_string(i);
    const uint64_t bits = InputBits(key);
    if (std::popcount(bits) == 2 && std::popcount(bits & shared) == 1 && (bits & avoid) == 0) {
      return key;
    }
  }
  ADD_FAILURE() << "no key with one bit of " << shared << " and none of " << avoid;
  return "";
}

struct Change {
  uint64_t bits;
};

TEST(InputSummary, AChangeReachesAResultWithBothItsBitsOnly) {
  const uint64_t read = InputBits("read");
  const uint64_t other = InputBits(KeyWithOneBitOf(read));
  EXPECT_TRUE(Reaches(read, read));
  EXPECT_TRUE(Reaches(read, read | other));
  // One shared bit: the result did not read the changed input. (Before: reached.)
  EXPECT_FALSE(Reaches(other, read));
  EXPECT_TRUE(Reaches(kAnyInput, read));
  EXPECT_FALSE(Reaches(kAnyInput, 0));    // it read no input at all
  EXPECT_TRUE(Reaches(read, kAnyInput));  // a summary that knows nothing
}

TEST(InputSummary, ChangesAtOneStampAreTestedEachOnItsOwn) {
  // Two inputs set in one batch share a stamp. A result that read one of them has its
  // bits, not those of both: tested against their union, it would be left out.
  ChangedInputs log(0);
  const uint64_t a = InputBits("a");
  const uint64_t b = InputBits("b");
  log.Add(5, a);
  log.Add(5, b);
  EXPECT_TRUE(log.MayReach(4, a));
  EXPECT_TRUE(log.MayReach(4, b));
  EXPECT_FALSE(log.MayReach(5, a));  // clean as of the change: it saw it
  // A result that read neither, with one bit of `a`: not reached. (Before: reached.)
  EXPECT_FALSE(log.MayReach(4, InputBits(KeyWithOneBitOf(a, b))));
}

TEST(InputSummary, PastSoManyChangesASharedBitIsEnough) {
  const uint64_t a = InputBits("a");
  const uint64_t one_bit_of_a = InputBits(KeyWithOneBitOf(a));
  const std::vector<Change> few(kExactChanges, Change{a});
  const std::vector<Change> many(kExactChanges + 1, Change{a});
  EXPECT_FALSE(ReachesAny(few, one_bit_of_a));
  EXPECT_TRUE(ReachesAny(many, one_bit_of_a));  // cheaper, and never wrong the other way
  EXPECT_TRUE(ReachesAny(many, a));
}

TEST(InputSummary, ALogThatDoesNotReachBackReachesEveryResultThatReadAnInput) {
  ChangedInputs log(0);
  for (uint64_t stamp = 1; stamp <= ChangedInputs::kCapacity + 1; ++stamp) {
    log.Add(stamp, InputBits("capacity-" + std::to_string(stamp)));
  }
  ASSERT_GT(log.since(), 1u);
  EXPECT_TRUE(log.MayReach(0, InputBits("never-changed")));
  EXPECT_FALSE(log.MayReach(0, 0));
}

}  // namespace
