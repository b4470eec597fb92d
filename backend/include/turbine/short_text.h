// short_text.h — a value in a few words, for people reading a graph or a trace.
//
// AppendShortText(value, &out) writes `value` compactly and boundedly: a long string is cut
// (its length said), a long list shows its first items and its size, a Vc is "@12" (the
// task) or "@12/type/0" (a cell), a user struct is {field=value, ...}. It is not a
// serialization: it does not round-trip, and two values may read the same.
#pragma once

#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "turbine/raw_vc.h"
#include "turbine/value_type.h"

namespace turbine {

inline constexpr size_t kShortTextChars = 48;  // of one string
inline constexpr size_t kShortTextItems = 3;   // of one list or map

template <class T>
void AppendShortText(const T& value, std::string* out);

namespace internal {
void AppendShortString(std::string_view text, std::string* out);
void AppendShortRef(RawVc vc, std::string* out);
void AppendShortDouble(double value, std::string* out);

template <class T>
concept HasRawVc = requires(const T& v) {
  { v.raw() } -> std::convertible_to<RawVc>;
};
}  // namespace internal

template <class T>
void AppendShortText(const T& value, std::string* out) {
  if constexpr (std::is_same_v<T, bool>) {
    out->append(value ? "true" : "false");
  } else if constexpr (std::is_integral_v<T>) {
    out->append(std::to_string(value));
  } else if constexpr (std::is_floating_point_v<T>) {
    internal::AppendShortDouble(static_cast<double>(value), out);
  } else if constexpr (std::is_same_v<T, std::string>) {
    internal::AppendShortString(value, out);
  } else if constexpr (std::is_same_v<T, Bytes>) {
    out->append("<" + std::to_string(value.data.size()) + " bytes>");
  } else if constexpr (std::is_same_v<T, RawVc> || internal::HasRawVc<T>) {
    if constexpr (std::is_same_v<T, RawVc>) {
      internal::AppendShortRef(value, out);
    } else {
      internal::AppendShortRef(value.raw(), out);
    }
  } else if constexpr (requires { typename T::value_type; value.has_value(); }) {  // optional
    if (value.has_value()) {
      AppendShortText(*value, out);
    } else {
      out->append("null");
    }
  } else if constexpr (requires { typename T::mapped_type; }) {  // map<string, T>
    out->push_back('{');
    size_t shown = 0;
    for (const auto& [key, item] : value) {
      if (shown == kShortTextItems) {
        out->append(", …" + std::to_string(value.size()) + " entries");
        break;
      }
      if (shown++ > 0) out->append(", ");
      internal::AppendShortString(key, out);
      out->push_back(':');
      AppendShortText(item, out);
    }
    out->push_back('}');
  } else if constexpr (requires { typename T::value_type; value.size(); }) {  // vector
    out->push_back('[');
    size_t shown = 0;
    for (const auto& item : value) {
      if (shown == kShortTextItems) {
        out->append(", …" + std::to_string(value.size()) + " items");
        break;
      }
      if (shown++ > 0) out->append(", ");
      AppendShortText(item, out);
    }
    out->push_back(']');
  } else if constexpr (HasFields<T>) {
    out->push_back('{');
    bool first = true;
    std::apply(
        [&](const auto&... f) {
          (
              [&] {
                if (!first) out->append(", ");
                first = false;
                out->append(f.name);
                out->push_back('=');
                AppendShortText(value.*(f.member), out);
              }(),
              ...);
        },
        T::kFields);
    out->push_back('}');
  } else {
    out->append("<" + std::string(ValueTraits<T>::Name()) + ">");
  }
}

}  // namespace turbine
