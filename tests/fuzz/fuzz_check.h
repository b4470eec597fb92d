// fuzz_check.h — what a fuzz target does when a property it checks does not hold.
#pragma once

#include <cstdio>
#include <cstdlib>

// FUZZ_CHECK aborts with the failed condition, which libFuzzer and the replay driver
// report as a crash with its input.
#define FUZZ_CHECK(condition)                                                            \
  do {                                                                                   \
    if (!(condition)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (false)
