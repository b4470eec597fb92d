// bench_tasks.h — the task functions the engine benchmarks call, and helpers around them.
//
// Like turbo-tasks' `overhead` bench, the busy task takes both its key and its duration as
// arguments: distinct keys are distinct tasks, and a cache hit never runs the body, so
// `micros` only matters when the task executes.
#pragma once

#include <cstdint>

#include "turbine/engine.h"

namespace turbine::bench {

// SpinFor busy-waits `micros` microseconds on steady_clock and returns how many times it
// looked at the clock (returned so the loop cannot be optimized away).
int64_t SpinFor(int64_t micros);

// BusyImpl spins `micros` and returns `key`.
Task<int64_t> BusyImpl(int64_t key, int64_t micros);
inline const Function<BusyImpl> busy{"bench.busy", 1};

// NoopImpl does no work and returns `key`: the cheapest task there is.
Task<int64_t> NoopImpl(int64_t key);
inline const Function<NoopImpl> noop{"bench.noop", 1};

// ReadBusy calls busy(key, micros), reads it and checks the value. False on an error or a
// wrong value. REQUIRES: an Engine::Scope for `engine` on this thread.
bool ReadBusy(Engine& engine, int64_t key, int64_t micros);

// Prewarm computes busy(key, micros) for every key in [0, count) and leaves them cached.
// It calls all of them before reading any, so the workers execute them in parallel.
// False if any read failed. REQUIRES: an Engine::Scope for `engine` on this thread.
bool Prewarm(Engine& engine, int64_t count, int64_t micros);

}  // namespace turbine::bench
