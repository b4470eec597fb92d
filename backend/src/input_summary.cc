// input_summary.cc — input summaries and the log of recent changes (input_summary.h).
#include "input_summary.h"

#include "turbine/internal/xxh3.h"

#include <algorithm>
#include <span>

namespace turbine::internal {

uint64_t InputBits(std::string_view key) {
  return InputBitsOfHash(XXH3_64bits(key.data(), key.size()));
}

uint64_t InputBitsOfHash(uint64_t hash) {
  return (uint64_t{1} << (hash & 63)) | (uint64_t{1} << ((hash >> 6) & 63));
}

uint64_t InputBitsOf(const InputChange& change) {
  return change.key_hash.has_value() ? InputBitsOfHash(*change.key_hash) : InputBits(change.key);
}

void ChangedInputs::Add(uint64_t stamp, uint64_t bits) {
  if (stamp <= since_ || bits == 0) return;  // covered already (not trusted), or nothing
  entries_.push_back(Entry{stamp, bits, 0});
  // Earlier entries hold supersets of later ones: stop at the first that has the bits.
  for (auto entry = entries_.rbegin(); entry != entries_.rend(); ++entry) {
    if ((entry->bits_from_here & bits) == bits) break;
    entry->bits_from_here |= bits;
  }
  if (entries_.size() > kCapacity) {
    // Changes of the last dropped stamp that stay are never looked at: a result clean as
    // of that stamp saw them.
    const size_t dropped = entries_.size() / 2;
    since_ = entries_[dropped - 1].stamp;
    entries_.erase(entries_.begin(), entries_.begin() + static_cast<ptrdiff_t>(dropped));
  }
}

bool ChangedInputs::MayReach(uint64_t stamp, uint64_t summary) const {
  if (stamp < since_) return summary != 0;
  auto after = std::upper_bound(entries_.begin(), entries_.end(), stamp,
                                [](uint64_t s, const Entry& entry) { return s < entry.stamp; });
  if (after == entries_.end() || (after->bits_from_here & summary) == 0) return false;
  return ReachesAny(std::span<const Entry>(after, entries_.end()), summary);
}

}  // namespace turbine::internal
