// daemon_process.h — a real turbined process for tests: started with flags, waited for
// until it logs "turbined ready on <addr>", then stopped with a signal.
#pragma once

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

namespace turbine::testing {

class DaemonProcess {
 public:
  // Start runs turbined with `args`; false if it exited or never said it was ready.
  bool Start(const std::vector<std::string>& args) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return false;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], STDERR_FILENO);
      if (open_file_limit_ > 0) {
        const rlimit limit{open_file_limit_, open_file_limit_};
        ::setrlimit(RLIMIT_NOFILE, &limit);
      }
      if (run_as_uid_ >= 0 &&
          (::setgroups(0, nullptr) != 0 || ::setgid(run_as_gid_) != 0 ||
           ::setuid(run_as_uid_) != 0)) {
        ::_exit(126);
      }
      std::vector<char*> argv;
      std::string binary = binary_;
      argv.push_back(binary.data());
      std::vector<std::string> copies = args;
      for (std::string& arg : copies) argv.push_back(arg.data());
      argv.push_back(nullptr);
      ::execv(binary.c_str(), argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    log_fd_ = out[0];
    return WaitForLine("turbined ready on ", &address_);
  }

  // UseBinary makes the next Start run this daemon binary instead of turbined (a test build
  // of it with other functions).
  void UseBinary(std::string path) { binary_ = std::move(path); }

  // LimitOpenFiles makes the next Start run turbined with this open-file limit (soft and
  // hard, so turbined cannot raise it).
  void LimitOpenFiles(rlim_t limit) { open_file_limit_ = limit; }

  // RunAs makes the next Start run turbined as this user and group (from root): one that
  // permission checks stop, as root is not.
  void RunAs(uid_t uid, gid_t gid) {
    run_as_uid_ = static_cast<int>(uid);
    run_as_gid_ = gid;
  }

  // Signal sends `signal` and returns the exit status (code, or 128 + signal).
  int Stop(int signal) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, signal);
    return Reap();
  }

  // Signal sends `signal` (SIGSTOP, SIGCONT: a daemon that stops answering for a while).
  void Signal(int signal) {
    if (pid_ > 0) ::kill(pid_, signal);
  }

  // Reap waits for the process to exit on its own and returns its status as Stop does.
  int Reap() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    DrainLog();
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  // ReapWithin is Reap for at most `limit`: -1 if the process is still running then (it
  // is left running).
  int ReapWithin(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        DrainLog();
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      if (std::chrono::steady_clock::now() >= deadline) return -1;
      PumpLog(std::chrono::milliseconds(50));
    }
  }

  ~DaemonProcess() {
    if (pid_ > 0) Stop(SIGKILL);
    if (log_fd_ >= 0) ::close(log_fd_);
  }

  // WaitForLog waits (up to 60 s) until the daemon logs a line containing `marker`.
  bool WaitForLog(const std::string& marker) {
    std::string rest;
    return WaitForLine(marker, &rest);
  }

  // WaitForAnyLog waits (up to 60 s) until the daemon logs a line containing one of
  // `markers` and returns that marker, or "" if none came.
  std::string WaitForAnyLog(const std::vector<std::string>& markers) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      for (const std::string& marker : markers) {
        if (log_.find(marker) != std::string::npos) return marker;
      }
      pollfd poll_fd{log_fd_, POLLIN, 0};
      if (::poll(&poll_fd, 1, 200) <= 0) continue;
      char buffer[4096];
      const ssize_t n = ::read(log_fd_, buffer, sizeof(buffer));
      if (n <= 0) return "";  // exited
      log_.append(buffer, static_cast<size_t>(n));
    }
    return "";
  }

  // PumpLog reads the log for `duration`: a test that runs the daemon for long calls it
  // instead of sleeping, so the daemon never blocks on a full stderr pipe. False once the
  // process has closed its stderr.
  bool PumpLog(std::chrono::milliseconds duration) {
    const auto deadline = std::chrono::steady_clock::now() + duration;
    for (auto now = std::chrono::steady_clock::now(); now < deadline;
         now = std::chrono::steady_clock::now()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
      pollfd poll_fd{log_fd_, POLLIN, 0};
      if (::poll(&poll_fd, 1, static_cast<int>(left.count()) + 1) <= 0) continue;
      char buffer[4096];
      const ssize_t n = ::read(log_fd_, buffer, sizeof(buffer));
      if (n <= 0) return false;
      log_.append(buffer, static_cast<size_t>(n));
    }
    return true;
  }

  const std::string& address() const { return address_; }
  const std::string& log() const { return log_; }
  pid_t pid() const { return pid_; }

 private:
  std::string binary_ = TURBINED_PATH;
  int run_as_uid_ = -1;
  gid_t run_as_gid_ = 0;
  // WaitForLine reads the log until a line contains `marker` (what follows it goes to
  // `rest`), the process closes its stderr, or 60 s pass.
  bool WaitForLine(const std::string& marker, std::string* rest) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    size_t scanned = 0;
    while (std::chrono::steady_clock::now() < deadline) {
      const size_t found = log_.find(marker, scanned);
      if (found != std::string::npos) {
        const size_t end = log_.find('\n', found);
        if (end != std::string::npos) {
          *rest = log_.substr(found + marker.size(), end - found - marker.size());
          return true;
        }
      }
      pollfd poll_fd{log_fd_, POLLIN, 0};
      if (::poll(&poll_fd, 1, 200) <= 0) continue;
      char buffer[4096];
      const ssize_t n = ::read(log_fd_, buffer, sizeof(buffer));
      if (n <= 0) return false;  // exited
      log_.append(buffer, static_cast<size_t>(n));
    }
    return false;
  }

  void DrainLog() {
    char buffer[4096];
    ssize_t n = 0;
    while ((n = ::read(log_fd_, buffer, sizeof(buffer))) > 0)
      log_.append(buffer, static_cast<size_t>(n));
  }

  rlim_t open_file_limit_ = 0;
  pid_t pid_ = -1;
  int log_fd_ = -1;
  std::string address_;
  std::string log_;
};

}  // namespace turbine::testing
