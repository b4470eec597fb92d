// redis_test_env.h — the real Redis servers the shared-tier tests run against.
//
// ClusterSeeds: the cluster the ctest fixture `redis_cluster` started (tests/shared/
// redis_cluster; its directory in TURBINE_TEST_REDIS_CLUSTER_DIR). PlainRedis: one
// redis-server without cluster mode, started by the test on a free loopback port.
// RedisCli runs redis-cli, for what the tests do to the servers behind the client's back.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace turbine::testing {

// ClusterSeeds is "127.0.0.1:P1,..." (every node of the test cluster), or empty when the
// fixture did not run (the test then fails: it is never skipped).
inline std::string ClusterSeeds() {
  const char* dir = std::getenv("TURBINE_TEST_REDIS_CLUSTER_DIR");
  if (dir == nullptr) return "";
  std::ifstream in(std::string(dir) + "/seeds");
  std::string seeds;
  std::getline(in, seeds);
  return seeds;
}

inline std::vector<std::string> SplitSeeds(const std::string& seeds) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < seeds.size()) {
    size_t comma = seeds.find(',', start);
    if (comma == std::string::npos) comma = seeds.size();
    out.push_back(seeds.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

// RedisCli runs `redis-cli -h 127.0.0.1 -p PORT ARGS...` and returns its output.
inline std::string RedisCli(const std::string& address, const std::string& args) {
  const std::string port = address.substr(address.rfind(':') + 1);
  const std::string command = "redis-cli -h 127.0.0.1 -p " + port + " " + args + " 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  std::string out;
  std::array<char, 4096> buffer;
  size_t n = 0;
  while (pipe != nullptr && (n = fread(buffer.data(), 1, buffer.size(), pipe.get())) > 0) {
    out.append(buffer.data(), n);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

inline int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// PlainRedis is one redis-server (not in cluster mode), ended by its destructor.
class PlainRedis {
 public:
  explicit PlainRedis(const std::string& extra_args = "") {
    for (int attempt = 0; attempt < 10 && pid_ <= 0; ++attempt) {
      port_ = FreeLoopbackPort();
      const pid_t pid = fork();
      if (pid == 0) {
        // Not the test's stdout: ctest waits until every holder of that pipe closes it.
        const int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        const std::string port = std::to_string(port_);
        std::string command = "exec redis-server --port " + port +
                              " --bind 127.0.0.1 --save '' --appendonly no" +
                              " --logfile /dev/null " + extra_args;
        execl("/bin/sh", "sh", "-c", command.c_str(), nullptr);
        _exit(127);
      }
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) break;  // exited: port taken, retry
        const std::string ping = RedisCli(address(), "PING");
        if (ping == "PONG" || ping.find("NOAUTH") != std::string::npos) {
          pid_ = pid;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      if (pid_ <= 0) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
    }
    EXPECT_GT(pid_, 0) << "redis-server did not start";
  }
  ~PlainRedis() { Stop(); }
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int port_ = 0;
  pid_t pid_ = 0;
};

}  // namespace turbine::testing
