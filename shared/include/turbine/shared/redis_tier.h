// redis_tier.h — the engine's shared tier (turbine/shared_tier.h) on Redis Cluster.
//
//   auto tier = turbine::shared::RedisTier::Connect({.seeds = ..., .timeout = 50ms});
//   options.shared = {.tier = *tier, .name_space = "myproject", .publish = true};
//
// A lookup is one read (GETRANGE up to RedisOptions::max_value_bytes, or GET) on the node
// of the key's slot; a publish is one pipelined batch of
// SETs per node. Eviction is the cluster's (maxmemory + allkeys-lru): records carry no TTL.
#pragma once

#include <absl/status/statusor.h>

#include <memory>

#include "turbine/shared/redis_client.h"
#include "turbine/shared_tier.h"

namespace turbine::shared {

class RedisTier final : public SharedTier {
 public:
  static absl::StatusOr<std::shared_ptr<RedisTier>> Connect(RedisOptions options);

  absl::StatusOr<std::optional<std::string>> Lookup(const std::string& key) override;
  absl::StatusOr<std::vector<std::optional<std::string>>> LookupMany(
      const std::vector<std::string>& keys) override {
    return client_->MultiGet(keys);  // one pipelined round trip per node
  }
  absl::Status Publish(const std::vector<std::pair<std::string, std::string>>& records) override;
  void Stop() override { client_->Stop(); }

  RedisClient& client() { return *client_; }

 private:
  explicit RedisTier(std::unique_ptr<RedisClient> client) : client_(std::move(client)) {}
  std::unique_ptr<RedisClient> client_;
};

}  // namespace turbine::shared
