// tree.cc — tree.summary: files, lines, bytes and a digest of a directory tree.
//
// One task per directory (tree.dir) and one per file (tree.file), so an edit re-executes
// the file's task and its ancestors' directory tasks; every other directory answers from
// cache, and an ancestor whose totals come out equal stops the wave (early cutoff).
// tree.file is session-dependent and watched like fs.read; it keeps its totals under the
// file's stat signature (tree.file_at), not the file's bytes.
// Regular files only; symlinks are not followed; `exclude` names entries (at any depth)
// to skip, such as ".git" or "build".
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "file_signature.h"
#include "file_watcher.h"
#include "fs.h"
#include "fs_observe.h"
#include "paths.h"
#include "turbine/hash.h"
#include "turbine/observe.h"
#include "turbine/server/export.h"

namespace turbine::stdlib {
namespace {

struct Totals {
  int64_t files = 0;
  int64_t lines = 0;
  int64_t bytes = 0;
  uint64_t digest = 0;
  bool operator==(const Totals&) const = default;
  static constexpr std::string_view kTypeName = "tree.Totals";
  static constexpr auto kFields =
      std::make_tuple(field("files", &Totals::files), field("lines", &Totals::lines),
                      field("bytes", &Totals::bytes), field("digest", &Totals::digest));
};

struct Summary {
  int64_t files = 0;
  int64_t lines = 0;
  int64_t bytes = 0;
  std::string digest;  // 16 hex digits
  bool operator==(const Summary&) const = default;
  static constexpr std::string_view kTypeName = "tree.Summary";
  static constexpr auto kFields =
      std::make_tuple(field("files", &Summary::files), field("lines", &Summary::lines),
                      field("bytes", &Summary::bytes), field("digest", &Summary::digest));
};

Totals Count(const Bytes& content) {
  const std::string& data = content.data;
  return Totals{1, static_cast<int64_t>(std::count(data.begin(), data.end(), '\n')),
                static_cast<int64_t>(data.size()), HashBytes(data.data(), data.size(), 0)};
}

Task<Totals> FileAtImpl(std::string path, int64_t size, int64_t mtime_ns, int64_t ctime_ns,
                        int64_t inode, int64_t device) {
  co_return Count(
      ReadFileAt(path, FileSignature{size, mtime_ns, ctime_ns, inode, device}, "tree.file"));
}
// As fs.content: reached only through tree.file, under a signature that never comes back
// (version 2: with the device, as fs.content's).
const Function<FileAtImpl> tree_file_at{"tree.file_at",
                                        2,
                                        "tree.file's totals at one stat signature",
                                        {.kept_while_referenced = true, .machine_local = true}};

// FileImpl counts a file the way fs.read reads one: stat, then the totals cached under the
// stat signature. The content itself never enters the graph, so neither memory nor the
// store holds a copy of the tree, and a restart re-checks a file with one lstat.
Task<Vc<Totals>> FileImpl(std::string path) {
  const Invalidator invalidator = CurrentInvalidator();
  FileWatcher::Global().WatchEntry(path, invalidator);
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    FailObserving("tree.file", path, errno, kObserveLstat, ParentPath(path));
  }
  WatchIfHardLinked(path, invalidator, &st);
  // The directory's listing said "file"; if that changed, the listing's own invalidation
  // is on its way and this error will not be read.
  if (!S_ISREG(st.st_mode)) Fail("tree.file: " + path + " is no longer a regular file");
  const FileSignature signature = SignatureOf(st);
  if (IsRacy(signature)) co_return Cell(Count(ReadFileAt(path, signature, "tree.file")));
  Observe(kObserveLstat, path, StatFingerprint(st), ParentPath(path));
  co_return tree_file_at(path, signature.size, signature.mtime_ns, signature.ctime_ns,
                         signature.inode, signature.device);
}
const Function<FileImpl> tree_file{
    "tree.file", 1, "tree.summary of one file", {.session_dependent = true}};

// The daemon's own data directories (told by server::OwnDirectoryHook as a Server opens):
// left out of a summary. The daemon writes there at every call, so a summary of a project
// holding its .turbine would run again at every call, and its files can vanish while they
// are counted. Known by name, device and inode: the tree may be asked for through a
// symlink, and only an entry of that name costs a stat.
struct OwnDirectory {
  std::string name;
  dev_t device;
  ino_t inode;
};
std::mutex own_directories_mu;
std::vector<OwnDirectory>& OwnDirectories() {
  static auto* const directories = new std::vector<OwnDirectory>;
  return *directories;
}

void AddOwnDirectory(const std::string& dir) {
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) return;
  std::lock_guard lock(own_directories_mu);
  OwnDirectories().push_back({std::string(BaseName(dir)), st.st_dev, st.st_ino});
}
const server::OwnDirectoryHook own_directories{AddOwnDirectory};

bool IsOwnDirectory(const std::string& path, std::string_view name) {
  std::vector<OwnDirectory> named;
  {
    std::lock_guard lock(own_directories_mu);
    for (const OwnDirectory& own : OwnDirectories()) {
      if (own.name == name) named.push_back(own);
    }
  }
  struct stat st {};
  if (named.empty() || lstat(path.c_str(), &st) != 0) return false;
  return std::any_of(named.begin(), named.end(), [&](const OwnDirectory& own) {
    return own.device == st.st_dev && own.inode == st.st_ino;
  });
}

Task<Totals> DirImpl(std::string dir, std::vector<std::string> exclude);
// Version 2: the daemon's own data directory is left out.
const Function<DirImpl> tree_dir{"tree.dir", 2, "tree.summary of one directory"};
Task<Totals> DirImpl(std::string dir, std::vector<std::string> exclude) {
  const std::vector<DirEntry> entries = co_await fs_list(dir);
  // Start every child before awaiting any, so they run in parallel.
  std::vector<std::pair<const DirEntry*, Vc<Totals>>> children;
  for (const DirEntry& entry : entries) {
    if (std::binary_search(exclude.begin(), exclude.end(), entry.name)) continue;
    const std::string path = JoinPath(dir, entry.name);
    if (entry.kind == kKindDir && IsOwnDirectory(path, entry.name)) continue;
    if (entry.kind == kKindFile) {
      children.emplace_back(&entry, tree_file(path));
    } else if (entry.kind == kKindDir) {
      children.emplace_back(&entry, tree_dir(path, exclude));
    }
  }
  Totals totals;
  // The digest covers names and kinds as well as contents: a rename changes it.
  std::string digested;
  for (auto& [entry, child] : children) {
    ThrowIfCancelled();
    const Totals sub = co_await child;
    totals.files += sub.files;
    totals.lines += sub.lines;
    totals.bytes += sub.bytes;
    digested += entry->name;
    digested += '\0';
    digested += entry->kind.front();
    digested.append(reinterpret_cast<const char*>(&sub.digest), sizeof sub.digest);
  }
  totals.digest = HashBytes(digested.data(), digested.size(), 0);
  co_return totals;
}

Task<Summary> SummaryImpl(std::string dir, std::optional<std::vector<std::string>> exclude) {
  std::vector<std::string> names = exclude.value_or(std::vector<std::string>{});
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  const Totals totals = co_await tree_dir(NormalPath(dir, "tree.summary"), names);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(totals.digest));
  co_return Summary{totals.files, totals.lines, totals.bytes, hex};
}
const Function<SummaryImpl> tree_summary{
    "tree.summary", 1,
    "files, lines, bytes and digest of the regular files under a directory, recursively"};

const server::Export export_summary{tree_summary, {"dir", "exclude"}};

}  // namespace
}  // namespace turbine::stdlib
