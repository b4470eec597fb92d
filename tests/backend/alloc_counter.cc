// alloc_counter.cc — global operator new replacement that counts per thread.
#include "alloc_counter.h"

#include <cstdlib>
#include <new>

namespace {
thread_local uint64_t tls_allocations = 0;
thread_local uint64_t tls_allocated_bytes = 0;

void* CountedAllocate(std::size_t size) {
  ++tls_allocations;
  tls_allocated_bytes += size;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}

void* CountedAllocateAligned(std::size_t size, std::align_val_t align) {
  ++tls_allocations;
  tls_allocated_bytes += size;
  const std::size_t alignment = static_cast<std::size_t>(align);
  const std::size_t rounded = (size + alignment - 1) / alignment * alignment;
  if (void* p = std::aligned_alloc(alignment, rounded == 0 ? alignment : rounded)) return p;
  throw std::bad_alloc();
}
}  // namespace

namespace turbine::testing {
uint64_t ThreadAllocations() { return tls_allocations; }
uint64_t ThreadAllocatedBytes() { return tls_allocated_bytes; }
}  // namespace turbine::testing

void* operator new(std::size_t size) { return CountedAllocate(size); }
void* operator new[](std::size_t size) { return CountedAllocate(size); }
void* operator new(std::size_t size, std::align_val_t align) {
  return CountedAllocateAligned(size, align);
}
void* operator new[](std::size_t size, std::align_val_t align) {
  return CountedAllocateAligned(size, align);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
