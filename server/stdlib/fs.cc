// fs.cc — fs.stat, fs.read and fs.list.
//
// fs.read stats the file and forwards to fs.content(path, signature), a plain (not
// session-dependent) task keyed by the stat signature. After a restart fs.read executes
// once more, stats, and finds fs.content under the same signature on disk: the content is
// not read again unless the stat changed. A signature is trusted only once it is older
// than kRacyWindow: a file modified twice within one timestamp tick keeps its mtime, so a
// fresh signature does not prove fresh content (git calls these files "racy"). Racy files
// are read directly into fs.read's own cell, every time.
#include <dirent.h>
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
#include "paths.h"
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
                        int64_t inode) {
  co_return ReadFileAt(path, FileSignature{size, mtime_ns, ctime_ns, inode}, "fs.read");
}
// Only fs.read asks for it, under the signature it just saw; a signature never comes back
// (its ctime only grows), so once no stored task refers to it, it is garbage.
const Function<ContentImpl> fs_content{"fs.content",
                                       1,
                                       "a file's bytes at one stat signature (fs.read's cache)",
                                       {.kept_while_referenced = true, .machine_local = true}};

}  // namespace

Task<FileStat> StatImpl(std::string path) {
  const std::string normal = NormalPath(path, "fs.stat");
  if (normal != path) co_return co_await fs_stat(normal);
  FileWatcher::Global().WatchEntry(path, CurrentInvalidator());  // before looking: no gap
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) FailErrno("fs.stat", path, errno);
  co_return FileStat{std::string(KindOf(st.st_mode)), st.st_size, Nanos(st.st_mtim),
                     st.st_mode & 07777};
}

Task<Vc<Bytes>> ReadImpl(std::string path) {
  const std::string normal = NormalPath(path, "fs.read");
  if (normal != path) co_return fs_read(normal);
  FileWatcher& watcher = FileWatcher::Global();
  const Invalidator invalidator = CurrentInvalidator();
  watcher.WatchEntry(path, invalidator);
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) FailErrno("fs.read", path, errno);
  if (S_ISLNK(st.st_mode)) {
    // A symlink is read through: watch where it leads as well as the link itself.
    char resolved[PATH_MAX];
    if (realpath(path.c_str(), resolved) == nullptr) FailErrno("fs.read", path, errno);
    watcher.WatchEntry(resolved, invalidator);
    if (stat(resolved, &st) != 0) FailErrno("fs.read", path, errno);
  }
  if (S_ISDIR(st.st_mode)) Fail("fs.read: " + path + " is a directory (use fs.list)");
  if (!S_ISREG(st.st_mode)) Fail("fs.read: " + path + " is not a regular file");
  const FileSignature signature = SignatureOf(st);
  if (IsRacy(signature)) co_return Cell(ReadFileAt(path, signature, "fs.read"));
  co_return fs_content(path, signature.size, signature.mtime_ns, signature.ctime_ns,
                       signature.inode);
}

Task<std::vector<DirEntry>> ListImpl(std::string dir) {
  const std::string normal = NormalPath(dir, "fs.list");
  if (normal != dir) co_return co_await fs_list(normal);
  FileWatcher::Global().WatchListing(dir, CurrentInvalidator());
  DIR* stream = opendir(dir.c_str());
  if (stream == nullptr) FailErrno("fs.list", dir, errno);
  std::unique_ptr<DIR, int (*)(DIR*)> closer(stream, closedir);
  std::vector<DirEntry> entries;
  while (true) {
    errno = 0;
    const dirent* entry = readdir(stream);
    if (entry == nullptr) {
      if (errno != 0) FailErrno("fs.list", dir, errno);
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
    entries.push_back(DirEntry{std::string(name), std::string(kind)});
  }
  std::sort(entries.begin(), entries.end(),
            [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
  co_return entries;
}

namespace {
const server::Export export_stat{fs_stat, {"path"}};
const server::Export export_read{fs_read, {"path"}};
const server::Export export_list{fs_list, {"dir"}};
}  // namespace

}  // namespace turbine::stdlib
