// redis_test_env.h — the real Redis servers the shared-tier tests run against.
//
// ClusterSeeds: the cluster the ctest fixture `redis_cluster` started (tests/shared/
// redis_cluster; its directory in TURBINE_TEST_REDIS_CLUSTER_DIR). PlainRedis: one
// redis-server without cluster mode, started by the test on a free loopback port.
// RedisCli runs redis-cli, for what the tests do to the servers behind the client's back.
// OwnCluster: a cluster a test starts for itself, to kill its nodes (failover tests).
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
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <sstream>
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
  // Signal sends `signal` to the server (SIGSTOP: it takes connections, and answers
  // nothing, as behind a network partition; SIGCONT ends that).
  void Signal(int signal) {
    if (pid_ > 0) kill(pid_, signal);
  }

 private:
  int port_ = 0;
  pid_t pid_ = 0;
};

// WaitFor polls `condition` until it holds or `limit` passed; returns whether it held.
inline bool WaitFor(const std::function<bool()>& condition,
                    std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

// OwnCluster is a Redis Cluster (3 primaries, 3 replicas) that one test starts for itself
// with tests/shared/redis_cluster, so that it may kill its nodes without harming the
// `redis_cluster` fixture the other tests share. Its nodes' cluster-node-timeout is short, so
// a killed primary's replica takes over within a few seconds. The destructor stops it; should
// the test die first, the ctest cleanup fixture `own_redis_clusters` stops whatever is left
// in TURBINE_TEST_OWN_CLUSTERS_DIR. The script's path: TURBINE_REDIS_CLUSTER_SCRIPT.
class OwnCluster {
 public:
  OwnCluster(const std::string& name, int node_timeout_ms) {
#ifdef TURBINE_REDIS_CLUSTER_SCRIPT
    script_ = TURBINE_REDIS_CLUSTER_SCRIPT;
#endif
    const char* base = std::getenv("TURBINE_TEST_OWN_CLUSTERS_DIR");
    if (base == nullptr || script_.empty()) {
      ADD_FAILURE() << "TURBINE_TEST_OWN_CLUSTERS_DIR or TURBINE_REDIS_CLUSTER_SCRIPT unset";
      return;
    }
    dir_ = std::string(base) + "/" + name + "-" + std::to_string(getpid());
    const std::string command = script_ + " start " + dir_ + " --node-timeout " +
                                std::to_string(node_timeout_ms) + " >" + dir_ + ".log 2>&1";
    std::filesystem::create_directories(base);
    const int status = std::system(command.c_str());
    std::ifstream log(dir_ + ".log");
    const std::string output((std::istreambuf_iterator<char>(log)), {});
    EXPECT_EQ(status, 0) << output;
    if (status != 0) return;
    std::ifstream seeds(dir_ + "/seeds");
    std::string line;
    std::getline(seeds, line);
    nodes_ = SplitSeeds(line);
    std::ifstream pids(dir_ + "/pids");
    for (pid_t pid; pids >> pid;) pids_.push_back(pid);
    EXPECT_EQ(nodes_.size(), 6u);
    EXPECT_EQ(pids_.size(), nodes_.size());
  }
  ~OwnCluster() { Stop(); }
  OwnCluster(const OwnCluster&) = delete;
  OwnCluster& operator=(const OwnCluster&) = delete;

  bool started() const { return nodes_.size() == 6 && pids_.size() == nodes_.size(); }
  // Every node, "127.0.0.1:PORT".
  const std::vector<std::string>& nodes() const { return nodes_; }
  std::string url() const {
    std::string url = "redis://";
    for (const std::string& node : nodes_) url += (url.size() > 8 ? "," : "") + node;
    return url;
  }

  // Kill ends a node's redis-server with SIGKILL: a crash, nothing flushed or said.
  void Kill(const std::string& node) {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (nodes_[i] == node && pids_[i] > 0) {
        EXPECT_EQ(kill(pids_[i], SIGKILL), 0);
        pids_[i] = 0;
      }
    }
  }
  bool Alive(const std::string& node) const {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (nodes_[i] == node) return pids_[i] > 0;
    }
    return false;
  }
  // Role is the first line of ROLE: "master" or "slave" (or an error).
  static std::string Role(const std::string& node) {
    const std::vector<std::string> lines = Lines(RedisCli(node, "ROLE"));
    return lines.empty() ? "" : lines[0];
  }
  std::vector<std::string> Primaries() const {
    std::vector<std::string> out;
    for (const std::string& node : nodes_) {
      if (Alive(node) && Role(node) == "master") out.push_back(node);
    }
    return out;
  }
  // Healthy: every live node says cluster_state:ok and `primaries` of them are primaries.
  bool Healthy(size_t primaries) const {
    for (const std::string& node : nodes_) {
      if (Alive(node) &&
          RedisCli(node, "CLUSTER INFO").find("cluster_state:ok") == std::string::npos) {
        return false;
      }
    }
    return Primaries().size() == primaries;
  }
  // ReplicasInSync: every live replica is connected to its primary and has processed all
  // it was sent (its offset equals the primary's), so a failover loses nothing.
  bool ReplicasInSync() const {
    for (const std::string& node : nodes_) {
      if (!Alive(node)) continue;
      // A replica's ROLE: slave, primary host, primary port, link state, offset.
      const std::vector<std::string> role = Lines(RedisCli(node, "ROLE"));
      if (role.empty() || role[0] != "slave") continue;
      if (role.size() < 5 || role[3] != "connected") return false;
      const std::vector<std::string> primary = Lines(RedisCli(role[1] + ":" + role[2], "ROLE"));
      if (primary.size() < 2 || primary[1] != role[4]) return false;
    }
    return true;
  }
  // ReplicaOf is the live replica of `primary` ("" if none).
  std::string ReplicaOf(const std::string& primary) const {
    for (const std::string& node : nodes_) {
      const std::vector<std::string> role = Lines(RedisCli(node, "ROLE"));
      if (Alive(node) && role.size() >= 3 && role[0] == "slave" &&
          role[1] + ":" + role[2] == primary) {
        return node;
      }
    }
    return "";
  }
  // InfoField is a numeric field of `INFO` on `node` (e.g. "keyspace_hits"); 0 if absent.
  static uint64_t InfoField(const std::string& node, const std::string& field) {
    for (const std::string& line : Lines(RedisCli(node, "INFO"))) {
      if (line.rfind(field + ":", 0) == 0) return std::stoull(line.substr(field.size() + 1));
    }
    return 0;
  }
  // Keys counts the keys on `node` that match `pattern`.
  static size_t Keys(const std::string& node, const std::string& pattern) {
    return Lines(RedisCli(node, "--scan --pattern '" + pattern + "'")).size();
  }

  void Stop() {
    if (dir_.empty()) return;
    const std::string command = script_ + " stop " + dir_ + " >/dev/null 2>&1";
    EXPECT_EQ(std::system(command.c_str()), 0);
    std::filesystem::remove(dir_ + ".log");
    dir_.clear();
    for (pid_t& pid : pids_) pid = 0;
  }

 private:
  std::string script_;
  std::string dir_;
  std::vector<std::string> nodes_;
  std::vector<pid_t> pids_;  // 0: killed
};

}  // namespace turbine::testing
