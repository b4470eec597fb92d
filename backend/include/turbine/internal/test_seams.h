// test_seams.h — points where a test can run its own code in the middle of the engine's
// work, to bring about an interleaving that otherwise lasts nanoseconds. Null unless a test
// sets one; where the engine passes one, it costs a relaxed load, never on a hit.
#pragma once

#include <atomic>

#include "turbine/raw_vc.h"

namespace turbine::internal::seams {

// Called by a read that has seen that its caller is not cancelled and is about to count
// itself as a caller of `awaited` (EngineImpl::AwaitClean).
inline std::atomic<void (*)(TaskId awaited)> before_counting_caller{nullptr};

// Called by CancelToken::Cancel once the token reads cancelled, before it takes the token's
// reads off the tasks they are counted on.
inline std::atomic<void (*)()> after_cancel_flag{nullptr};

}  // namespace turbine::internal::seams
