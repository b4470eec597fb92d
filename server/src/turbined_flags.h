// turbined_flags.h — what turbined's command line and --config file say (Flags), read by
// ParseFlags, and the exit codes the daemon returns.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "turbine/server/server.h"

namespace turbined {

// Exit codes (turbined_main.cc's header says when each is returned).
inline constexpr int kExitCannotStart = 1;
inline constexpr int kExitBadConfig = 2;
inline constexpr int kExitDataDirInUse = 3;
inline constexpr int kExitStopCutShort = 4;

// Flags is what the command line and the config file say.
struct Flags {
  turbine::server::ServerOptions server;
  std::string log_level = "info";
  std::string token_file;
  // The shared cache tier (--shared-cache ...), connected in main.
  std::string shared_cache;
  std::string shared_cache_namespace = "default";
  std::string shared_cache_mode = "read";
  std::string shared_cache_user;
  std::string shared_cache_password_file;
  int shared_cache_timeout_ms = 50;
  // A stop that has not ended this long after it began is cut short (ServeUntilStopped):
  // calls get their 5 s of grace, the last snapshot the rest. 0: never.
  std::chrono::seconds stop_timeout{60};
};

// ParseFlags fills `flags`; returns an exit code when the program should stop now (--help,
// or a bad flag), -1 to go on.
int ParseFlags(int argc, char** argv, Flags* flags);

// ReadAtMost reads the file at `path` if it holds at most `most` bytes: false if it does
// not, or cannot be read. A path such as /dev/zero never ends, so nothing reads to the end.
bool ReadAtMost(const std::string& path, size_t most, std::string* text);

// ReadToken reads a token file; surrounding whitespace (a trailing newline) is not part of it.
// More than 64 KiB is no token.
bool ReadToken(const std::string& path, std::string* token);

}  // namespace turbined
