// file_watcher_links.cc — FileWatcher's walks through symlinks: a path resolved name by
// name as the kernel does, a link's target followed hop by hop, and what a symlink to a
// directory (an alias) depends on.
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>

#include "file_watcher.h"
#include "paths.h"

namespace turbine::stdlib {
namespace {

// The kernel's limit on symlinks followed in one lookup (ELOOP past it).
constexpr int kMaxLinks = 40;

// LastDotDotEnd is the length of `path` up to and including its last ".." name, npos if
// it has none.
size_t LastDotDotEnd(std::string_view path) {
  for (size_t at = path.rfind(".."); at != std::string_view::npos;
       at = at == 0 ? std::string_view::npos : path.rfind("..", at - 1)) {
    const bool starts = at == 0 || path[at - 1] == '/';
    const bool ends = at + 2 == path.size() || path[at + 2] == '/';
    if (starts && ends) return at + 2;
  }
  return std::string_view::npos;
}

}  // namespace

void FileWatcher::WatchTarget(const std::string& path, Invalidator invalidator) {
  std::lock_guard lock(mu_);
  std::string at = path;
  for (int hop = 0; hop <= kMaxLinks; ++hop) {
    SubscribeEntryLocked(at, invalidator);  // a link: pointed elsewhere; else what it is
    struct stat st {};
    if (lstat(at.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return;
    char target[PATH_MAX];
    const ssize_t length = readlink(at.c_str(), target, sizeof target);
    if (length <= 0 || static_cast<size_t>(length) == sizeof target) return;
    const std::string_view text(target, static_cast<size_t>(length));
    std::string next = text.front() == '/' ? std::string(text)
                                           : JoinPath(std::string(ParentPath(at)), std::string(text));
    // ".." steps out of where the kernel really is, which a symlinked directory before it
    // moved: that part is walked (its links watched too), the rest taken as it reads.
    if (const size_t dots = LastDotDotEnd(next); dots != std::string_view::npos) {
      const Walked walked = WalkLocked(next.substr(0, dots), true,
                                       [&](const std::string& dir, std::string_view name) {
                                         SubscribeInLocked(dir, name, invalidator);
                                       });
      if (!walked.real) return;  // subscribed where it stopped
      next = (*walked.real == "/" ? "" : *walked.real) + next.substr(dots);
    }
    next = std::filesystem::path(next).lexically_normal().string();
    while (next.size() > 1 && next.back() == '/') next.pop_back();
    at = std::move(next);
  }
}

FileWatcher::Walked FileWatcher::WalkLocked(std::string_view path, bool follow_last,
                                            const Visit& visit) {
  Walked walked;
  // The names still to walk, the next one last: a link's target goes on top.
  std::vector<std::string> names;
  const auto push_names = [&names](std::string_view text) {
    size_t stop = text.size();
    while (stop > 0) {
      const size_t slash = text.rfind('/', stop - 1);
      const size_t start = slash == std::string_view::npos ? 0 : slash + 1;
      if (stop > start) names.emplace_back(text.substr(start, stop - start));
      if (slash == std::string_view::npos) break;
      stop = slash;
    }
  };
  push_names(path);
  std::string real;  // the real directory walked to so far ("" is "/")
  int links = 0;
  while (!names.empty()) {
    const std::string name = std::move(names.back());
    names.pop_back();
    if (name == ".") continue;
    if (name == "..") {  // out of where the walk really is, as in the kernel
      real.resize(std::min(real.size(), real.rfind('/')));
      continue;
    }
    // Watched before looked at: a change after the look is an event.
    if (WatchedLocked(real.empty() ? "/" : real) == nullptr && walked.unwatched.empty()) {
      walked.error = errno;
      walked.unwatched = real.empty() ? "/" : real;
    }
    const bool last = names.empty();
    if (last && !follow_last) {
      visit(real, name);
      return walked;
    }
    const std::string at = real + "/" + name;
    struct stat st {};
    if (lstat(at.c_str(), &st) != 0 || (!S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))) {
      visit(real, name);  // missing (fires when it appears), unreadable, or not a directory
      return walked;
    }
    if (S_ISLNK(st.st_mode)) {
      visit(real, name);  // fires when pointed elsewhere
      char target[PATH_MAX];
      const ssize_t length = readlink(at.c_str(), target, sizeof target);
      if (++links > kMaxLinks || length <= 0 || static_cast<size_t>(length) == sizeof target) {
        return walked;  // a loop, or unreadable: the link's own entry is watched
      }
      const std::string_view text(target, static_cast<size_t>(length));
      if (text.front() == '/') real.clear();
      push_names(text);
      continue;
    }
    real = at;
  }
  walked.real = real.empty() ? "/" : real;
  return walked;
}

void FileWatcher::SubscribeResolvedLocked(std::string_view path, End end,
                                          const Invalidator& invalidator) {
  const std::optional<std::string> real =
      WalkLocked(path, end == End::kListing, [&](const std::string& dir, std::string_view name) {
        SubscribeInLocked(dir, name, invalidator);
      }).real;
  if (!real) return;
  if (end == End::kListing) {
    if (DirWatch* watch = WatchedLocked(*real)) {
      SubscribeListingLocked(*watch, invalidator);
    } else {
      PollDirectoryLocked(invalidator, *real);
    }
  }
}

std::vector<std::string> FileWatcher::AliasKeysLocked(const std::string& path,
                                                      bool* watched_all) {
  std::vector<std::string> keys;
  const Walked walked = WalkLocked(path, true, [&](const std::string& dir, std::string_view name) {
    keys.push_back(JoinPath(dir.empty() ? "/" : dir, std::string(name)));
  });
  if (walked.real) keys.push_back(*walked.real);
  *watched_all = walked.unwatched.empty();
  if (!*watched_all && logged_paths_.size() < kLoggedPaths &&
      logged_paths_.emplace(walked.unwatched).second) {
    spdlog::log(logged_paths_.size() <= kLoudPaths ? spdlog::level::warn : spdlog::level::debug,
                "file watcher: cannot watch {} ({}), on the way of the symlink {}; files "
                "through it are re-checked every {} s instead",
                Shown(walked.unwatched), std::strerror(walked.error), Shown(path),
                kPollInterval.count());
  }
  return keys;
}

}  // namespace turbine::stdlib
