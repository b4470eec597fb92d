// Each cell is its own task: a change re-executes exactly the cells downstream of it,
// stops where a value comes out equal, and a restarted server answers from disk.
// Executions are counted with the Stats RPC.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "sheet_server.h"

namespace {

using turbine::testing::CellResult;
using turbine::testing::Int;
using turbine::testing::SheetServer;
using turbine::testing::Str;
using turbine::testing::TempDir;
namespace v1 = turbine::v1;

CellResult Value(int64_t value) { return CellResult::Value(value); }

//   a = 1   b = 2   c = a + 1   d = b * 2   e = c + d   f = d - 1   g = a % 2   h = g + 100
const std::vector<std::string> kCells = {"a", "b", "c", "d", "e", "f", "g", "h"};

class IncrementalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(sheet_.ok()) << sheet_.status();
    ASSERT_TRUE(sheet_.Set({{"a", Int(1)},
                            {"b", Int(2)},
                            {"c", Str("a + 1")},
                            {"d", Str("b * 2")},
                            {"e", Str("c + d")},
                            {"f", Str("d - 1")},
                            {"g", Str("a % 2")},
                            {"h", Str("g + 100")}}));
    ReadAll();
  }

  // ReadAll reads every cell, the outermost first so that each refresh happens inside the
  // first read that needs it, and returns how many cells executed.
  uint64_t ReadAll() {
    const uint64_t before = sheet_.Executions();
    for (const char* cell : {"e", "f", "h", "a", "b", "c", "d", "g"})
      values_[cell] = sheet_.Eval(cell);
    return sheet_.Executions() - before;
  }

  TempDir dir_;
  SheetServer sheet_{dir_.str()};
  std::map<std::string, CellResult> values_;
};

TEST_F(IncrementalTest, EveryCellExecutesOnceAtFirst) {
  EXPECT_EQ(sheet_.Executions(), kCells.size());
  EXPECT_EQ(values_["e"], Value(6));
  EXPECT_EQ(values_["f"], Value(3));
  EXPECT_EQ(values_["h"], Value(101));
  EXPECT_EQ(ReadAll(), 0u) << "a second read is a cache hit";
  EXPECT_EQ(sheet_.Executions("sheet.refs"), 0u) << "an acyclic sheet never walks references";
}

TEST_F(IncrementalTest, AChangeReExecutesOnlyItsDependents) {
  ASSERT_TRUE(sheet_.Set("b", 3));
  const uint64_t before = sheet_.Executions();
  EXPECT_EQ(sheet_.Eval("h").source, v1::SOURCE_MEMORY) << "h does not depend on b";
  EXPECT_EQ(sheet_.Eval("c").source, v1::SOURCE_MEMORY);
  const CellResult f = sheet_.Eval("f");
  EXPECT_EQ(f, Value(5));
  EXPECT_EQ(f.source, v1::SOURCE_EXECUTED);
  ReadAll();
  EXPECT_EQ(sheet_.Executions() - before, 4u) << "b, d, e, f";
  EXPECT_EQ(values_["e"], Value(8));
}

TEST_F(IncrementalTest, AnEqualValueCutsOffItsReaders) {
  // a: 1 -> 3 changes a, c and e, but g = a % 2 stays 1, so h does not execute.
  ASSERT_TRUE(sheet_.Set("a", 3));
  EXPECT_EQ(ReadAll(), 4u) << "a, c, e, g";
  EXPECT_EQ(values_["e"], Value(8));
  EXPECT_EQ(values_["h"], Value(101));

  // A formula rewritten to the same value: only that cell executes.
  ASSERT_TRUE(sheet_.Set("c", "1 + a"));
  EXPECT_EQ(ReadAll(), 1u) << "c";
  // A number turned into a formula string of the same value: only that cell executes.
  ASSERT_TRUE(sheet_.Set("a", "1 + 2"));
  EXPECT_EQ(ReadAll(), 1u) << "a";
  // Setting an equal input changes nothing at all.
  ASSERT_TRUE(sheet_.Set("b", 2));
  EXPECT_EQ(ReadAll(), 0u);
  EXPECT_EQ(values_["e"], Value(8));
}

// A call whose answer was kept by early cutoff still says SOURCE_EXECUTED when something
// it depends on ran for it (the protocol's definition); one that ran nothing says memory.
// Before, h said memory though g ran for it.
TEST_F(IncrementalTest, ACutOffAnswerSaysWhatRanForIt) {
  ASSERT_TRUE(sheet_.Set("a", 3));
  const CellResult h = sheet_.Eval("h");  // g = a % 2 runs, stays 1: h keeps 101
  EXPECT_EQ(h, Value(101));
  EXPECT_EQ(h.source, v1::SOURCE_EXECUTED);
  EXPECT_EQ(sheet_.Eval("h").source, v1::SOURCE_MEMORY) << "nothing ran for this one";
  EXPECT_EQ(sheet_.Eval("g").source, v1::SOURCE_MEMORY) << "g ran for the call before";
}

TEST_F(IncrementalTest, ARestartAnswersFromDiskThenReExecutesOnlyDependents) {
  sheet_.Restart();
  ASSERT_TRUE(sheet_.ok()) << sheet_.status();
  const CellResult e = sheet_.Eval("e");
  EXPECT_EQ(e, Value(6));
  EXPECT_EQ(e.source, v1::SOURCE_DISK);
  EXPECT_EQ(ReadAll(), 0u);
  EXPECT_EQ(values_["h"], Value(101));

  ASSERT_TRUE(sheet_.Set("d", "b * 2 + 0"));  // d re-executes, equal: e and f are cut off
  sheet_.Restart();
  ASSERT_TRUE(sheet_.ok()) << sheet_.status();
  EXPECT_EQ(ReadAll(), 1u) << "d";
  ASSERT_TRUE(sheet_.Set("b", 10));
  sheet_.Restart();
  ASSERT_TRUE(sheet_.ok()) << sheet_.status();
  EXPECT_EQ(ReadAll(), 4u) << "b, d, e, f";
  EXPECT_EQ(values_["e"], Value(22));
  EXPECT_EQ(values_["f"], Value(19));
}

TEST(Incremental, OneLeafOfAWideSheetReExecutesOneBranch) {
  TempDir dir;
  SheetServer sheet(dir.str());
  ASSERT_TRUE(sheet.ok()) << sheet.status();
  constexpr int kLeaves = 50;
  std::vector<std::pair<std::string, v1::Value>> inputs;
  std::string total = "sum(";
  for (int i = 0; i < kLeaves; ++i) {
    const std::string n = std::to_string(i);
    inputs.emplace_back("leaf_" + n, Int(i));
    inputs.emplace_back("twice_" + n, Str("leaf_" + n + " * 2"));
    total += (i > 0 ? ", twice_" : "twice_") + n;
  }
  inputs.emplace_back("total", Str(total + ")"));
  ASSERT_TRUE(sheet.Set(inputs));
  EXPECT_EQ(sheet.Eval("total"), Value(kLeaves * (kLeaves - 1)));
  EXPECT_EQ(sheet.Executions(), 2u * kLeaves + 1);

  ASSERT_TRUE(sheet.Set("leaf_7", 1007));
  EXPECT_EQ(sheet.Eval("total"), Value(kLeaves * (kLeaves - 1) + 2000));
  EXPECT_EQ(sheet.Executions(), 2u * kLeaves + 1 + 3) << "leaf_7, twice_7, total";
}

// Only the cells on a cycle and the ones next to it walk references to name it; a long
// chain of readers passes the error on.
TEST(Incremental, ReadersOfACycleDoNotWalkIt) {
  TempDir dir;
  SheetServer sheet(dir.str());
  ASSERT_TRUE(sheet.ok()) << sheet.status();
  constexpr int kChain = 200;
  std::vector<std::pair<std::string, v1::Value>> inputs = {{"a", Str("b + 1")},
                                                           {"b", Str("a + 1")}};
  for (int i = 0; i < kChain; ++i) {
    const std::string next = i + 1 < kChain ? "r" + std::to_string(i + 1) : "a";
    inputs.emplace_back("r" + std::to_string(i), Str(next + " + 1"));
  }
  ASSERT_TRUE(sheet.Set(inputs));
  EXPECT_EQ(sheet.Eval("r0"),
            CellResult::Error("cycle detected: sheet cell a refers to itself (a -> b -> a)"));
  EXPECT_EQ(sheet.Executions("sheet.refs"), 2u) << "sheet.refs(a) and sheet.refs(b), once each";
  EXPECT_EQ(sheet.Executions(), kChain + 2u);

  ASSERT_TRUE(sheet.Set("b", 5));
  EXPECT_EQ(sheet.Eval("r0"), Value(5 + 1 + kChain));
}

}  // namespace
