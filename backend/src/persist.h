// persist.h — how the engine encodes a task for its BackingStore.
//
// Identity: (function name, version, receiver, canonical argument bytes). Result: the
// output, the cells, and every (slot, stamp) the execution read. Both are cereal tuples;
// type ids are written as stable names (RawVc's save/load).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "task_state.h"
#include "turbine/vc.h"

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

// PeekFunction reads the function name and version of an identity, whether or not this
// build has that function (Engine::Why names a dependency a version bump left behind).
bool PeekFunction(std::string_view bytes, std::string* name, uint32_t* version);

// Validity is what a result record says about how far it can be trusted after a restart
// without verifying what it read (docs/ARCHITECTURE.md, "Restored = valid or dirty").
struct Validity {
  // The engine's last stamp when the snapshot that wrote the record began: every input
  // change up to it had reached the task, which was clean. 0: unknown (an older record).
  uint64_t clean_as_of = 0;
  // FunctionsDigest() of the build that wrote it: another set of functions or versions may
  // compute something else for what the task read.
  uint32_t functions = 0;
  // Something it read, directly or not, is session-dependent (the outside world), or it
  // read a cycle: either way only a verification can tell.
  bool needs_verification = true;
  // The summary of the inputs it read (TaskState::inputs); kAnyInput: unknown (an older
  // record).
  uint64_t inputs = ~uint64_t{0};
};

// EncodeResult / DecodeResult: a clean task's output, cells and deps. EncodeResult adds to
// `refs` (if given) the tasks the result refers to: its output's reference and the Vcs
// inside its values (not the slots it read).
// REQUIRES: task.mu held (both).
void EncodeResult(const TaskState& task, std::string* out, std::vector<TaskId>* refs = nullptr,
                  const Validity& validity = Validity());
bool DecodeResult(std::string_view bytes, TaskState* task, Validity* validity = nullptr);

// FunctionsDigest is a stable digest of every registered (function name, version).
uint32_t FunctionsDigest();

// DecodedResult is a result record decoded: what DecodeResult puts into a task.
struct DecodedResult {
  Output output;
  uint64_t stamp = 0;
  std::vector<CellSlot> cells;
  std::vector<Dep> deps;
  Validity validity;
};
// DecodeResultRecord decodes `bytes`; Vcs inside the values go to `refs` (may be null).
bool DecodeResultRecord(std::string_view bytes, DecodedResult* result, std::vector<TaskId>* refs);

// VcSink collects, while it lives, the task of every RawVc this thread saves or loads
// (identities and values hold Vcs: a receiver, a Vc argument, a Vc inside a value).
class VcSink {
 public:
  explicit VcSink(std::vector<TaskId>* out) : saved_(tls_vc_sink) { tls_vc_sink = out; }
  ~VcSink() { Stop(); }
  void Stop() { tls_vc_sink = saved_; }
  VcSink(const VcSink&) = delete;
  VcSink& operator=(const VcSink&) = delete;

 private:
  std::vector<TaskId>* const saved_;
};

// RecordLinks is what a stored task record says about other tasks, for garbage collection.
// A task it *refers to* must be stored as long as the record is (a reader would follow the
// reference); a task it *read* may go: a missing dependency reads as a change.
struct RecordLinks {
  const FunctionInfo* fn = nullptr;
  std::vector<TaskId> refs;  // receiver, Vcs in the arguments, output reference, Vcs in values
  std::vector<TaskId> deps;  // tasks whose slots it read
  std::string input_key;     // an input's key (its value is in the inputs table)
};
// ReadRecordLinks decodes a record; false if this build cannot (its function is not
// registered at that version, a value type is unknown, or the bytes are damaged).
bool ReadRecordLinks(std::string_view identity, std::string_view result, RecordLinks* links);

}  // namespace turbine::internal
