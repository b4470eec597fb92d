// long_call.h — a call that may take longer than the deadline while the daemon makes
// progress, with a live line on a terminal.
#pragma once

#include <absl/status/statusor.h>

#include "commands.h"
#include "turbine/client/call_result.h"

namespace turbine::cli {

// CallWhileProgressing makes `request`'s call. The deadline (--timeout-ms) bounds silence,
// not the whole call: the call has no deadline of its own, the daemon's count of finished
// task executions is read twice a second, and the call is given up (kDeadlineExceeded) once
// that count stood still for the whole deadline. A first call that computes a large tree
// goes on for as long as it keeps finishing tasks; one wedged on a single slow task body
// ends. On a terminal, a call that takes longer than a second shows a live line on stderr
// (elapsed time, tasks finished since), erased when it ends.
absl::StatusOr<client::CallResult> CallWhileProgressing(const Session& session,
                                                         const v1::CallRequest& request);

// CollectGarbageWhileAnswered runs a garbage collection pass in the daemon and waits for
// it as long as the daemon answers: a pass over a large store takes longer than any unary
// deadline, and the daemon's pass goes on whatever the client does. The deadline
// (--timeout-ms, at least a second) bounds how long the daemon may go without answering
// Stats, read twice a second; then the wait is given up (kDeadlineExceeded; the pass goes
// on in the daemon). An unreachable daemon fails the request at once (kUnavailable), or,
// with --wait, once it has not answered within that bound. A pass that never ends while the
// daemon answers is waited for until the CLI is interrupted. On a terminal, a pass that
// takes longer than a second shows a live line on stderr (elapsed time, phase, tasks
// scanned and removed), erased when it ends.
absl::StatusOr<v1::CollectGarbageReply> CollectGarbageWhileAnswered(const Session& session);

}  // namespace turbine::cli
