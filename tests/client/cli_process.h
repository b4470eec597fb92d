// cli_process.h — runs the built `turbine` binary as a user would, capturing its output.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace turbine::testing {

struct CliRun {
  int exit_code = -1;  // -1: ended by a signal
  std::string out;
  std::string err;
};

// CliProcess is one running `turbine`. Its environment is this process's, minus
// TURBINE_TOKEN_FILE (tests must not pick up the user's), plus `env` ("NAME=value").
class CliProcess {
 public:
  explicit CliProcess(const std::vector<std::string>& args,
                      const std::vector<std::string>& env = {});
  ~CliProcess();

  // WaitForOutput polls until stdout holds `text` (true) or a few seconds pass (false).
  bool WaitForOutput(const std::string& text);
  void Signal(int signal);
  CliRun Wait();
  // WaitUpTo waits for the CLI to exit, but not beyond `bound` (then nullopt, and the
  // process is killed with this object): a bound for a test's failure, not a timing.
  std::optional<CliRun> WaitUpTo(std::chrono::milliseconds bound);

 private:
  std::string out_path_;
  std::string err_path_;
  pid_t pid_ = -1;
};

CliRun RunCli(const std::vector<std::string>& args, const std::vector<std::string>& env = {});

}  // namespace turbine::testing
