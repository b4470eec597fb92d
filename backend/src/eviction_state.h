// eviction_state.h — the evictor's bookkeeping (evict.cc): the large results whose values
// it may evict, in the order its CLOCK hand passes them, the hand that sweeps whole tasks,
// and which ids it evicted whole.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "mutex.h"
#include "turbine/raw_vc.h"

namespace turbine::internal {

// EvictionCandidate is a task with a large stored result.
struct EvictionCandidate {
  TaskId id;
  size_t bytes;  // the stored result's size
};

struct EvictionState {
  Mutex mu;
  // Tasks with a large stored result, and where each is in `candidates`. One leaves the
  // list when the hand finds it gone from memory, or a later result of it is small: the
  // list follows what is in memory, not every large result the daemon ever stored.
  std::vector<EvictionCandidate> candidates ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<TaskId, size_t> candidate_index ABSL_GUARDED_BY(mu);
  size_t clock_hand ABSL_GUARDED_BY(mu) = 0;
  // Whole-task eviction: its hand sweeps the tasks in memory by id.
  TaskId task_hand ABSL_GUARDED_BY(mu) = 1;
  // One bit per id says which tasks were evicted whole, to count those loaded back, in
  // words of 64 ids kept only while one of their bits is set (ids reach hundreds of
  // millions in a store that lives for months; a flat bitmap took a bit for each).
  Mutex evicted_ids_mu;  // a leaf
  absl::flat_hash_map<uint64_t, uint64_t> evicted_ids ABSL_GUARDED_BY(evicted_ids_mu);
  std::atomic<size_t> evicted_away{0};  // the bits set; written under evicted_ids_mu
};

}  // namespace turbine::internal
