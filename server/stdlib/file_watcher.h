// file_watcher.h — tells the engine when files and directories that tasks read change.
//
// The fs functions subscribe while they execute (an Invalidator per task); the watcher
// fires each subscription once, when the thing it names changes, and the task executes
// again on its next read. Subscriptions are one-shot because the re-executed task
// subscribes anew.
//
// Linux inotify does the watching. A directory watch sees its entries change; every
// ancestor of a subscribed path is watched too, so renaming or deleting any directory
// above a file invalidates it. Events are debounced: a burst of writes to a file becomes
// one invalidation, fired once the directory has been quiet for kQuietPeriod (at most
// kMaxDelay after the first event). When inotify cannot watch a directory (the per-user
// watch limit, or a queue overflow), the watcher logs why and falls back to re-checking
// the affected tasks every kPollInterval: slower, never silently stale.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "turbine/engine.h"

struct inotify_event;

namespace turbine::stdlib {

class FileWatcher {
 public:
  static constexpr auto kQuietPeriod = std::chrono::milliseconds(30);
  static constexpr auto kMaxDelay = std::chrono::milliseconds(300);
  static constexpr auto kPollInterval = std::chrono::seconds(1);

  // The process-wide watcher (started on first use). Invalidators of engines destroyed
  // since they subscribed are harmless: firing them does nothing.
  static FileWatcher& Global();

  // WatchEntry fires `invalidator` when the entry at absolute `path` changes: its content,
  // attributes, creation, deletion, or a rename of it or of any directory above it.
  void WatchEntry(const std::string& path, Invalidator invalidator);
  // WatchListing fires `invalidator` when entries are added to, removed from or renamed in
  // the directory `dir`, or when `dir` itself goes away.
  void WatchListing(const std::string& dir, Invalidator invalidator);

  ~FileWatcher();

 private:
  using Clock = std::chrono::steady_clock;

  struct DirWatch {
    int wd = -1;
    std::vector<Invalidator> listing;  // WatchListing(dir)
    std::unordered_map<std::string, std::vector<Invalidator>> entries;  // WatchEntry(dir/name)
  };

  FileWatcher();
  // EnsureWatched watches `dir` and every directory above it; false when inotify cannot
  // (the caller then polls). REQUIRES: mu_ held.
  bool EnsureWatchedLocked(const std::string& dir);
  void SubscribeEntryLocked(const std::string& path, Invalidator invalidator);
  void PollLocked(Invalidator invalidator, const std::string& why);
  void Run();
  void WakeRun();  // makes Run look at its deadlines again
  void HandleEvents();
  void HandleEventLocked(const inotify_event& event, const std::string& dir);
  // Collect* move the subscriptions an event fires into pending_. REQUIRES: mu_ held.
  void CollectSubtreeLocked(const std::string& path);
  void CollectEntryLocked(DirWatch& dir, const std::string& name);
  void FireDue(Clock::time_point now);

  const int inotify_fd_;
  const int wake_fd_;  // an eventfd that interrupts Run's poll(): a new deadline, shutdown
  size_t watch_limit_;  // TURBINE_FILE_WATCH_LIMIT, else unlimited (the kernel's limit)
  mutable std::mutex mu_;
  std::map<std::string, DirWatch> dirs_;  // ordered: a subtree is a key range
  std::unordered_map<int, std::vector<std::string>> dirs_of_wd_;
  size_t watched_ = 0;  // inotify watches held
  std::vector<Invalidator> pending_;
  Clock::time_point first_pending_{};
  Clock::time_point last_event_{};
  std::vector<Invalidator> polled_;
  Clock::time_point next_poll_{};
  bool logged_limit_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace turbine::stdlib
