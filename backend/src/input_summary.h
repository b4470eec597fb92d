// input_summary.h — which inputs a result may depend on, and which changed since a stamp,
// as 64-bit summaries, so a restart can tell without loading anything which restored
// results an input change since their snapshot may have reached.
//
// A task's summary (TaskState::inputs, persisted with its result) has the bits of every
// input it read, directly or through the tasks it read (InputBits of the key: two of 64
// bits). ChangedInputs keeps, for each recent input change, its stamp and bits. A result
// clean as of stamp S can only be stale if an input it read changed after S, and then its
// summary shares a bit with ChangedInputs::BitsAfter(S). Shared bits by chance only cost a
// verification (about 5% of results that read 8 inputs, for one changed input).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace turbine::internal {

// InputBits is the summary of input `key`: two bits, from a hash that is the same in
// every process.
uint64_t InputBits(std::string_view key);

// A summary with every bit: what a result whose inputs are unknown (a record written
// before summaries existed) may depend on.
inline constexpr uint64_t kAnyInput = ~uint64_t{0};

// ChangedInputs is the log of recent input changes. Not thread-safe (the engine's
// trust_mu_ guards it).
class ChangedInputs {
 public:
  // The log starts empty and knows every change above `since` (none, so far).
  explicit ChangedInputs(uint64_t since) : since_(since) {}

  // Add records a change at `stamp`, which is not below any stamp added before. When the
  // log is full, its oldest half is dropped and `since` moves past it.
  void Add(uint64_t stamp, uint64_t bits);
  // BitsAfter is the union of the bits of every change above `stamp`, or kAnyInput when
  // the log does not reach back that far.
  uint64_t BitsAfter(uint64_t stamp) const;

  uint64_t since() const { return since_; }
  size_t size() const { return entries_.size(); }

  static constexpr size_t kCapacity = 4096;  // changes; also what the store keeps

 private:
  struct Entry {
    uint64_t stamp;
    uint64_t bits_from_here;  // this change's bits and every later change's
  };
  uint64_t since_;
  std::vector<Entry> entries_;  // ascending stamps, one entry per stamp
};

}  // namespace turbine::internal
