#include "cli_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace turbine::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  std::stringstream content;
  content << file.rdbuf();
  return content.str();
}

std::string TempPath(const char* suffix) {
  static int counter = 0;
  return (std::filesystem::temp_directory_path() /
          ("turbine-cli-" + std::to_string(getpid()) + "-" + std::to_string(counter++) + suffix))
      .string();
}

}  // namespace

CliProcess::CliProcess(const std::vector<std::string>& args,
                       const std::vector<std::string>& env)
    : out_path_(TempPath(".out")), err_path_(TempPath(".err")) {
  std::vector<std::string> argv_storage = {TURBINE_CLI_PATH};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);

  std::vector<std::string> env_storage;
  for (char** var = environ; *var != nullptr; ++var) {
    if (std::strncmp(*var, "TURBINE_TOKEN_FILE=", 19) != 0) env_storage.emplace_back(*var);
  }
  env_storage.insert(env_storage.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (std::string& var : env_storage) envp.push_back(var.data());
  envp.push_back(nullptr);

  // posix_spawn rather than fork: this process runs gRPC threads.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path_.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path_.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  int error = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) throw std::runtime_error(std::string("cannot run ") + argv[0]);
}

CliProcess::~CliProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  std::filesystem::remove(out_path_);
  std::filesystem::remove(err_path_);
}

bool CliProcess::WaitForOutput(const std::string& text) {
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < give_up) {
    if (ReadFile(out_path_).find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

void CliProcess::Signal(int signal) { kill(pid_, signal); }

CliRun CliProcess::Wait() {
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return CliRun{WIFEXITED(status) ? WEXITSTATUS(status) : -1, ReadFile(out_path_),
                ReadFile(err_path_)};
}

std::optional<CliRun> CliProcess::WaitUpTo(std::chrono::milliseconds bound) {
  const auto give_up = std::chrono::steady_clock::now() + bound;
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() >= give_up) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_ = -1;
  return CliRun{WIFEXITED(status) ? WEXITSTATUS(status) : -1, ReadFile(out_path_),
                ReadFile(err_path_)};
}

CliRun RunCli(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  return CliProcess(args, env).Wait();
}

}  // namespace turbine::testing
