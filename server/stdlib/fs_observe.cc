// fs_observe.cc — fingerprints of what the fs functions observe, and how to check them.
#include "fs_observe.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <memory>
#include <optional>

#include "file_signature.h"
#include "file_watcher.h"
#include "turbine/hash.h"
#include "turbine/observe.h"

namespace turbine::stdlib {
namespace {

std::string_view KindOf(mode_t mode) {
  if (S_ISREG(mode)) return kKindFile;
  if (S_ISDIR(mode)) return kKindDir;
  if (S_ISLNK(mode)) return kKindSymlink;
  return kKindOther;
}

// Each kind checks in the body's order: subscribe (Watch*), then look (Look*).
void WatchEntry(const std::string& path, const Invalidator& invalidator) {
  FileWatcher::Global().WatchEntry(path, invalidator);
}

void WatchListing(const std::string& dir, const Invalidator& invalidator) {
  FileWatcher::Global().WatchListing(dir, invalidator);
}

bool Missing(int error) { return error == ENOENT || error == ENOTDIR; }

std::optional<uint64_t> LookLstat(const std::string& path, const Invalidator& invalidator) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    return Missing(errno) ? std::optional(MissingFingerprint(errno)) : std::nullopt;
  }
  WatchIfHardLinked(path, invalidator, &st);
  return StatFingerprint(st);
}

std::optional<uint64_t> LookRead(const std::string& path, const Invalidator& invalidator) {
  struct stat link {};
  if (lstat(path.c_str(), &link) != 0) {
    return Missing(errno) ? std::optional(MissingFingerprint(errno)) : std::nullopt;
  }
  if (!S_ISLNK(link.st_mode)) {
    WatchIfHardLinked(path, invalidator, &link);
    return ReadFingerprint(link, {}, link);
  }
  FileWatcher::Global().WatchTarget(path, invalidator);  // where it leads, then look
  char resolved[PATH_MAX];
  if (realpath(path.c_str(), resolved) == nullptr) return std::nullopt;
  struct stat target {};
  if (lstat(resolved, &target) != 0) return std::nullopt;
  WatchIfHardLinked(resolved, invalidator, &target);
  return ReadFingerprint(link, resolved, target);
}

std::optional<uint64_t> LookList(const std::string& dir, const Invalidator&) {
  std::vector<DirEntry> entries;
  if (ReadListing(dir, &entries) != 0) return std::nullopt;
  return ListingFingerprint(entries);
}

const ObservationKind lstat_kind{kObserveLstat, WatchEntry, LookLstat};
const ObservationKind read_kind{kObserveRead, WatchEntry, LookRead};
const ObservationKind dir_kind{kObserveDir, WatchListing, LookLstat};
const ObservationKind list_kind{kObserveList, WatchListing, LookList};

}  // namespace

void FailObserving(std::string_view function, const std::string& path, int error,
                   std::string_view kind, std::string_view group) {
  if (Missing(error)) Observe(kind, path, MissingFingerprint(error), group);
  FailErrno(function, path, error);
}

void WatchIfHardLinked(const std::string& path, const Invalidator& invalidator,
                       struct stat* st) {
  if (!S_ISREG(st->st_mode)) return;
  FileWatcher& watcher = FileWatcher::Global();
  const FileWatcher::FileId file{static_cast<uint64_t>(st->st_dev),
                                 static_cast<uint64_t>(st->st_ino)};
  if (st->st_nlink < 2 && !watcher.IsFileMountPoint(path)) {
    watcher.RememberOneName(file, invalidator);
    return;
  }
  watcher.WatchHardLinkedFile(path, file, invalidator);
  struct stat again {};
  if (lstat(path.c_str(), &again) == 0) *st = again;
}

uint64_t MissingFingerprint(int error) {
  return HashScalar(static_cast<uint64_t>(error), 0x6d697373696e6721);  // "missing!"
}

uint64_t StatFingerprint(const struct stat& st) {
  const int64_t fields[] = {static_cast<int64_t>(st.st_mode),
                            static_cast<int64_t>(st.st_size),
                            static_cast<int64_t>(st.st_mtim.tv_sec),
                            static_cast<int64_t>(st.st_mtim.tv_nsec),
                            static_cast<int64_t>(st.st_ctim.tv_sec),
                            static_cast<int64_t>(st.st_ctim.tv_nsec),
                            static_cast<int64_t>(st.st_ino),
                            static_cast<int64_t>(st.st_dev)};
  return HashBytes(fields, sizeof fields, 0);
}

uint64_t ReadFingerprint(const struct stat& link, std::string_view resolved,
                         const struct stat& target) {
  uint64_t hash = StatFingerprint(link);
  if (resolved.empty()) return hash;
  hash = HashBytes(resolved.data(), resolved.size(), hash);
  return HashScalar(StatFingerprint(target), hash);
}

bool DirectoryTimesFollowEntries(int fd) {
  // Asked each time, not cached by device: an anonymous device number (tmpfs, overlay) is
  // reused by the next such mount.
  struct statfs fs {};
  if (fstatfs(fd, &fs) != 0) return false;
  switch (static_cast<uint64_t>(fs.f_type)) {
    case EXT4_SUPER_MAGIC:  // also ext2 and ext3
    case XFS_SUPER_MAGIC:
    case BTRFS_SUPER_MAGIC:
    case TMPFS_MAGIC:
      return true;
    default:
      return false;
  }
}

uint64_t ListingFingerprint(const std::vector<DirEntry>& entries) {
  uint64_t hash = HashScalar(static_cast<uint64_t>(entries.size()), 0);
  for (const DirEntry& entry : entries) {
    hash = HashBytes(entry.name.data(), entry.name.size() + 1, hash);  // with its NUL
    hash = HashBytes(entry.kind.data(), entry.kind.size(), hash);
  }
  return hash;
}

int ReadListing(const std::string& dir, std::vector<DirEntry>* entries) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  return ReadListingOf(fd, entries);
}

int ReadListingOf(int fd, std::vector<DirEntry>* entries) {
  entries->clear();
  DIR* stream = fdopendir(fd);
  if (stream == nullptr) {
    const int error = errno;
    close(fd);
    return error;
  }
  std::unique_ptr<DIR, int (*)(DIR*)> closer(stream, closedir);
  while (true) {
    errno = 0;
    const dirent* entry = readdir(stream);
    if (entry == nullptr) {
      if (errno != 0) return errno;
      break;
    }
    const std::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    std::string_view kind = kKindOther;
    switch (entry->d_type) {
      case DT_REG: kind = kKindFile; break;
      case DT_DIR: kind = kKindDir; break;
      case DT_LNK: kind = kKindSymlink; break;
      case DT_UNKNOWN: {
        // Some filesystems do not report types in directory entries.
        struct stat st {};
        if (fstatat(dirfd(stream), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
          kind = KindOf(st.st_mode);
        }
        break;
      }
      default: break;
    }
    entries->push_back(DirEntry{std::string(name), std::string(kind)});
  }
  std::sort(entries->begin(), entries->end(),
            [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
  return 0;
}

}  // namespace turbine::stdlib
