// counting.h — execution counters that tests read, keyed by function name.
#pragma once

#include <string>

#include "turbine/engine.h"

namespace turbine::testing {

// Executions returns how many times `function` executed in `engine` (0 if never called).
inline uint64_t Executions(const Engine& engine, const std::string& function) {
  for (const FunctionStats& fn : engine.Stats().functions) {
    if (fn.name == function) return fn.executions;
  }
  return 0;
}

}  // namespace turbine::testing
