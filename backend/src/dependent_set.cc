// dependent_set.cc — one reader in place, more in a hash set on the heap.
#include "dependent_set.h"

namespace turbine::internal {

bool DependentSet::insert(const Dependent& dependent) {
  if (Set* set = many()) return set->insert(dependent).second;
  if (empty()) {
    one_ = dependent;
    return true;
  }
  if (one_ == dependent) return false;
  Set* set = new Set{one_, dependent};
  one_.reader = reinterpret_cast<TaskId>(set);
  one_.slot_type = kManyTag;
  one_.slot_index = 0;
  return true;
}

size_t DependentSet::erase(const Dependent& dependent) {
  if (Set* set = many()) {
    const size_t erased = set->erase(dependent);
    // Back in place at one reader: a task read by many and then by one (its readers
    // evicted or re-executed without it) gives the heap set back.
    if (set->size() == 1) {
      const Dependent last = *set->begin();
      delete set;
      one_ = last;
    }
    return erased;
  }
  if (empty() || !(one_ == dependent)) return 0;
  one_ = Dependent{};
  return 1;
}

size_t DependentSet::size() const {
  if (const Set* set = many()) return set->size();
  return empty() ? 0 : 1;
}

size_t DependentSet::HeapBytes() const {
  const Set* set = many();
  return set == nullptr ? 0 : sizeof(Set) + set->capacity() * (sizeof(Dependent) + 1);
}

}  // namespace turbine::internal
