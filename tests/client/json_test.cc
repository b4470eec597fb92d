// The JSON form of values: what `turbine call` accepts and prints.
#include "turbine/client/json.h"

#include <google/protobuf/util/message_differencer.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "arguments.h"
#include "turbine/client/values.h"

namespace turbine::client {
namespace {

using nlohmann::json;

MATCHER_P(EqualsProto, expected, "") {
  return google::protobuf::util::MessageDifferencer::Equals(arg, expected);
}

v1::Value FromText(const std::string& text) {
  absl::StatusOr<v1::Value> value = ValueFromJson(json::parse(text));
  EXPECT_TRUE(value.ok()) << text << ": " << value.status();
  return value.ok() ? *value : v1::Value();
}

// Text -> Value -> text gives the same JSON back, and the Value is the one expected.
void ExpectRoundTrip(const std::string& text, const v1::Value& expected) {
  v1::Value value = FromText(text);
  EXPECT_THAT(value, EqualsProto(expected)) << text;
  EXPECT_EQ(ValueToJson(value), json::parse(text)) << text;
}

TEST(JsonTest, EveryScalarKindRoundTrips) {
  ExpectRoundTrip("null", Null());
  ExpectRoundTrip("true", Bool(true));
  ExpectRoundTrip("false", Bool(false));
  ExpectRoundTrip("30", Int(30));
  ExpectRoundTrip("-3", Int(-3));
  ExpectRoundTrip("9223372036854775807", Int(INT64_MAX));
  ExpectRoundTrip("-9223372036854775808", Int(INT64_MIN));
  // Above int64's range: uint_value. Before, refused as not fitting a signed integer.
  ExpectRoundTrip("9223372036854775808", Uint(uint64_t{1} << 63));
  ExpectRoundTrip("18446744073709551615", Uint(UINT64_MAX));
  EXPECT_TRUE(Uint(UINT64_MAX).has_uint_value());
  EXPECT_THAT(Uint(5), EqualsProto(Int(5)));  // the smaller ones as int_value
  ExpectRoundTrip("1.5", Double(1.5));
  ExpectRoundTrip("\"text\"", Str("text"));
  ExpectRoundTrip("\"\"", Str(""));
  ExpectRoundTrip("\"ünïcode ✓\"", Str("ünïcode ✓"));
}

TEST(JsonTest, FractionOrExponentMakesADouble) {
  EXPECT_THAT(FromText("1.0"), EqualsProto(Double(1.0)));
  EXPECT_THAT(FromText("1e3"), EqualsProto(Double(1000.0)));
  // However large: a double is what was written.
  EXPECT_THAT(*cli::ParseValueArgument("[18446744073709551616.0,1e19,-1E19]"),
              EqualsProto(List({Double(18446744073709551616.0), Double(1e19), Double(-1e19)})));
  EXPECT_THAT(FromText("1000"), EqualsProto(Int(1000)));
  // A whole double stays a double on the way back, not an int.
  EXPECT_EQ(ValueToJson(Double(2.0)).dump(), "2.0");
}

TEST(JsonTest, ABareWordThatIsNotUtf8IsBytes) {
  EXPECT_THAT(*cli::ParseValueArgument("plain"), EqualsProto(Str("plain")));
  EXPECT_THAT(*cli::ParseValueArgument("caf\xc3\xa9"), EqualsProto(Str("caf\xc3\xa9")));
  EXPECT_THAT(*cli::ParseValueArgument("a\xffb"), EqualsProto(BytesValue("a\xffb")));
  EXPECT_THAT(*cli::ParseValueArgument("\xc3"), EqualsProto(BytesValue("\xc3")));  // cut short
}

TEST(JsonTest, ListsAndMapsRoundTripNested) {
  ExpectRoundTrip("[]", List({}));
  ExpectRoundTrip("{}", Map({}));
  ExpectRoundTrip(R"([1,"a",[true,null],{"k":[2.5]}])",
                  List({Int(1), Str("a"), List({Bool(true), Null()}),
                        Map({{"k", List({Double(2.5)})}})}));
  ExpectRoundTrip(R"({"b":{"c":{"$ref":"3"}},"a":[{"$bytes":"AA=="}]})",
                  Map({{"a", List({BytesValue(std::string(1, '\0'))})},
                       {"b", Map({{"c", Ref(3)}})}}));
}

TEST(JsonTest, MapEntriesAreSortedByKey) {
  v1::Value value = FromText(R"({"zebra":1,"apple":2,"mango":3})");
  ASSERT_EQ(value.map_value().entries_size(), 3);
  EXPECT_EQ(value.map_value().entries(0).key(), "apple");
  EXPECT_EQ(value.map_value().entries(1).key(), "mango");
  EXPECT_EQ(value.map_value().entries(2).key(), "zebra");
}

TEST(JsonTest, RefsToOutputsAndCells) {
  ExpectRoundTrip(R"({"$ref":"12"})", Ref(12));
  ExpectRoundTrip(R"({"$ref":"12/Path/3"})", Ref(12, "Path", 3));
  ExpectRoundTrip(R"({"$ref":"18446744073709551615"})", Ref(UINT64_MAX));
}

TEST(JsonTest, BytesAreBase64BothWays) {
  std::string all_bytes;
  for (int b = 0; b < 256; ++b) all_bytes.push_back(static_cast<char>(b));
  v1::Value value = BytesValue(all_bytes);
  json written = ValueToJson(value);
  ASSERT_TRUE(written.contains("$bytes"));
  EXPECT_THAT(FromText(written.dump()), EqualsProto(value));
  ExpectRoundTrip(R"({"$bytes":"aGk="})", BytesValue("hi"));
}

TEST(JsonTest, ObjectsWithMoreThanTheSpecialKeyAreMaps) {
  EXPECT_THAT(FromText(R"({"$ref":"1","x":2})"), EqualsProto(Map({{"$ref", Str("1")},
                                                                   {"x", Int(2)}})));
  EXPECT_THAT(FromText(R"({"ref":"1"})"), EqualsProto(Map({{"ref", Str("1")}})));
}

TEST(JsonTest, AMapThatLooksLikeASpecialObjectIsEscaped) {
  // A one-entry map keyed "$ref" must not come back as a reference.
  v1::Value map = Map({{"$ref", Str("12")}});
  json written = ValueToJson(map);
  EXPECT_EQ(written, json::parse(R"({"$map":{"$ref":"12"}})"));
  EXPECT_THAT(FromText(written.dump()), EqualsProto(map));
  ExpectRoundTrip(R"({"$map":{"$map":{}}})", Map({{"$map", Map({})}}));
}

TEST(JsonTest, NonFiniteDoublesHaveAFormThatReadsBack) {
  // JSON has no NaN or infinities; they were printed as null, which read back as null.
  ExpectRoundTrip(R"({"$double":"Infinity"})", Double(INFINITY));
  ExpectRoundTrip(R"({"$double":"-Infinity"})", Double(-INFINITY));
  EXPECT_EQ(ValueToJson(Double(std::nan(""))), json::parse(R"({"$double":"NaN"})"));
  v1::Value nan = FromText(R"({"$double":"NaN"})");
  ASSERT_EQ(nan.kind_case(), v1::Value::kDoubleValue);
  EXPECT_TRUE(std::isnan(nan.double_value()));
  // Inside lists and maps too, and a map keyed "$double" is escaped like the others.
  ExpectRoundTrip(R"([1.5,{"x":{"$double":"-Infinity"}}])",
                  List({Double(1.5), Map({{"x", Double(-INFINITY)}})}));
  ExpectRoundTrip(R"({"$map":{"$double":"NaN"}})", Map({{"$double", Str("NaN")}}));
  // The engine tells a NaN by its bits: its sign comes back too.
  EXPECT_EQ(ValueToJson(Double(-std::nan(""))), json::parse(R"({"$double":"-NaN"})"));
  v1::Value minus_nan = FromText(R"({"$double":"-NaN"})");
  EXPECT_TRUE(std::isnan(minus_nan.double_value()) && std::signbit(minus_nan.double_value()));
  EXPECT_FALSE(std::signbit(nan.double_value()));
  absl::StatusOr<v1::Value> bad = ValueFromJson(json::parse(R"({"$double":"1.5"})"));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), testing::HasSubstr("$double takes \"NaN\""));
}

TEST(JsonTest, ErrorsNameWhereTheyAre) {
  struct Case {
    const char* text;
    const char* message_part;
  };
  for (const Case& c : {
           Case{R"({"$ref":5})", "at /$ref: $ref takes a string"},
           Case{R"({"$ref":"x"})", "neither"},
           Case{R"({"$ref":"-1"})", "neither"},
           Case{R"({"$ref":" 1"})", "neither"},
           Case{R"({"$ref":"1/Path"})", "neither"},
           Case{R"({"$ref":"1//3"})", "neither"},
           Case{R"({"$ref":"1/Path/4294967296"})", "neither"},
           Case{R"([0,{"a":{"$bytes":"!!"}}])", "at /1/a/$bytes: not valid base64"},
           Case{R"({"$map":[1]})", "$map takes an object"},
           Case{R"({"a/b":[{"$ref":true}]})", "at /a~1b/0/$ref"},
           // Beyond uint64 or below int64, nlohmann's parser makes a double of an integer.
           // Before: these became 1.8446744073709552e+19 and so on, silently.
           Case{"18446744073709551616", "at /: 18446744073709551616 does not fit in a 64-bit"},
           Case{"-9223372036854775809", "at /: -9223372036854775809 does not fit"},
           Case{"[1,99999999999999999999]", "at /1: 99999999999999999999 does not fit"},
           Case{R"({"a":[0,{"b~":-99999999999999999999}]})", "at /a/1/b~0: -9999"},
       }) {
    // As the CLI reads an argument: the text is parsed, checked and converted.
    absl::StatusOr<v1::Value> value = cli::ParseValueArgument(c.text);
    ASSERT_FALSE(value.ok()) << c.text;
    EXPECT_EQ(value.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_NE(value.status().message().find(c.message_part), absl::string_view::npos)
        << c.text << " -> " << value.status();
  }
}

TEST(JsonTest, DeepNestingIsAnErrorNotAStackOverflow) {
  // The longest command-line argument Linux passes (128 KiB) nests 65,535 levels. Before:
  // the conversion recursed once per level and the CLI died of a stack overflow.
  const size_t levels = 65536;
  absl::StatusOr<v1::Value> deep =
      cli::ParseValueArgument(std::string(levels, '[') + std::string(levels, ']'));
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(deep.status().message().find("nest too deeply: at most 48 lists or 32 maps"),
            absl::string_view::npos)
      << deep.status();
  // As deep as the daemon parses (protobuf's 100 levels of messages), and no deeper.
  EXPECT_TRUE(cli::ParseValueArgument(std::string(48, '[') + std::string(48, ']')).ok());
  EXPECT_FALSE(cli::ParseValueArgument(std::string(49, '[') + std::string(49, ']')).ok());
  std::string maps = "1";
  for (int i = 0; i < 32; ++i) maps = "{\"k\":" + maps + "}";
  EXPECT_TRUE(cli::ParseValueArgument(maps).ok());
  EXPECT_FALSE(cli::ParseValueArgument("{\"k\":" + maps + "}").ok());
}

TEST(JsonTest, AnInputNestsAsDeepAsTheDaemonStoresOne) {
  // SetInputs takes 49 lists, and `input.get` prints such a value: `set` refused it back
  // ("at most 48 lists"), though what --json prints is meant to go back in.
  const std::string lists49 = std::string(49, '[') + std::string(49, ']');
  EXPECT_TRUE(cli::ParseValueArgument(lists49, ValueUse::kInput).ok());
  EXPECT_FALSE(cli::ParseValueArgument(lists49).ok());
  absl::StatusOr<v1::Value> deeper = cli::ParseValueArgument("[" + lists49 + "]", ValueUse::kInput);
  ASSERT_FALSE(deeper.ok());
  EXPECT_THAT(deeper.status().message(),
              testing::HasSubstr("nest too deeply: at most 49 lists or 32 maps"));
  std::string maps = "1";
  for (int i = 0; i < 32; ++i) maps = "{\"k\":" + maps + "}";
  EXPECT_TRUE(cli::ParseValueArgument(maps, ValueUse::kInput).ok());
  EXPECT_FALSE(cli::ParseValueArgument("{\"k\":" + maps + "}", ValueUse::kInput).ok());
}

// A special form costs what it stands for: a NaN or bytes nothing, a reference one level
// (TaskRef). Before, each was charged a map's three, and one printed at the deepest level a
// value may reach did not read back.
TEST(JsonTest, SpecialFormsAtTheDeepestLevelReadBack) {
  const auto in_lists = [](int lists, const std::string& inner) {
    return std::string(lists, '[') + inner + std::string(lists, ']');
  };
  for (const std::string inner :
       {R"({"$double":"NaN"})", R"({"$bytes":"AP8="})", R"({"$ref":"1"})"}) {
    EXPECT_TRUE(cli::ParseValueArgument(in_lists(48, inner)).ok()) << inner;
  }
  for (const std::string inner : {R"({"$double":"NaN"})", R"({"$bytes":"AP8="})"}) {
    EXPECT_TRUE(cli::ParseValueArgument(in_lists(49, inner), ValueUse::kInput).ok()) << inner;
  }
  // As the daemon does, SetInputs takes no reference inside 49 lists: TaskRef is a level.
  EXPECT_FALSE(cli::ParseValueArgument(in_lists(49, R"({"$ref":"1"})"), ValueUse::kInput).ok());
  // A map's escape still costs a map.
  EXPECT_FALSE(cli::ParseValueArgument(in_lists(48, R"({"$map":{}})")).ok());
}

TEST(JsonTest, ANumberBeyondADoubleIsAnError) {
  // Found by cli_fuzz (tests/fuzz/corpus/cli_fuzz/crash-number-overflow). Before: the
  // parser's out_of_range exception escaped and the CLI aborted.
  for (const char* text : {"1e999", "[1, -1e999]", "11.85e43467440737"}) {
    absl::StatusOr<v1::Value> value = cli::ParseValueArgument(text);
    ASSERT_FALSE(value.ok()) << text;
    EXPECT_EQ(value.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_NE(value.status().message().find("number overflow"), absl::string_view::npos)
        << value.status();
    // The parser's own name for its exception is not the user's business.
    EXPECT_EQ(value.status().message().find("json.exception"), absl::string_view::npos)
        << value.status();
  }
  absl::StatusOr<v1::Value> broken = cli::ParseValueArgument("[1,");
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.status().message().find("json.exception"), absl::string_view::npos)
      << broken.status();
}

TEST(JsonTest, RefTextParsesAndFormats) {
  absl::StatusOr<v1::TaskRef> cell = ParseRef("12/list<i64>/0");
  ASSERT_TRUE(cell.ok());
  EXPECT_EQ(cell->task(), 12u);
  EXPECT_EQ(cell->cell_type(), "list<i64>");
  EXPECT_EQ(cell->cell_index(), 0u);
  EXPECT_EQ(FormatRef(*cell), "12/list<i64>/0");
  // Type names may themselves hold slashes; the index is after the last one.
  absl::StatusOr<v1::TaskRef> slashed = ParseRef("5/a/b/9");
  ASSERT_TRUE(slashed.ok());
  EXPECT_EQ(slashed->cell_type(), "a/b");
  EXPECT_EQ(slashed->cell_index(), 9u);
  EXPECT_FALSE(ParseRef("").ok());
  EXPECT_FALSE(ParseRef("12/").ok());
}

// How the CLI reads one ARG word.
TEST(JsonTest, ArgumentsAreJsonOrElseBareWordStrings) {
  using cli::ParseValueArgument;
  EXPECT_THAT(*ParseValueArgument("30"), EqualsProto(Int(30)));
  EXPECT_THAT(*ParseValueArgument("\"30\""), EqualsProto(Str("30")));
  EXPECT_THAT(*ParseValueArgument("[1,2]"), EqualsProto(List({Int(1), Int(2)})));
  EXPECT_THAT(*ParseValueArgument(R"({"$ref":"12"})"), EqualsProto(Ref(12)));
  EXPECT_THAT(*ParseValueArgument("mykey"), EqualsProto(Str("mykey")));
  EXPECT_THAT(*ParseValueArgument("hello world"), EqualsProto(Str("hello world")));
  EXPECT_THAT(*ParseValueArgument("-"), EqualsProto(Str("-")));
  EXPECT_THAT(*ParseValueArgument(""), EqualsProto(Str("")));
  EXPECT_THAT(*ParseValueArgument("true"), EqualsProto(Bool(true)));
  EXPECT_THAT(*ParseValueArgument("True"), EqualsProto(Str("True")));
}

TEST(JsonTest, BrokenJsonStructureIsAnErrorNotAString) {
  for (const char* text : {"[1,", "{\"a\":", "\"unterminated", "  [", R"({"$ref":5})"}) {
    absl::StatusOr<v1::Value> value = cli::ParseValueArgument(text);
    EXPECT_FALSE(value.ok()) << text << " parsed as " << value->DebugString();
  }
}

TEST(JsonTest, ThisAcceptsIdsCellsAndJsonRefs) {
  using cli::ParseRefArgument;
  EXPECT_THAT(*ParseRefArgument("12"), EqualsProto(MakeTaskRef(12)));
  EXPECT_THAT(*ParseRefArgument("12/Path/3"), EqualsProto(MakeTaskRef(12, "Path", 3)));
  EXPECT_THAT(*ParseRefArgument(R"({"$ref":"12"})"), EqualsProto(MakeTaskRef(12)));
  EXPECT_FALSE(ParseRefArgument("-1").ok());
  EXPECT_FALSE(ParseRefArgument("[12]").ok());
  EXPECT_FALSE(ParseRefArgument("path").ok());
}

}  // namespace
}  // namespace turbine::client
