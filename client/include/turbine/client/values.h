// values.h — building and reading turbine.v1.Value, the protocol's argument and result type.
//
//   v1::Value args = List({Int(30), Str("x"), Map({{"b", Bool(true)}, {"a", Null()}})});
//   if (std::optional<int64_t> n = AsInt(result)) ...
//
// Accessors check the kind and answer "not this kind" with nullopt or nullptr; they never
// convert (an int is not a double). Returned pointers live as long as the Value they point
// into and are invalidated by changing it.
//
// Thread-safety: free functions over values the caller owns; no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "turbine/v1/turbine.pb.h"

namespace turbine::client {

v1::Value Null();
v1::Value Bool(bool value);
v1::Value Int(int64_t value);
// Uint is an unsigned integer as the protocol writes it: int_value up to int64's maximum,
// uint_value above it.
v1::Value Uint(uint64_t value);
v1::Value Double(double value);
v1::Value Str(std::string value);
v1::Value BytesValue(std::string bytes);
v1::Value List(std::vector<v1::Value> items);
// Map sorts the entries by key, as the protocol requires; of two equal keys the later wins.
v1::Value Map(std::vector<std::pair<std::string, v1::Value>> entries);
// Ref names a task's output (cell_type empty) or one of the cells it created.
v1::Value Ref(uint64_t task, std::string cell_type = "", uint32_t cell_index = 0);
v1::Value Ref(v1::TaskRef ref);
v1::TaskRef MakeTaskRef(uint64_t task, std::string cell_type = "", uint32_t cell_index = 0);

bool IsNull(const v1::Value& value);
std::optional<bool> AsBool(const v1::Value& value);
std::optional<int64_t> AsInt(const v1::Value& value);
// AsUint reads an integer from 0 to 2^64 - 1 (int_value or uint_value).
std::optional<uint64_t> AsUint(const v1::Value& value);
std::optional<double> AsDouble(const v1::Value& value);
const std::string* AsString(const v1::Value& value);
const std::string* AsBytes(const v1::Value& value);
const v1::ValueList* AsList(const v1::Value& value);
const v1::ValueMap* AsMap(const v1::Value& value);
const v1::TaskRef* AsRef(const v1::Value& value);
// Find looks `key` up in a map value; nullptr when `value` is not a map or lacks the key.
const v1::Value* Find(const v1::Value& value, std::string_view key);

}  // namespace turbine::client
