// file_watcher.cc — inotify subscriptions, debouncing and the polling fallback.
#include "file_watcher.h"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "paths.h"

namespace turbine::stdlib {
namespace {

constexpr uint32_t kDirEvents = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE |
                                IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF |
                                IN_ONLYDIR | IN_EXCL_UNLINK;
// A hard-linked file's own watch: its content and attributes (its link count among them),
// whichever name they change through.
constexpr uint32_t kFileEvents = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_DELETE_SELF |
                                 IN_DONT_FOLLOW;
// Events that change which entries a directory has (as opposed to an entry's content).
constexpr uint32_t kStructuralEvents = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO;
// Files watched themselves (hard-linked ones) at most: an eighth of the kernel's watch
// limit, within these bounds. Each holds a watch until it changes, and a tree of them (a
// pnpm store's links) must not take the directories' watches; past it they are re-checked
// every kPollInterval.
constexpr size_t kMinFileWatches = 1024;
constexpr size_t kMaxFileWatches = 65536;
constexpr size_t kUnknownLimitFileWatches = 4096;  // the kernel's limit unreadable

size_t WatchLimitFromEnvironment() {
  const char* text = std::getenv("TURBINE_FILE_WATCH_LIMIT");
  if (text == nullptr || *text == '\0') return SIZE_MAX;
  char* end = nullptr;
  const unsigned long long limit = std::strtoull(text, &end, 10);
  if (*end != '\0') return SIZE_MAX;
  return static_cast<size_t>(limit);
}

size_t FileWatchBudget(const std::string& kernel_limit) {
  char* end = nullptr;
  const unsigned long long limit = std::strtoull(kernel_limit.c_str(), &end, 10);
  if (end == kernel_limit.c_str() || *end != '\0') return kUnknownLimitFileWatches;
  return std::clamp<size_t>(static_cast<size_t>(limit / 8), kMinFileWatches, kMaxFileWatches);
}

std::string KernelWatchLimit() {
  std::ifstream in("/proc/sys/fs/inotify/max_user_watches");
  std::string value;
  in >> value;
  return value.empty() ? "unknown" : value;
}

// RemoteFilesystemName names the filesystem `f_type` (statfs; compared as 32 bits, as the
// kernel sets it) is, or is null for a local one: one names
// a filesystem on which inotify may not hear every change, because changes are made
// elsewhere: on another machine (NFS, SMB, 9p, AFS, Ceph, Lustre, cluster filesystems), on
// a VM's host (vboxsf, vmhgfs, prl_fs), or by a FUSE server's own backing store (sshfs,
// bindfs, virtiofs; a FUSE block filesystem such as ntfs-3g has the same magic, and is
// polled too).
const char* RemoteFilesystemName(uint32_t f_type) {
  static constexpr struct {
    uint32_t magic;
    const char* name;
  } kRemote[] = {
      {0x6969, "nfs"},          {0x517b, "smb"},         {0xfe534d42, "smb2"},
      {0xff534d42, "cifs"},     {0x65735546, "fuse"},    {0x01021997, "9p"},
      {0x00c36400, "ceph"},     {0x5346414f, "afs"},     {0x6b414653, "afs"},
      {0x73757245, "coda"},     {0x564c, "ncp"},         {0x0bd00bd0, "lustre"},
      {0x01161970, "gfs2"},     {0x7461636f, "ocfs2"},   {0x47504653, "gpfs"},
      {0x20030528, "orangefs"}, {0x19830326, "beegfs"},  {0xaad7aaea, "panfs"},
      {0xbeefdead, "snfs"},     {0x013111a8, "ibrix"},   {0xa501fcf5, "vxfs"},
      {0x61636673, "acfs"},     {0x786f4256, "vboxsf"},  {0xbacbacbc, "vmhgfs"},
      {0x7c7c6673, "prl_fs"},
  };
  for (const auto& remote : kRemote) {
    if (remote.magic == f_type) return remote.name;
  }
  return nullptr;
}

template <class Invalidators>
void AddUnique(Invalidators& to, Invalidator invalidator) {
  // A task that re-executes without having fired (restored, or read again) subscribes
  // again; it needs one invalidation, not one per execution.
  if (std::find(to.begin(), to.end(), invalidator) == to.end()) {
    to.push_back(std::move(invalidator));
  }
}

template <class Invalidators>
void MoveAll(Invalidators& from, std::vector<Invalidator>& to) {
  for (Invalidator& invalidator : from) to.push_back(std::move(invalidator));
  from.clear();
}

}  // namespace

namespace {
std::atomic<FileWatcher*> started_watcher{nullptr};
}  // namespace

std::string FileWatcher::Shown(std::string_view path) {
  constexpr size_t kEnds = 120;
  if (path.size() <= 2 * kEnds + 16) return std::string(path);
  return std::string(path.substr(0, kEnds)) + "..." + std::string(path.substr(path.size() - kEnds));
}

FileWatcher& FileWatcher::Global() {
  static FileWatcher* const watcher = [] {
    auto* made = new FileWatcher;  // never destroyed: see ~FileWatcher
    started_watcher.store(made);
    return made;
  }();
  return *watcher;
}

FileWatcher* FileWatcher::Started() { return started_watcher.load(); }

bool FileWatcher::EventsQueued() const {
  pollfd fd{inotify_fd_, POLLIN, 0};
  return poll(&fd, 1, 0) > 0 && (fd.revents & POLLIN) != 0;
}

void FileWatcher::CatchUp() {
  if (inotify_fd_ < 0 || !ever_watched_.load()) return;
  // Run's own thread tells the listeners, and a watch reads again when told: only this
  // thread could end the round it would wait for, and what it marked is marked already.
  if (std::this_thread::get_id() == thread_.get_id()) return;
  std::unique_lock lock(round_mu_);  // no round ends while this looks
  const uint64_t entry = rounds_;
  // In this order: Run sets handling_ before it reads, so events it took from the queue
  // after the look are seen as handling_. One poll for both the inotify queue and CatchUp's
  // own descriptor of the mount table (polling one clears its mark, so Run has its own).
  pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {mounts_look_fd_, POLLPRI, 0}};
  const bool looked = poll(fds, 2, 0) > 0;
  const bool queued = looked && (fds[0].revents & POLLIN) != 0;
  if (looked && (fds[1].revents & (POLLPRI | POLLERR)) != 0) {
    // The table changed: Run reads it again for this request (and for any other call that
    // came meanwhile and found the mark taken: they wait for the same request).
    mount_requests_.fetch_add(1);
    WakeRun();
  }
  const uint64_t mounts_wanted = mount_requests_.load();
  const bool handling = handling_.load();
  if (!queued && !handling && mounts_handled_ >= mounts_wanted) return;
  const Clock::time_point deadline = Clock::now() + kCatchUpLimit;
  if (queued || handling) {
    // The round under way holds what it read; what was queued is read by it (it reads
    // until the queue is empty) or by the next. Two rounds after this call always do; one
    // does if the queue is empty after it. Others' events arriving meanwhile are not
    // waited for.
    const uint64_t enough = entry + (queued && handling ? 2 : 1);
    round_done_.wait_until(lock, deadline, [&] {
      // The queue first, then handling_, as above.
      return rounds_ >= enough || (rounds_ > entry && !EventsQueued() && !handling_.load());
    });
  }
  round_done_.wait_until(lock, deadline, [&] { return mounts_handled_ >= mounts_wanted; });
}

FileWatcher::FileWatcher()
    : inotify_fd_(inotify_init1(IN_NONBLOCK | IN_CLOEXEC)),
      wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      mounts_fd_(open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC)),
      mounts_look_fd_(open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC)),
      watch_limit_(WatchLimitFromEnvironment()),
      file_watch_budget_(FileWatchBudget(KernelWatchLimit())) {
  if (inotify_fd_ < 0) {
    spdlog::warn("file watcher: inotify is unavailable ({}); file tasks are re-checked every "
                 "{} s instead",
                 std::strerror(errno), kPollInterval.count());
  }
  std::string table;
  if (mounts_fd_ >= 0 && ReadMountInfo(mounts_fd_, &table)) {
    mounts_ = ParseMountInfo(table);
    // Which are files is looked up on the polling thread (unclassified_mounts_).
    for (const Mount& mount : mounts_) unclassified_mounts_.push_back(mount.point);
  } else {
    spdlog::warn("file watcher: cannot read /proc/self/mountinfo (is /proc mounted?); a "
                 "filesystem mounted over a directory that was read is not seen");
  }
  thread_ = std::thread([this] { Run(); });
  poll_thread_ = std::thread([this] { PollLoop(); });
}

// The global watcher lives until the process exits (tasks in any engine may subscribe
// until then); this destructor exists for completeness and stops the thread cleanly.
FileWatcher::~FileWatcher() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  WakeRun();
  poll_wake_.notify_all();
  thread_.join();
  poll_thread_.join();
  if (inotify_fd_ >= 0) close(inotify_fd_);
  close(wake_fd_);
  if (mounts_fd_ >= 0) close(mounts_fd_);
  if (mounts_look_fd_ >= 0) close(mounts_look_fd_);
}

void FileWatcher::WatchEntry(const std::string& path, Invalidator invalidator) {
  std::lock_guard lock(mu_);
  SubscribeEntryLocked(path, std::move(invalidator));
}

void FileWatcher::WatchListing(const std::string& dir, Invalidator invalidator) {
  std::lock_guard lock(mu_);
  if (DirWatch* watch = WatchedLocked(dir)) {
    SubscribeListingLocked(*watch, std::move(invalidator));
  } else if (errno == ENOENT || errno == ENOTDIR) {
    SubscribeResolvedLocked(dir, End::kListing, invalidator);  // a link, or not there yet
  } else {
    PollDirectoryLocked(invalidator, dir);
  }
}

void FileWatcher::RememberOneName(FileId file, Invalidator invalidator) {
  std::lock_guard lock(mu_);
  if (one_name_readers_.size() >= kOneNameFiles && !one_name_readers_.contains(file)) {
    if (!logged_one_name_limit_) {
      logged_one_name_limit_ = true;
      spdlog::info(
          "file watcher: more than {} files of one name read; a name linked to one "
          "of them later reaches its readers when the file changes through its first "
          "name, or after a restart",
          kOneNameFiles);
    }
    one_name_readers_.clear();
  }
  AddUnique(one_name_readers_[file], std::move(invalidator));
}

void FileWatcher::WatchHardLinkedFile(const std::string& path, FileId file,
                                      Invalidator invalidator) {
  std::lock_guard lock(mu_);
  // Readers of the file's first name, read while it had one: the new name's writes are
  // told to this watch alone.
  FileWatch readers;
  if (auto kept = one_name_readers_.find(file); kept != one_name_readers_.end()) {
    readers = std::move(kept->second);
    one_name_readers_.erase(kept);
  }
  AddUnique(readers, std::move(invalidator));
  if (inotify_fd_ < 0) return;  // polled already: its directory could not be watched either
  if (watched_ >= watch_limit_) {
    errno = ENOSPC;
    for (Invalidator& reader : readers) PollLocked(std::move(reader), path);
    return;
  }
  if (files_.size() >= file_watch_budget_) {
    if (!logged_file_limit_) {
      logged_file_limit_ = true;
      spdlog::info("file watcher: more than {} files with several names (hard links) are "
                   "read; the others are re-checked every {} s (from {})",
                   file_watch_budget_, kPollInterval.count(), Shown(path));
    }
    for (Invalidator& reader : readers) PollAlsoLocked(std::move(reader));
    return;
  }
  // IN_MASK_ADD: should the path name a watched directory by now, its watch keeps its events.
  const int wd = inotify_add_watch(inotify_fd_, path.c_str(), kFileEvents | IN_MASK_ADD);
  if (wd < 0) {
    // Gone or replaced since its reader looked: the directory's watch fires for that. The
    // first name's readers wait for another name's read.
    if (errno == ENOENT || errno == ENOTDIR) {
      one_name_readers_[file] = std::move(readers);
    } else {
      for (Invalidator& reader : readers) PollLocked(std::move(reader), path);
    }
    return;
  }
  if (dirs_of_wd_.contains(wd)) return;  // a directory now, which its parent's watch tells
  ever_watched_.store(true);
  auto [watch, added] = files_.try_emplace(wd);
  if (added) ++watched_;
  for (Invalidator& reader : readers) AddUnique(watch->second, std::move(reader));
}

size_t FileWatcher::WatchedDirectories() const {
  std::lock_guard lock(mu_);
  return dirs_.size();
}

void FileWatcher::SubscribeEntryLocked(std::string_view path, Invalidator invalidator) {
  const std::string_view dir = ParentPath(path);
  if (dir == path) return;  // "/" itself never changes identity
  if (DirWatch* watch = WatchedLocked(dir)) {
    if (Polled(*watch)) PollAlsoLocked(invalidator);
    AddUnique(watch->entries[BaseName(path)], std::move(invalidator));
  } else if (errno == ENOENT || errno == ENOTDIR) {
    // A directory on the way is missing, not a directory, or a symlink.
    SubscribeResolvedLocked(path, End::kEntry, invalidator);
  } else {
    PollDirectoryLocked(invalidator, dir);
  }
}

void FileWatcher::SubscribeInLocked(const std::string& dir, std::string_view name,
                                    const Invalidator& invalidator) {
  if (DirWatch* watch = WatchedLocked(dir.empty() ? "/" : dir)) {
    if (Polled(*watch)) PollAlsoLocked(invalidator);
    AddUnique(watch->entries[name], invalidator);
  } else if (errno == ENOENT || errno == ENOTDIR) {
    // Changed since the walk looked at it: looked at again within a poll interval.
    PollAlsoLocked(invalidator);
  } else {
    PollDirectoryLocked(invalidator, dir.empty() ? "/" : dir);
  }
}

void FileWatcher::SubscribeListingLocked(DirWatch& watch, Invalidator invalidator) {
  if (Polled(watch)) PollAlsoLocked(invalidator);
  AddUnique(watch.listing, std::move(invalidator));
}

FileWatcher::DirWatch* FileWatcher::WatchedLocked(std::string_view dir) {
  if (inotify_fd_ < 0) {
    errno = ENOSYS;
    return nullptr;
  }
  if (last_watch_ != nullptr && last_watch_->wd >= 0 && dir == last_dir_) return last_watch_;
  auto found = dirs_.find(dir);
  if (found == dirs_.end() || found->second.wd < 0) {
    // Ancestors first, so a rename anywhere above is seen from the moment we watch `dir`.
    const std::string_view parent = ParentPath(dir);
    DirWatch* const above = parent != dir ? WatchedLocked(parent) : nullptr;
    if (parent != dir && above == nullptr) return nullptr;
    // Polled too when a directory on its way (or an alias's) could not be watched: a change
    // there is heard by no one.
    const bool above_unwatched = above != nullptr && above->way_unwatched;
    if (watched_ >= watch_limit_) {
      errno = ENOSPC;
      return nullptr;
    }
    std::string path(dir);
    // A symlink at its end is refused first (IN_DONT_FOLLOW) and then followed: that tells
    // a link (an alias, RegisterAliasLocked) without a system call more for a directory.
    int wd = inotify_add_watch(inotify_fd_, path.c_str(), kDirEvents | IN_DONT_FOLLOW);
    // Only a link itself is registered: a directory below one (an alias too) is collected
    // with it, being below it in dirs_, and moves with the directory it is in. Its way is
    // walked (and watched) before it is watched through: a link on the way pointed
    // elsewhere from then on is an event.
    bool alias = false;
    bool way_watched = true;
    std::vector<std::string> alias_keys;
    if (wd < 0 && errno == ENOTDIR) {
      alias_keys = AliasKeysLocked(path, &way_watched);
      if (watched_ >= watch_limit_) {
        errno = ENOSPC;
        return nullptr;
      }
      wd = inotify_add_watch(inotify_fd_, path.c_str(), kDirEvents);
      alias = true;
    }
    if (wd < 0) return nullptr;
    // inotify hands out one wd per directory: one reached by two paths (a bind mount)
    // reports its events under both.
    ever_watched_.store(true);
    absl::flat_hash_set<std::string>& paths = dirs_of_wd_[wd];
    if (paths.empty()) ++watched_;
    paths.insert(path);
    // Its filesystem is looked up on the polling thread: a statfs per directory here would
    // slow the check at start, which subscribes thousands of files on one thread, and on a
    // network filesystem it is a round trip to the server.
    if (unclassified_.empty()) poll_wake_.notify_one();
    unclassified_.push_back({path, wd});
    if (found == dirs_.end()) found = dirs_.emplace(std::move(path), DirWatch{}).first;
    found->second.wd = wd;
    found->second.remote = false;
    found->second.way_unwatched = !way_watched || above_unwatched;
    if (alias) {
      for (const std::string& key : alias_keys) aliases_by_key_[key].insert(found->first);
      found->second.alias_keys = std::move(alias_keys);
    }
  }
  last_dir_.assign(dir);
  last_watch_ = &found->second;
  return last_watch_;
}

void FileWatcher::PollDirectoryLocked(const Invalidator& invalidator, std::string_view dir) {
  const int error = errno;
  // At the limit nothing more is watched; otherwise the directory is also an entry of the
  // nearest one above that can be watched: a chmod there (what made it unwatchable, or
  // what ends that), or a link there pointed elsewhere, is then heard at once.
  if (error != ENOSPC && error != ENOSYS) {
    // Where the kernel tells of it: the entry of the real directory, in the real one above
    // (a symlink on the way is walked, its links subscribed too: a loop mended, say).
    const auto subscribe = [&](const std::string& in, std::string_view name) {
      if (DirWatch* watch = WatchedLocked(in.empty() ? "/" : in)) {
        AddUnique(watch->entries[name], invalidator);
      }
    };
    const Walked walked = WalkLocked(dir, true, subscribe);
    const std::string real = walked.real.value_or(std::string(dir));
    for (std::string_view at = real;;) {
      const std::string_view parent = ParentPath(at);
      if (parent == at) break;
      if (DirWatch* watch = WatchedLocked(parent)) {
        AddUnique(watch->entries[BaseName(at)], invalidator);
        break;
      }
      at = parent;
    }
  }
  errno = error;
  PollLocked(invalidator, dir);
}

void FileWatcher::PollLocked(Invalidator invalidator, std::string_view why) {
  const int error = errno;
  if (!logged_limit_ || (error != ENOSPC && error != ENOSYS)) {
    if (error == ENOSPC) {
      logged_limit_ = true;
      spdlog::warn(
          "file watcher: inotify watch limit reached ({} watches; the kernel allows {} per "
          "user, see fs.inotify.max_user_watches) at {}; files there are re-checked every {} s "
          "instead of watched. Raise the limit with `sysctl fs.inotify.max_user_watches=N`.",
          watched_, KernelWatchLimit(), Shown(why), kPollInterval.count());
    } else if (error != ENOSYS && logged_paths_.size() < kLoggedPaths &&
               logged_paths_.emplace(why).second) {
      // Once per path: a polled task subscribes again every second. A few loudly; a tree
      // of unreadable directories or symlink loops is an ordinary state, not one error each.
      const bool loud = logged_paths_.size() <= kLoudPaths;
      spdlog::log(loud ? spdlog::level::warn : spdlog::level::debug,
                  "file watcher: cannot watch {} ({}); it is re-checked every {} s instead{}",
                  Shown(why), std::strerror(error), kPollInterval.count(),
                  logged_paths_.size() == kLoudPaths ? " (more such paths: --log-level debug)"
                                                     : "");
    }
  }
  PollAlsoLocked(std::move(invalidator));
}

void FileWatcher::PollAlsoLocked(Invalidator invalidator) {
  // Not deduplicated here (a linear search per subscription, with thousands polled, would
  // be quadratic): RecheckAll checks a task once however often it is listed.
  polled_.push_back(std::move(invalidator));
  if (next_poll_ == Clock::time_point{}) {
    next_poll_ = Clock::now() + kPollInterval;
    // PollLoop may be asleep with no deadline (nothing was polled when it last looked).
    poll_wake_.notify_one();
  }
}

void FileWatcher::PollLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (!unclassified_mounts_.empty()) {
      std::vector<std::string> points = std::move(unclassified_mounts_);
      unclassified_mounts_.clear();
      lock.unlock();
      ClassifyMounts(std::move(points));
      lock.lock();
      continue;
    }
    if (!unclassified_.empty()) {
      // A moment for more to come: the check at start watches a directory every few
      // microseconds, and it wakes this thread only when the list was empty.
      poll_wake_.wait_for(lock, kClassifyDelay, [this] { return stopping_; });
      std::vector<Unclassified> dirs = std::move(unclassified_);
      unclassified_.clear();
      lock.unlock();
      ClassifyDirectories(std::move(dirs));
      lock.lock();
      continue;
    }
    if (polled_.empty()) {
      poll_wake_.wait(lock);
      continue;
    }
    if (Clock::now() < next_poll_) {
      poll_wake_.wait_until(lock, next_poll_);
      continue;
    }
    std::vector<Invalidator> due = std::move(polled_);
    polled_.clear();
    next_poll_ = Clock::time_point{};
    lock.unlock();
    // Looked at again, not fired: a poll that finds its files as they were changes nothing
    // (firing would make every polled task an input change each second). The looks run
    // here, never on Run's thread, which must go on hearing local changes when a network
    // filesystem is slow to answer.
    Invalidator::RecheckAll(due);
    lock.lock();
  }
}

void FileWatcher::ClassifyDirectories(std::vector<Unclassified> dirs) {
  struct Found {
    Unclassified dir;
    bool remote;
    std::string type;  // for the log
    dev_t dev;
  };
  std::vector<Found> found;
  found.reserve(dirs.size());
  for (Unclassified& dir : dirs) {
    struct statfs fs;
    if (statfs(dir.path.c_str(), &fs) == 0) {
      const char* type = RemoteFilesystemName(static_cast<uint32_t>(fs.f_type));
      struct stat st;
      const dev_t dev = type != nullptr && stat(dir.path.c_str(), &st) == 0 ? st.st_dev : 0;
      found.push_back({std::move(dir), type != nullptr, type != nullptr ? type : "", dev});
    } else if (errno != ENOENT && errno != ENOTDIR) {
      // Cannot tell (a soft NFS mount timing out, a FUSE server failing statfs): polled,
      // which costs a look a second but is never stale.
      found.push_back({std::move(dir), true, std::string("unidentified (") +
                                                 std::strerror(errno) + ")",
                       0});
    }  // gone: its IN_IGNORED forgets it
  }
  std::lock_guard lock(mu_);
  for (Found& result : found) {
    auto watch = dirs_.find(result.dir.path);
    // Forgotten meanwhile, or watched again (and so looked up again).
    if (watch == dirs_.end() || watch->second.wd != result.dir.wd) continue;
    const bool was_polled = Polled(watch->second);
    watch->second.remote = result.remote;
    if (!result.remote || was_polled) continue;
    // Subscribed before this lookup: polled from now on, as later ones are on subscribing.
    for (const Invalidator& invalidator : watch->second.listing) PollAlsoLocked(invalidator);
    for (const auto& [name, subscribers] : watch->second.entries) {
      for (const Invalidator& invalidator : subscribers) PollAlsoLocked(invalidator);
    }
    const bool first = result.dev == 0 ? logged_paths_.size() < kLoggedPaths &&
                                             logged_paths_.emplace(result.dir.path).second
                                       : logged_devices_.size() < kLoggedPaths &&
                                             logged_devices_.insert(result.dev).second;
    if (first) {
      spdlog::info("file watcher: {} is on a {} filesystem, where inotify does not hear "
                   "changes made elsewhere; files there are also re-checked every {} s",
                   Shown(result.dir.path), result.type, kPollInterval.count());
    }
  }
}

void FileWatcher::WakeRun() {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t ignored = write(wake_fd_, &one, sizeof one);
}

void FileWatcher::Run() {
  while (true) {
    int timeout_ms = -1;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      const Clock::time_point now = Clock::now();
      Clock::time_point due = Clock::time_point::max();
      if (!unnotified_.empty()) {
        due = std::min(last_event_ + kQuietPeriod, first_unnotified_ + kMaxDelay);
      }
      if (due != Clock::time_point::max()) {
        timeout_ms = static_cast<int>(std::max<int64_t>(
            0, std::chrono::duration_cast<std::chrono::milliseconds>(due - now).count() + 1));
      }
    }
    pollfd fds[3] = {{inotify_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}, {mounts_fd_, POLLPRI, 0}};
    const int ready = poll(fds, 3, timeout_ms);
    if (ready > 0 && (fds[1].revents & POLLIN)) {
      uint64_t wakes;  // drained, or poll() would return at once from now on
      [[maybe_unused]] ssize_t ignored = read(wake_fd_, &wakes, sizeof wakes);
    }
    const bool events = ready > 0 && (fds[0].revents & POLLIN);
    // Loaded before the table is read: the requests it answers.
    const uint64_t mount_requests = mount_requests_.load();
    const bool mounts = (ready > 0 && (fds[2].revents & (POLLPRI | POLLERR))) ||
                        mount_requests != mount_requests_seen_;
    if (events || mounts) {
      handling_.store(true);  // before the read: CatchUp must not see an empty queue alone
      if (events) HandleEvents();
      if (mounts) HandleMountChange();
    }
    FireDue(Clock::now(), events || mounts);
    if (mount_requests != mount_requests_seen_) {
      mount_requests_seen_ = mount_requests;
      {
        std::lock_guard lock(round_mu_);
        mounts_handled_ = mount_requests;
      }
      round_done_.notify_all();
    }
  }
}

void FileWatcher::HandleEvents() {
  alignas(inotify_event) char buffer[64 * 1024];
  std::lock_guard lock(mu_);
  while (true) {
    const ssize_t length = read(inotify_fd_, buffer, sizeof buffer);
    if (length <= 0) break;
    for (ssize_t offset = 0; offset < length;) {
      const auto* event = reinterpret_cast<const inotify_event*>(buffer + offset);
      offset += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
      if (event->mask & IN_Q_OVERFLOW) {
        // Events were lost: nothing can be trusted, so everything is invalidated once.
        spdlog::warn("file watcher: the inotify queue overflowed; invalidating every watched "
                     "file (see fs.inotify.max_queued_events)");
        // A lost IN_IGNORED would leave a watch standing for a directory that is gone, so
        // every watch goes too; the tasks invalidated watch again as they execute.
        for (auto& [path, dir] : dirs_) {
          MoveAll(dir.listing, pending_);
          for (auto& [name, subscribers] : dir.entries) MoveAll(subscribers, pending_);
          ForgetWatchLocked(path, dir);
        }
        dirs_.clear();
        aliases_by_key_.clear();
        last_watch_ = nullptr;
        for (auto& [wd, subscribers] : files_) {
          MoveAll(subscribers, pending_);
          inotify_rm_watch(inotify_fd_, wd);
          --watched_;
        }
        files_.clear();
        continue;
      }
      auto paths = dirs_of_wd_.find(event->wd);
      if (paths == dirs_of_wd_.end()) {
        if (auto file = files_.find(event->wd); file != files_.end()) {
          // One-shot: the readers that fire subscribe again as they execute.
          MoveAll(file->second, pending_);
          files_.erase(file);
          if (!(event->mask & IN_IGNORED)) inotify_rm_watch(inotify_fd_, event->wd);
          --watched_;
        }
        continue;
      }
      // Copied: the map may change.
      const std::vector<std::string> dirs(paths->second.begin(), paths->second.end());
      if (event->mask & IN_IGNORED) {
        // The watch is gone (its directory was deleted or unmounted).
        dirs_of_wd_.erase(event->wd);
        --watched_;
      }
      for (const std::string& dir : dirs) HandleEventLocked(*event, dir);
    }
  }
  // Every event (even one no subscription is waiting for any more) extends the quiet
  // period: the listeners hear of a burst of writes once, after it ends.
  last_event_ = Clock::now();
}

void FileWatcher::HandleEventLocked(const inotify_event& event, const std::string& dir) {
  if (event.mask & IN_IGNORED) {
    if (auto found = dirs_.find(dir); found != dirs_.end()) found->second.wd = -1;
    CollectSubtreeLocked(dir);
    return;
  }
  if (event.mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
    CollectSubtreeLocked(dir);
    return;
  }
  if (event.len == 0) {
    // An event about the directory itself (its attributes): its own entry changed, and so
    // did what a listing subscriber may have read of it (its stat, whether it can be read).
    // Its mode or owner may be what changed, and with it whether anything below can be
    // read: all of it is looked at again (touching a directory is rare; an event does not
    // say which attribute changed, and a stat here would block on a slow filesystem).
    CollectSubtreeLocked(dir);
    if (const std::string_view parent = ParentPath(dir); parent != dir) {
      if (auto found = dirs_.find(parent); found != dirs_.end()) {
        CollectEntryLocked(found->second, BaseName(dir));
      }
    }
    return;
  }
  auto found = dirs_.find(dir);
  if (found == dirs_.end()) return;  // gone with a subtree an earlier path of this wd took
  DirWatch& watch = found->second;
  const std::string name(event.name);
  CollectEntryLocked(watch, name);
  if (event.mask & kStructuralEvents) {
    MoveAll(watch.listing, pending_);
    // A directory renamed or deleted here takes every path below it along.
    CollectSubtreeLocked(JoinPath(dir, name));
  }
}

void FileWatcher::CollectEntryLocked(DirWatch& dir, std::string_view name) {
  auto found = dir.entries.find(name);
  if (found == dir.entries.end()) return;
  MoveAll(found->second, pending_);
  dir.entries.erase(found);
}

void FileWatcher::CollectSubtreeLocked(const std::string& path) {
  // `path` itself, then the keys in [path + '/', path + '0'), everything below it ('0'
  // follows '/'; a sibling such as "path.d" sorts before '/' and "path-1" after '0').
  const bool root = path == "/";
  const std::string below = root ? path : path + '/';
  const std::string end = root ? std::string("0") : path + '0';
  const auto collect = [&](auto it) {
    MoveAll(it->second.listing, pending_);
    for (auto& [name, subscribers] : it->second.entries) MoveAll(subscribers, pending_);
    ForgetWatchLocked(it->first, it->second);
    ForgetAliasLocked(it->first, it->second);
    if (&it->second == last_watch_) last_watch_ = nullptr;
    return dirs_.erase(it);
  };
  if (!root) {
    if (auto self = dirs_.find(path); self != dirs_.end()) collect(self);
  }
  for (auto it = dirs_.lower_bound(below); it != dirs_.end() && it->first < end;) it = collect(it);
  // A path through a link on the way, or to a directory, here leads elsewhere now.
  std::vector<std::string> aliases;
  const auto add = [&](const absl::flat_hash_set<std::string>& paths) {
    aliases.insert(aliases.end(), paths.begin(), paths.end());
  };
  if (!root) {
    if (auto self = aliases_by_key_.find(path); self != aliases_by_key_.end()) add(self->second);
  }
  for (auto it = aliases_by_key_.lower_bound(below); it != aliases_by_key_.end() && it->first < end;
       ++it) {
    add(it->second);
  }
  for (const std::string& alias : aliases) CollectSubtreeLocked(alias);
}

void FileWatcher::ForgetAliasLocked(const std::string& path, DirWatch& watch) {
  for (const std::string& key : watch.alias_keys) {
    auto found = aliases_by_key_.find(key);
    if (found == aliases_by_key_.end()) continue;
    found->second.erase(path);
    if (found->second.empty()) aliases_by_key_.erase(found);
  }
  watch.alias_keys.clear();
}

void FileWatcher::ForgetWatchLocked(const std::string& path, DirWatch& watch) {
  if (watch.wd < 0) return;
  if (auto paths = dirs_of_wd_.find(watch.wd); paths != dirs_of_wd_.end()) {
    paths->second.erase(path);
    if (paths->second.empty()) {  // no other path (a symlink) reaches the directory
      dirs_of_wd_.erase(paths);
      --watched_;
      inotify_rm_watch(inotify_fd_, watch.wd);  // EINVAL if the kernel dropped it already
    }
  }
  watch.wd = -1;
}

void FileWatcher::FireDue(Clock::time_point now, bool end_round) {
  std::vector<Invalidator> fire;
  std::vector<Invalidator> tell;
  {
    std::lock_guard lock(mu_);
    // Marked dirty at once: a call made right after a write must not be answered from
    // before it. Only telling the listeners waits for the burst to end: a Watch stream
    // reads again when told, and a burst of 200 writes would otherwise run its task 200
    // times.
    if (!pending_.empty()) {
      if (unnotified_.empty()) first_unnotified_ = now;
      fire = std::move(pending_);
      pending_.clear();
      unnotified_.insert(unnotified_.end(), fire.begin(), fire.end());
    }
    if (!unnotified_.empty() &&
        (now >= last_event_ + kQuietPeriod || now >= first_unnotified_ + kMaxDelay)) {
      tell = std::move(unnotified_);
      unnotified_.clear();
    }
  }
  // Outside the lock: invalidating runs engine change listeners, and re-executed tasks
  // subscribe again from other threads.
  if (!fire.empty()) Invalidator::MarkAll(fire);
  if (end_round) {
    {
      std::lock_guard lock(round_mu_);
      handling_.store(false);
      ++rounds_;
    }
    round_done_.notify_all();
  }
  if (!tell.empty()) Invalidator::TellListeners(tell);
}

}  // namespace turbine::stdlib
