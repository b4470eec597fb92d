// dependent_set.cc — one reader in place, more in a hash set on the heap.
#include "dependent_set.h"

namespace turbine::internal {

bool DependentSet::insert(const Dependent& dependent) {
  if (Set* set = many()) return set->insert(dependent).second;
  if (empty()) {
    word_ = Packable(dependent) ? Pack(dependent) : reinterpret_cast<uint64_t>(new Set{dependent});
    return true;
  }
  const Dependent one = Unpack(word_);
  if (one == dependent) return false;
  word_ = reinterpret_cast<uint64_t>(new Set{one, dependent});
  return true;
}

size_t DependentSet::erase(const Dependent& dependent) {
  if (Set* set = many()) {
    const size_t erased = set->erase(dependent);
    // Back in place at one reader (or none): a task read by many and then by one (its
    // readers evicted or re-executed without it) gives the heap set back.
    if (set->empty()) {
      delete set;
      word_ = 0;
    } else if (set->size() == 1 && Packable(*set->begin())) {
      const uint64_t last = Pack(*set->begin());
      delete set;
      word_ = last;
    }
    return erased;
  }
  if (empty() || !(Unpack(word_) == dependent)) return 0;
  word_ = 0;
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
