// Building and reading Values with the typed helpers.
#include "turbine/client/values.h"

#include <gtest/gtest.h>

namespace turbine::client {
namespace {

TEST(ClientValuesTest, AccessorsAnswerOnlyForTheirKind) {
  EXPECT_EQ(AsInt(Int(7)), 7);
  EXPECT_EQ(AsInt(Double(7.0)), std::nullopt);  // no conversions
  EXPECT_EQ(AsDouble(Double(0.5)), 0.5);
  EXPECT_EQ(AsBool(Bool(false)), false);
  EXPECT_EQ(AsBool(Int(0)), std::nullopt);
  EXPECT_TRUE(IsNull(Null()));
  EXPECT_FALSE(IsNull(v1::Value()));  // an unset Value is not null
  ASSERT_NE(AsString(Str("s")), nullptr);
  EXPECT_EQ(*AsString(Str("s")), "s");
  EXPECT_EQ(AsString(BytesValue("s")), nullptr);
  ASSERT_NE(AsBytes(BytesValue("b")), nullptr);
  EXPECT_EQ(*AsBytes(BytesValue("b")), "b");
  ASSERT_NE(AsRef(Ref(4, "Path", 1)), nullptr);
  EXPECT_EQ(AsRef(Ref(4, "Path", 1))->cell_type(), "Path");
  EXPECT_EQ(AsList(Map({})), nullptr);
  ASSERT_NE(AsList(List({Int(1)})), nullptr);
  EXPECT_EQ(AsList(List({Int(1)}))->items_size(), 1);
}

TEST(ClientValuesTest, MapSortsByKeyAndTheLastOfEqualKeysWins) {
  v1::Value map = Map({{"b", Int(1)}, {"a", Int(2)}, {"b", Int(3)}, {"c", Int(4)}});
  ASSERT_NE(AsMap(map), nullptr);
  ASSERT_EQ(AsMap(map)->entries_size(), 3);
  EXPECT_EQ(AsMap(map)->entries(0).key(), "a");
  EXPECT_EQ(AsMap(map)->entries(1).key(), "b");
  EXPECT_EQ(AsMap(map)->entries(2).key(), "c");
  EXPECT_EQ(AsInt(*Find(map, "b")), 3);
  EXPECT_EQ(Find(map, "z"), nullptr);
  EXPECT_EQ(Find(List({}), "a"), nullptr);
}

}  // namespace
}  // namespace turbine::client
