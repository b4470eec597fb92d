// file_watcher_mounts.cc — FileWatcher and the mount table: mount points that came or went
// collected as directories replaced, and which mount points are files.
#include <fcntl.h>
#include <sys/stat.h>

#include "file_watcher.h"
#include "paths.h"

namespace turbine::stdlib {

bool FileWatcher::IsFileMountPoint(const std::string& path) const {
  if (!any_file_mounts_.load(std::memory_order_relaxed)) return false;
  std::lock_guard lock(file_mounts_mu_);
  return file_mounts_.contains(path);
}

std::vector<std::string> FileWatcher::FileMountPoints(const std::vector<std::string>& points) {
  std::vector<std::string> files;
  for (const std::string& point : points) {
    // Neither triggering an automount nor asking a network filesystem's server.
    struct statx st {};
    if (statx(AT_FDCWD, point.c_str(),
              AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_STATX_DONT_SYNC, STATX_TYPE, &st) == 0 &&
        S_ISREG(st.stx_mode)) {
      files.push_back(point);
    }
  }
  return files;
}

void FileWatcher::HandleMountChange() {
  std::string text;
  if (!ReadMountInfo(mounts_fd_, &text)) return;
  std::vector<Mount> mounts = ParseMountInfo(text);
  std::vector<std::string> changed;
  {
    std::lock_guard lock(mu_);
    changed = ChangedMountPoints(mounts_, mounts);
    std::vector<std::string> aliases;
    for (const std::string& point : changed) {
      // As a directory replaced: what was read below it, and its own entry (a file's).
      CollectSubtreeLocked(point);
      if (const std::string_view parent = ParentPath(point); parent != point) {
        if (auto found = dirs_.find(parent); found != dirs_.end()) {
          CollectEntryLocked(found->second, BaseName(point));
        }
      }
      // And what was read through a symlink leading to it or above it (a mount point is a
      // real path; such a read is kept under the path it was asked by).
      for (std::string_view at = point;; at = ParentPath(at)) {
        if (auto found = aliases_by_key_.find(at); found != aliases_by_key_.end()) {
          aliases.insert(aliases.end(), found->second.begin(), found->second.end());
        }
        if (ParentPath(at) == at) break;
      }
    }
    for (const std::string& alias : aliases) CollectSubtreeLocked(alias);
    mounts_ = std::move(mounts);
  }
  if (changed.empty()) return;
  // Which are files now, before this round ends: a read that follows the mount must watch
  // a file mounted (the readers collected above run again only once the round is over).
  // Only the points that just changed; a statx that neither mounts nor asks a server.
  const std::vector<std::string> files = FileMountPoints(changed);
  std::lock_guard lock(file_mounts_mu_);
  for (const std::string& point : changed) file_mounts_.erase(point);
  for (const std::string& file : files) file_mounts_.insert(file);
  any_file_mounts_.store(!file_mounts_.empty());
}

void FileWatcher::ClassifyMounts(std::vector<std::string> points) {
  const std::vector<std::string> files = FileMountPoints(points);
  if (files.empty()) return;
  {
    std::lock_guard lock(file_mounts_mu_);
    for (const std::string& file : files) file_mounts_.insert(file);
    any_file_mounts_.store(true);
  }
  // Read before it was known to be one: its readers run again and watch it.
  std::lock_guard lock(mu_);
  for (const std::string& file : files) {
    if (auto found = dirs_.find(ParentPath(file)); found != dirs_.end()) {
      CollectEntryLocked(found->second, BaseName(file));
    }
  }
  if (!pending_.empty()) WakeRun();
}

}  // namespace turbine::stdlib
