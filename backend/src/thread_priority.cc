#include "thread_priority.h"

#if defined(__linux__)
#include <sys/resource.h>
#include <unistd.h>
#endif

namespace turbine::internal {

bool LowerThisThreadPriority() {
#if defined(__linux__)
  // Linux keeps a nice value per thread (not per process, as POSIX has it): the thread id
  // names this thread alone.
  return setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 19) == 0;
#else
  return false;
#endif
}

}  // namespace turbine::internal
