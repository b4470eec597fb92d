// What a formula means and how a cell fails, through the real protocol: operators,
// precedence, truncating division, functions, names; division by zero, undefined cells,
// cycles, syntax errors, overflow, inputs of the wrong kind; errors healing.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>

#include "sheet_server.h"

namespace {

using turbine::testing::Bool;
using turbine::testing::CellResult;
using turbine::testing::Int;
using turbine::testing::SheetServer;
using turbine::testing::Str;
using turbine::testing::TempDir;
namespace v1 = turbine::v1;

constexpr int kUnknown = static_cast<int>(grpc::StatusCode::UNKNOWN);
constexpr int kFailedPrecondition = static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION);

CellResult Value(int64_t value) { return CellResult::Value(value); }
CellResult Error(std::string message) { return CellResult::Error(std::move(message)); }

class SheetTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(sheet_.ok()) << sheet_.status(); }

  // Formula evaluates `text` as the formula of cell f.
  CellResult Formula(const std::string& text) {
    EXPECT_TRUE(sheet_.Set("f", text));
    return sheet_.Eval("f");
  }

  TempDir dir_;
  SheetServer sheet_{dir_.str()};
};

TEST_F(SheetTest, IntegersAndEachOperator) {
  ASSERT_TRUE(sheet_.Set({{"a", Int(17)}, {"b", Int(5)}}));
  EXPECT_EQ(sheet_.Eval("a"), Value(17));
  EXPECT_EQ(Formula("a + b"), Value(22));
  EXPECT_EQ(Formula("a - b"), Value(12));
  EXPECT_EQ(Formula("a * b"), Value(85));
  EXPECT_EQ(Formula("a / b"), Value(3));
  EXPECT_EQ(Formula("a % b"), Value(2));
  EXPECT_EQ(Formula("42"), Value(42)) << "a formula may be just a number";
  EXPECT_EQ(Formula("b"), Value(5));
}

TEST_F(SheetTest, PrecedenceAndParentheses) {
  EXPECT_EQ(Formula("2 + 3 * 4"), Value(14));
  EXPECT_EQ(Formula("(2 + 3) * 4"), Value(20));
  EXPECT_EQ(Formula("10 - 4 - 3"), Value(3)) << "left associative";
  EXPECT_EQ(Formula("10 - (4 - 3)"), Value(9));
  EXPECT_EQ(Formula("100 / 10 / 5"), Value(2));
  EXPECT_EQ(Formula("2 * 7 % 4"), Value(2)) << "* and % share a level, left to right";
  EXPECT_EQ(Formula("7 - 2 * 3 + 1"), Value(2));
  EXPECT_EQ(Formula("((((1))))+((2))*(3)"), Value(7));
}

TEST_F(SheetTest, UnaryMinus) {
  ASSERT_TRUE(sheet_.Set("x", 4));
  EXPECT_EQ(Formula("-5"), Value(-5));
  EXPECT_EQ(Formula("--5"), Value(5));
  EXPECT_EQ(Formula("- - -x"), Value(-4));
  EXPECT_EQ(Formula("2*-3"), Value(-6));
  EXPECT_EQ(Formula("-(2 + 3)"), Value(-5));
  EXPECT_EQ(Formula("x--x"), Value(8));
  EXPECT_EQ(Formula("-x * 3"), Value(-12));
}

TEST_F(SheetTest, DivisionAndModuloTruncateTowardZero) {
  EXPECT_EQ(Formula("-7 / 2"), Value(-3));
  EXPECT_EQ(Formula("7 / -2"), Value(-3));
  EXPECT_EQ(Formula("-7 / -2"), Value(3));
  EXPECT_EQ(Formula("-7 % 2"), Value(-1)) << "the remainder has the dividend's sign";
  EXPECT_EQ(Formula("7 % -2"), Value(1));
  EXPECT_EQ(Formula("-7 % -2"), Value(-1));
  EXPECT_EQ(Formula("1 / 3"), Value(0));
}

TEST_F(SheetTest, SumMinMax) {
  ASSERT_TRUE(sheet_.Set({{"a", Int(4)}, {"b", Int(-2)}, {"c", Int(9)}}));
  EXPECT_EQ(Formula("sum(a, b, c)"), Value(11));
  EXPECT_EQ(Formula("min(a, b, c)"), Value(-2));
  EXPECT_EQ(Formula("max(a, b, c)"), Value(9));
  EXPECT_EQ(Formula("sum(a)"), Value(4));
  EXPECT_EQ(Formula("max(a, b * 10, sum(1, 2), -c)"), Value(4));
  EXPECT_EQ(Formula("min(7, 3) * max(1, 2) + sum(1,1,1,1,1)"), Value(11));
}

TEST_F(SheetTest, WhitespaceAnywhereBetweenTokens) {
  EXPECT_EQ(Formula(" \t1 +\n 2\r\n"), Value(3));
  EXPECT_EQ(Formula("sum ( 1 ,2 , 3 )"), Value(6));
}

TEST_F(SheetTest, NamesWithUnderscoresAndDigits) {
  ASSERT_TRUE(sheet_.Set({{"_tmp", Int(1)}, {"cell_2", Int(20)}, {"Total9", Int(300)}}));
  EXPECT_EQ(Formula("_tmp + cell_2 + Total9"), Value(321));
  EXPECT_EQ(sheet_.Refs("f"), (std::vector<std::string>{"_tmp", "cell_2", "Total9"}));
  ASSERT_TRUE(sheet_.Set("sum", 5));
  EXPECT_EQ(Formula("sum + sum(sum, 1)"), Value(11)) << "a name before '(' is a function";
}

TEST_F(SheetTest, RefsListsNamedCellsInOrderOnce) {
  ASSERT_TRUE(sheet_.Set({{"g", Str("b * a + max(c, b) - zz")}, {"n", Int(3)}}));
  EXPECT_EQ(sheet_.Refs("g"), (std::vector<std::string>{"b", "a", "c", "zz"}));
  EXPECT_TRUE(sheet_.Refs("n").empty());
  EXPECT_TRUE(sheet_.Refs("unset").empty());
}

TEST_F(SheetTest, DivisionAndModuloByZero) {
  ASSERT_TRUE(sheet_.Set("zero", 0));
  const CellResult division = Formula("1 / zero");
  EXPECT_EQ(division, Error("cell f: division by zero"));
  EXPECT_EQ(division.code, kUnknown);
  EXPECT_EQ(Formula("1 % (2 - 2)"), Error("cell f: modulo by zero"));
  ASSERT_TRUE(sheet_.Set("g", "f + 1"));
  EXPECT_EQ(sheet_.Eval("g"), Error("cell f: modulo by zero")) << "errors propagate as they are";
}

TEST_F(SheetTest, AnUndefinedCellIsNamed) {
  EXPECT_EQ(sheet_.Eval("nowhere"), Error("cell nowhere is not defined"));
  EXPECT_EQ(Formula("1 + nowhere"), Error("cell nowhere is not defined"));
}

TEST_F(SheetTest, TheFirstErrorLeftToRightWins) {
  ASSERT_TRUE(sheet_.Set("zero", 0));
  EXPECT_EQ(Formula("1 / zero + nowhere"), Error("cell f: division by zero"));
  EXPECT_EQ(Formula("nowhere + 1 / zero"), Error("cell nowhere is not defined"));
  EXPECT_EQ(Formula("sum(9223372036854775807, 1, 1 / zero)"), Error("cell f: division by zero"))
      << "all arguments are evaluated before they are added";
}

TEST_F(SheetTest, ASelfCycleIsNamed) {
  ASSERT_TRUE(sheet_.Set("a", "a + 1"));
  const CellResult a = sheet_.Eval("a");
  EXPECT_EQ(a, Error("cycle detected: sheet cell a refers to itself (a -> a)"));
  EXPECT_EQ(a.code, kFailedPrecondition);
}

TEST_F(SheetTest, AThreeCellCycleIsNamedByEachCell) {
  ASSERT_TRUE(sheet_.Set({{"a", Str("b + 1")},
                          {"b", Str("2 * c")},
                          {"c", Str("a - 1")},
                          {"d", Str("10 + a")},
                          {"e", Int(1)}}));
  // The outside cell first: every cell on the cycle is reached through it.
  EXPECT_EQ(sheet_.Eval("d"),
            Error("cycle detected: sheet cell a refers to itself (a -> b -> c -> a)"));
  EXPECT_EQ(sheet_.Eval("a"),
            Error("cycle detected: sheet cell a refers to itself (a -> b -> c -> a)"));
  EXPECT_EQ(sheet_.Eval("b"),
            Error("cycle detected: sheet cell b refers to itself (b -> c -> a -> b)"));
  EXPECT_EQ(sheet_.Eval("c"),
            Error("cycle detected: sheet cell c refers to itself (c -> a -> b -> c)"));
  EXPECT_EQ(sheet_.Eval("e"), Value(1));
}

TEST_F(SheetTest, ACellOnACycleReportsTheCycleWhateverElseFails) {
  ASSERT_TRUE(sheet_.Set({{"a", Str("nowhere + b")}, {"b", Str("a")}}));
  EXPECT_EQ(sheet_.Eval("b"), Error("cycle detected: sheet cell b refers to itself (b -> a -> b)"));
  EXPECT_EQ(sheet_.Eval("a"), Error("cycle detected: sheet cell a refers to itself (a -> b -> a)"));
}

TEST_F(SheetTest, SyntaxErrorsNameThePosition) {
  const std::string operand = "expected a number, a cell name, '(' or '-'";
  EXPECT_EQ(Formula("1 +"), Error("cell f: syntax error at position 4: " + operand +
                                  ", found the end of the formula"));
  EXPECT_EQ(Formula(""), Error("cell f: syntax error at position 1: " + operand +
                               ", found the end of the formula"));
  EXPECT_EQ(
      Formula("(1 + 2"),
      Error("cell f: syntax error at position 7: expected ')', found the end of the formula"));
  EXPECT_EQ(Formula("1 2"), Error("cell f: syntax error at position 3: expected an operator or "
                                  "the end of the formula, found '2'"));
  EXPECT_EQ(Formula("2 $ 3"), Error("cell f: syntax error at position 3: expected an operator or "
                                    "the end of the formula, found '$'"));
  EXPECT_EQ(Formula("sum()"),
            Error("cell f: syntax error at position 5: " + operand + ", found ')'"));
  EXPECT_EQ(Formula("max(1 2)"),
            Error("cell f: syntax error at position 7: expected ',' or ')', found '2'"));
  EXPECT_EQ(Formula("avg(1, 2)"),
            Error("cell f: syntax error at position 1: unknown function 'avg' (there are sum, "
                  "min and max)"));
  EXPECT_EQ(Formula("+1"), Error("cell f: syntax error at position 1: " + operand + ", found '+'"));
  EXPECT_EQ(Formula("1 + 99999999999999999999"),
            Error("cell f: syntax error at position 5: the number 99999999999999999999 does "
                  "not fit in 64 bits"));
  EXPECT_EQ(Formula("\x01"),
            Error("cell f: syntax error at position 1: " + operand + ", found byte 0x01"));
}

TEST_F(SheetTest, DeepNestingIsAnErrorNotACrash) {
  const CellResult parens = Formula(std::string(100000, '(') + "1" + std::string(100000, ')'));
  EXPECT_FALSE(parens.ok);
  EXPECT_NE(parens.error.find("nests deeper than 200 levels"), std::string::npos) << parens;
  EXPECT_FALSE(Formula(std::string(100000, '-') + "1").ok);
  // A long flat chain is fine: it does not nest.
  std::string chain = "0";
  for (int i = 0; i < 20000; ++i) chain += "+1";
  EXPECT_EQ(Formula(chain), Value(20000));
  // The server is unharmed.
  EXPECT_EQ(Formula("1 + 1"), Value(2));
}

TEST_F(SheetTest, OverflowIsAnError) {
  const int64_t min = std::numeric_limits<int64_t>::min();
  ASSERT_TRUE(sheet_.Set("lo", min));
  EXPECT_EQ(sheet_.Eval("lo"), Value(min));
  EXPECT_EQ(Formula("9223372036854775807 + 1"),
            Error("cell f: integer overflow in 9223372036854775807 + 1"));
  EXPECT_EQ(Formula("lo - 1"), Error("cell f: integer overflow in -9223372036854775808 - 1"));
  EXPECT_EQ(Formula("4611686018427387904 * 2"),
            Error("cell f: integer overflow in 4611686018427387904 * 2"));
  EXPECT_EQ(Formula("lo / -1"), Error("cell f: integer overflow in -9223372036854775808 / -1"));
  EXPECT_EQ(Formula("-lo"), Error("cell f: integer overflow in -(-9223372036854775808)"));
  EXPECT_EQ(Formula("sum(9223372036854775807, 1, -5)"), Error("cell f: integer overflow in sum"));
  EXPECT_EQ(Formula("lo % -1"), Value(0))
      << "the remainder exists even where the quotient does not";
  EXPECT_EQ(Formula("9223372036854775807 + lo"), Value(-1));
  EXPECT_EQ(Formula("-9223372036854775807 - 1"), Value(min));
}

TEST_F(SheetTest, AnInputOfAnotherKindIsAnErrorNamingTheCell) {
  v1::Value list;
  list.mutable_list_value()->add_items()->set_int_value(1);
  v1::Value real;
  real.set_double_value(1.5);
  ASSERT_TRUE(sheet_.Set({{"flag", Bool(true)}, {"items", list}, {"real", real}}));
  EXPECT_EQ(sheet_.Eval("flag"),
            Error("cell flag: expected an integer or a formula string, got a bool"));
  EXPECT_EQ(sheet_.Eval("items"),
            Error("cell items: expected an integer or a formula string, got a list"));
  EXPECT_EQ(Formula("real * 2"),
            Error("cell real: expected an integer or a formula string, got a double"));
}

TEST_F(SheetTest, ABadCellNameIsAnError) {
  const CellResult bad = sheet_.Eval("1st");
  EXPECT_FALSE(bad.ok);
  EXPECT_NE(bad.error.find("'1st' is not a cell name"), std::string::npos) << bad;
  EXPECT_FALSE(sheet_.Eval("").ok);
}

// A message repeats at most 1 KiB of a name or a token, then its size: a cell name, a
// function name or a number of 100,000 bytes made a message of 100,000 bytes, cached.
TEST_F(SheetTest, LongNamesAreCutInMessages) {
  // Names at most `names` times in one message (a cycle's names its cells and the first again).
  const auto short_enough = [](const CellResult& result, size_t size, size_t names = 1) {
    return !result.ok && result.error.size() < names * 1100 + 200 &&
           result.error.find("...(" + std::to_string(size) + " bytes)") != std::string::npos;
  };
  const std::string bad_name = "1" + std::string(99'999, 'x');
  EXPECT_TRUE(short_enough(sheet_.Eval(bad_name), bad_name.size()));
  const std::string undefined(5'000, 'u');
  EXPECT_TRUE(short_enough(sheet_.Eval(undefined), undefined.size()));
  const std::string function(100'000, 's');
  EXPECT_TRUE(short_enough(Formula("1 + " + function + "(1)"), function.size()));
  const std::string digits(100'000, '9');
  EXPECT_TRUE(short_enough(Formula(digits), digits.size()));

  // A cycle through two long names is still found and named on both, cut.
  const std::string first = "p" + std::string(50'000, 'a');
  const std::string second = "q" + std::string(50'000, 'b');
  ASSERT_TRUE(sheet_.Set({{first, Str(second + " + 1")}, {second, Str(first + " * 2")}}));
  for (const std::string& cell : {first, second}) {
    const CellResult cycle = sheet_.Eval(cell);
    EXPECT_TRUE(short_enough(cycle, first.size(), 4)) << cycle.error.size();
    EXPECT_EQ(cycle.error.rfind("cycle detected: sheet cell " + cell.substr(0, 10), 0), 0u);
    EXPECT_EQ(cycle.code, kFailedPrecondition);
  }
}

TEST_F(SheetTest, ErrorsHealWhenTheInputIsFixed) {
  ASSERT_TRUE(
      sheet_.Set({{"n", Int(10)}, {"d", Int(0)}, {"q", Str("n / d")}, {"r", Str("q + 1")}}));
  EXPECT_EQ(sheet_.Eval("r"), Error("cell q: division by zero"));
  ASSERT_TRUE(sheet_.Set("d", 5));
  EXPECT_EQ(sheet_.Eval("r"), Value(3));

  ASSERT_TRUE(sheet_.Set("s", "later * 2"));
  EXPECT_EQ(sheet_.Eval("s"), Error("cell later is not defined"));
  ASSERT_TRUE(sheet_.Set("later", 21));
  EXPECT_EQ(sheet_.Eval("s"), Value(42));

  ASSERT_TRUE(sheet_.Set("t", "1 +"));
  EXPECT_FALSE(sheet_.Eval("t").ok);
  ASSERT_TRUE(sheet_.Set("t", "1 + 1"));
  EXPECT_EQ(sheet_.Eval("t"), Value(2));

  ASSERT_TRUE(sheet_.Set("u", Bool(false)));
  EXPECT_FALSE(sheet_.Eval("u").ok);
  ASSERT_TRUE(sheet_.Set("u", 7));
  EXPECT_EQ(sheet_.Eval("u"), Value(7));
}

// Whichever cell of a cycle is read first, every cell heals when one formula breaks it
// (the engine fails the read that closes a cycle without recording a dependency on it).
TEST_F(SheetTest, ACycleHealsFromEitherSide) {
  for (const char* first : {"a", "b"}) {
    SCOPED_TRACE(first);
    ASSERT_TRUE(sheet_.Set({{"a", Str("b + 1")}, {"b", Str("a + 1")}, {"c", Str("b * 10")}}));
    EXPECT_FALSE(sheet_.Eval(first).ok);
    EXPECT_FALSE(sheet_.Eval("c").ok);
    ASSERT_TRUE(sheet_.Set("a", "5"));
    EXPECT_EQ(sheet_.Eval("b"), Value(6));
    EXPECT_EQ(sheet_.Eval("a"), Value(5));
    EXPECT_EQ(sheet_.Eval("c"), Value(60));
    ASSERT_TRUE(sheet_.Set("b", "7"));
    ASSERT_TRUE(sheet_.Set("a", "b + 1"));
    EXPECT_EQ(sheet_.Eval("a"), Value(8));
    ASSERT_TRUE(sheet_.Set("b", "a + 1"));  // closed again, read from the other side
    EXPECT_EQ(sheet_.Eval("c"),
              Error("cycle detected: sheet cell b refers to itself (b -> a -> b)"));
    EXPECT_EQ(sheet_.Eval("a"),
              Error("cycle detected: sheet cell a refers to itself (a -> b -> a)"));
    ASSERT_TRUE(sheet_.Set("b", "2"));
    EXPECT_EQ(sheet_.Eval("a"), Value(3));
    EXPECT_EQ(sheet_.Eval("c"), Value(20));
  }
}

// A cycle through 5,000 cells: every cell reports it, each with a message of bounded
// length (past 64 cells a cycle is named by its first step), and one formula breaking it
// clears every error. Each cell used to store the whole path: quadratic time and memory.
TEST_F(SheetTest, ALongCycleCostsEachCellABoundedErrorAndHeals) {
  constexpr int kCells = 5'000;
  std::vector<std::pair<std::string, v1::Value>> inputs;
  std::vector<std::string> names;
  for (int i = 0; i < kCells; ++i) {
    names.push_back("c" + std::to_string(i));
    inputs.emplace_back(names.back(), Str("c" + std::to_string((i + 1) % kCells) + " + 1"));
  }
  ASSERT_TRUE(sheet_.Set(inputs));
  const std::vector<CellResult> cyclic = sheet_.EvalAll(names);
  // Each cell names the cycle from itself, by its first step; one recomputed on its own
  // may pass its neighbour's on (README), so only the kind and the size are asserted.
  size_t longest = 0;
  for (int i = 0; i < kCells; ++i) {
    ASSERT_FALSE(cyclic[i].ok) << names[i];
    ASSERT_TRUE(cyclic[i].error.starts_with("cycle detected: sheet cell ")) << cyclic[i].error;
    EXPECT_EQ(cyclic[i].code, static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION));
    longest = std::max(longest, cyclic[i].error.size());
  }
  EXPECT_LE(longest, 200u);

  ASSERT_TRUE(sheet_.Set("c0", 7));
  const std::vector<CellResult> healed = sheet_.EvalAll(names);
  EXPECT_EQ(healed[0], Value(7));
  for (int i = 1; i < kCells; ++i) {
    ASSERT_EQ(healed[i], Value(7 + kCells - i)) << names[i];
  }
}

TEST_F(SheetTest, TheFunctionsAreListed) {
  v1::ListFunctionsReply functions;
  grpc::ClientContext context;
  ASSERT_TRUE(
      sheet_.live().stub->ListFunctions(&context, v1::ListFunctionsRequest(), &functions).ok());
  int found = 0;
  for (const v1::FunctionInfo& fn : functions.functions()) {
    if (fn.name() != "sheet.eval" && fn.name() != "sheet.refs") continue;
    ++found;
    ASSERT_EQ(fn.params_size(), 1);
    EXPECT_EQ(fn.params(0).name(), "name");
    EXPECT_FALSE(fn.description().empty());
  }
  EXPECT_EQ(found, 2);
}

}  // namespace
