// observation_state.h — what the engine knows of its tasks' observations of the outside
// world (turbine/observe.h, observe.cc): the observation each result follows from, the
// changes waiting for a snapshot to log them, and those that may no longer hold.
#pragma once

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "mutex.h"
#include "task_state.h"
#include "turbine/backing_store.h"

namespace turbine::internal {

// ObservedChange is an observation that changed, waiting for the next snapshot to log it.
struct ObservedChange {
  InputChange change;
  TaskId task;  // whose observation changed
};

struct ObservationState {
  // A leaf lock (taken alone, or under a task's lock).
  Mutex mu;
  // The observation of every task whose result follows from one: read from the store at
  // open (and checked), or made by an execution since.
  absl::flat_hash_map<TaskId, ObservationRecord> records ABSL_GUARDED_BY(mu);
  std::vector<ObservedChange> changes ABSL_GUARDED_BY(mu);
  // While CheckObservations runs, a subscription it made may fire before the task's
  // observation is in `records`: such tasks are noted here and count as changed.
  bool checking ABSL_GUARDED_BY(mu) = false;
  absl::flat_hash_set<TaskId> fired_while_checking ABSL_GUARDED_BY(mu);
  // Rechecks asked for while the check at open ran, when the observations were not in
  // `records` yet: done once they are (RecheckMany).
  std::vector<TaskId> rechecks_while_checking ABSL_GUARDED_BY(mu);
  // Tasks whose observation (in `records`) may no longer hold: it changed at the check at
  // open, or fired since, with the stamp its change is logged at (while its invalidation
  // marks the readers dirty, that call's placeholder: kPendingDoubt and a number from
  // pending_doubts). Until the task looks again (CommitObservation), it executes rather
  // than verify when it is restored; the final snapshot forgets the observation
  // (LogObservedChanges).
  absl::flat_hash_map<TaskId, uint64_t> doubted ABSL_GUARDED_BY(mu);
  static constexpr uint64_t kPendingDoubt = uint64_t{1} << 63;  // above any stamp
  std::atomic<uint64_t> pending_doubts{0};
};

}  // namespace turbine::internal
