// file_watcher.h — tells the engine when files and directories that tasks read change.
//
// The fs functions subscribe while they execute (an Invalidator per task); the watcher
// fires each subscription once, when the thing it names changes, and the task executes
// again on its next read. Subscriptions are one-shot because the re-executed task
// subscribes anew.
//
// Linux inotify does the watching. A directory watch sees its entries change; every
// ancestor of a subscribed path is watched too, so renaming or deleting any directory
// above a file invalidates it. An inotify watch follows the inode it was made on, so a
// directory reached through a symlink (an alias) also records, once, what its path depends
// on: each link on the way and the real directory it leads to, every directory of which
// is watched. When any of them changes (a link in a chain pointed elsewhere, a directory
// above where it leads renamed) the alias is collected and its tasks fire. A path with a
// name missing (or a dangling link) is walked as the kernel resolves it and subscribed
// where the walk stops: it fires when that name appears. A directory's attributes changing
// (its mode: who may search it) fires everything below it. A file with more than one name
// (hard links) is also watched itself when a reader asks (WatchHardLinkedFile): a write
// through a name in another directory reaches no watched directory; a name added after
// the read is told only to the file's own watch, so the readers of a file of one name are
// kept (RememberOneName) and join that watch when a read of the new name makes it. A mount made or
// removed (mount_table.h) collects its mount point as a directory replaced, and a file that is a
// mount point of its own (a bind-mounted file) is watched itself, as a hard link is. A change marks
// its tasks dirty as soon as its event is read, so a call made right after a write sees it; the
// engine's change listeners (Watch streams, which read again when told) are debounced: told once no
// event came for kQuietPeriod (at most kMaxDelay after the first change), so a burst of writes
// makes a watched task run once, not once per write. When inotify cannot watch a directory (the
// per-user watch limit), the watcher logs why and falls back to re-checking the affected tasks
// every kPollInterval: slower, never silently stale. A queue overflow (events lost) fires
// every subscription once and drops every watch; the tasks watch again as they execute.
//
// Polling does not fire: every kPollInterval, a thread of its own has the engine check
// each polled task's observation again (Invalidator::RecheckAll), and only those that
// changed are invalidated.
//
// inotify hears only changes made through this kernel: on a network or FUSE filesystem
// (NFS, SMB, 9p, sshfs, a VM's shared folder) a change made on the other side is never
// reported. The polling thread looks up each newly watched directory's filesystem (statfs,
// off the subscribing path) and polls the subscriptions of a directory on such a
// filesystem as well: a local change is still heard at once, a remote one within
// kPollInterval of the client's own caches showing it.
#pragma once

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>
#include <absl/container/inlined_vector.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "mount_table.h"
#include "turbine/engine.h"

struct inotify_event;

namespace turbine::stdlib {

class FileWatcher {
 public:
  static constexpr auto kQuietPeriod = std::chrono::milliseconds(30);
  static constexpr auto kMaxDelay = std::chrono::milliseconds(300);
  static constexpr auto kPollInterval = std::chrono::seconds(1);
  // How long new watches gather before their filesystems are looked up.
  static constexpr auto kClassifyDelay = std::chrono::milliseconds(20);

  // The process-wide watcher (started on first use). Invalidators of engines destroyed
  // since they subscribed are harmless: firing them does nothing.
  static FileWatcher& Global();

  // WatchEntry fires `invalidator` when the entry at absolute `path` changes: its content,
  // attributes, creation, deletion, or a rename of it or of any directory above it.
  void WatchEntry(const std::string& path, Invalidator invalidator);
  // WatchListing fires `invalidator` when entries are added to, removed from or renamed in
  // the directory `dir`, or when `dir` itself goes away.
  void WatchListing(const std::string& dir, Invalidator invalidator);
  // WatchTarget fires `invalidator` when what `path` leads to changes: each symlink on the
  // way and at its end pointed elsewhere, and the entry the last one leads to (or the first
  // name missing on the way appearing).
  void WatchTarget(const std::string& path, Invalidator invalidator);
  // FileId names a file: its device and inode.
  struct FileId {
    uint64_t device = 0;
    uint64_t inode = 0;
    bool operator==(const FileId&) const = default;
    template <typename H>
    friend H AbslHashValue(H hash, const FileId& file) {
      return H::combine(std::move(hash), file.device, file.inode);
    }
  };
  // WatchHardLinkedFile fires `invalidator` when the regular file at `path` (no symlink at
  // its end), `file`, changes through any of its names: for a file whose link count is
  // above one, whose other names may be in directories nobody watches. The readers of the
  // file kept by RememberOneName join the watch. One-shot, as every subscription; the
  // watch goes once it fires.
  void WatchHardLinkedFile(const std::string& path, FileId file, Invalidator invalidator);
  // RememberOneName keeps `invalidator`, a reader of `file` while it had one name (watched
  // through its directory alone). A link made later is told only to the file's own watch,
  // which it then has not: when a reader of the new name watches the file itself, the
  // readers kept here join that watch, so a write through the new name reaches them too.
  // At most kOneNameFiles files are kept; past that, those kept are let go (logged once):
  // then only a change through their own name, or a restart, reaches their readers.
  void RememberOneName(FileId file, Invalidator invalidator);
  static constexpr size_t kOneNameFiles = size_t{1} << 16;

  // IsFileMountPoint tells whether `path` is the mount point of a mount of a file (`mount
  // --bind file path`): a write to it is told to the directory of the file mounted, not to
  // the one `path` is in, so such a file is watched itself.
  bool IsFileMountPoint(const std::string& path) const;

  // WatchedDirectories is how many directories are watched now (each path that reaches
  // one counts).
  size_t WatchedDirectories() const;

  // Started is the process-wide watcher if something started it, else null.
  static FileWatcher* Started();
  // CatchUp returns once every event the kernel had queued when it was called is handled
  // and what it fired is marked dirty (the listeners may be told later), or after
  // kCatchUpLimit: a request that follows a write must see it. A write queues its event
  // before it returns, so a client that writes and then calls is answered after the mark.
  // Costs one poll(2) once anything is watched; nothing before.
  static constexpr auto kCatchUpLimit = std::chrono::seconds(1);
  void CatchUp();

  ~FileWatcher();

 private:
  using Clock = std::chrono::steady_clock;

  // Names are looked up by std::string_view, which Abseil's own string hash (on
  // absl::string_view) does not take in every build of it.
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view name) const { return std::hash<std::string_view>{}(name); }
  };
  struct DirWatch {
    int wd = -1;
    // For a symlink to a directory (an alias): the paths whose change makes it lead
    // elsewhere, each link on the way and the real directory it leads to (aliases_by_key_).
    std::vector<std::string> alias_keys;
    // On a filesystem whose changes inotify may not hear (RemoteFilesystemName): its
    // subscriptions are polled as well.
    bool remote = false;
    // A symlink to a directory some directory on whose way could not be watched, or a
    // directory below one: polled as well, for as long as it is watched.
    bool way_unwatched = false;
    std::vector<Invalidator> listing;  // WatchListing(dir)
    // WatchEntry(dir/name), by name. Flat, with one subscriber held in place: the check at
    // start subscribes every file again, and a node and a vector per file were about a
    // third of its subscribing thread's time.
    absl::flat_hash_map<std::string, absl::InlinedVector<Invalidator, 1>, NameHash, std::equal_to<>>
        entries;
  };

  // A file watched itself (WatchHardLinkedFile), by its watch.
  using FileWatch = absl::InlinedVector<Invalidator, 1>;
  // What a walk through symlinks subscribes where it ends (SubscribeResolvedLocked).
  enum class End { kEntry, kListing };
  using Visit = std::function<void(const std::string& dir, std::string_view name)>;

  static bool Polled(const DirWatch& watch) { return watch.remote || watch.way_unwatched; }
  // Shown is `path` for a log line: a path near PATH_MAX is cut in the middle.
  static std::string Shown(std::string_view path);

  FileWatcher();
  // WatchedLocked watches `dir` and every directory above it and returns its DirWatch; null
  // when inotify cannot (errno says why: ENOENT or ENOTDIR, and the caller walks the path;
  // else it polls). A symlink to a directory is watched through, as an alias.
  // REQUIRES: mu_ held.
  DirWatch* WatchedLocked(std::string_view dir);
  void SubscribeEntryLocked(std::string_view path, Invalidator invalidator);
  // WalkLocked walks `path` name by name from "/" as the kernel resolves it, watching each
  // real directory before looking at a name in it, and calls visit(real directory, name)
  // for each symlink met and for the name it stops at: missing, not a directory, or the
  // last one unless `follow_last`.
  struct Walked {
    std::optional<std::string> real;  // the real directory it ended at, if it did
    std::string unwatched;            // the first directory on the way inotify refused
    int error = 0;                    // and why
  };
  Walked WalkLocked(std::string_view path, bool follow_last, const Visit& visit);
  // SubscribeResolvedLocked subscribes to what the walk of `path` visits, and for kListing
  // to the listing of the directory it ends at.
  void SubscribeResolvedLocked(std::string_view path, End end, const Invalidator& invalidator);
  // AliasKeysLocked is what the symlink to a directory `path` depends on, to be recorded in
  // aliases_by_key_: a change to any of it collects `path` (CollectSubtreeLocked). An
  // inotify watch made through a link follows the inode it reached; this tells when the
  // path stops leading there. `watched_all`: every directory on the way is watched (if
  // not, logged, and the alias is polled).
  std::vector<std::string> AliasKeysLocked(const std::string& path, bool* watched_all);
  void ForgetAliasLocked(const std::string& path, DirWatch& watch);
  // SubscribeInLocked subscribes to `name` in the real directory `dir` ("" is "/").
  void SubscribeInLocked(const std::string& dir, std::string_view name,
                         const Invalidator& invalidator);
  void SubscribeListingLocked(DirWatch& watch, Invalidator invalidator);
  void PollLocked(Invalidator invalidator, std::string_view why);
  // PollDirectoryLocked polls for `dir`, which inotify refused (errno says why).
  void PollDirectoryLocked(const Invalidator& invalidator, std::string_view dir);
  // PollAlsoLocked adds a subscription to the polled ones, silently (a remote directory's).
  void PollAlsoLocked(Invalidator invalidator);
  // A directory watched since PollLoop last looked, and the watch it got: a result for
  // another watch of the path (it was watched again since) is not applied.
  struct Unclassified {
    std::string path;
    int wd;
  };
  // PollLoop classifies new directories and rechecks the polled subscriptions when due.
  void PollLoop();
  // ClassifyDirectories finds which of `dirs` are remote, marks them and polls what
  // subscribed there so far.
  void ClassifyDirectories(std::vector<Unclassified> dirs);
  void Run();
  void WakeRun();  // makes Run look at its deadlines again
  void HandleEvents();
  void HandleEventLocked(const inotify_event& event, const std::string& dir);
  // Collect* move the subscriptions an event fires into pending_. A subtree's directories
  // lose their watches as well (ForgetWatchLocked): the event moved, replaced or deleted
  // them. REQUIRES: mu_ held.
  void CollectSubtreeLocked(const std::string& path);
  void CollectEntryLocked(DirWatch& dir, std::string_view name);
  // ForgetWatchLocked stops watching the directory at `path`. An inotify watch follows a
  // directory, not its path: once the directory moved away (or a symlink on the path was
  // pointed elsewhere) the watch would go on reporting, under this path, a directory that
  // is no longer there, and a directory made at the path would never be watched.
  // REQUIRES: mu_ held.
  void ForgetWatchLocked(const std::string& path, DirWatch& watch);
  // FireDue marks what the events fired dirty and, when the burst is over, tells the
  // listeners; `end_round`: Run handled events just before, which CatchUp may wait for.
  void FireDue(Clock::time_point now, bool end_round);
  // EventsQueued tells whether the kernel holds events Run has not read.
  bool EventsQueued() const;
  // HandleMountChange reads the mount table again and collects each mount point that came
  // or went. On Run's thread, when the table's descriptor says it changed.
  void HandleMountChange();
  // FileMountPoints is which of `points` are files (a statx that neither triggers an
  // automount nor waits on a network filesystem's server).
  static std::vector<std::string> FileMountPoints(const std::vector<std::string>& points);
  // ClassifyMounts records which of `points` (the table at start) are files, on the polling
  // thread, and has what read them run again (to watch them).
  void ClassifyMounts(std::vector<std::string> points);

  const int inotify_fd_;
  const int wake_fd_;  // an eventfd that interrupts Run's poll(): a new deadline, shutdown
  // /proc/self/mountinfo, twice: Run's (POLLPRI when the table changed) and CatchUp's.
  const int mounts_fd_;
  const int mounts_look_fd_;
  std::vector<Mount> mounts_;  // the table Run handled last, guarded by mu_
  std::vector<std::string> unclassified_mounts_;  // the table at start, for ClassifyMounts
  // CatchUp's requests that Run read the table again (its own descriptor saw a change), and
  // the last request Run's reading answered (guarded by round_mu_; Run's own copy below).
  std::atomic<uint64_t> mount_requests_{0};
  uint64_t mounts_handled_ = 0;
  uint64_t mount_requests_seen_ = 0;  // Run's thread only
  mutable std::mutex file_mounts_mu_;
  absl::flat_hash_set<std::string> file_mounts_;  // guarded by file_mounts_mu_
  std::atomic<bool> any_file_mounts_{false};
  size_t watch_limit_;  // TURBINE_FILE_WATCH_LIMIT, else unlimited (the kernel's limit)
  const size_t file_watch_budget_;  // hard-linked files watched themselves at most
  mutable std::mutex mu_;
  // Ordered: a subtree is a key range. A directory leaves with its watch, when an event
  // fires everything below it (CollectSubtreeLocked): a daemon that outlives many
  // directories (a build's temporary ones) does not keep one entry for each.
  std::map<std::string, DirWatch, std::less<>> dirs_;
  // The directory WatchedLocked returned last: a task's files are mostly subscribed one
  // directory at a time, and comparing one path is cheaper than a walk down dirs_.
  std::string last_dir_;
  DirWatch* last_watch_ = nullptr;
  std::unordered_map<int, absl::flat_hash_set<std::string>> dirs_of_wd_;
  std::unordered_map<int, FileWatch> files_;  // by wd
  absl::flat_hash_map<FileId, FileWatch> one_name_readers_;  // RememberOneName's
  bool logged_one_name_limit_ = false;
  // What each alias depends on (AliasKeysLocked), by the path that changes: ordered, so
  // that a subtree's keys are a range.
  std::map<std::string, absl::flat_hash_set<std::string>, std::less<>> aliases_by_key_;
  bool logged_file_limit_ = false;
  size_t watched_ = 0;  // inotify watches held
  std::vector<Invalidator> pending_;  // fired by the events just read: marked next
  // Marked, but their engines' listeners not told yet: told once no event came for
  // kQuietPeriod, or kMaxDelay after the first of them.
  std::vector<Invalidator> unnotified_;
  Clock::time_point first_unnotified_{};
  Clock::time_point last_event_{};
  std::vector<Unclassified> unclassified_;
  // Remote filesystems (by device) logged as polled, at most kLoggedPaths.
  absl::flat_hash_set<uint64_t> logged_devices_;
  // Wakes PollLoop: a directory to classify, a first subscription to poll, shutdown.
  std::condition_variable poll_wake_;
  std::vector<Invalidator> polled_;
  Clock::time_point next_poll_{};
  bool logged_limit_ = false;
  // Paths PollLocked warned about (an unreadable directory, say), at most kLoggedPaths.
  static constexpr size_t kLoggedPaths = 1024;
  static constexpr size_t kLoudPaths = 16;  // the first ones at warn, the rest at debug
  absl::flat_hash_set<std::string, NameHash, std::equal_to<>> logged_paths_;
  bool stopping_ = false;
  // CatchUp's view of Run: set before Run reads the queue and cleared, with `rounds_`
  // counted up, once what it read is marked dirty. Set once a first watch is added.
  std::atomic<bool> ever_watched_{false};
  std::mutex round_mu_;
  std::condition_variable round_done_;
  std::atomic<bool> handling_{false};
  uint64_t rounds_ = 0;  // guarded by round_mu_
  std::thread thread_;
  std::thread poll_thread_;
};

}  // namespace turbine::stdlib
