// memory_bench.h — the engine's memory benchmark (bytes per cached task).
#pragma once

namespace turbine::bench {

// RegisterMemoryBenchmarks registers `memory/bytes-per-task`.
void RegisterMemoryBenchmarks();

}  // namespace turbine::bench
