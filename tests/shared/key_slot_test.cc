// Slot computation against the Redis Cluster specification's own examples.
#include "turbine/shared/key_slot.h"

#include <gtest/gtest.h>

namespace turbine::shared {
namespace {

TEST(KeySlot, Crc16MatchesTheSpecificationsCheckValue) {
  // "The CRC16 ... output for '123456789': 31C3" (Redis Cluster specification, appendix).
  EXPECT_EQ(Crc16("123456789"), 0x31C3);
  EXPECT_EQ(Crc16(""), 0);
}

TEST(KeySlot, KnownSlots) {
  // As `CLUSTER KEYSLOT` answers on any Redis node.
  EXPECT_EQ(KeySlot("foo"), 12182);
  EXPECT_EQ(KeySlot("bar"), 5061);
  EXPECT_EQ(KeySlot("123456789"), 0x31C3 % kSlotCount);
}

TEST(KeySlot, HashTags) {
  // The specification's examples.
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("user1000"));
  EXPECT_EQ(KeySlot("{user1000}.followers"), KeySlot("user1000"));
  EXPECT_EQ(KeySlot("foo{}{bar}"), Crc16("foo{}{bar}") % kSlotCount);  // empty tag: whole key
  EXPECT_EQ(KeySlot("foo{{bar}}zap"), KeySlot("{bar"));                // first { to first }
  EXPECT_EQ(KeySlot("foo{bar}{zap}"), KeySlot("bar"));                 // only the first tag
  EXPECT_EQ(KeySlot("{unclosed"), Crc16("{unclosed") % kSlotCount);
}

}  // namespace
}  // namespace turbine::shared
