// dependent_set.h — the readers of a task's slots, as the task record holds them.
//
// Most tasks have one reader (a file's task is read by its directory's), so the set holds
// one reader in place, with no allocation, and moves to a hash set on the heap at the
// second. It is one word in the record, where an absl::flat_hash_set is 40 bytes and
// allocates for its first element: the reader in place is packed into it (task ids are
// below 2^44, value type ids below 2^16), and one reading a cell of index 8 or more, rare,
// goes to the heap alone. Not thread-safe: the task's `mu` guards it.
#pragma once

#include <absl/container/flat_hash_set.h>

#include <cstddef>
#include <cstdint>
#include <utility>

#include "turbine/raw_vc.h"
#include "turbine/task.h"

namespace turbine::internal {

// Dependent is one reader of one slot (output or cell) of this task.
struct Dependent {
  TaskId reader = kNoTask;
  ValueTypeId slot_type = kOutputSlot;
  uint32_t slot_index = 0;

  friend bool operator==(const Dependent&, const Dependent&) = default;
  template <class H>
  friend H AbslHashValue(H h, const Dependent& d) {
    return H::combine(std::move(h), d.reader, d.slot_type, d.slot_index);
  }
};

class DependentSet {
 public:
  DependentSet() = default;
  ~DependentSet() { delete many(); }
  DependentSet(const DependentSet&) = delete;
  DependentSet& operator=(const DependentSet&) = delete;

  // insert returns false if `dependent` was there already.
  bool insert(const Dependent& dependent);
  // erase returns how many it removed (0 or 1).
  size_t erase(const Dependent& dependent);
  size_t size() const;
  bool empty() const { return word_ == 0; }
  // HeapBytes is what the set holds on the heap (0 for up to one reader).
  size_t HeapBytes() const;

  template <class F>
  void ForEach(F&& f) const {
    if (const Set* set = many()) {
      for (const Dependent& dependent : *set) f(dependent);
    } else if (!empty()) {
      f(Unpack(word_));
    }
  }
  template <class P>
  bool Any(P&& p) const {
    if (const Set* set = many()) {
      for (const Dependent& dependent : *set) {
        if (p(dependent)) return true;
      }
      return false;
    }
    return !empty() && p(Unpack(word_));
  }

 private:
  using Set = absl::flat_hash_set<Dependent>;
  // The word: 0 for none; a Set* (aligned, so its low bit is 0) for a set on the heap; or
  // one reader in place, low bit 1: the reader in bits 1-44, the slot type in 45-60 and
  // the slot index in 61-63.
  static constexpr int kReaderBits = 44;
  static constexpr int kTypeBits = 16;
  static constexpr int kIndexBits = 64 - 1 - kReaderBits - kTypeBits;

  static bool Packable(const Dependent& d) {
    return d.reader < (uint64_t{1} << kReaderBits) && d.slot_type < (1u << kTypeBits) &&
           d.slot_index < (1u << kIndexBits);
  }
  // REQUIRES: Packable(d), d.reader != kNoTask.
  static uint64_t Pack(const Dependent& d) {
    return 1 | d.reader << 1 | uint64_t{d.slot_type} << (1 + kReaderBits) |
           uint64_t{d.slot_index} << (1 + kReaderBits + kTypeBits);
  }
  static Dependent Unpack(uint64_t word) {
    return Dependent{(word >> 1) & ((uint64_t{1} << kReaderBits) - 1),
                     static_cast<ValueTypeId>((word >> (1 + kReaderBits)) &
                                              ((uint64_t{1} << kTypeBits) - 1)),
                     static_cast<uint32_t>(word >> (1 + kReaderBits + kTypeBits))};
  }
  Set* many() const {
    return word_ != 0 && (word_ & 1) == 0 ? reinterpret_cast<Set*>(word_) : nullptr;
  }

  uint64_t word_ = 0;
};

}  // namespace turbine::internal
