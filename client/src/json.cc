#include "turbine/client/json.h"

#include <absl/strings/escaping.h>
#include <absl/strings/numbers.h>
#include <absl/strings/str_cat.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "turbine/client/values.h"

namespace turbine::client {
namespace {

constexpr char kRefKey[] = "$ref";
constexpr char kBytesKey[] = "$bytes";
constexpr char kMapKey[] = "$map";
// JSON has no NaN or infinities: {"$double": "NaN"} and the like stand for them, so that
// what --json prints for such a value reads back as the same value (null did not).
constexpr char kDoubleKey[] = "$double";
constexpr char kNaN[] = "NaN";
constexpr char kMinusNaN[] = "-NaN";  // the engine tells a NaN by its bits, sign included
constexpr char kInfinity[] = "Infinity";
constexpr char kMinusInfinity[] = "-Infinity";
// Lists and maps nest at most as deep as the daemon can parse: protobuf reads at most 100
// levels of messages, of which the request and the argument take up to three (an input's
// entry and value two), and a list inside a value costs two more (Value, ListValue), a map
// three (Value, ValueMap, MapEntry): 48 lists or 32 maps inside one another in an argument,
// 49 or 32 in an input. Deeper is the user's mistake, said here, rather than the daemon's
// INVALID_ARGUMENT; and the conversion recurses, so a command-line argument (up to 128 KiB)
// must not nest deep enough to overflow the stack.
constexpr int kArgumentLevels = 97;
constexpr int kInputLevels = 98;
constexpr int kListLevels = 2;
constexpr int kMapLevels = 3;

bool IsSpecialKey(std::string_view key) {
  return key == kRefKey || key == kBytesKey || key == kMapKey || key == kDoubleKey;
}

nlohmann::json NonFiniteToJson(double value) {
  const char* text = std::isnan(value) ? (std::signbit(value) ? kMinusNaN : kNaN)
                     : value > 0       ? kInfinity
                                       : kMinusInfinity;
  return nlohmann::json{{kDoubleKey, text}};
}

// At prefixes an error with the JSON pointer of the part it is about.
absl::Status At(const std::string& pointer, absl::string_view message) {
  return absl::InvalidArgumentError(
      absl::StrCat("at ", pointer.empty() ? "/" : pointer, ": ", message));
}

// JSON pointer escaping: "~" -> "~0", "/" -> "~1".
std::string PointerToken(std::string_view key) {
  std::string token;
  for (char c : key) {
    if (c == '~') {
      token += "~0";
    } else if (c == '/') {
      token += "~1";
    } else {
      token += c;
    }
  }
  return token;
}

// Depth counts the levels of messages the value's parts take so far, of at most `limit`.
struct Depth {
  int levels;
  int limit;
  Depth operator+(int more) const { return {levels + more, limit}; }
};

absl::StatusOr<v1::Value> FromJson(const nlohmann::json& json, const std::string& pointer,
                                   Depth depth);

absl::StatusOr<v1::Value> MapFromJson(const nlohmann::json& object, const std::string& pointer,
                                      Depth depth) {
  std::vector<std::pair<std::string, v1::Value>> entries;
  entries.reserve(object.size());
  for (const auto& [key, item] : object.items()) {
    absl::StatusOr<v1::Value> value =
        FromJson(item, absl::StrCat(pointer, "/", PointerToken(key)), depth + kMapLevels);
    if (!value.ok()) return value.status();
    entries.emplace_back(key, *std::move(value));
  }
  return Map(std::move(entries));
}

absl::StatusOr<v1::Value> SpecialFromJson(const std::string& key, const nlohmann::json& body,
                                          const std::string& pointer, Depth depth) {
  std::string body_pointer = absl::StrCat(pointer, "/", PointerToken(key));
  if (key == kMapKey) {
    if (!body.is_object()) return At(body_pointer, "$map takes an object");
    return MapFromJson(body, body_pointer, depth);
  }
  if (!body.is_string()) return At(body_pointer, absl::StrCat(key, " takes a string"));
  const std::string& text = body.get_ref<const std::string&>();
  if (key == kDoubleKey) {
    if (text == kNaN) return Double(std::numeric_limits<double>::quiet_NaN());
    if (text == kMinusNaN) return Double(-std::numeric_limits<double>::quiet_NaN());
    if (text == kInfinity) return Double(std::numeric_limits<double>::infinity());
    if (text == kMinusInfinity) return Double(-std::numeric_limits<double>::infinity());
    return At(body_pointer,
              absl::StrCat("$double takes \"", kNaN, "\", \"", kMinusNaN, "\", \"", kInfinity,
                           "\" or \"", kMinusInfinity, "\" (a finite number is written as one)"));
  }
  if (key == kBytesKey) {
    std::string bytes;
    if (!absl::Base64Unescape(text, &bytes)) return At(body_pointer, "not valid base64");
    return BytesValue(std::move(bytes));
  }
  absl::StatusOr<v1::TaskRef> ref = ParseRef(text);
  if (!ref.ok()) return At(body_pointer, ref.status().message());
  return Ref(*std::move(ref));
}

// Levels is what a JSON value costs in messages inside its Value: a list two (ListValue,
// Value), a map three (ValueMap, MapEntry, Value), a task reference one (TaskRef); the
// other special forms are scalars. (Charged a map's three, a NaN or bytes printed at the
// deepest level a value may reach did not read back.)
int Levels(const nlohmann::json& json) {
  if (json.is_array()) return kListLevels;
  if (!json.is_object()) return 0;
  if (json.size() == 1 && IsSpecialKey(json.begin().key())) {
    const std::string& key = json.begin().key();
    return key == kMapKey ? kMapLevels : key == kRefKey ? 1 : 0;
  }
  return kMapLevels;
}

absl::StatusOr<v1::Value> FromJson(const nlohmann::json& json, const std::string& pointer,
                                   Depth depth) {
  if (depth.levels + Levels(json) > depth.limit) {
    return At(pointer,
              absl::StrCat("lists and maps nest too deeply: at most ", depth.limit / kListLevels,
                           " lists or ", depth.limit / kMapLevels,
                           " maps inside one another (protobuf reads at most 100 "
                           "levels of messages)"));
  }
  switch (json.type()) {
    case nlohmann::json::value_t::null:
      return Null();
    case nlohmann::json::value_t::boolean:
      return Bool(json.get<bool>());
    case nlohmann::json::value_t::number_integer:
      return Int(json.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned:
      return Uint(json.get<uint64_t>());
    case nlohmann::json::value_t::number_float:
      return Double(json.get<double>());
    case nlohmann::json::value_t::string:
      return Str(json.get<std::string>());
    case nlohmann::json::value_t::array: {
      std::vector<v1::Value> items;
      items.reserve(json.size());
      for (size_t i = 0; i < json.size(); ++i) {
        absl::StatusOr<v1::Value> item =
            FromJson(json[i], absl::StrCat(pointer, "/", i), depth + kListLevels);
        if (!item.ok()) return item.status();
        items.push_back(*std::move(item));
      }
      return List(std::move(items));
    }
    case nlohmann::json::value_t::object:
      if (json.size() == 1 && IsSpecialKey(json.begin().key())) {
        return SpecialFromJson(json.begin().key(), json.begin().value(), pointer, depth);
      }
      return MapFromJson(json, pointer, depth);
    case nlohmann::json::value_t::binary:
    case nlohmann::json::value_t::discarded:
      break;
  }
  return At(pointer, "not a JSON value the protocol has");
}

nlohmann::json MapToJson(const v1::ValueMap& map) {
  nlohmann::json object = nlohmann::json::object();
  for (const v1::MapEntry& entry : map.entries()) object[entry.key()] = ValueToJson(entry.value());
  if (map.entries_size() == 1 && IsSpecialKey(map.entries(0).key())) {
    return nlohmann::json{{kMapKey, std::move(object)}};
  }
  return object;
}

// OversizedIntegerFinder reads JSON text for an integer literal (no fraction, no exponent)
// beyond 64 bits (below -2^63, above 2^64 - 1), and keeps the JSON pointer of the first
// one. nlohmann's parser turns such a literal into a double, after which nothing says it
// was written as an integer.
class OversizedIntegerFinder final : public nlohmann::json_sax<nlohmann::json> {
 public:
  // The error for the literal found; OK if there is none (or the text is not JSON).
  const absl::Status& found() const { return found_; }

  bool null() override { return Value(); }
  bool boolean(bool) override { return Value(); }
  bool number_integer(number_integer_t) override { return Value(); }
  bool number_unsigned(number_unsigned_t) override { return Value(); }
  bool number_float(number_float_t, const string_t& text) override {
    Value();
    if (text.find_first_of(".eE") != string_t::npos) return true;
    found_ = At(Pointer(), absl::StrCat(text,
                                        " does not fit in a 64-bit integer (from -2^63 "
                                        "to 2^64 - 1)"));
    return false;
  }
  bool string(string_t&) override { return Value(); }
  bool binary(binary_t&) override { return Value(); }
  bool start_object(std::size_t) override { return Open(/*list=*/false); }
  bool key(string_t& key) override {
    levels_.back().token = PointerToken(key);
    return true;
  }
  bool end_object() override { return Close(); }
  bool start_array(std::size_t) override { return Open(/*list=*/true); }
  bool end_array() override { return Close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  // Level is one open list or map: its pointer token for the value being read in it.
  struct Level {
    bool list;
    size_t next_index = 0;
    std::string token;
  };

  // Value starts a value; in a list, it takes the next index.
  bool Value() {
    if (!levels_.empty() && levels_.back().list) {
      levels_.back().token = absl::StrCat(levels_.back().next_index++);
    }
    return true;
  }
  bool Open(bool list) {
    Value();
    levels_.push_back(Level{.list = list, .next_index = 0, .token = {}});
    return true;
  }
  bool Close() {
    levels_.pop_back();
    return true;
  }
  std::string Pointer() const {
    std::string pointer;
    for (const Level& level : levels_) absl::StrAppend(&pointer, "/", level.token);
    return pointer;
  }

  std::vector<Level> levels_;
  absl::Status found_;
};

// ParseDecimal accepts digits only: no sign, no spaces (which SimpleAtoi would allow).
template <class Int>
bool ParseDecimal(absl::string_view text, Int* out) {
  if (text.empty()) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return absl::SimpleAtoi(text, out);
}

}  // namespace

absl::StatusOr<v1::Value> ValueFromJson(const nlohmann::json& json, ValueUse use) {
  return FromJson(json, "", {0, use == ValueUse::kInput ? kInputLevels : kArgumentLevels});
}

absl::Status CheckIntegersFit(std::string_view json_text) {
  OversizedIntegerFinder finder;
  nlohmann::json::sax_parse(json_text.begin(), json_text.end(), &finder);
  return finder.found();
}

nlohmann::json ValueToJson(const v1::Value& value) {
  switch (value.kind_case()) {
    case v1::Value::kNullValue:
    case v1::Value::KIND_NOT_SET:
      return nullptr;
    case v1::Value::kBoolValue:
      return value.bool_value();
    case v1::Value::kIntValue:
      return value.int_value();
    case v1::Value::kUintValue:
      return value.uint_value();
    case v1::Value::kDoubleValue:
      if (!std::isfinite(value.double_value())) return NonFiniteToJson(value.double_value());
      return value.double_value();
    case v1::Value::kStringValue:
      return value.string_value();
    case v1::Value::kBytesValue:
      return nlohmann::json{{kBytesKey, absl::Base64Escape(value.bytes_value())}};
    case v1::Value::kListValue: {
      nlohmann::json array = nlohmann::json::array();
      for (const v1::Value& item : value.list_value().items()) array.push_back(ValueToJson(item));
      return array;
    }
    case v1::Value::kMapValue:
      return MapToJson(value.map_value());
    case v1::Value::kRefValue:
      return nlohmann::json{{kRefKey, FormatRef(value.ref_value())}};
  }
  return nullptr;
}

absl::StatusOr<v1::TaskRef> ParseRef(std::string_view std_text) {
  absl::string_view text(std_text.data(), std_text.size());
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "task reference \"", text, "\" is neither \"<task>\" nor \"<task>/<type>/<index>\""));
  };
  size_t first_slash = text.find('/');
  uint64_t task;
  if (!ParseDecimal(text.substr(0, first_slash), &task)) return bad();
  if (first_slash == absl::string_view::npos) return MakeTaskRef(task);
  // The type sits between the first and the last slash, so a type name may hold slashes.
  size_t last_slash = text.rfind('/');
  absl::string_view type = text.substr(first_slash + 1, last_slash - first_slash - 1);
  uint32_t index;
  if (last_slash == first_slash || type.empty() ||
      !ParseDecimal(text.substr(last_slash + 1), &index)) {
    return bad();
  }
  return MakeTaskRef(task, std::string(type), index);
}

std::string FormatRef(const v1::TaskRef& ref) {
  if (ref.cell_type().empty()) return absl::StrCat(ref.task());
  return absl::StrCat(ref.task(), "/", ref.cell_type(), "/", ref.cell_index());
}

}  // namespace turbine::client
