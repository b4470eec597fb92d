// observe.h — results that follow from the world outside the engine, checked again in
// bulk when an engine opens, so that they can be trusted after a restart.
//
// A session-dependent function (FunctionOptions) reads the outside world, so after a
// restart its stored result, and every result that read it, would have to be verified:
// the world may have changed while no engine watched it. A function that can say what it
// saw, as one subject and a fingerprint of its state, lets the engine do better:
//
//   Task<FileStat> StatImpl(std::string path) {
//     watcher.Watch(path, turbine::CurrentInvalidator());  // subscribe, then look
//     struct stat st;
//     lstat(path.c_str(), &st);
//     turbine::Observe("lstat", path, FingerprintOf(st));
//     co_return ...;
//   }
//   const turbine::ObservationKind lstat_kind{
//       "lstat",
//       [](const std::string& path, const turbine::Invalidator& inv) { watcher.Watch(path, inv); },
//       [](const std::string& path, const turbine::Invalidator&) -> std::optional<uint64_t> {
//         ... return FingerprintOf(st) or std::nullopt;
//       }};
//
// When an engine opens a store, it checks every stored observation with its kind's
// functions (on several threads) before it serves anything. A subject whose fingerprint is
// the same is watched again (subscribed, as the body did) and the results that follow
// from it are trusted like results of unchanged inputs; one that changed, or cannot be
// checked (its kind is not registered), counts as an input changed while the engine was
// down. A result that follows from several observations is a task that reads several
// observing tasks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "turbine/engine.h"

namespace turbine {

// Observe records that the running task's result follows from `subject`, seen through
// observation `kind`, whose state had `fingerprint`; the body must have subscribed the
// task's Invalidator to changes of the subject before it looked. At most one observation
// per execution: a second one with another subject or fingerprint leaves the result
// verified after restarts, as if none were made. REQUIRES: inside the body of a
// session-dependent function.
//
// `group` (default: the subject) names the observations that a change is told apart by in
// input summaries, which have 64 bits: a change of one observation of a group may reach,
// after a restart, every result that follows from any of the group's. A result that
// follows from thousands of observations (a whole tree) has every bit anyway; a group per
// directory keeps a directory's results apart from other directories'.
void Observe(std::string_view kind, std::string_view subject, uint64_t fingerprint,
             std::string_view group = {});

// An observation is checked again in two steps, as the observing body does them. The
// subscriber subscribes `invalidator` to changes of `subject`; the looker, always called
// after the subscriber for the same subject, looks and returns the fingerprint of what it
// sees, or nullopt when it cannot look (then the observation counts as changed). It may
// subscribe too, to what it only finds while looking (where a symlink leads). The engine
// subscribes on one thread and looks on the others, behind it: subscribing takes a
// watcher's lock, looking is system calls. Both are called on several threads at once.
using ObservationSubscriber = void (*)(const std::string& subject,
                                       const Invalidator& invalidator);
using ObservationLooker = std::optional<uint64_t> (*)(const std::string& subject,
                                                       const Invalidator& invalidator);

// ObservationKind registers how to check observations of kind `name`, as a namespace-scope
// constant (like Function). Registering one name twice aborts.
class ObservationKind {
 public:
  ObservationKind(std::string_view name, ObservationSubscriber subscribe,
                  ObservationLooker look);
};

}  // namespace turbine
