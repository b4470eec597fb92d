// turbine::render's pictures of a dependency cone: DOT from a GraphReply, SVG from DOT.
#include "turbine/render/graph.h"

#include <gtest/gtest.h>

#include <string>

namespace turbine::render {
namespace {

TEST(GraphRender, RendersOneGraphAfterAnotherWithDifferentFonts) {
  // Each render measures its labels' text. Graphviz's text layout remembers the last font
  // by a pointer into the render's font table, so a second render must not find that
  // table freed (under --sanitize=address, freeing it after each render failed here).
  for (const char* font : {"Helvetica", "Courier", "Helvetica", "Times"}) {
    const std::string dot = std::string("digraph { node [fontname=\"") + font +
                            "\"]; a [label=\"first\"]; b [label=\"second\"]; a -> b; }";
    absl::StatusOr<std::string> svg = DotToSvg(dot);
    ASSERT_TRUE(svg.ok()) << font << ": " << svg.status();
    EXPECT_NE(svg->find("<svg"), std::string::npos) << *svg;
    EXPECT_NE(svg->find(std::string("font-family=\"") + font), std::string::npos) << *svg;
    EXPECT_NE(svg->find(">second</text>"), std::string::npos) << *svg;
  }
}

TEST(GraphRender, DotThatGraphvizCannotReadIsInvalidArgument) {
  absl::StatusOr<std::string> svg = DotToSvg("digraph { a -> ");
  EXPECT_EQ(svg.status().code(), absl::StatusCode::kInvalidArgument) << svg.status();
  // What Graphviz said comes with the error, not on the daemon's stderr.
  EXPECT_NE(svg.status().message().find("syntax error"), std::string::npos) << svg.status();
  // And the next render still works.
  EXPECT_TRUE(DotToSvg("digraph { a -> b; }").ok());
}

// An argument holding an entity ("x&lt;y") shows as itself. Before, Graphviz read the
// entity in the DOT label, and the picture showed "x<y".
TEST(GraphRender, AnArgumentHoldingAnEntityShowsAsItIs) {
  v1::GraphReply graph;
  v1::GraphNode* node = graph.add_nodes();
  node->set_task(1);
  node->set_function("input.get");
  node->set_args("\"x&lt;y\"");
  absl::StatusOr<std::string> svg = DotToSvg(GraphDot(graph));
  ASSERT_TRUE(svg.ok()) << svg.status();
  EXPECT_NE(svg->find("x&amp;lt;y"), std::string::npos) << *svg;
}

// A method called on a cell is told apart from one called on the task's output: JSON has
// the receiver's slot, the picture its ref (before, both showed the task id alone).
TEST(GraphRender, AReceiverThatIsACellKeepsItsCell) {
  v1::GraphReply graph;
  v1::GraphNode* on_cell = graph.add_nodes();
  on_cell->set_task(2);
  on_cell->set_function("Asset.content");
  on_cell->mutable_receiver()->set_task(7);
  on_cell->mutable_receiver()->set_cell_type("File");
  on_cell->mutable_receiver()->set_cell_index(0);
  v1::GraphNode* on_output = graph.add_nodes();
  on_output->set_task(3);
  on_output->set_function("Path.parent");
  on_output->mutable_receiver()->set_task(5);
  v1::GraphNode* plain = graph.add_nodes();
  plain->set_task(4);
  plain->set_function("demo.fib");

  const nlohmann::json json = GraphJson(graph);
  EXPECT_EQ(json["nodes"][0]["receiver"], 7);
  EXPECT_EQ(json["nodes"][0]["receiver_slot"], "File/0");
  EXPECT_EQ(json["nodes"][1]["receiver_slot"], "output");
  EXPECT_TRUE(json["nodes"][2]["receiver_slot"].is_null());
  const std::string dot = GraphDot(graph);
  EXPECT_NE(dot.find("Asset.content on @7/File/0"), std::string::npos) << dot;
  EXPECT_NE(dot.find("label=\"Path.parent on @5\""), std::string::npos) << dot;
}

}  // namespace
}  // namespace turbine::render
