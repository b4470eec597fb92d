// records.h — decoding the values of the store's tables (layout in format.h).
//
// Each decoder takes bytes as they come from disk and fails on damage; none trusts a
// length, a size or a count it reads. tests/fuzz/record_fuzz.cc feeds them arbitrary bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "turbine/backing_store.h"

namespace turbine::storage {

// Integers in keys and values are big-endian, so that bytewise order is numeric order
// (ids are appended in order, which keeps writes to the id index sequential).
void PutBigEndian(uint64_t value, char* out);
uint64_t GetBigEndian(const char* in);

// TaskKey is a task's key in `tasks`: its component hash and its identity, or, for an
// identity longer than kLongestKeyedIdentity, its hash and a digest of the identity, the
// identity then moving into the value (format.h says why).
inline constexpr size_t kLongestKeyedIdentity = 1024;
class TaskKey {
 public:
  static constexpr size_t kDigestedSize = 24;  // hash, then a 128-bit digest

  TaskKey(uint64_t hash, std::string_view identity);
  TaskKey(const TaskKey&) = delete;
  TaskKey& operator=(const TaskKey&) = delete;

  // The key is head() followed by tail(); tail() is the identity, or empty if digested.
  std::string_view head() const { return {head_, head_size_}; }
  std::string_view tail() const { return tail_; }
  bool digested() const { return head_size_ == kDigestedSize; }
  size_t size() const { return head_size_ + tail_.size(); }

 private:
  char head_[kDigestedSize];
  size_t head_size_;
  std::string_view tail_;
};

// A value of `tasks` starts with the task's id, its top bit set when the identity is in the
// value (u64 BE length, then the identity) rather than in the key.
inline constexpr uint64_t kIdentityInValue = uint64_t{1} << 63;

// TaskValueHead writes the fixed part of a task's value (id, and the identity's length if
// `key` is digested) to `out`, and returns its size; the identity (if digested) and the
// result follow it.
size_t TaskValueHead(uint64_t id, const TaskKey& key, size_t identity_size, char out[16]);

// StoredTaskId is the id a value of `tasks` names, or nullopt if it is too short to be one.
std::optional<uint64_t> StoredTaskId(std::string_view value);

// DecodeTaskRecord rebuilds a task from its key in `tasks` and its value; nullopt if they
// are not one (too short, a length past the end, or an identity its digest does not match).
std::optional<StoredTask> DecodeTaskRecord(std::string_view key, std::string_view value);

// NameKey is an input's key in `inputs`, and the tail of its entries in the log of input
// changes: the name itself, or, for a name longer than kLongestKeyedName, its first
// kLongestKeyedName bytes and a 128-bit digest of the whole, the name then moving into the
// value (format.h). A key is digested exactly when it is longer than kLongestKeyedName.
inline constexpr size_t kLongestKeyedName = 1024;
class NameKey {
 public:
  static constexpr size_t kDigestedSize = kLongestKeyedName + 16;

  explicit NameKey(std::string_view name);
  NameKey(const NameKey&) = delete;
  NameKey& operator=(const NameKey&) = delete;

  std::string_view key() const { return digested() ? std::string_view(digested_) : name_; }
  bool digested() const { return !digested_.empty(); }

 private:
  std::string_view name_;
  std::string digested_;  // empty unless the name is too long to be the key
};

// NamedValue puts the name before `value` for a digested key (u64 BE length, the name):
// the value stored under `key`. NameAndValue takes a stored value apart again: the name it
// holds (or the key's own bytes, if not digested) and what follows; nullopt if the value is
// too short or holds a name the key's digest does not match.
std::string NamedValue(const NameKey& key, std::string_view name, std::string_view value);
std::optional<std::pair<std::string_view, std::string_view>> NameAndValue(std::string_view key,
                                                                          std::string_view value);

// EncodeInputRecord / DecodeInputRecord: a value of the `inputs` table.
void EncodeInputRecord(const StoredInput& input, std::string* out);
std::optional<StoredInput> DecodeInputRecord(std::string_view bytes);

// EncodeCounter / DecodeCounter: `next_stamp` and `next_task_id` in `meta`.
void EncodeCounter(uint64_t value, std::string* out);
std::optional<uint64_t> DecodeCounter(std::string_view bytes);

}  // namespace turbine::storage
