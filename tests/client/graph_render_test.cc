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

}  // namespace
}  // namespace turbine::render
