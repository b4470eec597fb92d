// redis_client.h — a small Redis Cluster client (on hiredis) for the shared cache tier.
//
//   auto client = turbine::shared::RedisClient::Connect(
//       {.seeds = {"127.0.0.1:7000", "127.0.0.1:7001"}, .timeout = std::chrono::milliseconds(50)});
//   auto values = (*client)->MultiGet({"a", "b"});   // one pipelined round trip per node
//
// Routing follows the Redis Cluster specification: the slot map comes from `CLUSTER SLOTS`
// asked of the seeds (the first that answers); each key goes to the primary serving its
// slot (key_slot.h); a `MOVED` reply updates the map (and the whole map is read again
// before the next call), an `ASK` reply sends that one command, after `ASKING`, to the
// node named. A server that is not in cluster mode answers `CLUSTER SLOTS` with an error:
// then it is one plain Redis holding every slot.
//
// Faults. Every round trip has a deadline (`timeout`, from the start of the call), connects
// included. A connection that fails is closed and opened again by a later call; after a
// call that reached no node at all, calls fail at once (`UNAVAILABLE`) for `retry_after`,
// so a dead cluster costs its callers nothing but a clock read. Nothing here retries
// beyond the redirects: the shared tier treats a failure as a miss.
//
// Thread-safety: safe from any thread. Each node's connection has its own mutex, held for
// one round trip; calls to different nodes run in parallel.
#pragma once

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace turbine::shared {

struct RedisOptions {
  std::vector<std::string> seeds{};       // "host:port" of cluster nodes (any), or of one Redis
  std::string user{};                     // ACL user for AUTH; empty: the default user
  std::string password{};                 // empty: no AUTH
  std::chrono::milliseconds timeout{50};  // per call, connects included
  std::chrono::milliseconds retry_after{1000};  // fail fast this long after losing every node
  int max_redirects = 5;
  // Connect succeeds even if no seed answers yet: the slot map is read by the first call
  // that finds one (a daemon must start while its cache is down).
  bool connect_lazily = false;
  // > 0: MultiGet reads at most this many bytes of a value and one more (GETRANGE), so a
  // caller that takes nothing larger can tell one is, without it crossing the network (a
  // value of 60 MiB took 290 ms and as much memory); an empty value then reads as none.
  // 0: whole values (GET). So too from the first time the server's ACL refuses GETRANGE
  // (a user made for GET alone): the read goes again as GET.
  size_t max_value_bytes = 0;
};

// ParseRedisUrl parses "redis://HOST:PORT[,HOST:PORT...]" into "host:port" seeds.
absl::StatusOr<std::vector<std::string>> ParseRedisUrl(std::string_view url);

class RedisClient {
 public:
  // Connect reads the slot map from the seeds. Fails (UNAVAILABLE) if none answers, unless
  // `connect_lazily`; PERMISSION_DENIED if the server refuses the credentials (or asks for
  // some), lazily or not.
  static absl::StatusOr<std::unique_ptr<RedisClient>> Connect(RedisOptions options);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // MultiGet returns each key's value (nullopt: no such key), in order. One pipelined
  // round trip per node (plus one per redirect). Any key that could not be read fails the
  // call. A key that holds another type than a string (a hash, say) is no failure of the
  // cluster: its value is Redis's error text (WRONGTYPE ...), which no caller takes for
  // one of its values.
  absl::StatusOr<std::vector<std::optional<std::string>>> MultiGet(
      const std::vector<std::string>& keys);
  // MultiSet stores every (key, value), pipelined like MultiGet.
  absl::Status MultiSet(const std::vector<std::pair<std::string, std::string>>& entries);
  // Delete removes the keys (absent ones are no error).
  absl::Status Delete(const std::vector<std::string>& keys);

  // Stop ends the client's use: calls from now on fail at once (CANCELLED), and those
  // waiting on a node return now (CANCELLED), not at their deadline; no connection is
  // opened after it. For a daemon that stops: a lookup waiting on a Redis that stopped
  // answering would hold its worker, and so the stop, for the whole timeout. A round trip
  // that was writing may then write to a socket shut down: the program must ignore SIGPIPE
  // (turbined does; gRPC servers need it anyway).
  void Stop();

  // Whether the server is a cluster (false: one plain Redis).
  bool cluster_mode() const;
  // The primaries the slot map names, "host:port", sorted.
  std::vector<std::string> Primaries() const;

  struct Counters {
    uint64_t round_trips = 0;
    uint64_t redirects = 0;       // MOVED and ASK replies followed
    uint64_t reconnects = 0;      // connections opened after the first to a node
    uint64_t slot_refreshes = 0;  // CLUSTER SLOTS read after Connect
  };
  Counters counters() const;

  class Impl;

 private:
  explicit RedisClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace turbine::shared
