// dependent_set.h — the readers of a task's slots, as the task record holds them.
//
// Most tasks have one reader (a file's task is read by its directory's), so the set holds
// one reader in place, with no allocation, and moves to a hash set on the heap at the
// second. It is 16 bytes in the record, where an absl::flat_hash_set is 40 and allocates
// for its first element. Not thread-safe: the task's `mu` guards it.
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
  bool empty() const { return one_.reader == kNoTask; }
  // HeapBytes is what the set holds on the heap (0 for up to one reader).
  size_t HeapBytes() const;

  template <class F>
  void ForEach(F&& f) const {
    if (const Set* set = many()) {
      for (const Dependent& dependent : *set) f(dependent);
    } else if (!empty()) {
      f(one_);
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
    return !empty() && p(one_);
  }

 private:
  using Set = absl::flat_hash_set<Dependent>;
  // A slot type no value type has (their ids are below 2^16): `one_.reader` then holds the
  // address of the heap set instead of a reader.
  static constexpr ValueTypeId kManyTag = UINT32_MAX;

  Set* many() const {
    return one_.slot_type == kManyTag ? reinterpret_cast<Set*>(one_.reader) : nullptr;
  }

  Dependent one_;  // empty: reader kNoTask; many: slot_type kManyTag
};

}  // namespace turbine::internal
