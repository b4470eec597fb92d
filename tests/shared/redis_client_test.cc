// RedisClient against real servers: the cluster of the `redis_cluster` fixture (3 primaries,
// 3 replicas) and plain redis-server processes started here.
#include "turbine/shared/redis_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <vector>

#include "redis_test_env.h"
#include "turbine/shared/key_slot.h"

namespace turbine::shared {
namespace {

using testing::ClusterSeeds;
using testing::PlainRedis;
using testing::RedisCli;
using testing::SplitSeeds;

std::string Unique(const std::string& name) {
  return "redis-client-test:" + std::to_string(getpid()) + ":" + name;
}

std::unique_ptr<RedisClient> ConnectToCluster(
    std::chrono::milliseconds timeout = std::chrono::milliseconds(2000)) {
  const std::string seeds = ClusterSeeds();
  EXPECT_FALSE(seeds.empty()) << "the redis_cluster fixture did not run";
  auto client = RedisClient::Connect({.seeds = SplitSeeds(seeds), .timeout = timeout});
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? std::move(*client) : nullptr;
}

TEST(ParseRedisUrl, SeedsAndErrors) {
  auto seeds = ParseRedisUrl("redis://10.0.0.1:7000,db.local:7001");
  ASSERT_TRUE(seeds.ok()) << seeds.status();
  EXPECT_EQ(*seeds, (std::vector<std::string>{"10.0.0.1:7000", "db.local:7001"}));
  EXPECT_EQ(ParseRedisUrl("http://x:1").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseRedisUrl("redis://x").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseRedisUrl("redis://x:0").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseRedisUrl("redis://x:1,").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(RedisClusterClient, DiscoversThreePrimaries) {
  auto client = ConnectToCluster();
  ASSERT_NE(client, nullptr);
  EXPECT_TRUE(client->cluster_mode());
  EXPECT_EQ(client->Primaries().size(), 3u);
}

TEST(RedisClusterClient, PipelinesOneRoundTripPerNode) {
  auto client = ConnectToCluster();
  ASSERT_NE(client, nullptr);
  std::vector<std::pair<std::string, std::string>> entries;
  std::vector<std::string> keys;
  for (int i = 0; i < 200; ++i) {
    keys.push_back(Unique("k" + std::to_string(i)));
    entries.emplace_back(keys.back(), "value-" + std::to_string(i));
  }
  keys.push_back(Unique("binary"));
  entries.emplace_back(keys.back(), std::string("a\0b\r\n", 5));
  keys.push_back(Unique("absent"));
  ASSERT_TRUE(client->MultiSet(entries).ok());
  const uint64_t before = client->counters().round_trips;
  auto values = client->MultiGet(keys);
  ASSERT_TRUE(values.ok()) << values.status();
  // 200 keys spread over every primary: exactly one round trip to each (no redirects).
  EXPECT_EQ(client->counters().round_trips - before, 3u);
  ASSERT_EQ(values->size(), keys.size());
  for (int i = 0; i < 201; ++i) {
    ASSERT_TRUE((*values)[i].has_value());
    EXPECT_EQ(*(*values)[i], entries[i].second);  // the last one binary
  }
  EXPECT_FALSE(values->back().has_value());
  // Each key really is where the cluster says (redis-cli asks the node owning the slot).
  EXPECT_EQ(RedisCli(SplitSeeds(ClusterSeeds())[0], "-c GET " + keys[7]), "value-7");
}

// NodeId is the cluster id of the node at `address`.
std::string NodeId(const std::string& address) { return RedisCli(address, "CLUSTER MYID"); }

TEST(RedisClusterClient, FollowsAskDuringMigrationAndMovedAfterIt) {
  auto client = ConnectToCluster();
  ASSERT_NE(client, nullptr);
  const std::string key = Unique("{migrating}");
  ASSERT_TRUE(client->MultiSet({{key, "here"}}).ok());
  const int slot = KeySlot(key);
  // Who owns the slot now, and another primary to move it to.
  std::string source;
  for (const std::string& primary : client->Primaries()) {
    if (RedisCli(primary, "CLUSTER COUNTKEYSINSLOT " + std::to_string(slot)) != "0") {
      source = primary;
    }
  }
  ASSERT_FALSE(source.empty());
  std::string target;
  for (const std::string& primary : client->Primaries()) {
    if (primary != source) target = primary;
  }
  const std::string s = std::to_string(slot);
  ASSERT_EQ(RedisCli(target, "CLUSTER SETSLOT " + s + " IMPORTING " + NodeId(source)), "OK");
  ASSERT_EQ(RedisCli(source, "CLUSTER SETSLOT " + s + " MIGRATING " + NodeId(target)), "OK");
  const std::string target_port = target.substr(target.rfind(':') + 1);
  ASSERT_EQ(RedisCli(source, "MIGRATE 127.0.0.1 " + target_port + " " + key + " 0 5000"), "OK");

  // The key has left the source, the slot has not: the source answers ASK.
  uint64_t redirects = client->counters().redirects;
  auto during = client->MultiGet({key});
  ASSERT_TRUE(during.ok()) << during.status();
  ASSERT_TRUE((*during)[0].has_value());
  EXPECT_EQ(*(*during)[0], "here");
  EXPECT_EQ(client->counters().redirects, redirects + 1);

  // The slot moves for good: every node is told (not waiting for gossip).
  for (const std::string& node : SplitSeeds(ClusterSeeds())) {
    RedisCli(node, "CLUSTER SETSLOT " + s + " NODE " + NodeId(target));
  }
  redirects = client->counters().redirects;
  auto after = client->MultiGet({key});
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_TRUE((*after)[0].has_value());
  EXPECT_EQ(*(*after)[0], "here");
  EXPECT_EQ(client->counters().redirects, redirects + 1);  // one MOVED
  // The map was read again: the next call goes straight to the new owner.
  redirects = client->counters().redirects;
  ASSERT_TRUE(client->MultiGet({key}).ok());
  EXPECT_EQ(client->counters().redirects, redirects);
}

// HangingListener is a loopback port whose connects hang: its accept queue is full, and the
// kernel drops new handshakes, as a host gone from the network does.
class HangingListener {
 public:
  HangingListener() {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (bind(listener_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        listen(listener_, 0) != 0 ||
        getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      ADD_FAILURE() << "cannot listen on loopback";
      return;
    }
    port_ = ntohs(address.sin_port);
    for (int& filler : fillers_) {  // never accepted: they fill the queue
      filler = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      connect(filler, reinterpret_cast<sockaddr*>(&address), length);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // their handshakes
  }
  ~HangingListener() {
    for (int filler : fillers_) close(filler);
    close(listener_);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int listener_ = -1;
  int port_ = 0;
  int fillers_[2] = {-1, -1};
};

// A seed whose connect hangs, first in the list, costs the refresh that found it so, not
// every one after it. Before, each refresh of the slot map tried it first, spent the
// lookup's whole timeout there, and the live seeds after it never got their turn.
TEST(RedisClusterClient, ASeedThatHangsFirstInTheListIsAskedLastAfterwards) {
  HangingListener hanging;
  std::vector<std::string> seeds = {hanging.address()};
  for (const std::string& seed : SplitSeeds(ClusterSeeds())) seeds.push_back(seed);
  const auto retry_after = std::chrono::milliseconds(200);
  auto client = RedisClient::Connect({.seeds = seeds,
                                      .timeout = std::chrono::milliseconds(1500),
                                      .retry_after = retry_after,
                                      .connect_lazily = true});
  ASSERT_TRUE(client.ok()) << client.status();  // lazily: its refresh ran out on the seed
  // Later than any pause the client keeps: the seed must still be asked last.
  std::this_thread::sleep_for(retry_after * 3);
  EXPECT_TRUE((*client)->MultiSet({{Unique("hanging-seed"), "v"}}).ok());
  auto values = (*client)->MultiGet({Unique("hanging-seed")});
  ASSERT_TRUE(values.ok()) << values.status();
  EXPECT_EQ((*values)[0], "v");
}

// A client that never read the slot map says why when it is used. Before: only "no node
// serves this key's slot", which hid a seed that did not resolve or answer.
TEST(RedisClusterClient, AnUnreadableSlotMapIsSaidWhyWhenUsed) {
  int closed_port = 0;
  {
    const int probe = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    ASSERT_EQ(bind(probe, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    ASSERT_EQ(getsockname(probe, reinterpret_cast<sockaddr*>(&address), &length), 0);
    closed_port = ntohs(address.sin_port);
    close(probe);  // nothing listens there now
  }
  auto client = RedisClient::Connect({.seeds = {"127.0.0.1:" + std::to_string(closed_port)},
                                      .timeout = std::chrono::milliseconds(500),
                                      .connect_lazily = true});
  ASSERT_TRUE(client.ok()) << client.status();
  auto values = (*client)->MultiGet({Unique("unreadable-map")});
  ASSERT_FALSE(values.ok());
  EXPECT_EQ(values.status().code(), absl::StatusCode::kUnavailable) << values.status();
  // Never read, it may as well be one plain Redis: not "the cluster's slot map" (which it
  // said), nor any slot.
  EXPECT_NE(values.status().message().find("no Redis has answered yet"), std::string::npos)
      << values.status();
  EXPECT_EQ(values.status().message().find("cluster"), std::string::npos) << values.status();
  EXPECT_NE(values.status().message().find("refused"), std::string::npos) << values.status();
}

// Stop ends a call waiting on a server that stopped answering, and opens no new connection,
// whose connect could wait out the call's deadline behind a partition. Before, the cut round
// trip read the slot map again, connecting anew, and the call took its whole timeout (20 s
// here). The server accepts one connection and never answers; then its queue is filled, so
// that a new connect is never answered, as behind a partition.
TEST(RedisPlainClient, StopEndsAWaitingCallWithoutConnectingAgain) {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(listen(listener, 1), 0);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
  // Two connections: Connect's, which reads no slot map and is closed, then the call's.
  std::vector<int> accepted;
  std::thread server([&] {
    while (accepted.size() < 2) accepted.push_back(accept(listener, nullptr, nullptr));
  });
  auto client =
      RedisClient::Connect({.seeds = {"127.0.0.1:" + std::to_string(ntohs(address.sin_port))},
                            .timeout = std::chrono::seconds(20),
                            .connect_lazily = true});
  ASSERT_TRUE(client.ok()) << client.status();
  absl::Status result;
  std::chrono::steady_clock::duration took{};
  std::thread call([&] {
    const auto start = std::chrono::steady_clock::now();
    result = (*client)->MultiGet({Unique("stopped")}).status();
    took = std::chrono::steady_clock::now() - start;
  });
  server.join();             // the client is connected, waiting for the slot map
  std::vector<int> fillers;  // the queue full: a new connect gets no answer
  for (int i = 0; i < 4; ++i) {
    const int filler = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    (void)connect(filler, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    fillers.push_back(filler);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  (*client)->Stop();
  call.join();
  EXPECT_EQ(result.code(), absl::StatusCode::kCancelled) << result;
  EXPECT_LT(took, std::chrono::seconds(10)) << "the call waited for its deadline after Stop";
  // And every call after it fails at once, the same way.
  EXPECT_EQ((*client)->MultiGet({Unique("after")}).status().code(), absl::StatusCode::kCancelled);
  for (int fd : fillers) close(fd);
  for (int fd : accepted) close(fd);
  close(listener);
}

TEST(RedisPlainClient, OneServerWithoutClusterMode) {
  PlainRedis redis;
  auto client = RedisClient::Connect({.seeds = {redis.address()}});
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_FALSE((*client)->cluster_mode());
  EXPECT_EQ((*client)->Primaries(), std::vector<std::string>{redis.address()});
  ASSERT_TRUE((*client)->MultiSet({{"a", "1"}, {"b", "2"}}).ok());
  auto values = (*client)->MultiGet({"b", "a", "c"});
  ASSERT_TRUE(values.ok()) << values.status();
  EXPECT_EQ((*values)[0], "2");
  EXPECT_EQ((*values)[1], "1");
  EXPECT_FALSE((*values)[2].has_value());
  EXPECT_EQ(RedisCli(redis.address(), "GET a"), "1");
}

// With max_value_bytes, a value larger than that is read only to one byte past it: before,
// a 60 MiB value crossed the network whole (290 ms, 60 MiB of memory) to be ignored.
TEST(RedisPlainClient, ValuesAreReadUpToTheirBound) {
  PlainRedis redis;
  auto client = RedisClient::Connect({.seeds = {redis.address()}, .max_value_bytes = 100});
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)
                  ->MultiSet({{"small", "12345"},
                              {"exact", std::string(100, 'e')},
                              {"large", std::string(5000, 'x')},
                              {"empty", ""}})
                  .ok());
  auto values = (*client)->MultiGet({"small", "exact", "large", "missing", "empty"});
  ASSERT_TRUE(values.ok()) << values.status();
  EXPECT_EQ((*values)[0], "12345");
  EXPECT_EQ((*values)[1], std::string(100, 'e'));
  EXPECT_EQ((*values)[2], std::string(101, 'x'));  // one byte more: larger than the bound
  EXPECT_FALSE((*values)[3].has_value());
  EXPECT_FALSE((*values)[4].has_value());  // GETRANGE cannot tell it from a missing key
}

// A key holding a hash where a value was expected is foreign data, not a cluster that
// failed: before, the whole call failed UNAVAILABLE ("shared cache: WRONGTYPE ...") and the
// daemon logged the cache as unavailable.
TEST(RedisPlainClient, AKeyOfAnotherTypeReadsAsItsErrorText) {
  PlainRedis redis;
  RedisCli(redis.address(), "HSET other field value");
  for (size_t most : {size_t{0}, size_t{100}}) {
    auto client = RedisClient::Connect({.seeds = {redis.address()}, .max_value_bytes = most});
    ASSERT_TRUE(client.ok()) << client.status();
    ASSERT_TRUE((*client)->MultiSet({{"plain", "v"}}).ok());
    auto values = (*client)->MultiGet({"plain", "other"});
    ASSERT_TRUE(values.ok()) << values.status();
    EXPECT_EQ((*values)[0], "v");
    ASSERT_TRUE((*values)[1].has_value());
    EXPECT_TRUE((*values)[1]->starts_with("WRONGTYPE")) << *(*values)[1];
  }
}

// The users deploy/redis-cluster/users.acl defines may do what turbined does with them:
// the writer sets and reads, the reader reads (with GETRANGE: before it was allowed there,
// every lookup failed NOPERM and counted as the cache being down) and cannot write.
TEST(RedisPlainClient, TheShippedAclAllowsWhatTurbinedDoes) {
  PlainRedis redis(std::string("--aclfile ") + TURBINE_SOURCE_DIR +
                   "/deploy/redis-cluster/users.acl");
  const std::string key = "turbine:myproject:v3:a";
  auto writer = RedisClient::Connect({.seeds = {redis.address()},
                                      .user = "myproject-ci",
                                      .password = "CHANGE-ME-ci-password",
                                      .max_value_bytes = 100});
  ASSERT_TRUE(writer.ok()) << writer.status();
  const std::string big = "turbine:myproject:v3:big";
  ASSERT_TRUE((*writer)->MultiSet({{key, "record"}, {big, std::string(5000, 'x')}}).ok());
  auto reader = RedisClient::Connect({.seeds = {redis.address()},
                                      .user = "myproject-dev",
                                      .password = "CHANGE-ME-dev-password",
                                      .max_value_bytes = 100});
  ASSERT_TRUE(reader.ok()) << reader.status();
  for (RedisClient* client : {writer->get(), reader->get()}) {
    auto values = client->MultiGet({key, "turbine:myproject:v3:missing", big});
    ASSERT_TRUE(values.ok()) << values.status();
    EXPECT_EQ((*values)[0], "record");
    EXPECT_FALSE((*values)[1].has_value());
    EXPECT_EQ((*values)[2], std::string(101, 'x')) << "read whole: GETRANGE was refused";
  }
  EXPECT_FALSE((*reader)->MultiSet({{key, "forged"}}).ok());
}

// A user allowed GET but not GETRANGE (made for turbined before it read with GETRANGE):
// whole values are read, from the first refusal on.
TEST(RedisPlainClient, AUserAllowedGetAloneReadsWholeValues) {
  PlainRedis redis;
  RedisCli(redis.address(), "ACL SETUSER getonly on '>pw' '~*' -@all +get +set +cluster\\|slots +ping");
  auto client = RedisClient::Connect(
      {.seeds = {redis.address()}, .user = "getonly", .password = "pw", .max_value_bytes = 100});
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->MultiSet({{"small", "12345"}, {"large", std::string(5000, 'x')}}).ok());
  for (int round = 0; round < 2; ++round) {
    auto values = (*client)->MultiGet({"small", "large", "missing"});
    ASSERT_TRUE(values.ok()) << values.status();
    EXPECT_EQ((*values)[0], "12345");
    EXPECT_EQ((*values)[1], std::string(5000, 'x'));
    EXPECT_FALSE((*values)[2].has_value());
  }
}

TEST(RedisPlainClient, PasswordIsSentAndAWrongOneRefused) {
  PlainRedis redis("--requirepass sesame");
  auto good = RedisClient::Connect({.seeds = {redis.address()}, .password = "sesame"});
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_TRUE((*good)->MultiSet({{"x", "y"}}).ok());
  auto bad = RedisClient::Connect({.seeds = {redis.address()}, .password = "wrong"});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kPermissionDenied) << bad.status();
  auto none = RedisClient::Connect({.seeds = {redis.address()}});
  EXPECT_FALSE(none.ok());
}

TEST(RedisPlainClient, ReconnectsAfterTheServerDroppedTheConnection) {
  PlainRedis redis;
  auto client = RedisClient::Connect(
      {.seeds = {redis.address()}, .retry_after = std::chrono::milliseconds(1)});
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->MultiSet({{"k", "v"}}).ok());
  EXPECT_NE(RedisCli(redis.address(), "CLIENT KILL TYPE normal"), "0");
  // The first call may find the closed connection; a later one reconnects.
  absl::StatusOr<std::vector<std::optional<std::string>>> values;
  for (int i = 0; i < 100; ++i) {
    values = (*client)->MultiGet({"k"});
    if (values.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(values.ok()) << values.status();
  EXPECT_EQ((*values)[0], "v");
  EXPECT_EQ((*client)->counters().reconnects, 1u);
}

TEST(RedisPlainClient, AStoppedServerCostsOneTimeoutThenFailsFast) {
  PlainRedis redis;
  const auto timeout = std::chrono::milliseconds(100);
  auto client = RedisClient::Connect(
      {.seeds = {redis.address()}, .timeout = timeout, .retry_after = std::chrono::seconds(60)});
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->MultiSet({{"k", "v"}}).ok());
  // SIGSTOP: the connection stays open and nothing answers, as with a hung server.
  const std::string pid = RedisCli(redis.address(), "INFO server | grep process_id");
  const int server_pid = std::stoi(pid.substr(pid.find(':') + 1));
  ASSERT_EQ(kill(server_pid, SIGSTOP), 0);
  auto start = std::chrono::steady_clock::now();
  auto values = (*client)->MultiGet({"k"});
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(values.ok());
  EXPECT_GE(elapsed, timeout);
  EXPECT_LT(elapsed, timeout * 3);
  start = std::chrono::steady_clock::now();
  EXPECT_EQ((*client)->MultiGet({"k"}).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(10));
  kill(server_pid, SIGCONT);
}

// A server that asks for a password and stopped answering for a while (SIGSTOP) is used
// again once it answers. Before, a connect made when the call's deadline had passed (the
// slot-map refresh before it had taken the rest) was kept open without AUTH, which could
// not be sent in time: every later command was answered NOAUTH, and nothing connected
// again (three of three runs; the default 50 ms timeout).
TEST(RedisPlainClient, APasswordServerThatStoppedAnsweringIsUsedAgain) {
  PlainRedis redis("--requirepass sesame");
  auto client = RedisClient::Connect({.seeds = {redis.address()},
                                      .password = "sesame",
                                      .retry_after = std::chrono::milliseconds(1)});
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->MultiSet({{"k", "v"}}).ok());
  const std::string pid =
      RedisCli(redis.address(), "--no-auth-warning -a sesame INFO server | grep process_id");
  const int server_pid = std::stoi(pid.substr(pid.find(':') + 1));
  for (int spell = 0; spell < 3; ++spell) {
    ASSERT_EQ(kill(server_pid, SIGSTOP), 0);
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(700);
    while (std::chrono::steady_clock::now() < until) (void)(*client)->MultiGet({"k"});
    kill(server_pid, SIGCONT);
    absl::StatusOr<std::vector<std::optional<std::string>>> values;
    until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (std::chrono::steady_clock::now() < until) {
      values = (*client)->MultiGet({"k"});
      if (values.ok()) break;
    }
    ASSERT_TRUE(values.ok()) << "spell " << spell << ": " << values.status();
    EXPECT_EQ((*values)[0], "v");
  }
}

}  // namespace
}  // namespace turbine::shared
