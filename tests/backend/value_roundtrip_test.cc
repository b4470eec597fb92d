// Every value type survives its canonical encoding (what the backing store keeps), and
// damaged bytes are rejected rather than half-decoded.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "alloc_counter.h"
#include "turbine/engine.h"

namespace {

struct Point {
  int64_t x = 0;
  int64_t y = 0;
  std::string label;
  bool operator==(const Point&) const = default;
  static constexpr std::string_view kTypeName = "test.roundtrip.Point";
  static constexpr auto kFields =
      std::make_tuple(turbine::field("x", &Point::x), turbine::field("y", &Point::y),
                      turbine::field("label", &Point::label));
};

template <class T>
void ExpectRoundTrip(const T& value) {
  const turbine::ValueType& type = turbine::ValueTypeOf<T>();
  std::string bytes;
  type.serialize(&value, &bytes);
  std::shared_ptr<const void> decoded = type.deserialize(bytes);
  ASSERT_NE(decoded, nullptr) << type.name;
  EXPECT_TRUE(type.equal(&value, decoded.get())) << type.name;
  EXPECT_EQ(type.hash(&value, 1), type.hash(decoded.get(), 1)) << type.name;
  // Found again by its stable name, which is what the store records.
  EXPECT_EQ(turbine::FindValueType(type.name), &type);
}

TEST(ValueRoundTrip, EveryBuiltInType) {
  ExpectRoundTrip(true);
  ExpectRoundTrip(int32_t{-7});
  ExpectRoundTrip(int64_t{-1234567890123});
  ExpectRoundTrip(uint32_t{4000000000u});
  ExpectRoundTrip(uint64_t{18000000000000000000ull});
  ExpectRoundTrip(3.25);
  ExpectRoundTrip(std::string("text with \0 inside", 18));
  ExpectRoundTrip(turbine::Bytes{std::string("\x00\xff\x10", 3)});
  ExpectRoundTrip(std::vector<int64_t>{1, -2, 3});
  ExpectRoundTrip(std::optional<std::string>{});
  ExpectRoundTrip(std::optional<std::string>{"set"});
  ExpectRoundTrip(std::map<std::string, int64_t>{{"a", 1}, {"b", 2}});
}

TEST(ValueRoundTrip, UserStructsAndNesting) {
  ExpectRoundTrip(Point{1, -2, "p"});
  ExpectRoundTrip(std::vector<Point>{{1, 2, "a"}, {3, 4, "b"}});
  ExpectRoundTrip(std::map<std::string, std::vector<std::optional<int64_t>>>{
      {"k", {std::nullopt, int64_t{5}}}});
}

TEST(ValueRoundTrip, VcsKeepTheirCellTypeByName) {
  const turbine::RawVc cell =
      turbine::RawVc::Cell(42, turbine::ValueTypeOf<Point>().id, 3);
  ExpectRoundTrip(turbine::Vc<Point>(cell));
  ExpectRoundTrip(turbine::ResolvedVc<Point>(turbine::Vc<Point>(cell)));
  ExpectRoundTrip(turbine::Vc<int64_t>(turbine::RawVc::Output(9)));
  ExpectRoundTrip(std::vector<turbine::Vc<int64_t>>{turbine::Vc<int64_t>(turbine::RawVc::Output(1))});
}

TEST(ValueRoundTrip, DamagedBytesAreRejected) {
  const turbine::ValueType& type = turbine::ValueTypeOf<Point>();
  const Point point{1, 2, "a label long enough to matter"};
  std::string bytes;
  type.serialize(&point, &bytes);
  // Cut at every byte: no prefix decodes.
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    EXPECT_EQ(type.deserialize(std::string_view(bytes).substr(0, cut)), nullptr) << cut;
  }
  // Trailing bytes are not one encoding either.
  EXPECT_EQ(type.deserialize(bytes + "x"), nullptr);
}

TEST(ValueRoundTrip, ADamagedLengthIsRejectedWithoutAllocatingIt) {
  // A damaged record: a string's 8-byte length prefix says 128 MiB, and 8 bytes follow.
  // Decoding must fail before allocating (and zeroing) the claimed size.
  std::string bytes;
  turbine::EncodeValue(std::string("12345678"), &bytes);
  const uint64_t claimed = uint64_t{1} << 27;
  std::memcpy(bytes.data(), &claimed, sizeof(claimed));
  const uint64_t before = turbine::testing::ThreadAllocatedBytes();
  std::string decoded;
  EXPECT_FALSE(turbine::DecodeValue(bytes, &decoded));
  EXPECT_LT(turbine::testing::ThreadAllocatedBytes() - before, uint64_t{1} << 20);
  // The same for a container's element count (16 Mi integers: 128 MiB).
  std::string list;
  turbine::EncodeValue(std::vector<int64_t>{1}, &list);
  const uint64_t claimed_items = uint64_t{1} << 24;
  std::memcpy(list.data(), &claimed_items, sizeof(claimed_items));
  const uint64_t before_list = turbine::testing::ThreadAllocatedBytes();
  std::vector<int64_t> decoded_list;
  EXPECT_FALSE(turbine::DecodeValue(list, &decoded_list));
  EXPECT_LT(turbine::testing::ThreadAllocatedBytes() - before_list, uint64_t{1} << 20);
}

turbine::Task<int64_t> ArgsImpl(int64_t a, std::string b, std::vector<Point> c) {
  co_return a + static_cast<int64_t>(b.size() + c.size());
}
inline const turbine::Function<ArgsImpl> args_fn{"test.roundtrip.args", 1};

TEST(ValueRoundTrip, ArgumentTuplesHaveCanonicalBytes) {
  const auto& info = args_fn.info();
  std::tuple<int64_t, std::string, std::vector<Point>> args(5, "xy", {{1, 2, "z"}});
  std::string bytes;
  info.serialize_args(&args, &bytes);
  void* decoded = info.deserialize_args(bytes);
  ASSERT_NE(decoded, nullptr);
  EXPECT_TRUE(info.equal_args(&args, decoded));
  EXPECT_EQ(info.hash_args(&args, 3), info.hash_args(decoded, 3));
  info.destroy_args(decoded);

  std::string again;  // the same arguments always give the same bytes
  info.serialize_args(&args, &again);
  EXPECT_EQ(bytes, again);
  EXPECT_EQ(info.deserialize_args(bytes.substr(0, bytes.size() - 1)), nullptr);
}

}  // namespace
