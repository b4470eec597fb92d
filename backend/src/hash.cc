// hash.cc — XXH3, compiled inline here and nowhere else (hash.h).
#include "turbine/hash.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace turbine {

uint64_t HashBytes(const void* data, size_t size, uint64_t seed) {
  return XXH3_64bits_withSeed(data, size, seed);
}

}  // namespace turbine
