#include "turbine/client/values.h"

#include <algorithm>
#include <limits>

namespace turbine::client {

v1::Value Null() {
  v1::Value value;
  value.set_null_value(v1::NULL_VALUE);
  return value;
}

v1::Value Bool(bool b) {
  v1::Value value;
  value.set_bool_value(b);
  return value;
}

v1::Value Int(int64_t i) {
  v1::Value value;
  value.set_int_value(i);
  return value;
}

v1::Value Uint(uint64_t u) {
  v1::Value value;
  if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    value.set_uint_value(u);
  } else {
    value.set_int_value(static_cast<int64_t>(u));
  }
  return value;
}

v1::Value Double(double d) {
  v1::Value value;
  value.set_double_value(d);
  return value;
}

v1::Value Str(std::string s) {
  v1::Value value;
  value.set_string_value(std::move(s));
  return value;
}

v1::Value BytesValue(std::string bytes) {
  v1::Value value;
  value.set_bytes_value(std::move(bytes));
  return value;
}

v1::Value List(std::vector<v1::Value> items) {
  v1::Value value;
  v1::ValueList* list = value.mutable_list_value();
  list->mutable_items()->Reserve(static_cast<int>(items.size()));
  for (v1::Value& item : items) *list->add_items() = std::move(item);
  return value;
}

v1::Value Map(std::vector<std::pair<std::string, v1::Value>> entries) {
  // Stable, so among equal keys the last given stays last and is the one kept.
  std::stable_sort(entries.begin(), entries.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  v1::Value value;
  v1::ValueMap* map = value.mutable_map_value();
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i + 1 < entries.size() && entries[i + 1].first == entries[i].first) continue;
    v1::MapEntry* entry = map->add_entries();
    entry->set_key(std::move(entries[i].first));
    *entry->mutable_value() = std::move(entries[i].second);
  }
  return value;
}

v1::TaskRef MakeTaskRef(uint64_t task, std::string cell_type, uint32_t cell_index) {
  v1::TaskRef ref;
  ref.set_task(task);
  ref.set_cell_type(std::move(cell_type));
  ref.set_cell_index(cell_index);
  return ref;
}

v1::Value Ref(uint64_t task, std::string cell_type, uint32_t cell_index) {
  return Ref(MakeTaskRef(task, std::move(cell_type), cell_index));
}

v1::Value Ref(v1::TaskRef ref) {
  v1::Value value;
  *value.mutable_ref_value() = std::move(ref);
  return value;
}

bool IsNull(const v1::Value& value) { return value.kind_case() == v1::Value::kNullValue; }

std::optional<bool> AsBool(const v1::Value& value) {
  if (value.kind_case() != v1::Value::kBoolValue) return std::nullopt;
  return value.bool_value();
}

std::optional<int64_t> AsInt(const v1::Value& value) {
  if (value.kind_case() != v1::Value::kIntValue) return std::nullopt;
  return value.int_value();
}

std::optional<uint64_t> AsUint(const v1::Value& value) {
  if (value.kind_case() == v1::Value::kUintValue) return value.uint_value();
  if (value.kind_case() != v1::Value::kIntValue || value.int_value() < 0) return std::nullopt;
  return static_cast<uint64_t>(value.int_value());
}

std::optional<double> AsDouble(const v1::Value& value) {
  if (value.kind_case() != v1::Value::kDoubleValue) return std::nullopt;
  return value.double_value();
}

const std::string* AsString(const v1::Value& value) {
  return value.kind_case() == v1::Value::kStringValue ? &value.string_value() : nullptr;
}

const std::string* AsBytes(const v1::Value& value) {
  return value.kind_case() == v1::Value::kBytesValue ? &value.bytes_value() : nullptr;
}

const v1::ValueList* AsList(const v1::Value& value) {
  return value.kind_case() == v1::Value::kListValue ? &value.list_value() : nullptr;
}

const v1::ValueMap* AsMap(const v1::Value& value) {
  return value.kind_case() == v1::Value::kMapValue ? &value.map_value() : nullptr;
}

const v1::TaskRef* AsRef(const v1::Value& value) {
  return value.kind_case() == v1::Value::kRefValue ? &value.ref_value() : nullptr;
}

const v1::Value* Find(const v1::Value& value, std::string_view key) {
  const v1::ValueMap* map = AsMap(value);
  if (map == nullptr) return nullptr;
  // Linear: maps on the wire are small, and this stays right even if one arrives unsorted.
  for (const v1::MapEntry& entry : map->entries()) {
    if (entry.key() == key) return &entry.value();
  }
  return nullptr;
}

}  // namespace turbine::client
