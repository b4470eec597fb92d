// redis_tier.cc — SharedTier over RedisClient (redis_tier.h).
#include "turbine/shared/redis_tier.h"

namespace turbine::shared {

absl::StatusOr<std::shared_ptr<RedisTier>> RedisTier::Connect(RedisOptions options) {
  absl::StatusOr<std::unique_ptr<RedisClient>> client = RedisClient::Connect(std::move(options));
  if (!client.ok()) return client.status();
  return std::shared_ptr<RedisTier>(new RedisTier(std::move(*client)));
}

absl::StatusOr<std::optional<std::string>> RedisTier::Lookup(const std::string& key) {
  absl::StatusOr<std::vector<std::optional<std::string>>> values = client_->MultiGet({key});
  if (!values.ok()) return values.status();
  return std::move((*values)[0]);
}

absl::Status RedisTier::Publish(const std::vector<std::pair<std::string, std::string>>& records) {
  return client_->MultiSet(records);
}

}  // namespace turbine::shared
