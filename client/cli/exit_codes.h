// exit_codes.h — what `turbine` exits with; scripts depend on these, do not renumber.
#pragma once

namespace turbine::cli {

enum ExitCode : int {
  kOk = 0,
  kFunctionError = 1,  // the call got through and the function raised an error
  kUsage = 2,          // bad command line, bad JSON argument, unreadable token file
  kUnreachable = 3,    // no daemon at the address (or not serving yet)
  kRpcError = 4,       // the daemon refused the request: NOT_FOUND, INVALID_ARGUMENT, ...
};

}  // namespace turbine::cli
