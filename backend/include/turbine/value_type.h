// value_type.h — the types that flow through the engine: task arguments, cells, outputs.
//
// Every C++ type used as an argument or a result gets one ValueType record, created on
// first use and never freed: a stable name (used on disk and on the wire), equality (for
// early cutoff and cache lookups), an XXH3 hash and cereal serialization.
//
// Built in: bool, int32_t, int64_t, uint32_t, uint64_t, double, std::string, Bytes,
// std::vector<T>, std::optional<T>, std::map<std::string, T>, Vc<T>/ResolvedVc<T>.
// A user struct declares its name and fields once, and gets all of the above:
//
//   struct Point {
//     int64_t x = 0, y = 0;
//     bool operator==(const Point&) const = default;
//     static constexpr std::string_view kTypeName = "demo.Point";
//     static constexpr auto kFields =
//         std::make_tuple(turbine::field("x", &Point::x), turbine::field("y", &Point::y));
//   };
//
// Thread-safety: ValueTypeOf<T>() and the lookups are safe from any thread.
#pragma once

#include <bit>
#include <concepts>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

#include "turbine/hash.h"
#include "turbine/internal/serialization.h"
#include "turbine/raw_vc.h"

namespace turbine {

// Bytes is an opaque byte string, distinct from text (std::string) on the wire.
struct Bytes {
  std::string data;
  bool operator==(const Bytes&) const = default;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(data);
  }
};
inline uint64_t HashValue(const Bytes& v, uint64_t seed) { return HashValue(v.data, seed); }

// Field describes one member of a user struct for hashing, serialization and the wire.
template <class C, class M>
struct Field {
  std::string_view name;
  M C::*member;
};
template <class C, class M>
constexpr Field<C, M> field(std::string_view name, M C::*member) {
  return Field<C, M>{name, member};
}

template <class T>
concept HasFields = requires {
  { T::kTypeName } -> std::convertible_to<std::string_view>;
  T::kFields;
};

// --- Hashing of composites ---------------------------------------------------------------
// Declared first so that each can hash the others' elements (vector<optional<Point>>).
template <class T>
uint64_t HashValue(const std::vector<T>& v, uint64_t seed);
template <class T>
uint64_t HashValue(const std::optional<T>& v, uint64_t seed);
template <class T>
uint64_t HashValue(const std::map<std::string, T>& v, uint64_t seed);
template <HasFields T>
uint64_t HashValue(const T& v, uint64_t seed);

template <class T>
uint64_t HashValue(const std::vector<T>& v, uint64_t seed) {
  seed = HashScalar(v.size(), seed);
  for (const T& item : v) seed = HashValue(item, seed);
  return seed;
}
template <class T>
uint64_t HashValue(const std::optional<T>& v, uint64_t seed) {
  return v ? HashValue(*v, HashScalar(uint8_t{1}, seed)) : HashScalar(uint8_t{0}, seed);
}
template <class T>
uint64_t HashValue(const std::map<std::string, T>& v, uint64_t seed) {
  seed = HashScalar(v.size(), seed);
  for (const auto& [key, item] : v) seed = HashValue(item, HashValue(key, seed));
  return seed;
}
template <HasFields T>
uint64_t HashValue(const T& v, uint64_t seed) {
  std::apply([&](const auto&... f) { ((seed = HashValue(v.*(f.member), seed)), ...); }, T::kFields);
  return seed;
}

// --- Equality ----------------------------------------------------------------------------
// SameValue is the engine's equality, for early cutoff, input changes and argument lookup:
// operator==, except that doubles compare by their bits. A cache must call a value
// unchanged only if nothing can tell it from the old one: -0.0 is not 0.0 (1 / x
// differs), and a NaN is the same as itself (IEEE == would call every NaN a change, and
// a NaN argument a new task on every call). Composites compare element by element; a
// user type without kFields uses its own operator==.
inline bool SameValue(double a, double b) {
  return std::bit_cast<uint64_t>(a) == std::bit_cast<uint64_t>(b);
}
template <class T>
bool SameValue(const T& a, const T& b) {
  return a == b;
}
template <class T>
bool SameValue(const std::vector<T>& a, const std::vector<T>& b);
template <class T>
bool SameValue(const std::optional<T>& a, const std::optional<T>& b);
template <class T>
bool SameValue(const std::map<std::string, T>& a, const std::map<std::string, T>& b);
template <class... T>
bool SameValue(const std::tuple<T...>& a, const std::tuple<T...>& b);
template <HasFields T>
bool SameValue(const T& a, const T& b);

template <class T>
bool SameValue(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!SameValue(a[i], b[i])) return false;
  }
  return true;
}
template <class T>
bool SameValue(const std::optional<T>& a, const std::optional<T>& b) {
  return a.has_value() == b.has_value() && (!a.has_value() || SameValue(*a, *b));
}
template <class T>
bool SameValue(const std::map<std::string, T>& a, const std::map<std::string, T>& b) {
  if (a.size() != b.size()) return false;
  for (auto i = a.begin(), k = b.begin(); i != a.end(); ++i, ++k) {
    if (i->first != k->first || !SameValue(i->second, k->second)) return false;
  }
  return true;
}
template <class... T>
bool SameValue(const std::tuple<T...>& a, const std::tuple<T...>& b) {
  return std::apply(
      [&](const T&... x) {
        return std::apply([&](const T&... y) { return (SameValue(x, y) && ...); }, b);
      },
      a);
}
template <HasFields T>
bool SameValue(const T& a, const T& b) {
  return std::apply(
      [&](const auto&... f) { return (SameValue(a.*(f.member), b.*(f.member)) && ...); },
      T::kFields);
}

// ValueTraits<T>::Name() gives the stable type name. Specialized below for built-ins.
template <class T>
struct ValueTraits;

template <class T>
concept TaskInput = std::equality_comparable<T> && std::copy_constructible<T> &&
    std::default_initializable<T> &&  // to decode it from the store
    requires(const T& v) {
  { HashValue(v, uint64_t{0}) } -> std::same_as<uint64_t>;
  { ValueTraits<T>::Name() } -> std::convertible_to<std::string>;
};

// ValueType is the runtime record for one C++ type. Lives until process exit.
struct ValueType {
  ValueTypeId id = 0;
  std::string name;
  uint64_t name_hash = 0;  // XXH3 of `name`, assigned at registration
  bool (*equal)(const void* a, const void* b) = nullptr;
  uint64_t (*hash)(const void* value, uint64_t seed) = nullptr;
  // Appends the cereal binary encoding of `value` to `out`.
  void (*serialize)(const void* value, std::string* out) = nullptr;
  // Decodes bytes written by `serialize`; returns null if they are malformed.
  std::shared_ptr<const void> (*deserialize)(std::string_view bytes) = nullptr;
  // A small value a task record can hold in place of a pointer to a boxed one: the size of
  // a trivially copyable type of at most kInlineValueBytes (and an alignment of at most
  // 8); 0 for any other type, whose values stay boxed.
  uint8_t inline_size = 0;
  // Boxes a copy of a value held in place, for a reader that keeps it; null unless
  // inline_size is set.
  std::shared_ptr<const void> (*box)(const void* value) = nullptr;
};

// The most bytes a value held in place may take: a task record holds one in the space its
// pointer to a boxed value would take.
inline constexpr size_t kInlineValueBytes = 16;

// FindValueType returns the type registered under `name`, or null.
const ValueType* FindValueType(std::string_view name);
// ValueTypeById returns the type with process-local id `id`, or null.
const ValueType* ValueTypeById(ValueTypeId id);

namespace internal {
// RegisterValueType assigns an id and stores the record. A second C++ type claiming an
// existing name is a programming error and aborts with a message naming it.
const ValueType* RegisterValueType(ValueType type, const void* cxx_type_tag);

template <class T>
bool EqualErased(const void* a, const void* b) {
  return SameValue(*static_cast<const T*>(a), *static_cast<const T*>(b));
}
template <class T>
uint64_t HashErased(const void* v, uint64_t seed) {
  return HashValue(*static_cast<const T*>(v), seed);
}
template <class T>
void SerializeErased(const void* v, std::string* out) {
  SerializeTo(*static_cast<const T*>(v), out);
}
template <class T>
std::shared_ptr<const void> DeserializeErased(std::string_view bytes) {
  auto value = std::make_shared<T>();
  if (!DeserializeFrom(bytes, value.get())) return nullptr;
  return value;
}
template <class T>
inline constexpr bool kHeldInPlace = std::is_trivially_copyable_v<T> &&
                                     sizeof(T) <= kInlineValueBytes && alignof(T) <= 8;
template <class T>
std::shared_ptr<const void> BoxErased(const void* v) {
  return std::make_shared<const T>(*static_cast<const T*>(v));
}
}  // namespace internal

// EncodeValue appends the canonical bytes of `value` (what the engine stores and hashes
// lookups by) to `out`. Works for every value type and for tuples and integers of them.
template <class T>
void EncodeValue(const T& value, std::string* out) {
  internal::SerializeTo(value, out);
}
// DecodeValue decodes exactly `bytes` into `value`; false if they are malformed, truncated,
// or longer than one encoding.
template <class T>
bool DecodeValue(std::string_view bytes, T* value) {
  return internal::DeserializeFrom(bytes, value);
}

// ValueTypeOf returns the record of T, registering it on first use.
template <class T>
const ValueType& ValueTypeOf() {
  static const char tag = 0;
  static const ValueType* const type = internal::RegisterValueType(
      ValueType{
          .id = 0,
          .name = std::string(ValueTraits<T>::Name()),
          .equal = &internal::EqualErased<T>,
          .hash = &internal::HashErased<T>,
          .serialize = &internal::SerializeErased<T>,
          .deserialize = &internal::DeserializeErased<T>,
          .inline_size = internal::kHeldInPlace<T> ? static_cast<uint8_t>(sizeof(T)) : uint8_t{0},
          .box = internal::kHeldInPlace<T> ? &internal::BoxErased<T> : nullptr},
      &tag);
  return *type;
}

// --- Built-in type names -----------------------------------------------------------------

template <>
struct ValueTraits<bool> {
  static std::string Name() { return "bool"; }
};
template <>
struct ValueTraits<int32_t> {
  static std::string Name() { return "i32"; }
};
template <>
struct ValueTraits<int64_t> {
  static std::string Name() { return "i64"; }
};
template <>
struct ValueTraits<uint32_t> {
  static std::string Name() { return "u32"; }
};
template <>
struct ValueTraits<uint64_t> {
  static std::string Name() { return "u64"; }
};
template <>
struct ValueTraits<double> {
  static std::string Name() { return "f64"; }
};
template <>
struct ValueTraits<std::string> {
  static std::string Name() { return "string"; }
};
template <>
struct ValueTraits<Bytes> {
  static std::string Name() { return "bytes"; }
};
template <class T>
struct ValueTraits<std::vector<T>> {
  static std::string Name() { return "list<" + ValueTraits<T>::Name() + ">"; }
};
template <class T>
struct ValueTraits<std::optional<T>> {
  static std::string Name() { return "optional<" + ValueTraits<T>::Name() + ">"; }
};
template <class T>
struct ValueTraits<std::map<std::string, T>> {
  static std::string Name() { return "map<" + ValueTraits<T>::Name() + ">"; }
};
template <HasFields T>
struct ValueTraits<T> {
  static std::string Name() { return std::string(T::kTypeName); }
};

}  // namespace turbine

// cereal finds serialize() for user structs here: they declared their fields once.
namespace cereal {
template <class Archive, turbine::HasFields T>
void serialize(Archive& ar, T& value) {
  std::apply([&](const auto&... f) { (ar(value.*(f.member)), ...); }, T::kFields);
}
}  // namespace cereal
