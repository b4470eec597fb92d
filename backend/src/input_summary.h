// input_summary.h — which inputs a result may depend on, and which changed since a stamp,
// as 64-bit summaries, so a restart can tell without loading anything which restored
// results an input change since their snapshot may have reached.
//
// A task's summary (TaskState::inputs, persisted with its result) has the bits of every
// input it read, directly or through the tasks it read (InputBits of the key: two of 64
// bits). ChangedInputs keeps, for each recent input change, its stamp and bits. A result
// clean as of stamp S can only be stale if an input it read changed after S, and then its
// summary has both bits of that change (Reaches). Both bits there by chance only cost a
// verification: for one changed input, about 5% of results that read 8 inputs (about 14
// bits set), a quarter of those whose summary has half its bits, every full one. One
// shared bit was the test before: about 40% and 75% of those.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "turbine/backing_store.h"

namespace turbine::internal {

// InputBits is the summary of input `key`: two bits, from a hash that is the same in
// every process.
uint64_t InputBits(std::string_view key);
// InputBitsOfHash is InputBits of the key whose XXH3_64bits is `hash`.
uint64_t InputBitsOfHash(uint64_t hash);
// InputBitsOf is InputBits of the input a logged change names (by key, or by its hash).
uint64_t InputBitsOf(const InputChange& change);

// A summary with every bit: what a result whose inputs are unknown (a record written
// before summaries existed) may depend on. As a change: anything may have changed.
inline constexpr uint64_t kAnyInput = ~uint64_t{0};

// Reaches tells whether a change with `change_bits` (one input's InputBits, or kAnyInput)
// may have reached a result with summary `summary`: a result that read the input has
// every bit of it.
inline bool Reaches(uint64_t change_bits, uint64_t summary) {
  return change_bits == kAnyInput ? summary != 0 : (summary & change_bits) == change_bits;
}

// ReachesAny is Reaches for any of `changes` (each with a `bits` member). Past
// kExactChanges of them it answers whether the summary shares a bit with their union,
// which is cheaper and never says no wrongly.
inline constexpr size_t kExactChanges = 64;
template <class Changes>
bool ReachesAny(const Changes& changes, uint64_t summary) {
  if (changes.size() > kExactChanges) {
    uint64_t bits = 0;
    for (const auto& change : changes) bits |= change.bits;
    return (bits & summary) != 0;
  }
  for (const auto& change : changes) {
    if (Reaches(change.bits, summary)) return true;
  }
  return false;
}

// ChangedInputs is the log of recent input changes. Not thread-safe (the engine's
// trust_mu_ guards it).
class ChangedInputs {
 public:
  // The log starts empty and knows every change above `since` (none, so far).
  explicit ChangedInputs(uint64_t since) : since_(since) {}

  // Add records a change of one input (`bits`: its InputBits, or kAnyInput) at `stamp`,
  // which is not below any stamp added before. When the log is full, its oldest half is
  // dropped and `since` moves past it.
  void Add(uint64_t stamp, uint64_t bits);
  // MayReach tells whether a change above `stamp` may have reached a result with summary
  // `summary` (Reaches); when the log does not reach back that far, whether the result
  // read any input at all.
  bool MayReach(uint64_t stamp, uint64_t summary) const;

  uint64_t since() const { return since_; }
  size_t size() const { return entries_.size(); }

  static constexpr size_t kCapacity = 4096;  // changes; also what the store keeps

 private:
  struct Entry {
    uint64_t stamp;
    uint64_t bits;            // this change's
    uint64_t bits_from_here;  // this change's bits and every later change's
  };
  uint64_t since_;
  std::vector<Entry> entries_;  // one per change, in the order added (stamps ascending)
};

}  // namespace turbine::internal
