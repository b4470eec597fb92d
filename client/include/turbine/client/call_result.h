// call_result.h — what a call answered: the value or the function's error, and where the
// answer came from.
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>

#include "turbine/v1/turbine.pb.h"

namespace turbine::client {

struct CallResult {
  // The function's result, or the error it raised (kUnknown with its message;
  // kFailedPrecondition for a dependency cycle). On a CallStream, a bad request (unknown
  // function, wrong arguments) is also reported here, with kNotFound / kInvalidArgument,
  // since it fails only that one call.
  absl::StatusOr<v1::Value> value;
  // The task that answered; pass it as an argument or `this_ref` of a later call.
  v1::TaskRef ref;
  v1::Source source = v1::SOURCE_UNSPECIFIED;
  // Time the daemon spent on the call.
  uint64_t micros = 0;
  // On a CallStream: the id of the request this answers.
  uint64_t id = 0;
};

}  // namespace turbine::client
