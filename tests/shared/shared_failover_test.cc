// Failover on a real Redis Cluster: a primary's redis-server killed (SIGKILL) while clients and
// daemons use it, its replica taking over, then the whole cluster gone. Each test starts its
// own cluster (OwnCluster, cluster-node-timeout 1 s) so that killing nodes harms no other
// test; the waits are on the cluster's own state (ROLE, CLUSTER INFO), never on the clock.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "../server/requests.h"
#include "redis_test_env.h"
#include "shared_machine.h"
#include "turbine/shared/redis_client.h"

namespace turbine::testing {
namespace {

using shared::RedisClient;
using std::chrono::milliseconds;

constexpr int kNodeTimeoutMs = 1000;

// Victim is the primary holding the most keys that match `pattern`: the one whose loss
// hurts most.
std::string Victim(const OwnCluster& cluster, const std::string& pattern) {
  std::string victim;
  size_t most = 0;
  for (const std::string& node : cluster.Primaries()) {
    const size_t keys = OwnCluster::Keys(node, pattern);
    if (keys > most) {
      most = keys;
      victim = node;
    }
  }
  return victim;
}

// The bug this guards against: after a primary died, a client read the slot map while the
// cluster had not yet noticed (it still named the dead primary), failed to connect there,
// and never read the map again: nobody redirects a client from a node it cannot reach, so
// the slots stayed lost after the replica took over.
TEST(RedisClusterFailover, TheClientFollowsTheReplicaThatTookOver) {
  OwnCluster cluster("client-failover", kNodeTimeoutMs);
  ASSERT_TRUE(cluster.started());
  auto connected = RedisClient::Connect(
      {.seeds = cluster.nodes(), .timeout = milliseconds(1000), .retry_after = milliseconds(50)});
  ASSERT_TRUE(connected.ok()) << connected.status();
  RedisClient& client = **connected;

  std::vector<std::pair<std::string, std::string>> entries;
  for (int i = 0; i < 60; ++i) {
    entries.emplace_back("failover:k" + std::to_string(i), "v" + std::to_string(i));
  }
  ASSERT_TRUE(client.MultiSet(entries).ok());
  ASSERT_TRUE(WaitFor([&] { return cluster.ReplicasInSync(); }));
  const std::string victim = Victim(cluster, "failover:*");
  const std::string heir = cluster.ReplicaOf(victim);
  ASSERT_FALSE(heir.empty());
  std::vector<std::string> lost_keys = Lines(RedisCli(victim, "--scan --pattern 'failover:*'"));
  ASSERT_FALSE(lost_keys.empty());
  ASSERT_TRUE(client.MultiGet(lost_keys).ok());  // a connection to the victim is open

  cluster.Kill(victim);
  // Until the cluster notices (a node timeout at least), the victim's slots are unreachable
  // and the slot map the survivors give still names it. Calls fail, and one of them reads
  // that stale map.
  const uint64_t refreshes = client.counters().slot_refreshes;
  ASSERT_TRUE(WaitFor([&] {
    EXPECT_FALSE(client.MultiGet(lost_keys).ok());
    return client.counters().slot_refreshes > refreshes;
  }));
  ASSERT_EQ(OwnCluster::Role(heir), "slave") << "failover came before the stale map was read";

  ASSERT_TRUE(WaitFor([&] { return OwnCluster::Role(heir) == "master" && cluster.Healthy(3); }));
  // Reads of the lost slots resume on the new primary, with what was written before.
  absl::StatusOr<std::vector<std::optional<std::string>>> values;
  EXPECT_TRUE(
      WaitFor([&] { return (values = client.MultiGet(lost_keys)).ok(); }, milliseconds(10000)))
      << values.status();
  ASSERT_TRUE(values.ok());
  for (size_t i = 0; i < lost_keys.size(); ++i) {
    EXPECT_EQ((*values)[i], "v" + lost_keys[i].substr(lost_keys[i].find(":k") + 2));
  }
  // And writes go there too.
  ASSERT_TRUE(client.MultiSet({{lost_keys[0], "after"}}).ok());
  EXPECT_EQ(RedisCli(heir, "GET " + lost_keys[0]), "after");

  // The whole cluster gone: one timeout, then failing fast.
  cluster.Stop();
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(client.MultiGet(lost_keys).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(3000));
  start = std::chrono::steady_clock::now();
  EXPECT_EQ(client.MultiGet(lost_keys).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(10));
}

// A client idle while a primary died and its replica took over: its first call after
// reads the new slot map at once and is answered. It failed, and every call after it for
// the retry delay (about 2 s of lookups and publishes lost in a daemon).
TEST(RedisClusterFailover, AClientIdleThroughAFailoverIsAnsweredAtItsFirstCall) {
  OwnCluster cluster("idle-failover", kNodeTimeoutMs);
  ASSERT_TRUE(cluster.started());
  auto connected = RedisClient::Connect(
      {.seeds = cluster.nodes(), .timeout = milliseconds(1000), .retry_after = milliseconds(5000)});
  ASSERT_TRUE(connected.ok()) << connected.status();
  RedisClient& client = **connected;
  std::vector<std::pair<std::string, std::string>> entries;
  for (int i = 0; i < 60; ++i) {
    entries.emplace_back("idle:k" + std::to_string(i), "v" + std::to_string(i));
  }
  ASSERT_TRUE(client.MultiSet(entries).ok());
  ASSERT_TRUE(WaitFor([&] { return cluster.ReplicasInSync(); }));
  const std::string victim = Victim(cluster, "idle:*");
  const std::string heir = cluster.ReplicaOf(victim);
  ASSERT_FALSE(heir.empty());
  std::vector<std::string> lost_keys = Lines(RedisCli(victim, "--scan --pattern 'idle:*'"));
  ASSERT_FALSE(lost_keys.empty());
  ASSERT_TRUE(client.MultiGet(lost_keys).ok());  // a connection to the victim is open

  cluster.Kill(victim);
  ASSERT_TRUE(WaitFor([&] { return OwnCluster::Role(heir) == "master" && cluster.Healthy(3); }));
  absl::StatusOr<std::vector<std::optional<std::string>>> values = client.MultiGet(lost_keys);
  ASSERT_TRUE(values.ok()) << values.status();
  for (size_t i = 0; i < lost_keys.size(); ++i) {
    EXPECT_EQ((*values)[i], "v" + lost_keys[i].substr(lost_keys[i].find(":k") + 2));
  }
}

// WaitDrained waits until `machine` has no trace waiting to be published, and returns how
// many it published in all.
uint64_t WaitDrained(Machine& machine, uint64_t handled) {
  uint64_t published = 0;
  EXPECT_TRUE(WaitFor([&] {
    const v1::StatsReply stats = machine.Stats();
    published = stats.shared_published();
    return stats.shared_publish_queue() == 0 &&
           stats.shared_published() + stats.shared_publish_dropped() >= handled;
  }));
  return published;
}

TEST(SharedDaemonsFailover, AnswersStayCorrectThroughAFailoverAndLocalWhenTheClusterIsGone) {
  OwnCluster cluster("daemon-failover", kNodeTimeoutMs);
  ASSERT_TRUE(cluster.started());
  const std::string ns = Namespace();
  const std::string pattern = "turbine:" + ns + ":*";
  const std::vector<std::string> timeout = {"--shared-cache-timeout-ms", "1000"};
  Machine a(cluster.url(), ns, "readwrite", timeout);
  // Enough that lookups after the failover reach every primary many times over.
  constexpr int kShared = 300;
  for (int i = 0; i < kShared; ++i) {
    EXPECT_EQ(a.Call("demo.busy", {Int(i), Int(0)}).value.value_or(v1::Value()).int_value(), i);
  }
  a.WaitPublished(kShared);
  ASSERT_TRUE(WaitFor([&] { return cluster.ReplicasInSync(); }));
  Machine b(cluster.url(), ns, "read", timeout);
  EXPECT_EQ(b.Call("demo.busy", {Int(0), Int(0)}).source, v1::SOURCE_SHARED);

  const std::string victim = Victim(cluster, pattern);
  const std::string heir = cluster.ReplicaOf(victim);
  ASSERT_FALSE(heir.empty());
  const size_t lost = OwnCluster::Keys(victim, pattern);
  cluster.Kill(victim);

  // Through the failover, until the replica has taken over: every answer is right, from
  // the tier or computed here. (The daemons' clients read the slot map again meanwhile,
  // while the cluster still names the dead primary.)
  int next = 1;
  ASSERT_TRUE(WaitFor([&] {
    const client::CallResult on_b = b.Call("demo.busy", {Int(next), Int(0)});
    EXPECT_EQ(on_b.value.value_or(v1::Value()).int_value(), next);
    EXPECT_TRUE(on_b.source == v1::SOURCE_SHARED || on_b.source == v1::SOURCE_EXECUTED);
    const client::CallResult on_a = a.Call("demo.busy", {Int(1000 + next), Int(0)});
    EXPECT_EQ(on_a.value.value_or(v1::Value()).int_value(), 1000 + next);
    ++next;
    return OwnCluster::Role(heir) == "master" && cluster.Healthy(3);
  }));
  // Replication carried them over (a's publishes may have added to them since).
  EXPECT_GE(OwnCluster::Keys(heir, pattern), lost);

  // Lookups resume. Once b found a record on the new primary (its keyspace_hits grow: b is
  // the only reader), b's slot map names it, and every lookup after that must hit.
  const uint64_t heir_hits = OwnCluster::InfoField(heir, "keyspace_hits");
  const auto b_read_from_heir = [&] {
    if (next >= kShared) return false;
    const client::CallResult on_b = b.Call("demo.busy", {Int(next), Int(0)});
    EXPECT_EQ(on_b.value.value_or(v1::Value()).int_value(), next);
    ++next;
    return OwnCluster::InfoField(heir, "keyspace_hits") > heir_hits;
  };
  ASSERT_TRUE(WaitFor(b_read_from_heir)) << "b never read from the new primary\n" << b.log();
  ASSERT_LE(next, kShared - 60) << "too few traces left to look up after the failover";
  const uint64_t executed_before = b.Executions("demo.busy");
  for (; next < kShared; ++next) {
    const client::CallResult on_b = b.Call("demo.busy", {Int(next), Int(0)});
    EXPECT_EQ(on_b.value.value_or(v1::Value()).int_value(), next);
    EXPECT_EQ(on_b.source, v1::SOURCE_SHARED) << next;
  }
  EXPECT_EQ(b.Executions("demo.busy"), executed_before);

  // Publishing resumes. Once a record of a's landed on the new primary, a's slot map names
  // it, and every batch after that must land.
  uint64_t handled = a.Stats().shared_published() + a.Stats().shared_publish_dropped() +
                     a.Stats().shared_publish_queue();
  int fresh = 2000;
  WaitDrained(a, handled);
  const size_t heir_keys = OwnCluster::Keys(heir, pattern);
  const auto a_wrote_to_heir = [&] {
    a.Call("demo.busy", {Int(fresh++), Int(0)});
    WaitDrained(a, ++handled);
    return OwnCluster::Keys(heir, pattern) > heir_keys;
  };
  ASSERT_TRUE(WaitFor(a_wrote_to_heir)) << "a never wrote to the new primary\n" << a.log();
  const uint64_t published = a.Stats().shared_published();
  const int first_fresh = fresh;
  for (int i = 0; i < 30; ++i) a.Call("demo.busy", {Int(fresh++), Int(0)});
  EXPECT_EQ(WaitDrained(a, handled + 30), published + 30);
  EXPECT_GT(OwnCluster::Keys(heir, pattern), heir_keys);
  Machine c(cluster.url(), ns, "read", timeout);
  for (int i = first_fresh; i < fresh; ++i) {
    EXPECT_EQ(c.Call("demo.busy", {Int(i), Int(0)}).source, v1::SOURCE_SHARED) << i;
  }
  EXPECT_EQ(c.Executions("demo.busy"), 0u);

  // The whole cluster gone: b answers from its own work within the lookup timeout, and
  // then without waiting at all.
  cluster.Stop();
  const uint64_t errors = b.Stats().shared_errors();
  const auto start = std::chrono::steady_clock::now();
  const client::CallResult on_b = b.Call("demo.busy", {Int(first_fresh), Int(0)});
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(1000 + 1000));
  EXPECT_EQ(on_b.value.value_or(v1::Value()).int_value(), first_fresh);
  EXPECT_EQ(on_b.source, v1::SOURCE_EXECUTED);
  EXPECT_EQ(b.Stats().shared_errors(), errors + 1);
  const client::CallResult again = b.Call("demo.busy", {Int(first_fresh + 1), Int(0)});
  EXPECT_EQ(again.value.value_or(v1::Value()).int_value(), first_fresh + 1);
  EXPECT_LT(again.micros, 50000u);
}

}  // namespace
}  // namespace turbine::testing
