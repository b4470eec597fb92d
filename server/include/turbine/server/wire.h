// wire.h — converting C++ values to and from the protocol's Value.
//
// Wire<T> converts one C++ type. Built in: bool, the integer types (range-checked),
// double (an integer is accepted), std::string, Bytes, std::vector<T>, std::optional<T>
// (null is empty), std::map<std::string, T>, WireValue, Vc<T>/ResolvedVc<T> (a task
// reference), and user structs that declare kFields (a map of their fields). A type
// without a Wire specialization can still be a result: the reply then carries its task
// reference, to be passed on as an argument or a receiver.
//
// Text that is not UTF-8 (a file name can be any bytes) cannot be a protobuf `string`: a
// std::string travels as string_value when it is valid UTF-8 and as bytes_value when it
// is not, and a std::string parameter accepts either, so such a name comes back as it
// went. A map key has no bytes form: its invalid bytes are escaped (`\xHH`, text.h).
#pragma once

#include <absl/status/status.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "turbine/server/wire_value.h"
#include "turbine/text.h"
#include "turbine/v1/turbine.pb.h"
#include "turbine/vc.h"

namespace turbine::server {

// KindName names a wire value's kind for error messages ("string", "list", ...).
std::string KindName(const v1::Value& value);
absl::Status WrongKind(const v1::Value& value, const std::string& expected);
// RepeatedKey is the error of a map naming `key` twice: which entry was meant is anyone's
// guess (a client that merged two maps, say), so neither is taken.
absl::Status RepeatedKey(const std::string& key);

// StringToWire sets string_value, or bytes_value when `text` is not UTF-8.
void StringToWire(const std::string& text, v1::Value* out);
// KeyToWire sets a map entry's key (escaped if it is not UTF-8); SortEntries restores the
// promised key order after escaping changed a key.
bool KeyToWire(const std::string& key, v1::MapEntry* entry);
void SortEntries(v1::ValueMap* map);

// Task references on the wire.
void RefToWire(RawVc vc, v1::TaskRef* out);
absl::Status RefFromWire(const v1::TaskRef& ref, RawVc* out);

template <class T>
struct Wire {
  static constexpr bool kSupported = false;
};

template <class T>
concept WireConvertible = Wire<T>::kSupported;

template <>
struct Wire<bool> {
  static constexpr bool kSupported = true;
  static absl::Status From(const v1::Value& in, bool* out) {
    if (in.kind_case() != v1::Value::kBoolValue) return WrongKind(in, "bool");
    *out = in.bool_value();
    return absl::OkStatus();
  }
  static void To(bool value, v1::Value* out) { out->set_bool_value(value); }
};

template <class T>
  requires(std::is_integral_v<T> && !std::is_same_v<T, bool>)
struct Wire<T> {
  static constexpr bool kSupported = true;
  static absl::Status From(const v1::Value& in, T* out) {
    if (in.kind_case() == v1::Value::kUintValue) return Fit(in.uint_value(), out);
    if (in.kind_case() != v1::Value::kIntValue) return WrongKind(in, "an integer");
    return Fit(in.int_value(), out);
  }
  static void To(T value, v1::Value* out) {
    if constexpr (std::is_same_v<T, uint64_t>) {
      // Above int64's range: uint_value (as a double, it would lose its last bits).
      if (value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        out->set_uint_value(value);
        return;
      }
    }
    out->set_int_value(static_cast<int64_t>(value));
  }

 private:
  template <class N>
  static absl::Status Fit(N value, T* out) {
    if (!std::in_range<T>(value)) {
      return absl::InvalidArgumentError(std::to_string(value) + " is out of range for " +
                                        ValueTraits<T>::Name());
    }
    *out = static_cast<T>(value);
    return absl::OkStatus();
  }
};

template <>
struct Wire<double> {
  static constexpr bool kSupported = true;
  static absl::Status From(const v1::Value& in, double* out) {
    if (in.kind_case() == v1::Value::kDoubleValue) {
      *out = in.double_value();
    } else if (in.kind_case() == v1::Value::kIntValue) {
      *out = static_cast<double>(in.int_value());
    } else if (in.kind_case() == v1::Value::kUintValue) {
      *out = static_cast<double>(in.uint_value());
    } else {
      return WrongKind(in, "a number");
    }
    return absl::OkStatus();
  }
  static void To(double value, v1::Value* out) { out->set_double_value(value); }
};

template <>
struct Wire<std::string> {
  static constexpr bool kSupported = true;
  static absl::Status From(const v1::Value& in, std::string* out) {
    if (in.kind_case() == v1::Value::kStringValue) {
      *out = in.string_value();
    } else if (in.kind_case() == v1::Value::kBytesValue) {
      *out = in.bytes_value();  // text that is not UTF-8, a file name say
    } else {
      return WrongKind(in, "a string");
    }
    return absl::OkStatus();
  }
  static void To(const std::string& value, v1::Value* out) { StringToWire(value, out); }
};

template <>
struct Wire<Bytes> {
  static constexpr bool kSupported = true;
  static absl::Status From(const v1::Value& in, Bytes* out) {
    if (in.kind_case() != v1::Value::kBytesValue) return WrongKind(in, "bytes");
    out->data = in.bytes_value();
    return absl::OkStatus();
  }
  static void To(const Bytes& value, v1::Value* out) { out->set_bytes_value(value.data); }
};

template <>
struct Wire<WireValue> {
  static constexpr bool kSupported = true;
  static absl::Status From(const v1::Value& in, WireValue* out);
  static void To(const WireValue& value, v1::Value* out);
};

template <class T>
struct Wire<Vc<T>> {
  static constexpr bool kSupported = true;
  static absl::Status From(const v1::Value& in, Vc<T>* out) {
    if (in.kind_case() != v1::Value::kRefValue) return WrongKind(in, "a task reference");
    RawVc raw;
    if (absl::Status status = RefFromWire(in.ref_value(), &raw); !status.ok()) return status;
    *out = Vc<T>::FromRaw(raw);
    return absl::OkStatus();
  }
  static void To(const Vc<T>& value, v1::Value* out) {
    RefToWire(value.raw(), out->mutable_ref_value());
  }
};

template <class T>
struct Wire<ResolvedVc<T>> {
  static constexpr bool kSupported = true;
  static absl::Status From(const v1::Value& in, ResolvedVc<T>* out) {
    Vc<T> vc;
    if (absl::Status status = Wire<Vc<T>>::From(in, &vc); !status.ok()) return status;
    *out = ResolvedVc<T>::FromRaw(vc.raw());  // resolved by the engine before the call
    return absl::OkStatus();
  }
  static void To(const ResolvedVc<T>& value, v1::Value* out) { Wire<Vc<T>>::To(value, out); }
};

template <WireConvertible T>
struct Wire<std::vector<T>> {
  static constexpr bool kSupported = true;
  static absl::Status From(const v1::Value& in, std::vector<T>* out) {
    if (in.kind_case() != v1::Value::kListValue) return WrongKind(in, "a list");
    out->clear();
    out->reserve(in.list_value().items_size());
    for (int i = 0; i < in.list_value().items_size(); ++i) {
      T item{};
      absl::Status status = Wire<T>::From(in.list_value().items(i), &item);
      if (!status.ok()) {
        return absl::InvalidArgumentError("item " + std::to_string(i) + ": " +
                                          std::string(status.message()));
      }
      out->push_back(std::move(item));
    }
    return absl::OkStatus();
  }
  static void To(const std::vector<T>& value, v1::Value* out) {
    v1::ValueList* list = out->mutable_list_value();
    for (const T& item : value) Wire<T>::To(item, list->add_items());
  }
};

template <WireConvertible T>
struct Wire<std::optional<T>> {
  static constexpr bool kSupported = true;
  static absl::Status From(const v1::Value& in, std::optional<T>* out) {
    if (in.kind_case() == v1::Value::kNullValue) {
      out->reset();
      return absl::OkStatus();
    }
    T value{};
    if (absl::Status status = Wire<T>::From(in, &value); !status.ok()) return status;
    *out = std::move(value);
    return absl::OkStatus();
  }
  static void To(const std::optional<T>& value, v1::Value* out) {
    if (value) {
      Wire<T>::To(*value, out);
    } else {
      out->set_null_value(v1::NULL_VALUE);
    }
  }
};

template <WireConvertible T>
struct Wire<std::map<std::string, T>> {
  static constexpr bool kSupported = true;
  static absl::Status From(const v1::Value& in, std::map<std::string, T>* out) {
    if (in.kind_case() != v1::Value::kMapValue) return WrongKind(in, "a map");
    out->clear();
    for (const v1::MapEntry& entry : in.map_value().entries()) {
      if (out->contains(entry.key())) return RepeatedKey(entry.key());
      T value{};
      absl::Status status = Wire<T>::From(entry.value(), &value);
      if (!status.ok()) {
        return absl::InvalidArgumentError("key '" + Echo(entry.key()) +
                                          "': " + std::string(status.message()));
      }
      (*out)[entry.key()] = std::move(value);
    }
    return absl::OkStatus();
  }
  static void To(const std::map<std::string, T>& value, v1::Value* out) {
    v1::ValueMap* map = out->mutable_map_value();
    bool escaped = false;
    for (const auto& [key, item] : value) {  // std::map: sorted by key, unless escaped
      v1::MapEntry* entry = map->add_entries();
      escaped |= KeyToWire(key, entry);
      Wire<T>::To(item, entry->mutable_value());
    }
    if (escaped) SortEntries(map);
  }
};

// A user struct with kFields travels as a map of its fields; a missing field keeps its
// default, an unknown one is an error (it is probably a typo).
template <HasFields T>
  requires(std::apply([](const auto&... f) {
    return (WireConvertible<std::remove_cvref_t<decltype(T{}.*(f.member))>> && ...);
  }, T::kFields))
struct Wire<T> {
  static constexpr bool kSupported = true;
  static absl::Status From(const v1::Value& in, T* out) {
    if (in.kind_case() != v1::Value::kMapValue) return WrongKind(in, "a map");
    const auto& entries = in.map_value().entries();
    for (int i = 0; i < entries.size(); ++i) {
      const v1::MapEntry& entry = entries[i];
      // Bounded by the number of fields squared: an entry before this one is a distinct
      // field, or the loop stopped there.
      for (int j = 0; j < i; ++j) {
        if (entries[j].key() == entry.key()) return RepeatedKey(entry.key());
      }
      bool known = false;
      absl::Status status = absl::OkStatus();
      std::apply(
          [&](const auto&... f) {
            (
                [&] {
                  if (known || f.name != entry.key()) return;
                  known = true;
                  using M = std::remove_cvref_t<decltype(out->*(f.member))>;
                  status = Wire<M>::From(entry.value(), &(out->*(f.member)));
                }(),
                ...);
          },
          T::kFields);
      if (!known) {
        return absl::InvalidArgumentError(std::string(T::kTypeName) + " has no field '" +
                                          Echo(entry.key()) + "'");
      }
      if (!status.ok()) {
        return absl::InvalidArgumentError("field '" + Echo(entry.key()) +
                                          "': " + std::string(status.message()));
      }
    }
    return absl::OkStatus();
  }
  static void To(const T& value, v1::Value* out) {
    v1::ValueMap* map = out->mutable_map_value();
    std::apply(
        [&](const auto&... f) {
          (
              [&] {
                v1::MapEntry* entry = map->add_entries();
                entry->set_key(std::string(f.name));
                using M = std::remove_cvref_t<decltype(value.*(f.member))>;
                Wire<M>::To(value.*(f.member), entry->mutable_value());
              }(),
              ...);
        },
        T::kFields);
    // The protocol promises entries sorted by key; fields are declared in any order.
    SortEntries(map);
  }
};

}  // namespace turbine::server
