// fs_observe.h — what the fs and tree functions observe of the file system, as
// fingerprints the engine checks again when the daemon starts (turbine/observe.h).
//
// Four kinds, each checked by doing what the observing body did, in the same order
// (subscribe to the watcher, then look):
//   "lstat"  a path's lstat: type, permissions, size, mtime, ctime, inode (fs.stat,
//            tree.file)
//   "read"   what fs.read looks at: the path's lstat and, for a symlink, where it leads
//            and that file's stat
//   "dir"    a directory's own lstat, subscribed to as a listing: it pins the entries
//            (fs.list), since creating, removing or renaming one changes the
//            directory's mtime and ctime; and fs.stat of a directory, whose mtime and
//            size only a watch of the directory itself sees change
//   "list"   a directory's entries, names and kinds (fs.list, when "dir" cannot say)
// A path that is not there is observed too (MissingFingerprint), by fs.stat, fs.read and
// tree.file, and by fs.list when the directory itself is missing. A file whose signature
// is racy (younger than a second, file_signature.h) is not observed: its readers are
// verified after a restart, as before. A directory whose stat
// is racy, or on a filesystem whose directory times do not follow its entries, is observed
// by its entries ("list"); an older one by its stat ("dir"), which the check at start looks
// at with one lstat instead of a directory read. Every observation's group
// (turbine::Observe) is the directory it is in, a listing's the directory itself: in input
// summaries a change in a directory reaches what follows from that directory's files, not
// everything that follows from many files.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fs.h"
#include "turbine/engine.h"

namespace turbine::stdlib {

inline constexpr std::string_view kObserveLstat = "lstat";
inline constexpr std::string_view kObserveRead = "read";
inline constexpr std::string_view kObserveDir = "dir";
inline constexpr std::string_view kObserveList = "list";

// StatFingerprint: of an lstat (or stat) result.
uint64_t StatFingerprint(const struct stat& st);
// MissingFingerprint: of a path that is not there, by `error` (ENOENT, or ENOTDIR: a file
// on its way; their messages differ), as the lookers report it too: an error for a
// missing path is trusted after a restart while the path stays missing, instead of
// executing again at every start.
uint64_t MissingFingerprint(int error);
// FailObserving fails the running task with `error` of `function` on `path`, having
// observed the path missing (`kind`, in `group`) when that is what the error says.
[[noreturn]] void FailObserving(std::string_view function, const std::string& path, int error,
                                std::string_view kind, std::string_view group);
// ReadFingerprint: of fs.read's look at a path: its lstat `link`, and for a symlink the
// path it resolves to and that file's stat `target` (`resolved` empty otherwise).
uint64_t ReadFingerprint(const struct stat& link, std::string_view resolved,
                         const struct stat& target);
// DirectoryTimesFollowEntries: whether the filesystem holding the open directory `fd`
// gives a directory a new mtime and ctime whenever an entry is created, removed or renamed
// in it, so that its stat can stand for its entries. Only for the local filesystems known
// to (ext4, xfs, btrfs, tmpfs): an overlay's merged directory shows its upper layer's times
// while a lower layer may change, and proc, sysfs, FUSE and network filesystems make
// theirs up or cache them.
bool DirectoryTimesFollowEntries(int fd);
// ListingFingerprint: of a directory's sorted entries.
uint64_t ListingFingerprint(const std::vector<DirEntry>& entries);

// WatchIfHardLinked watches the regular file `path` itself when it has more than one name,
// or is a file mounted over another (a bind mount): a write through a name in another
// directory reaches no directory watched for it. Its
// lstat `st` is taken again after the watch, so no change falls between them. A file of
// one name has its reader kept (FileWatcher::RememberOneName), for a name linked later.
void WatchIfHardLinked(const std::string& path, const Invalidator& invalidator,
                       struct stat* st);


// ReadListing reads the entries of `dir`, sorted by name; the errno on failure, else 0.
int ReadListing(const std::string& dir, std::vector<DirEntry>* entries);
// ReadListingOf does the same for the open directory `fd`, which it closes.
int ReadListingOf(int fd, std::vector<DirEntry>* entries);

}  // namespace turbine::stdlib
