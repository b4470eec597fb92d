// The mount table as /proc/self/mountinfo gives it, and the mount points a change touches.
#include "mount_table.h"

#include <gtest/gtest.h>

namespace {

using turbine::stdlib::ChangedMountPoints;
using turbine::stdlib::Mount;
using turbine::stdlib::ParseMountInfo;

constexpr const char* kTable =
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    "35 22 0:30 / /tmp rw,nosuid shared:2 - tmpfs tmpfs rw\n"
    "41 35 0:31 / /tmp/with\\040space\\134and\\011tab rw - tmpfs tmpfs rw\n";

TEST(MountTable, ParsesIdsAndUnescapedMountPoints) {
  const std::vector<Mount> mounts = ParseMountInfo(kTable);
  ASSERT_EQ(mounts.size(), 3u);
  EXPECT_EQ(mounts[0], (Mount{"22", "8:1", "/", "/"}));
  EXPECT_EQ(mounts[1], (Mount{"35", "0:30", "/", "/tmp"}));
  EXPECT_EQ(mounts[2], (Mount{"41", "0:31", "/", "/tmp/with space\\and\ttab"}));
  EXPECT_TRUE(ParseMountInfo("").empty());
  EXPECT_TRUE(ParseMountInfo("truncated line\n").empty());
}

TEST(MountTable, AMountReplacedByOneThatTookItsIdIsAChange) {
  const std::vector<Mount> before = ParseMountInfo("50 35 0:40 / /tmp/x rw - tmpfs tmpfs rw\n");
  EXPECT_EQ(ChangedMountPoints(before, ParseMountInfo("50 35 8:1 /srv/b /tmp/x rw - ext4 /dev/sda1 rw\n")),
            (std::vector<std::string>{"/tmp/x"}));
  EXPECT_EQ(ChangedMountPoints(before, ParseMountInfo("50 35 0:40 /sub /tmp/x rw - tmpfs tmpfs rw\n")),
            (std::vector<std::string>{"/tmp/x"}));
}

TEST(MountTable, ChangedPointsAreThoseMountedUnmountedOrMountedAgain) {
  const std::vector<Mount> before = ParseMountInfo(kTable);
  EXPECT_TRUE(ChangedMountPoints(before, before).empty());
  const std::vector<Mount> after = ParseMountInfo(
      "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
      "35 22 0:30 / /tmp rw - tmpfs tmpfs rw\n"
      "50 35 0:40 / /tmp/new rw - tmpfs tmpfs rw\n"      // mounted
      "51 35 0:41 / /tmp/with\\040space\\134and\\011tab rw - tmpfs tmpfs rw\n");  // again
  EXPECT_EQ(ChangedMountPoints(before, after),
            (std::vector<std::string>{"/tmp/new", "/tmp/with space\\and\ttab"}));
  EXPECT_EQ(ChangedMountPoints(after, before),
            (std::vector<std::string>{"/tmp/new", "/tmp/with space\\and\ttab"}));
}

}  // namespace
