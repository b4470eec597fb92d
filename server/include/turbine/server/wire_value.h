// wire_value.h — WireValue: a dynamically typed value, shaped like the protocol's Value.
//
// Inputs set over gRPC hold WireValues (a client decides their shape, not a C++ type), and
// task functions that take or return "any value" use it. It is an ordinary value type:
// hashed, compared (early cutoff) and persisted like every other.
#pragma once

#include <cereal/types/map.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/variant.hpp>
#include <cereal/types/vector.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "turbine/vc.h"

namespace turbine {

struct WireValue {
  using List = std::vector<WireValue>;
  using Map = std::map<std::string, WireValue>;
  // monostate is null; RawVc is a task reference.
  std::variant<std::monostate, bool, int64_t, double, std::string, Bytes, List, Map, RawVc>
      data;

  WireValue() = default;
  template <class T>
    requires std::constructible_from<decltype(data), T&&>
  WireValue(T&& value) : data(std::forward<T>(value)) {}  // NOLINT: a value converts

  bool operator==(const WireValue&) const = default;

  template <class T>
  bool is() const {
    return std::holds_alternative<T>(data);
  }
  template <class T>
  const T& as() const {
    return std::get<T>(data);
  }

  template <class Archive>
  void serialize(Archive& ar) {
    ar(data);
  }
};

uint64_t HashValue(const WireValue& value, uint64_t seed);
// SameValue: the engine's equality (value_type.h), doubles by their bits at any depth.
bool SameValue(const WireValue& a, const WireValue& b);

template <>
struct ValueTraits<WireValue> {
  static std::string Name() { return "value"; }
};

}  // namespace turbine
