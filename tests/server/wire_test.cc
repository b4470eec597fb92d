// Conversions from the protocol's values (turbine/server/wire.h): a map that names a key
// twice is refused, whatever it converts to. Before, the last entry silently won.
#include "turbine/server/wire.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <string>

namespace {

using turbine::WireValue;
using turbine::server::Wire;
using StringToInt = std::map<std::string, int64_t>;
namespace v1 = turbine::v1;

struct Point {
  int64_t x = 0;
  int64_t y = 0;
  bool operator==(const Point&) const = default;
  static constexpr std::string_view kTypeName = "test.Point";
  static constexpr auto kFields =
      std::make_tuple(turbine::field("x", &Point::x), turbine::field("y", &Point::y));
};

v1::Value MapOf(std::initializer_list<std::pair<std::string, int64_t>> entries) {
  v1::Value value;
  for (const auto& [key, number] : entries) {
    v1::MapEntry* entry = value.mutable_map_value()->add_entries();
    entry->set_key(key);
    entry->mutable_value()->set_int_value(number);
  }
  return value;
}

TEST(Wire, AMapNamingAKeyTwiceIsRefusedAsAnyValue) {
  WireValue out;
  absl::Status status = Wire<WireValue>::From(MapOf({{"a", 1}, {"b", 2}, {"a", 3}}), &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "a map names key 'a' twice");
  EXPECT_TRUE(Wire<WireValue>::From(MapOf({{"a", 1}, {"b", 2}}), &out).ok());
}

TEST(Wire, AMapNamingAKeyTwiceIsRefusedAsATypedMap) {
  StringToInt out;
  absl::Status status = Wire<StringToInt>::From(MapOf({{"k", 1}, {"k", 1}}), &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "a map names key 'k' twice");
  ASSERT_TRUE(Wire<StringToInt>::From(MapOf({{"k", 1}, {"l", 2}}), &out).ok());
  EXPECT_EQ(out, (StringToInt{{"k", 1}, {"l", 2}}));
}

TEST(Wire, AStructGivenAFieldTwiceIsRefused) {
  Point out;
  absl::Status status = Wire<Point>::From(MapOf({{"x", 1}, {"y", 2}, {"x", 5}}), &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "a map names key 'x' twice");
  // An unknown field is still named as one, and a good map converts.
  status = Wire<Point>::From(MapOf({{"x", 1}, {"z", 2}}), &out);
  EXPECT_EQ(status.message(), "test.Point has no field 'z'");
  ASSERT_TRUE(Wire<Point>::From(MapOf({{"y", 2}, {"x", 1}}), &out).ok());
  EXPECT_EQ(out, (Point{1, 2}));
}

}  // namespace
