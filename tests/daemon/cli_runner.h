// cli_runner.h — running the real `turbine` CLI from a test and capturing what it prints.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace turbine::testing {

struct CliResult {
  int exit_code = -1;
  std::string out;
};

// RunCli runs the CLI through the shell (arguments are quoted by the caller) and captures
// stdout; stderr is left to the test log. `prefix` goes before the binary (e.g. "env X=1 ").
inline CliResult RunCli(const std::string& args, const std::string& prefix = "") {
  CliResult result;
  FILE* pipe = ::popen((prefix + TURBINE_CLI_PATH + " " + args).c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer;
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    result.out.append(buffer.data(), n);
  }
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace turbine::testing
