// vc_positions.h — where the task ids of the Vcs an encoding writes land in its bytes.
//
// The shared tier names a task reference by the referenced task's stable identity, not by
// its process-local id (shared_trace.h). To swap one for the other it must know where in
// the canonical bytes each id was written. A RawVc is saved as (task id, cell type name,
// index), and the type name is looked up (ValueTypeNameOrEmpty, out of line) before any of
// the three is written; while a VcPositions is set on a thread, that lookup notes the size
// of the bytes written so far, which is where the task id is about to go. Only encodings
// that append straight to `bytes` are seen right; the tier checks every position it is
// given against the ids the encoding reported (VcSink) and re-decodes the result, and it
// refuses to share what does not check out.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace turbine::internal {

struct VcPositions {
  const std::string* bytes = nullptr;
  std::vector<size_t>* positions = nullptr;
};

// The current thread's VcPositions, or null (defined in registry.cc).
VcPositions*& ThreadVcPositions();

// RecordVcPositions sets `positions` as the thread's VcPositions while it lives.
class RecordVcPositions {
 public:
  RecordVcPositions(const std::string* bytes, std::vector<size_t>* positions)
      : saved_(ThreadVcPositions()), mine_{bytes, positions} {
    ThreadVcPositions() = &mine_;
  }
  ~RecordVcPositions() { ThreadVcPositions() = saved_; }
  RecordVcPositions(const RecordVcPositions&) = delete;
  RecordVcPositions& operator=(const RecordVcPositions&) = delete;

 private:
  VcPositions* const saved_;
  VcPositions mine_;
};

}  // namespace turbine::internal
