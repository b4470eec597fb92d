// mount_table.h — the mount points of this process's mount namespace, read from
// /proc/self/mountinfo, and which of them a change of the table touched.
//
// inotify says nothing when a filesystem is mounted over a watched directory or
// unmounted from one: the file watcher polls the table (the kernel marks
// /proc/self/mountinfo with POLLPRI when it changes) and treats each mount point that
// came or went as a directory replaced.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace turbine::stdlib {

// A mount as the table lists it: its id (unique while it is mounted, and reused after),
// the device and the directory of it mounted (so that a mount replaced by another that
// took its id still differs), and its mount point.
struct Mount {
  std::string id;
  std::string device;
  std::string root;
  std::string point;
  auto operator<=>(const Mount&) const = default;
};

// ParseMountInfo is the mounts /proc/self/mountinfo's text lists, sorted; a mount point's
// escapes (\040 for a space, \011, \012, \134) are undone.
std::vector<Mount> ParseMountInfo(std::string_view text);

// ChangedMountPoints is the mount points of the mounts in one table and not the other.
std::vector<std::string> ChangedMountPoints(const std::vector<Mount>& before,
                                            const std::vector<Mount>& after);

// ReadMountInfo reads the whole of the open /proc/self/mountinfo `fd` again, from its
// start; false on an error.
bool ReadMountInfo(int fd, std::string* text);

}  // namespace turbine::stdlib
