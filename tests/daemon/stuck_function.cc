// stuck_function.cc — turbined_stuck's extra function: test.stuck(seconds) sleeps without
// ever looking at its cancellation, so a stop cannot end while it runs (the stop's
// deadline, stop_deadline_test.cc).
#include <chrono>
#include <thread>

#include "turbine/engine.h"
#include "turbine/server/export.h"

namespace {

using turbine::Task;

Task<int64_t> StuckImpl(int64_t seconds) {
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  co_return seconds;
}
const turbine::Function<StuckImpl> stuck{"test.stuck", 1};
const turbine::server::Export export_stuck{stuck, {"seconds"}};

}  // namespace
