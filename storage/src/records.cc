// records.cc — decoding the values of the store's tables.
#include "records.h"

#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>

#include <tuple>

#include "turbine/value_type.h"

namespace turbine::storage {
namespace {

using InputRecord = std::tuple<std::string, std::string, uint64_t>;  // type, bytes, stamp

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

std::optional<StoredTask> DecodeTaskRecord(std::string_view key, std::string_view value) {
  if (key.size() < 8 || value.size() < 8) return std::nullopt;
  return StoredTask{.id = GetBigEndian(value.data()),
                    .hash = GetBigEndian(key.data()),
                    .identity = std::string(key.substr(8)),
                    .result = std::string(value.substr(8)),
                    .stored = true};
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
