// alloc_counter.h — counts heap allocations made by the calling thread.
//
// The test binary replaces global operator new; each thread counts its own allocations,
// so engine workers running other tasks do not disturb a measurement.
#pragma once

#include <cstdint>

namespace turbine::testing {

// ThreadAllocations returns how many times this thread has called operator new.
uint64_t ThreadAllocations();
// ThreadAllocatedBytes returns how many bytes this thread has asked operator new for.
uint64_t ThreadAllocatedBytes();

}  // namespace turbine::testing
