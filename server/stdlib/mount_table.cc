// mount_table.cc — /proc/self/mountinfo read and compared.
#include "mount_table.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <iterator>

namespace turbine::stdlib {
namespace {

// Unescaped undoes the kernel's octal escapes of a mount point (show_mountinfo's
// mangle: space, tab, newline and backslash).
std::string Unescaped(std::string_view field) {
  std::string out;
  out.reserve(field.size());
  for (size_t i = 0; i < field.size(); ++i) {
    const auto octal = [&](size_t at) { return field[at] >= '0' && field[at] <= '7'; };
    if (field[i] == '\\' && i + 3 < field.size() && octal(i + 1) && octal(i + 2) &&
        octal(i + 3)) {
      out.push_back(static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 +
                                      (field[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(field[i]);
    }
  }
  return out;
}

}  // namespace

std::vector<Mount> ParseMountInfo(std::string_view text) {
  std::vector<Mount> mounts;
  while (!text.empty()) {
    const size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
    // "36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw": the mount
    // id first, the device third, the root fourth, the mount point fifth.
    std::string_view fields[5];
    size_t found = 0;
    while (found < 5 && !line.empty()) {
      const size_t space = line.find(' ');
      fields[found++] = line.substr(0, space);
      line = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
    }
    if (found == 5) {
      mounts.push_back({std::string(fields[0]), std::string(fields[2]), Unescaped(fields[3]),
                        Unescaped(fields[4])});
    }
  }
  std::sort(mounts.begin(), mounts.end());
  return mounts;
}

std::vector<std::string> ChangedMountPoints(const std::vector<Mount>& before,
                                            const std::vector<Mount>& after) {
  std::vector<Mount> changed;
  std::set_symmetric_difference(before.begin(), before.end(), after.begin(), after.end(),
                                std::back_inserter(changed));
  std::vector<std::string> points;
  for (Mount& mount : changed) points.push_back(std::move(mount.point));
  std::sort(points.begin(), points.end());
  points.erase(std::unique(points.begin(), points.end()), points.end());
  return points;
}

bool ReadMountInfo(int fd, std::string* text) {
  text->clear();
  if (lseek(fd, 0, SEEK_SET) != 0) return false;
  char buffer[16 * 1024];
  while (true) {
    const ssize_t length = read(fd, buffer, sizeof buffer);
    if (length < 0 && errno == EINTR) continue;
    if (length < 0) return false;
    if (length == 0) return true;
    text->append(buffer, static_cast<size_t>(length));
  }
}

}  // namespace turbine::stdlib
