// Engine::Describe: the dependency cone of a task, its phases, and short argument text.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "turbine/engine.h"
#include "turbine/short_text.h"

namespace {

using turbine::DependencyGraph;
using turbine::GraphNode;
using turbine::Input;
using turbine::Task;
using turbine::TaskPhase;

Task<int64_t> ScaledImpl(std::string key, int64_t factor) {
  co_return (co_await Input<int64_t>(key)) * factor;
}
inline const turbine::Function<ScaledImpl> scaled{"test.describe.scaled", 1};

Task<int64_t> TotalImpl() {
  co_return (co_await scaled("a", 10)) + (co_await scaled("b", 100));
}
inline const turbine::Function<TotalImpl> total{"test.describe.total", 1};

Task<int64_t> ConstantImpl(int64_t n) { co_return n; }
inline const turbine::Function<ConstantImpl> constant{"test.describe.constant", 1};

Task<int64_t> ConstantsImpl() {
  int64_t sum = 0;
  for (int64_t n = 0; n < 50; ++n) sum += co_await constant(n);
  co_return sum;
}
inline const turbine::Function<ConstantsImpl> constants{"test.describe.constants", 1};

const GraphNode* Find(const DependencyGraph& graph, const std::string& function,
                      const std::string& args) {
  for (const GraphNode& node : graph.nodes) {
    if (node.function == function && node.args == args) return &node;
  }
  return nullptr;
}

bool HasEdge(const DependencyGraph& graph, const GraphNode* reader, const GraphNode* read) {
  return std::any_of(graph.edges.begin(), graph.edges.end(), [&](const turbine::GraphEdge& e) {
    return e.reader == reader->task && e.slot.task == read->task;
  });
}

TEST(Describe, ShowsTheConeWithArgumentsEdgesAndDepths) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInputs({turbine::InputValue::Of("a", int64_t{1}),
                                turbine::InputValue::Of("b", int64_t{2})})
                  .ok());
  ASSERT_EQ(*engine.Read(total()), 210);

  absl::StatusOr<DependencyGraph> graph = engine.Describe(total().raw());
  ASSERT_TRUE(graph.ok()) << graph.status();
  ASSERT_EQ(graph->nodes.size(), 5u);  // total, two scaled, two inputs
  EXPECT_FALSE(graph->truncated);
  const GraphNode& root = graph->nodes.front();
  EXPECT_EQ(root.function, "test.describe.total");
  EXPECT_EQ(root.task, graph->root);
  EXPECT_EQ(root.depth, 0u);
  EXPECT_EQ(root.phase, TaskPhase::kClean);
  EXPECT_EQ(root.executions, 1u);
  const GraphNode* scaled_a = Find(*graph, "test.describe.scaled", R"("a", 10)");
  const GraphNode* scaled_b = Find(*graph, "test.describe.scaled", R"("b", 100)");
  const GraphNode* input_a = Find(*graph, "turbine.input", R"("a")");
  const GraphNode* input_b = Find(*graph, "turbine.input", R"("b")");
  ASSERT_TRUE(scaled_a && scaled_b && input_a && input_b);
  EXPECT_EQ(scaled_a->depth, 1u);
  EXPECT_EQ(input_a->depth, 2u);
  EXPECT_EQ(input_a->phase, TaskPhase::kClean);
  EXPECT_EQ(graph->edges.size(), 4u);
  EXPECT_TRUE(HasEdge(*graph, &root, scaled_a));
  EXPECT_TRUE(HasEdge(*graph, &root, scaled_b));
  EXPECT_TRUE(HasEdge(*graph, scaled_a, input_a));
  EXPECT_TRUE(HasEdge(*graph, scaled_b, input_b));
  EXPECT_FALSE(HasEdge(*graph, scaled_a, input_b));
}

// A body that took less than a microsecond still says it ran: 0 means "not executed in this
// process" (before, a trivial body's time read 0, and the graph showed no time for it).
TEST(Describe, ATaskThatRanInUnderAMicrosecondHasATime) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  ASSERT_EQ(*engine.Read(constants()), 49 * 50 / 2);
  absl::StatusOr<DependencyGraph> graph = engine.Describe(constants().raw());
  ASSERT_TRUE(graph.ok()) << graph.status();
  ASSERT_EQ(graph->nodes.size(), 51u);
  for (const GraphNode& node : graph->nodes) {
    EXPECT_EQ(node.executions, 1u) << node.function << "(" << node.args << ")";
    EXPECT_GE(node.last_execution_micros, 1u) << node.function << "(" << node.args << ")";
  }
}

TEST(Describe, SaysWhichPartsAreDirtyAndExecutesNothing) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInputs({turbine::InputValue::Of("a", int64_t{1}),
                                turbine::InputValue::Of("b", int64_t{2})})
                  .ok());
  ASSERT_EQ(*engine.Read(total()), 210);
  ASSERT_TRUE(engine.SetInput("a", int64_t{3}).ok());
  const uint64_t executions = engine.Stats().executions;

  absl::StatusOr<DependencyGraph> graph = engine.Describe(total().raw());
  ASSERT_TRUE(graph.ok()) << graph.status();
  EXPECT_EQ(engine.Stats().executions, executions);
  EXPECT_EQ(graph->nodes.front().phase, TaskPhase::kDirty);
  EXPECT_EQ(Find(*graph, "test.describe.scaled", R"("a", 10)")->phase, TaskPhase::kDirty);
  EXPECT_EQ(Find(*graph, "test.describe.scaled", R"("b", 100)")->phase, TaskPhase::kClean);
}

TEST(Describe, DepthLimitsTheConeAndSaysSo) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  ASSERT_TRUE(engine.SetInputs({turbine::InputValue::Of("a", int64_t{1}),
                                turbine::InputValue::Of("b", int64_t{2})})
                  .ok());
  ASSERT_EQ(*engine.Read(total()), 210);
  absl::StatusOr<DependencyGraph> graph = engine.Describe(total().raw(), {.max_depth = 1});
  ASSERT_TRUE(graph.ok());
  EXPECT_EQ(graph->nodes.size(), 3u);
  EXPECT_EQ(graph->edges.size(), 2u);
  EXPECT_TRUE(graph->truncated);
  graph = engine.Describe(total().raw(), {.max_nodes = 2});
  ASSERT_TRUE(graph.ok());
  EXPECT_EQ(graph->nodes.size(), 2u);
  EXPECT_EQ(graph->edges.size(), 1u);  // no edge to a node left out
  EXPECT_TRUE(graph->truncated);
}

TEST(Describe, ATaskThatNeverRanShowsAloneAndAnUnknownOneIsNotFound) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  absl::StatusOr<DependencyGraph> graph = engine.Describe(total().raw());
  ASSERT_TRUE(graph.ok());
  ASSERT_EQ(graph->nodes.size(), 1u);
  EXPECT_EQ(graph->nodes.front().phase, TaskPhase::kNew);
  EXPECT_EQ(engine.Describe(turbine::RawVc::Output(999999)).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(ShortText, IsBoundedAndReadable) {
  auto text = [](const auto& value) {
    std::string out;
    turbine::AppendShortText(value, &out);
    return out;
  };
  EXPECT_EQ(text(int64_t{-4}), "-4");
  EXPECT_EQ(text(true), "true");
  EXPECT_EQ(text(1.5), "1.5");
  EXPECT_EQ(text(std::string("say \"hi\"\n")), R"("say \"hi\"\x0A")");
  EXPECT_EQ(text(std::vector<int64_t>{1, 2, 3, 4, 5}), "[1, 2, 3, …5 items]");
  EXPECT_EQ(text(std::optional<int64_t>()), "null");
  EXPECT_EQ(text(std::map<std::string, int64_t>{{"k", 1}}), R"({"k":1})");
  EXPECT_EQ(text(turbine::Bytes{"abc"}), "<3 bytes>");
  EXPECT_EQ(text(turbine::RawVc::Output(12)), "@12");
  const std::string long_text = text(std::string(1000, 'x'));
  EXPECT_LT(long_text.size(), 80u);
  EXPECT_NE(long_text.find("(1000 bytes)"), std::string::npos);
  // A cut never splits a UTF-8 character.
  std::string accents;
  for (int i = 0; i < 100; ++i) accents += "é";
  const std::string cut = text(accents);
  const size_t end = cut.find("…");
  ASSERT_NE(end, std::string::npos);
  EXPECT_EQ(end % 2, 1u);  // the quote, then whole two-byte characters
}

}  // namespace
