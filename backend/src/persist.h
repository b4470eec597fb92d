// persist.h — how the engine encodes a task for its BackingStore.
//
// Identity: (function name, version, receiver, canonical argument bytes). Result: the
// output, the cells, and every (slot, stamp) the execution read. Both are cereal tuples;
// type ids are written as stable names (RawVc's save/load).
#pragma once

#include <string>
#include <string_view>

#include "task_state.h"

namespace turbine::internal {

// EncodeIdentity appends the identity of (fn, receiver, args) to `out`.
void EncodeIdentity(const FunctionInfo& fn, RawVc receiver, const void* args, std::string* out);

// DecodedIdentity owns decoded arguments (a heap tuple of fn's type) until released.
struct DecodedIdentity {
  const FunctionInfo* fn = nullptr;
  RawVc receiver;
  void* args = nullptr;
  ~DecodedIdentity() {
    if (args != nullptr) fn->destroy_args(args);
  }
};
// DecodeIdentity fails if the bytes are damaged or name a function this build lacks.
bool DecodeIdentity(std::string_view bytes, DecodedIdentity* identity);

// EncodeResult / DecodeResult: a clean task's output, cells and deps.
// REQUIRES: task.mu held (both).
void EncodeResult(const TaskState& task, std::string* out);
bool DecodeResult(std::string_view bytes, TaskState* task);

}  // namespace turbine::internal
