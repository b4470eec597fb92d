// thread_priority.h — background work that yields the CPU to calls.
#pragma once

namespace turbine::internal {

// LowerThisThreadPriority makes the calling thread run only after the engine's other
// threads and the caller's: on Linux its nice value becomes 19 (the scheduler then wakes a
// call's thread on its core at once instead of letting the background work finish its
// slice). For threads that do only background work: an unprivileged process cannot raise
// the priority back. Returns false where the system refused or has no such thing.
bool LowerThisThreadPriority();

}  // namespace turbine::internal
