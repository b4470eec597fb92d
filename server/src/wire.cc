// wire.cc — the non-template parts of wire.h: kinds, task references and WireValue.
#include "turbine/server/wire.h"

#include <algorithm>
#include <charconv>
#include <utility>

namespace turbine::server {

std::string KindName(const v1::Value& value) {
  switch (value.kind_case()) {
    case v1::Value::kNullValue:
      return "null";
    case v1::Value::kBoolValue:
      return "a bool";
    case v1::Value::kIntValue:
    case v1::Value::kUintValue:
      return "an integer";
    case v1::Value::kDoubleValue:
      return "a double";
    case v1::Value::kStringValue:
      return "a string";
    case v1::Value::kBytesValue:
      return "bytes";
    case v1::Value::kListValue:
      return "a list";
    case v1::Value::kMapValue:
      return "a map";
    case v1::Value::kRefValue:
      return "a task reference";
    case v1::Value::KIND_NOT_SET:
      return "an empty value";
  }
  return "an unknown kind";
}

absl::Status WrongKind(const v1::Value& value, const std::string& expected) {
  return absl::InvalidArgumentError("expected " + expected + ", got " + KindName(value));
}

absl::Status RepeatedKey(const std::string& key) {
  return absl::InvalidArgumentError("a map names key '" + Echo(key) + "' twice");
}

void StringToWire(const std::string& text, v1::Value* out) {
  if (IsValidUtf8(text)) {
    out->set_string_value(text);
  } else {
    out->set_bytes_value(text);
  }
}

bool KeyToWire(const std::string& key, v1::MapEntry* entry) {
  if (IsValidUtf8(key)) {
    entry->set_key(key);
    return false;
  }
  entry->set_key(EscapeInvalidUtf8(key));
  return true;
}

void SortEntries(v1::ValueMap* map) {
  std::sort(map->mutable_entries()->begin(), map->mutable_entries()->end(),
            [](const v1::MapEntry& a, const v1::MapEntry& b) { return a.key() < b.key(); });
}

void RefToWire(RawVc vc, v1::TaskRef* out) {
  out->set_task(vc.task);
  if (vc.is_cell()) {
    out->set_cell_type(ValueTypeNameOrEmpty(vc.type));
    out->set_cell_index(vc.index);
  }
}

absl::Status RefFromWire(const v1::TaskRef& ref, RawVc* out) {
  // Like any id no task has (README: NOT_FOUND), though 0 never will.
  if (ref.task() == kNoTask) return absl::NotFoundError("no task has id 0");
  if (ref.cell_type().empty()) {
    *out = RawVc::Output(ref.task());
    return absl::OkStatus();
  }
  const ValueType* type = FindValueType(ref.cell_type());
  if (type == nullptr) {
    return absl::InvalidArgumentError("task reference names an unknown value type '" +
                                      Echo(ref.cell_type()) + "'");
  }
  *out = RawVc::Cell(ref.task(), type->id, ref.cell_index());
  return absl::OkStatus();
}

absl::Status Wire<WireValue>::From(const v1::Value& in, WireValue* out) {
  switch (in.kind_case()) {
    case v1::Value::kNullValue:
      out->data = std::monostate{};
      return absl::OkStatus();
    case v1::Value::KIND_NOT_SET:  // as every typed parameter refuses it; null is null_value
      return WrongKind(in, "a value of some kind (null is null_value)");
    case v1::Value::kBoolValue:
      out->data = in.bool_value();
      return absl::OkStatus();
    case v1::Value::kIntValue:
      out->data = in.int_value();
      return absl::OkStatus();
    case v1::Value::kUintValue:
      // A value's integers are int64_t (the engine hashes and stores them so): a larger one
      // has a parameter of type uint64_t to go to.
      if (!std::in_range<int64_t>(in.uint_value())) {
        return absl::InvalidArgumentError(
            std::to_string(in.uint_value()) +
            " is above int64's range, which only a parameter of type uint64_t takes (not an "
            "input's value, nor a parameter that takes any value)");
      }
      out->data = static_cast<int64_t>(in.uint_value());
      return absl::OkStatus();
    case v1::Value::kDoubleValue:
      out->data = in.double_value();
      return absl::OkStatus();
    case v1::Value::kStringValue:
      out->data = in.string_value();
      return absl::OkStatus();
    case v1::Value::kBytesValue:
      out->data = Bytes{in.bytes_value()};
      return absl::OkStatus();
    case v1::Value::kListValue: {
      WireValue::List list(static_cast<size_t>(in.list_value().items_size()));
      for (int i = 0; i < in.list_value().items_size(); ++i) {
        absl::Status status = From(in.list_value().items(i), &list[static_cast<size_t>(i)]);
        if (!status.ok()) {  // as a typed list says where
          return absl::InvalidArgumentError("item " + std::to_string(i) + ": " +
                                            std::string(status.message()));
        }
      }
      out->data = std::move(list);
      return absl::OkStatus();
    }
    case v1::Value::kMapValue: {
      WireValue::Map map;
      for (const v1::MapEntry& entry : in.map_value().entries()) {
        if (map.contains(entry.key())) return RepeatedKey(entry.key());
        absl::Status status = From(entry.value(), &map[entry.key()]);
        if (!status.ok()) {
          return absl::InvalidArgumentError("key '" + Echo(entry.key()) +
                                            "': " + std::string(status.message()));
        }
      }
      out->data = std::move(map);
      return absl::OkStatus();
    }
    case v1::Value::kRefValue: {
      RawVc vc;
      absl::Status status = RefFromWire(in.ref_value(), &vc);
      if (!status.ok()) return status;
      out->data = vc;
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError("unknown value kind");
}

void Wire<WireValue>::To(const WireValue& value, v1::Value* out) {
  struct Visitor {
    v1::Value* out;
    void operator()(std::monostate) const { out->set_null_value(v1::NULL_VALUE); }
    void operator()(bool v) const { out->set_bool_value(v); }
    void operator()(int64_t v) const { out->set_int_value(v); }
    void operator()(double v) const { out->set_double_value(v); }
    void operator()(const std::string& v) const { StringToWire(v, out); }
    void operator()(const Bytes& v) const { out->set_bytes_value(v.data); }
    void operator()(const WireValue::List& v) const {
      v1::ValueList* list = out->mutable_list_value();
      for (const WireValue& item : v) Wire<WireValue>::To(item, list->add_items());
    }
    void operator()(const WireValue::Map& v) const {
      v1::ValueMap* map = out->mutable_map_value();
      bool escaped = false;
      for (const auto& [key, item] : v) {
        v1::MapEntry* entry = map->add_entries();
        escaped |= KeyToWire(key, entry);
        Wire<WireValue>::To(item, entry->mutable_value());
      }
      if (escaped) SortEntries(map);
    }
    void operator()(RawVc v) const { RefToWire(v, out->mutable_ref_value()); }
  };
  std::visit(Visitor{out}, value.data);
}

}  // namespace turbine::server

namespace turbine {

uint64_t HashValue(const WireValue& value, uint64_t seed) {
  seed = HashScalar(static_cast<uint8_t>(value.data.index()), seed);
  return std::visit(
      [seed](const auto& v) -> uint64_t {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          return seed;
        } else if constexpr (std::is_same_v<T, WireValue::List>) {
          uint64_t h = HashScalar(v.size(), seed);
          for (const WireValue& item : v) h = HashValue(item, h);
          return h;
        } else if constexpr (std::is_same_v<T, WireValue::Map>) {
          uint64_t h = HashScalar(v.size(), seed);
          for (const auto& [key, item] : v) h = HashValue(item, HashValue(key, h));
          return h;
        } else {
          return HashValue(v, seed);
        }
      },
      value.data);
}

bool SameValue(const WireValue& a, const WireValue& b) {
  if (a.data.index() != b.data.index()) return false;
  return std::visit(
      [&b](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        const T& y = std::get<T>(b.data);
        if constexpr (std::is_same_v<T, WireValue::List>) {
          return std::equal(x.begin(), x.end(), y.begin(), y.end(),
                            [](const WireValue& p, const WireValue& q) { return SameValue(p, q); });
        } else if constexpr (std::is_same_v<T, WireValue::Map>) {
          return std::equal(x.begin(), x.end(), y.begin(), y.end(),
                            [](const auto& p, const auto& q) {
                              return p.first == q.first && SameValue(p.second, q.second);
                            });
        } else {
          return SameValue(x, y);
        }
      },
      a.data);
}

}  // namespace turbine
