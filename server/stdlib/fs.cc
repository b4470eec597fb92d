// fs.cc — fs.stat, fs.read and fs.list.
//
// Each says what it observed (fs_observe.h), so a daemon that starts again checks the
// files once, in bulk, and trusts what follows from those that did not change.
// fs.read stats the file and forwards to fs.content(path, signature), a plain (not
// session-dependent) task keyed by the stat signature. After a restart fs.read executes
// once more, stats, and finds fs.content under the same signature on disk: the content is
// not read again unless the stat changed. A signature is trusted only once it is older
// than kRacyWindow: a file modified twice within one timestamp tick keeps its mtime, so a
// fresh signature does not prove fresh content (git calls these files "racy"). Racy files
// are read directly into fs.read's own cell, every time.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>

#include "file_signature.h"
#include "file_watcher.h"
#include "fs.h"
#include "fs_observe.h"
#include "paths.h"
#include "turbine/observe.h"
#include "turbine/server/export.h"

namespace turbine::stdlib {
namespace {

int64_t Nanos(const timespec& time) {
  return static_cast<int64_t>(time.tv_sec) * 1'000'000'000 + time.tv_nsec;
}

std::string_view KindOf(mode_t mode) {
  if (S_ISREG(mode)) return kKindFile;
  if (S_ISDIR(mode)) return kKindDir;
  if (S_ISLNK(mode)) return kKindSymlink;
  return kKindOther;
}

Task<Bytes> ContentImpl(std::string path, int64_t size, int64_t mtime_ns, int64_t ctime_ns,
                        int64_t inode, int64_t device) {
  co_return ReadFileAt(path, FileSignature{size, mtime_ns, ctime_ns, inode, device}, "fs.read");
}
// Only fs.read asks for it, under the signature it just saw; a signature never comes back
// (its ctime only grows), so once no stored task refers to it, it is garbage. Version 2:
// the device is part of the signature (version 1's records, keyed without it, could give
// one filesystem's bytes for another's file at the same path, inode and times).
const Function<ContentImpl> fs_content{"fs.content",
                                       2,
                                       "a file's bytes at one stat signature (fs.read's cache)",
                                       {.kept_while_referenced = true, .machine_local = true}};

}  // namespace

Task<FileStat> StatImpl(std::string path) {
  const std::string normal = NormalPath(path, "fs.stat");
  if (normal != path) co_return co_await fs_stat(normal);
  FileWatcher& watcher = FileWatcher::Global();
  const Invalidator invalidator = CurrentInvalidator();
  watcher.WatchEntry(path, invalidator);  // before looking: no gap
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    FailObserving("fs.stat", path, errno, kObserveLstat, ParentPath(path));
  }
  WatchIfHardLinked(path, invalidator, &st);
  const bool directory = S_ISDIR(st.st_mode);
  if (directory) {
    // A directory's mtime and size change with its entries, which only a watch of the
    // directory itself sees: watched as a listing, then looked at again, after it.
    watcher.WatchListing(path, invalidator);
    if (lstat(path.c_str(), &st) != 0) FailErrno("fs.stat", path, errno);
  }
  if (!IsRacy(SignatureOf(st))) {
    // The same fingerprint either way; a directory's kind subscribes to its listing when
    // it is checked at start.
    Observe(directory && S_ISDIR(st.st_mode) ? kObserveDir : kObserveLstat, path,
            StatFingerprint(st), ParentPath(path));
  }
  co_return FileStat{std::string(KindOf(st.st_mode)), st.st_size, Nanos(st.st_mtim),
                     st.st_mode & 07777};
}

Task<Vc<Bytes>> ReadImpl(std::string path) {
  const std::string normal = NormalPath(path, "fs.read");
  if (normal != path) co_return fs_read(normal);
  FileWatcher& watcher = FileWatcher::Global();
  const Invalidator invalidator = CurrentInvalidator();
  watcher.WatchEntry(path, invalidator);
  struct stat link {};
  if (lstat(path.c_str(), &link) != 0) {
    FailObserving("fs.read", path, errno, kObserveRead, ParentPath(path));
  }
  struct stat st = link;
  std::string resolved;
  if (S_ISLNK(link.st_mode)) {
    // A symlink is read through: watch every link on the way and where it leads, as well
    // as the link itself.
    watcher.WatchTarget(path, invalidator);
    char target[PATH_MAX];
    if (realpath(path.c_str(), target) == nullptr) FailErrno("fs.read", path, errno);
    resolved = target;
    if (lstat(resolved.c_str(), &st) != 0) FailErrno("fs.read", path, errno);
    WatchIfHardLinked(resolved, invalidator, &st);
  } else {
    WatchIfHardLinked(path, invalidator, &link);
    st = link;
  }
  if (S_ISDIR(st.st_mode)) Fail("fs.read: " + path + " is a directory (use fs.list)");
  if (!S_ISREG(st.st_mode)) Fail("fs.read: " + path + " is not a regular file");
  const FileSignature signature = SignatureOf(st);
  if (IsRacy(signature)) co_return Cell(ReadFileAt(path, signature, "fs.read"));
  Observe(kObserveRead, path, ReadFingerprint(link, resolved, st), ParentPath(path));
  co_return fs_content(path, signature.size, signature.mtime_ns, signature.ctime_ns,
                       signature.inode, signature.device);
}

Task<std::vector<DirEntry>> ListImpl(std::string dir) {
  const std::string normal = NormalPath(dir, "fs.list");
  if (normal != dir) co_return co_await fs_list(normal);
  FileWatcher::Global().WatchListing(dir, CurrentInvalidator());
  // One descriptor for the stat, the filesystem and the entries, so that all three are of
  // one directory even if a mount comes or goes meanwhile. The stat comes before the
  // entries (a change after it is the watcher's) and is judged racy or not at once: a change
  // after this moment gets a later timestamp.
  std::vector<DirEntry> entries;
  bool stat_pins_entries = false;
  struct stat before {};
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  int error = errno;
  if (fd >= 0) {
    stat_pins_entries = fstat(fd, &before) == 0 && !IsRacy(SignatureOf(before)) &&
                        DirectoryTimesFollowEntries(fd);
    error = ReadListingOf(fd, &entries);
  } else if (error == ENOTDIR || error == ELOOP) {
    // A symlink (O_NOFOLLOW with O_DIRECTORY refuses one as "not a directory"): listed
    // where it leads (the watch above walked it), by its entries. A file is refused again,
    // by the same error.
    error = ReadListing(dir, &entries);
  }
  if (error != 0) {
    // Observed missing only when the directory itself is not there (not a file or a link).
    struct stat st {};
    if (lstat(dir.c_str(), &st) != 0) FailObserving("fs.list", dir, errno, kObserveDir, dir);
    FailErrno("fs.list", dir, error);
  }
  if (stat_pins_entries) {
    // Any change of its entries gives the directory a new mtime and ctime, later than the
    // racy window, so its stat pins them: the check at start is one lstat, not a read.
    Observe(kObserveDir, dir, StatFingerprint(before), dir);
  } else {
    // Young, reached through a symlink, or on a filesystem whose directory times do not
    // follow the entries: the entries themselves are compared.
    Observe(kObserveList, dir, ListingFingerprint(entries), dir);
  }
  co_return entries;
}

namespace {
const server::Export export_stat{fs_stat, {"path"}};
const server::Export export_read{fs_read, {"path"}};
const server::Export export_list{fs_list, {"dir"}};
// A client that writes a file and then calls sees the write (file_watcher.h, CatchUp).
const server::CatchUpHook catch_up_with_files{[] {
  if (FileWatcher* watcher = FileWatcher::Started()) watcher->CatchUp();
}};
}  // namespace

}  // namespace turbine::stdlib
