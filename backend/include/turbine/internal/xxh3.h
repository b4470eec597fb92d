// internal/xxh3.h — XXH3, compiled inline where task components are hashed.
//
// Internal: hash.h's inline functions need it. The hash sits on the cache-hit path, and an
// out-of-line call per argument measurably slows a hit (turbo-cached-same-keys/1: +5 ns of
// about 80), so xxHash is included header-only. XXH_INLINE_ALL gives every function
// internal linkage under XXH_INLINE_-prefixed names, so a program that links its own
// xxHash is not affected; the macro is not left defined for the includer.
#pragma once

#ifdef XXH_INLINE_ALL
#include <xxhash.h>
#else
#define XXH_INLINE_ALL
#include <xxhash.h>
#undef XXH_INLINE_ALL
#endif
