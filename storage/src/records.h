// records.h — decoding the values of the store's tables (layout in format.h).
//
// Each decoder takes bytes as they come from disk and fails on damage; none trusts a
// length, a size or a count it reads. tests/fuzz/record_fuzz.cc feeds them arbitrary bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "turbine/backing_store.h"

namespace turbine::storage {

// Integers in keys and values are big-endian, so that bytewise order is numeric order
// (ids are appended in order, which keeps writes to the id index sequential).
void PutBigEndian(uint64_t value, char* out);
uint64_t GetBigEndian(const char* in);

// DecodeTaskRecord rebuilds a task from its key in `tasks` (hash, identity) and its value
// (id, result); nullopt if either is too short to be one.
std::optional<StoredTask> DecodeTaskRecord(std::string_view key, std::string_view value);

// EncodeInputRecord / DecodeInputRecord: a value of the `inputs` table.
void EncodeInputRecord(const StoredInput& input, std::string* out);
std::optional<StoredInput> DecodeInputRecord(std::string_view bytes);

// EncodeCounter / DecodeCounter: `next_stamp` and `next_task_id` in `meta`.
void EncodeCounter(uint64_t value, std::string* out);
std::optional<uint64_t> DecodeCounter(std::string_view bytes);

}  // namespace turbine::storage
