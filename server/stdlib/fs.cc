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

#include "file_watcher.h"
#include "fs.h"
#include "paths.h"
#include "turbine/server/export.h"

namespace turbine::stdlib {
namespace {

constexpr int64_t kRacyWindowNs = 1'000'000'000;

[[noreturn]] void FailErrno(std::string_view function, const std::string& path, int error) {
  Fail(std::string(function) + ": " + path + ": " + std::strerror(error));
}

int64_t Nanos(const timespec& time) {
  return static_cast<int64_t>(time.tv_sec) * 1'000'000'000 + time.tv_nsec;
}

std::string_view KindOf(mode_t mode) {
  if (S_ISREG(mode)) return kKindFile;
  if (S_ISDIR(mode)) return kKindDir;
  if (S_ISLNK(mode)) return kKindSymlink;
  return kKindOther;
}

// Signature is what fs.content is keyed by: any write changes ctime, a replaced file
// changes the inode.
struct Signature {
  int64_t size, mtime_ns, ctime_ns, inode;
  bool operator==(const Signature&) const = default;
};
Signature SignatureOf(const struct stat& st) {
  return {st.st_size, Nanos(st.st_mtim), Nanos(st.st_ctim), static_cast<int64_t>(st.st_ino)};
}

bool IsRacy(const Signature& signature) {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return Nanos(now) - std::max(signature.mtime_ns, signature.ctime_ns) < kRacyWindowNs;
}

// ReadContent reads the file at `path`, failing if it is not the version `expected`
// names (it changed after fs.read's stat; the watcher then invalidates fs.read, which
// asks again under the new signature).
Bytes ReadContent(const std::string& path, const Signature& expected) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) FailErrno("fs.read", path, errno);
  std::unique_ptr<int, void (*)(int*)> closer(new int(fd), [](int* f) {
    close(*f);
    delete f;
  });
  struct stat before {};
  if (fstat(fd, &before) != 0) FailErrno("fs.read", path, errno);
  if (SignatureOf(before) != expected) Fail("fs.read: " + path + " changed while being read");
  Bytes bytes;
  bytes.data.resize(static_cast<size_t>(before.st_size));
  size_t filled = 0;
  while (true) {
    if (filled == bytes.data.size()) bytes.data.resize(filled + 4096);  // it grew: detect it
    const ssize_t got = read(fd, bytes.data.data() + filled, bytes.data.size() - filled);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) FailErrno("fs.read", path, errno);
    if (got == 0) break;
    filled += static_cast<size_t>(got);
  }
  bytes.data.resize(filled);
  struct stat after {};
  if (fstat(fd, &after) != 0) FailErrno("fs.read", path, errno);
  if (SignatureOf(after) != expected || filled != static_cast<size_t>(expected.size)) {
    Fail("fs.read: " + path + " changed while being read");
  }
  return bytes;
}

Task<Bytes> ContentImpl(std::string path, int64_t size, int64_t mtime_ns, int64_t ctime_ns,
                        int64_t inode) {
  co_return ReadContent(path, Signature{size, mtime_ns, ctime_ns, inode});
}
const Function<ContentImpl> fs_content{
    "fs.content", 1, "a file's bytes at one stat signature (fs.read's cache)"};

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
  const Signature signature = SignatureOf(st);
  if (IsRacy(signature)) co_return Cell(ReadContent(path, signature));
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
