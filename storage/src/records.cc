// records.cc — decoding the values of the store's tables.
#include "records.h"

#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cstring>
#include <tuple>

#include "turbine/internal/xxh3.h"
#include "turbine/value_type.h"

namespace turbine::storage {
namespace {

using InputRecord = std::tuple<std::string, std::string, uint64_t>;  // type, bytes, stamp

// A fixed seed: the digest is part of stored keys.
constexpr uint64_t kDigestSeed = 0x74757262696e6533;  // "turbine3"

void PutDigest(std::string_view identity, char* out) {
  const XXH128_hash_t digest = XXH3_128bits_withSeed(identity.data(), identity.size(), kDigestSeed);
  PutBigEndian(digest.high64, out);
  PutBigEndian(digest.low64, out + 8);
}

}  // namespace

void PutBigEndian(uint64_t value, char* out) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(value & 0xff);
    value >>= 8;
  }
}

uint64_t GetBigEndian(const char* in) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | static_cast<unsigned char>(in[i]);
  return value;
}

TaskKey::TaskKey(uint64_t hash, std::string_view identity) {
  PutBigEndian(hash, head_);
  if (identity.size() <= kLongestKeyedIdentity) {
    head_size_ = 8;
    tail_ = identity;
  } else {
    PutDigest(identity, head_ + 8);
    head_size_ = kDigestedSize;
  }
}

size_t TaskValueHead(uint64_t id, const TaskKey& key, size_t identity_size, char out[16]) {
  if (!key.digested()) {
    PutBigEndian(id, out);
    return 8;
  }
  PutBigEndian(id | kIdentityInValue, out);
  PutBigEndian(identity_size, out + 8);
  return 16;
}

std::optional<uint64_t> StoredTaskId(std::string_view value) {
  if (value.size() < 8) return std::nullopt;
  return GetBigEndian(value.data()) & ~kIdentityInValue;
}

std::optional<StoredTask> DecodeTaskRecord(std::string_view key, std::string_view value) {
  if (key.size() < 8 || value.size() < 8) return std::nullopt;
  const uint64_t id = GetBigEndian(value.data());
  std::string_view identity = key.substr(8);
  std::string_view result = value.substr(8);
  if ((id & kIdentityInValue) != 0) {
    if (key.size() != TaskKey::kDigestedSize || value.size() < 16) return std::nullopt;
    const uint64_t identity_size = GetBigEndian(value.data() + 8);
    if (identity_size > value.size() - 16) return std::nullopt;
    identity = value.substr(16, identity_size);
    result = value.substr(16 + identity_size);
    char digest[16];
    PutDigest(identity, digest);
    if (std::memcmp(digest, key.data() + 8, 16) != 0) return std::nullopt;
  }
  StoredTask task;
  task.id = id & ~kIdentityInValue;
  task.hash = GetBigEndian(key.data());
  task.identity = identity;
  task.result = result;
  task.stored = true;
  return task;
}

NameKey::NameKey(std::string_view name) : name_(name) {
  if (name.size() <= kLongestKeyedName) return;
  digested_.reserve(kDigestedSize);
  digested_.assign(name.substr(0, kLongestKeyedName));
  digested_.resize(kDigestedSize);
  PutDigest(name, digested_.data() + kLongestKeyedName);
}

std::string NamedValue(const NameKey& key, std::string_view name, std::string_view value) {
  if (!key.digested()) return std::string(value);
  std::string out(8, '\0');
  PutBigEndian(name.size(), out.data());
  out.reserve(8 + name.size() + value.size());
  out.append(name).append(value);
  return out;
}

std::optional<std::pair<std::string_view, std::string_view>> NameAndValue(std::string_view key,
                                                                          std::string_view value) {
  if (key.size() <= kLongestKeyedName) return std::pair(key, value);
  if (key.size() != NameKey::kDigestedSize || value.size() < 8) return std::nullopt;
  const uint64_t name_size = GetBigEndian(value.data());
  if (name_size > value.size() - 8) return std::nullopt;
  const std::string_view name = value.substr(8, name_size);
  if (NameKey(name).key() != key) return std::nullopt;
  return std::pair(name, value.substr(8 + name_size));
}

void EncodeInputRecord(const StoredInput& input, std::string* out) {
  EncodeValue(InputRecord{input.type_name, input.bytes, input.stamp}, out);
}

std::optional<StoredInput> DecodeInputRecord(std::string_view bytes) {
  InputRecord record;
  if (!DecodeValue(bytes, &record)) return std::nullopt;
  return StoredInput{std::move(std::get<0>(record)), std::move(std::get<1>(record)),
                     std::get<2>(record)};
}

void EncodeCounter(uint64_t value, std::string* out) { EncodeValue(value, out); }

std::optional<uint64_t> DecodeCounter(std::string_view bytes) {
  uint64_t value = 0;
  if (!DecodeValue(bytes, &value)) return std::nullopt;
  return value;
}

}  // namespace turbine::storage
