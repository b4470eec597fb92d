// shared_machine.h — one real turbined with its own data dir, as if on its own machine,
// on a shared cache; for the tests of the shared tier across daemons.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../daemon/daemon_process.h"
#include "../storage/temp_dir.h"
#include "turbine/client/client.h"

namespace turbine::testing {

namespace v1 = turbine::v1;

// Namespace is a shared-cache namespace no other test (or run) uses.
inline std::string Namespace() {
  const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string(test->name()) + "-" + std::to_string(getpid()) + "-" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
}

// Machine is one turbined with its own data dir, and a client of it.
class Machine {
 public:
  Machine(const std::string& url, const std::string& name_space, const std::string& mode,
          std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--data-dir",
                                     dir_.str(),
                                     "--shared-cache",
                                     url,
                                     "--shared-cache-namespace",
                                     name_space,
                                     "--shared-cache-mode",
                                     mode};
    // A loaded machine (the suite runs two tests at once, some starting several daemons)
    // can keep a node from answering within the daemon's default 50 ms, and a publish
    // that times out is dropped, as a cache may: a test that is not about the timeout
    // gives it room, or its traces are not published at all (published 0 of 1 in 20 s).
    if (std::find(extra.begin(), extra.end(), "--shared-cache-timeout-ms") == extra.end()) {
      args.insert(args.end(), {"--shared-cache-timeout-ms", "2000"});
    }
    args.insert(args.end(), extra.begin(), extra.end());
    started_ = daemon_.Start(args);
    EXPECT_TRUE(started_) << daemon_.log();
    auto client = client::Client::Connect({.address = daemon_.address()});
    EXPECT_TRUE(client.ok()) << client.status();
    if (client.ok()) client_ = std::move(*client);
  }
  ~Machine() {
    if (started_) {
      EXPECT_EQ(daemon_.Stop(SIGTERM), 0) << daemon_.log();
    }
  }

  // Call calls `function`; with `this_ref`, a method on the task it names.
  client::CallResult Call(const std::string& function, std::vector<v1::Value> args,
                          std::optional<v1::TaskRef> this_ref = {}) {
    absl::StatusOr<client::CallResult> result =
        client_->Call(function, std::move(args), std::move(this_ref));
    if (!result.ok()) {
      ADD_FAILURE() << function << ": " << result.status();
      client::CallResult failed;
      failed.value = result.status();
      return failed;
    }
    EXPECT_TRUE(result->value.ok()) << function << ": " << result->value.status();
    return *result;
  }
  void Set(std::vector<std::pair<std::string, v1::Value>> inputs) {
    absl::StatusOr<uint32_t> set = client_->SetInputs(std::move(inputs));
    ASSERT_TRUE(set.ok()) << set.status();
  }
  v1::StatsReply Stats() {
    absl::StatusOr<v1::StatsReply> stats = client_->Stats();
    EXPECT_TRUE(stats.ok()) << stats.status();
    return stats.ok() ? *stats : v1::StatsReply();
  }
  uint64_t Executions(const std::string& function) {
    const v1::StatsReply stats = Stats();
    for (const v1::FunctionStats& fn : stats.functions()) {
      if (fn.name() == function) return fn.executions();
    }
    return 0;
  }
  // WaitPublished waits until `n` traces were published and none waits.
  void WaitPublished(uint64_t n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      const v1::StatsReply stats = Stats();
      if (stats.shared_published() >= n && stats.shared_publish_queue() == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    const v1::StatsReply stats = Stats();
    ADD_FAILURE() << "published " << stats.shared_published() << " of " << n << ", dropped "
                  << stats.shared_publish_dropped() << "\n"
                  << daemon_.log();
  }
  // Why and Graph of a call, as `turbine why` and `turbine graph` ask.
  v1::WhyReply Why(const std::string& function, std::vector<v1::Value> args) {
    v1::WhyRequest request;
    *request.mutable_call() = client::MakeCallRequest(function, std::move(args));
    absl::StatusOr<v1::WhyReply> why = client_->Why(request);
    EXPECT_TRUE(why.ok()) << why.status();
    return why.ok() ? *why : v1::WhyReply();
  }
  v1::GraphReply Graph(const std::string& function, std::vector<v1::Value> args) {
    v1::GraphRequest request;
    *request.mutable_call() = client::MakeCallRequest(function, std::move(args));
    absl::StatusOr<v1::GraphReply> graph = client_->Graph(request);
    EXPECT_TRUE(graph.ok()) << graph.status();
    return graph.ok() ? *graph : v1::GraphReply();
  }
  // WaitForLog waits until the daemon logged a line containing `marker`.
  bool WaitForLog(const std::string& marker) { return daemon_.WaitForLog(marker); }
  const std::string& log() const { return daemon_.log(); }
  // PumpLog reads what the daemon logs for `duration` (log() has only what was read).
  void PumpLog(std::chrono::milliseconds duration) { daemon_.PumpLog(duration); }

 private:
  TempDir dir_;
  DaemonProcess daemon_;
  bool started_ = false;
  std::unique_ptr<client::Client> client_;
};

}  // namespace turbine::testing
