// hash.h — XXH3-based hashing of task components.
//
// A task is found by hashing its components (function, receiver, arguments) in place;
// nothing is encoded into a buffer first. Each TaskInput type provides
// `uint64_t HashValue(const T&, uint64_t seed)`; composite types fold their parts through
// the seed. Thread-safe: pure functions.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

#include "turbine/internal/xxh3.h"

namespace turbine {

// HashBytes hashes a byte range with XXH3, chained through `seed`.
inline uint64_t HashBytes(const void* data, size_t size, uint64_t seed) {
  return XXH3_64bits_withSeed(data, size, seed);
}

// HashScalar hashes one trivially copyable scalar by its bytes.
template <class T>
requires std::is_trivially_copyable_v<T>
inline uint64_t HashScalar(T value, uint64_t seed) {
  return XXH3_64bits_withSeed(&value, sizeof(T), seed);
}

inline uint64_t HashValue(bool v, uint64_t seed) { return HashScalar(v, seed); }
inline uint64_t HashValue(int32_t v, uint64_t seed) { return HashScalar(v, seed); }
inline uint64_t HashValue(int64_t v, uint64_t seed) { return HashScalar(v, seed); }
inline uint64_t HashValue(uint32_t v, uint64_t seed) { return HashScalar(v, seed); }
inline uint64_t HashValue(uint64_t v, uint64_t seed) { return HashScalar(v, seed); }
inline uint64_t HashValue(double v, uint64_t seed) {
  // +0.0 and -0.0 hash alike. They are different values (SameValue, value_type.h), and
  // hashing them alike only costs a collision, but keeps the keys of tasks already stored.
  return HashScalar(v == 0.0 ? 0.0 : v, seed);
}
inline uint64_t HashValue(std::string_view v, uint64_t seed) {
  return HashBytes(v.data(), v.size(), seed);
}
inline uint64_t HashValue(const std::string& v, uint64_t seed) {
  return HashBytes(v.data(), v.size(), seed);
}

}  // namespace turbine
