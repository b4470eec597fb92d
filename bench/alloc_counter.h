// alloc_counter.h — counts heap allocations and net heap bytes inside a measured region.
//
// The benchmark binary replaces global operator new/delete (alloc_counter.cc). Counting is
// off by default, so benchmarks that do not measure allocations pay one relaxed load per
// allocation and nothing else. While a region is open, every thread's allocations count,
// including engine workers: an allocation a cache hit causes on a worker is still the
// hit's cost.
//
//   turbine::bench::AllocRegion region;    // starts counting
//   ... timed loop ...
//   AllocTotals totals = region.Stop();     // stops counting
//
// Thread-safety: one region at a time per process (regions do not nest); the counters
// themselves are relaxed atomics, safe from any thread.
#pragma once

#include <cstdint>

namespace turbine::bench {

struct AllocTotals {
  // Calls to any form of global operator new.
  int64_t allocations = 0;
  // Usable bytes allocated minus usable bytes freed (malloc_usable_size, so allocator
  // rounding counts; chunk headers do not). Frees of blocks allocated before the region
  // count too: this is the change in live operator-new bytes.
  int64_t net_bytes = 0;
};

// AllocRegion counts from construction until Stop() (or destruction).
// REQUIRES: no other AllocRegion is open.
class AllocRegion {
 public:
  AllocRegion();
  ~AllocRegion();
  AllocRegion(const AllocRegion&) = delete;
  AllocRegion& operator=(const AllocRegion&) = delete;

  // Stop ends counting and returns the totals; later calls return the same totals.
  AllocTotals Stop();

 private:
  bool stopped_ = false;
  AllocTotals totals_;
};

}  // namespace turbine::bench
