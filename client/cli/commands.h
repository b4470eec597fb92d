// commands.h — the subcommands of `turbine`, each returning its ExitCode.
#pragma once

#include <absl/status/status.h>

#include <cstdint>
#include <optional>
#include <chrono>
#include <string>
#include <vector>

#include "exit_codes.h"
#include "turbine/client/client.h"

namespace turbine::cli {

struct Session {
  client::Client* client;
  bool json = false;  // --json: machine-readable output
  std::string address;
  // How to start a daemon at `address`, for the "cannot reach" hint.
  std::string start_command;
  // The daemon's data directory when `address` is its socket there (no --connect): empty
  // otherwise. `shutdown` waits for the daemon to let go of it.
  std::string data_dir;
  std::chrono::milliseconds timeout{30000};  // --timeout-ms
};

struct CallCommand {
  std::string function;
  std::vector<std::string> args;  // JSON words
  std::string this_ref;           // empty: no receiver
  bool raw = false;               // print a bytes or string value as it is, not as JSON
};

struct GraphCommand {
  CallCommand call;
  std::optional<uint32_t> depth;  // none: the whole cone
  std::optional<std::string> format;  // dot (none), json or svg; --json means json
  std::string output;             // -o FILE; empty: stdout
};

struct WhyCommand {
  CallCommand call;
  uint32_t max_steps = 0;  // 0: the daemon's default
};

struct TraceCommand {
  uint32_t seconds = 10;
  std::string output = "trace.json";
};

ExitCode RunCall(const Session& session, const CallCommand& command);
// RunTrace records for a while and writes the Chrome trace to the output file.
ExitCode RunTrace(const Session& session, const TraceCommand& command);
// RunGraph prints (or writes to -o) the dependency cone of a call's task.
ExitCode RunGraph(const Session& session, const GraphCommand& command);
// RunWhy prints why a call's task holds its current value, one step per line, causes
// indented under what they caused.
ExitCode RunWhy(const Session& session, const WhyCommand& command);
ExitCode RunWatch(const Session& session, const CallCommand& command);
// RunSet takes KEY VALUE pairs; an odd count is a usage error.
ExitCode RunSet(const Session& session, const std::vector<std::string>& pairs);
// RunUnset deletes the inputs named by `keys`.
ExitCode RunUnset(const Session& session, const std::vector<std::string>& keys);
ExitCode RunStats(const Session& session);
ExitCode RunFunctions(const Session& session);
ExitCode RunFlush(const Session& session);
ExitCode RunGc(const Session& session);
ExitCode RunShutdown(const Session& session);
ExitCode RunPing(const Session& session);

// ReportRpcError prints why a request did not get through and picks the exit code:
// kUnreachable (with a hint how to start the daemon) for kUnavailable, else kRpcError.
ExitCode ReportRpcError(const Session& session, const absl::Status& status);

}  // namespace turbine::cli
