// `turbine graph` and `turbine trace` against a real turbined: the dependency cone of
// tree.summary as JSON, DOT and SVG (laid out by Graphviz, parsed back as XML), its dirty
// parts after an edit, and a Chrome trace of what an edit made run.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "../storage/temp_dir.h"
#include "cli_runner.h"
#include "daemon_process.h"

namespace {

using turbine::testing::CliResult;
using turbine::testing::DaemonProcess;
using turbine::testing::RunCli;
using turbine::testing::TempDir;

void Write(const std::string& path, const std::string& content) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

const nlohmann::json* FindNode(const nlohmann::json& graph, const std::string& function,
                               const std::string& args) {
  for (const nlohmann::json& node : graph["nodes"]) {
    if (node["function"] == function && node["args"] == args) return &node;
  }
  return nullptr;
}

bool HasEdge(const nlohmann::json& graph, uint64_t reader, uint64_t task) {
  for (const nlohmann::json& edge : graph["edges"]) {
    if (edge["reader"] == reader && edge["task"] == task) return true;
  }
  return false;
}

class GraphDaemon : public ::testing::Test {
 protected:
  void SetUp() override {
    tree_ = dir_.str() + "/tree";
    Write(tree_ + "/a.txt", "one\ntwo\n");
    Write(tree_ + "/sub/b.txt", "three\n");
    ASSERT_TRUE(daemon_.Start({"--data-dir", dir_.str() + "/data"})) << daemon_.log();
    cli_ = "--data-dir " + dir_.str() + "/data ";
    ASSERT_EQ(RunCli(cli_ + "call tree.summary " + tree_).exit_code, 0);
  }

  nlohmann::json JsonGraph() {
    CliResult result = RunCli(cli_ + "graph --format json tree.summary " + tree_);
    EXPECT_EQ(result.exit_code, 0);
    return nlohmann::json::parse(result.out);
  }

  TempDir dir_;
  DaemonProcess daemon_;
  std::string tree_;
  std::string cli_;
};

TEST_F(GraphDaemon, JsonShowsTheConeOfTreeSummary) {
  const nlohmann::json graph = JsonGraph();
  const nlohmann::json& root = graph["nodes"][0];
  EXPECT_EQ(root["function"], "tree.summary");
  EXPECT_EQ(root["task"], graph["root"]);
  EXPECT_EQ(root["phase"], "clean");
  EXPECT_EQ(root["executions"], 1);
  EXPECT_GT(root["last_execution_micros"].get<uint64_t>(), 0u);
  EXPECT_EQ(graph["truncated"], false);
  for (const nlohmann::json& node : graph["nodes"]) {  // every documented key, on every node
    EXPECT_TRUE(node.contains("receiver")) << node;
  }
  EXPECT_TRUE(root["receiver"].is_null()) << "tree.summary is no method";
  const std::string q = "\"";
  const nlohmann::json* top = FindNode(graph, "tree.dir", q + tree_ + q + ", []");
  const nlohmann::json* sub = FindNode(graph, "tree.dir", q + tree_ + "/sub" + q + ", []");
  const nlohmann::json* a = FindNode(graph, "tree.file", q + tree_ + "/a.txt" + q);
  const nlohmann::json* b = FindNode(graph, "tree.file", q + tree_ + "/sub/b.txt" + q);
  const nlohmann::json* listing = FindNode(graph, "fs.list", q + tree_ + q);
  ASSERT_TRUE(top && sub && a && b && listing) << graph.dump(1);
  EXPECT_EQ((*top)["depth"], 1);
  EXPECT_EQ((*a)["depth"], 2);
  EXPECT_EQ((*b)["depth"], 3);
  EXPECT_EQ((*a)["session_dependent"], true);
  EXPECT_TRUE(HasEdge(graph, root["task"], (*top)["task"]));
  EXPECT_TRUE(HasEdge(graph, (*top)["task"], (*listing)["task"]));
  EXPECT_TRUE(HasEdge(graph, (*top)["task"], (*a)["task"]));
  EXPECT_TRUE(HasEdge(graph, (*top)["task"], (*sub)["task"]));
  EXPECT_TRUE(HasEdge(graph, (*sub)["task"], (*b)["task"]));
  EXPECT_FALSE(HasEdge(graph, (*sub)["task"], (*a)["task"]));
  // Every edge joins two nodes of the graph.
  std::set<uint64_t> tasks;
  for (const nlohmann::json& node : graph["nodes"]) tasks.insert(node["task"].get<uint64_t>());
  for (const nlohmann::json& edge : graph["edges"]) {
    EXPECT_TRUE(tasks.count(edge["reader"]) && tasks.count(edge["task"])) << edge;
  }

  // --depth 1: the root and what it read directly.
  CliResult shallow = RunCli(cli_ + "--json graph --depth 1 tree.summary " + tree_);
  ASSERT_EQ(shallow.exit_code, 0);
  const nlohmann::json cut = nlohmann::json::parse(shallow.out);
  EXPECT_EQ(cut["nodes"].size(), 2u);
  EXPECT_EQ(cut["truncated"], true);
}

TEST_F(GraphDaemon, AnEditedFileAndItsReadersShowDirty) {
  // Edit b.txt (a different size) and wait until the watcher has told the daemon.
  Write(tree_ + "/sub/b.txt", "three\nfour\n");
  nlohmann::json graph;
  for (int i = 0; i < 500; ++i) {
    graph = JsonGraph();
    if (graph["nodes"][0]["phase"] == "dirty") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // the watcher's quiet period
  }
  const std::string q = "\"";
  ASSERT_EQ(graph["nodes"][0]["phase"], "dirty") << graph.dump(1);
  EXPECT_EQ((*FindNode(graph, "tree.file", q + tree_ + "/sub/b.txt" + q))["phase"], "dirty");
  EXPECT_EQ((*FindNode(graph, "tree.dir", q + tree_ + "/sub" + q + ", []"))["phase"], "dirty");
  EXPECT_EQ((*FindNode(graph, "tree.file", q + tree_ + "/a.txt" + q))["phase"], "clean");
  // The graph computed nothing; the next call does.
  ASSERT_EQ(RunCli(cli_ + "call tree.summary " + tree_).exit_code, 0);
  EXPECT_EQ(JsonGraph()["nodes"][0]["phase"], "clean");
}

TEST_F(GraphDaemon, DotAndSvgNameEveryTask) {
  const nlohmann::json graph = JsonGraph();
  CliResult dot = RunCli(cli_ + "graph tree.summary " + tree_);
  ASSERT_EQ(dot.exit_code, 0);
  EXPECT_EQ(dot.out.rfind("digraph turbine {", 0), 0u) << dot.out;
  EXPECT_EQ(dot.out.substr(dot.out.size() - 2), "}\n");
  std::set<std::string> expected_ids;
  for (const nlohmann::json& node : graph["nodes"]) {
    const std::string id = "task" + std::to_string(node["task"].get<uint64_t>());
    expected_ids.insert(id);
    EXPECT_NE(dot.out.find("[id=\"" + id + "\""), std::string::npos) << id;
  }
  for (const nlohmann::json& edge : graph["edges"]) {
    const std::string arrow = "t" + std::to_string(edge["reader"].get<uint64_t>()) + " -> t" +
                              std::to_string(edge["task"].get<uint64_t>()) + ";";
    EXPECT_NE(dot.out.find(arrow), std::string::npos) << arrow;
  }

  // A file that cannot be written says why (before: only "cannot write PATH").
  const CliResult nowhere = RunCli(cli_ + "graph -o " + dir_.str() +
                                   "/no/such/dir/g.dot tree.summary " + tree_ + " 2>&1");
  EXPECT_EQ(nowhere.exit_code, 2) << nowhere.out;
  EXPECT_NE(nowhere.out.find("g.dot: No such file or directory"), std::string::npos) << nowhere.out;

  const std::string svg_path = dir_.str() + "/graph.svg";
  ASSERT_EQ(RunCli(cli_ + "graph --format svg -o " + svg_path + " tree.summary " + tree_).exit_code,
            0);
  // Parsed as XML by a real parser: the node groups and their ids and labels.
  const std::string list_nodes =
      "python3 -c \"import sys, xml.etree.ElementTree as E; ns='{http://www.w3.org/2000/svg}'; "
      "root=E.parse(sys.argv[1]).getroot(); assert root.tag==ns+'svg'; "
      "[print(g.get('id'), ' '.join(t.text for t in g.iter(ns+'text'))) "
      "for g in root.iter(ns+'g') if g.get('class')=='node']\" " +
      svg_path;
  FILE* pipe = ::popen(list_nodes.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string listed;
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) listed.append(buffer, n);
  ASSERT_EQ(::pclose(pipe), 0) << "the SVG does not parse";
  std::set<std::string> ids;
  std::istringstream lines(listed);
  for (std::string line; std::getline(lines, line);) ids.insert(line.substr(0, line.find(' ')));
  EXPECT_EQ(ids, expected_ids) << listed;
  EXPECT_NE(listed.find("tree.summary"), std::string::npos) << listed;
  EXPECT_NE(listed.find("tree.file"), std::string::npos) << listed;
}

// `graph` and `why` compute nothing: the task of a call never made is described, not run
// by the workers meanwhile, so the first real call executes it and says so.
// A graph the daemon's bound on tasks cut says so, not "raise --depth" when no depth was
// given (raising it could not help).
TEST_F(GraphDaemon, AGraphCutAtTheTaskBoundSaysSo) {
  ASSERT_EQ(RunCli(cli_ + "call demo.steps 10500 0").exit_code, 0);
  const CliResult whole = RunCli(cli_ + "graph --format dot demo.steps 10500 0");
  EXPECT_EQ(whole.exit_code, 0);
  EXPECT_NE(whole.out.find("a graph shows at most 10000 tasks"), std::string::npos);
  EXPECT_EQ(whole.out.find("raise --depth"), std::string::npos);
  const CliResult shallow = RunCli(cli_ + "graph --format dot --depth 0 demo.steps 10500 0");
  EXPECT_NE(shallow.out.find("raise --depth"), std::string::npos) << shallow.out;
}

TEST_F(GraphDaemon, DescribingACallNeverMadeComputesNothing) {
  ASSERT_EQ(RunCli(cli_ + "graph demo.fib 31").exit_code, 0);
  ASSERT_EQ(RunCli(cli_ + "why demo.fib 32").exit_code, 0);
  // Other work runs meanwhile (the workers took a waiting hint along with it, before).
  ASSERT_EQ(RunCli(cli_ + "call demo.busy 7 1").exit_code, 0);
  ASSERT_EQ(RunCli(cli_ + "call demo.busy 8 1").exit_code, 0);
  for (const char* n : {"31", "32"}) {
    const CliResult call = RunCli(cli_ + "--json call demo.fib " + std::string(n));
    ASSERT_EQ(call.exit_code, 0) << call.out;
    EXPECT_EQ(nlohmann::json::parse(call.out)["source"], "executed") << n << ": " << call.out;
  }
}

TEST_F(GraphDaemon, BadRequestsAreClearErrors) {
  EXPECT_EQ(RunCli(cli_ + "graph no.such 2>/dev/null").exit_code, 4) << "NOT_FOUND";
  EXPECT_EQ(RunCli(cli_ + "graph --format png tree.summary x 2>/dev/null").exit_code, 2);
  EXPECT_EQ(RunCli(cli_ + "graph tree.summary '[1' 2>/dev/null").exit_code, 2);
  // --json asks for JSON: with another --format, which one is meant is not clear.
  const CliResult both = RunCli(cli_ + "--json graph --format dot demo.fib 3 2>&1");
  EXPECT_EQ(both.exit_code, 2) << both.out;
  EXPECT_NE(both.out.find("give one of them"), std::string::npos) << both.out;
  EXPECT_EQ(RunCli(cli_ + "--json graph --format json demo.fib 3").exit_code, 0);
}

// Arguments that are not UTF-8 (a file name can be any bytes) are explained with each
// such byte written \xHH, as `graph` and `trace` write them: the reply carried the raw
// bytes in a protobuf string, and the CLI could not read it.
TEST_F(GraphDaemon, WhyWritesBytesThatAreNotUtf8AsEscapes) {
  ASSERT_EQ(RunCli(cli_ + "call input.get '{\"$bytes\":\"/w==\"}' 2>/dev/null").exit_code, 1)
      << "not set: the call's own error";
  const CliResult why = RunCli(cli_ + "--json why input.get '{\"$bytes\":\"/w==\"}' 2>&1");
  ASSERT_EQ(why.exit_code, 0) << why.out;
  const nlohmann::json report = nlohmann::json::parse(why.out);
  ASSERT_EQ(report["steps"].size(), 1u) << why.out;
  EXPECT_NE(report["steps"][0]["args"].get<std::string>().find("\\xff"), std::string::npos)
      << why.out;
  EXPECT_EQ(daemon_.log().find("invalid UTF-8"), std::string::npos) << daemon_.log();
}

// EvaluateAChainOf100Cells sets c0 to 1 and each next cell to the one before plus 1, and
// evaluates c99: a cone of 200 tasks, its explanation and graph larger than a small reply.
void EvaluateAChainOf100Cells(const std::string& cli) {
  std::string cells = "set c0 1";
  for (int i = 1; i < 100; ++i) {
    cells += " c" + std::to_string(i) + " '\"c" + std::to_string(i - 1) + " + 1\"'";
  }
  ASSERT_EQ(RunCli(cli + cells).exit_code, 0);
  ASSERT_EQ(RunCli(cli + "call sheet.eval c99").out, "100\n");
}

// A `why` longer than one reply (--max-message-bytes) keeps the steps that fit and says it
// was cut, as --max-steps cuts it: gRPC refused to send the whole, and the answer was lost.
TEST(WhyReply, AnExplanationLargerThanAReplyIsCutAndSaysSo) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data", "--max-message-bytes", "4096"}))
      << daemon.log();
  const std::string cli = "--data-dir " + dir.str() + "/data ";
  ASSERT_NO_FATAL_FAILURE(EvaluateAChainOf100Cells(cli));
  ASSERT_EQ(RunCli(cli + "set c0 2").exit_code, 0);
  ASSERT_EQ(RunCli(cli + "call sheet.eval c99").out, "101\n");
  const CliResult why = RunCli(cli + "--json why --max-steps 1000 sheet.eval c99 2>&1");
  ASSERT_EQ(why.exit_code, 0) << why.out;
  const nlohmann::json report = nlohmann::json::parse(why.out);
  EXPECT_TRUE(report["truncated"].get<bool>()) << why.out;
  EXPECT_GT(report["steps"].size(), 5u);
  EXPECT_LT(report["steps"].size(), 101u);
  // The text says which limit cut it (before: "raise --max-steps", at 1000 asked).
  const CliResult text = RunCli(cli + "why --max-steps 1000 sheet.eval c99 2>&1");
  EXPECT_NE(text.out.find("reached the size of one reply of the daemon, its "
                          "--max-message-bytes"),
            std::string::npos)
      << text.out;
  EXPECT_EQ(text.out.find("raise --max-steps"), std::string::npos) << text.out;
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

// A graph larger than one reply (--max-message-bytes) keeps the nodes nearest the root and
// the edges between them, and says what cut it. Before: RESOURCE_EXHAUSTED "Sent message
// larger than max", exit 4, whatever the format.
TEST(GraphReply, AGraphLargerThanAReplyIsCutAndSaysSo) {
  TempDir dir;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data", "--max-message-bytes", "4096"}))
      << daemon.log();
  const std::string cli = "--data-dir " + dir.str() + "/data ";
  ASSERT_NO_FATAL_FAILURE(EvaluateAChainOf100Cells(cli));
  const CliResult json = RunCli(cli + "graph --format json sheet.eval c99 2>&1");
  ASSERT_EQ(json.exit_code, 0) << json.out;
  const nlohmann::json graph = nlohmann::json::parse(json.out);
  EXPECT_TRUE(graph["truncated"].get<bool>()) << json.out;
  EXPECT_GT(graph["nodes"].size(), 5u);
  EXPECT_LT(graph["nodes"].size(), 200u);  // 100 cells and their inputs
  std::set<uint64_t> shown;
  for (const nlohmann::json& node : graph["nodes"]) shown.insert(node["task"].get<uint64_t>());
  EXPECT_TRUE(shown.contains(graph["root"].get<uint64_t>()));
  EXPECT_GT(graph["edges"].size(), 0u);
  for (const nlohmann::json& edge : graph["edges"]) {
    EXPECT_TRUE(shown.contains(edge["reader"].get<uint64_t>())) << edge;
    EXPECT_TRUE(shown.contains(edge["task"].get<uint64_t>())) << edge;
  }
  const CliResult dot = RunCli(cli + "graph --format dot sheet.eval c99 2>&1");
  ASSERT_EQ(dot.exit_code, 0) << dot.out;
  EXPECT_NE(dot.out.find("--max-message-bytes"), std::string::npos) << dot.out;
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

// A trace larger than one reply (--max-message-bytes) keeps the events that fit and counts
// the rest as dropped: gRPC refused to send the whole, and the trace was lost.
TEST(TraceReply, ATraceLargerThanAReplyKeepsWhatFitsAndCountsTheRestDropped) {
  TempDir dir;
  DaemonProcess daemon;
  constexpr int kMessageBytes = 64 << 10;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data", "--max-message-bytes",
                            std::to_string(kMessageBytes)}))
      << daemon.log();
  const std::string cli = "--data-dir " + dir.str() + "/data ";
  const std::string out = dir.str() + "/trace.json";
  CliResult traced;
  std::thread tracer([&] { traced = RunCli(cli + "trace --seconds 3 -o " + out + " 2>&1"); });
  const bool started = daemon.WaitForLog("trace started");
  // 2,000 executions: about 200 bytes of JSON each, six times what a reply may carry.
  const CliResult called = RunCli(cli + "call demo.steps 2000 0");
  tracer.join();
  ASSERT_TRUE(started) << daemon.log();
  ASSERT_EQ(called.exit_code, 0) << called.out;
  ASSERT_EQ(traced.exit_code, 0) << traced.out;
  EXPECT_LE(std::filesystem::file_size(out), static_cast<uintmax_t>(kMessageBytes));
  std::ifstream file(out);
  const nlohmann::json trace = nlohmann::json::parse(file);
  size_t slices = 0;
  for (const nlohmann::json& event : trace["traceEvents"]) slices += event["ph"] == "X";
  EXPECT_GT(slices, 100u);
  EXPECT_EQ(trace["otherData"]["events"].get<size_t>(), slices);
  EXPECT_GT(trace["otherData"]["dropped"].get<size_t>(), 0u);
  EXPECT_TRUE(daemon.WaitForLog("the rest are counted as dropped")) << daemon.log();
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
}

}  // namespace

namespace {

// The trace of a real daemon, through the CLI: every execution a Chrome "X" slice with its
// function, task, arguments and reason; a re-execution says which dependency changed.
TEST_F(GraphDaemon, TraceRecordsSlicesWithReasons) {
  const std::string trace_path = dir_.str() + "/trace.json";
  CliResult traced;
  std::atomic<bool> tracing{true};
  std::thread tracer([&] {
    traced = RunCli(cli_ + "trace --seconds 2 -o " + trace_path);
    tracing = false;
  });
  // Add a file and call until the trace ends, each call once the watcher has seen the new
  // file: whatever the trace's start, the edits during it are in it.
  int files = 2;
  while (tracing) {
    Write(tree_ + "/new" + std::to_string(files) + ".txt", "x\ny\n");
    ++files;
    const std::string expected = "\"files\":" + std::to_string(files);
    for (int i = 0; i < 500; ++i) {
      if (RunCli(cli_ + "call tree.summary " + tree_).out.find(expected) != std::string::npos) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // the watcher's quiet time
    }
  }
  tracer.join();
  ASSERT_EQ(traced.exit_code, 0) << traced.out;

  std::ifstream file(trace_path);
  const nlohmann::json trace = nlohmann::json::parse(file);
  ASSERT_TRUE(trace.contains("traceEvents"));
  std::map<std::string, nlohmann::json> by_name;  // the last slice of each name and args
  std::set<uint64_t> named_tracks;
  for (const nlohmann::json& event : trace["traceEvents"]) {
    if (event["ph"] == "M") {
      named_tracks.insert(event["tid"].get<uint64_t>());
      continue;
    }
    ASSERT_EQ(event["ph"], "X") << event;
    EXPECT_GE(event["ts"].get<double>(), 0.0);
    EXPECT_GE(event["dur"].get<double>(), 0.0);
    by_name[event["name"].get<std::string>() + " " +
            (event["args"].contains("args") ? event["args"]["args"].get<std::string>() : "")] =
        event;
  }
  const std::string q = "\"";
  std::string new_file;  // one of the files added during the trace
  for (int i = 2; i < files && new_file.empty(); ++i) {
    const std::string name = "tree.file " + q + tree_ + "/new" + std::to_string(i) + ".txt" + q;
    if (by_name.count(name)) new_file = name;
  }
  const std::string top_dir = "tree.dir " + q + tree_ + q + ", []";
  const std::string summary = "tree.summary " + q + tree_ + q + ", null";
  ASSERT_FALSE(new_file.empty()) << trace.dump(1);
  ASSERT_TRUE(by_name.count(top_dir)) << trace.dump(1);
  ASSERT_TRUE(by_name.count(summary)) << trace.dump(1);
  EXPECT_EQ(by_name[new_file]["args"]["reason"], "first execution");
  const std::string dir_reason = by_name[top_dir]["args"]["reason"];
  EXPECT_EQ(dir_reason.rfind("dependency changed: fs.list(" + q + tree_ + q + ")", 0), 0u)
      << dir_reason;
  EXPECT_EQ(by_name[summary]["args"]["reason"].get<std::string>().rfind(
                "dependency changed: tree.dir(", 0),
            0u);
  EXPECT_EQ(by_name[summary]["args"]["task"], JsonGraph()["root"]);
  // The files that did not change were not executed again.
  EXPECT_FALSE(by_name.count("tree.file " + q + tree_ + "/a.txt" + q));
  // Every slice's track is named.
  for (const auto& [name, event] : by_name) {
    EXPECT_TRUE(named_tracks.count(event["tid"].get<uint64_t>())) << name;
  }
}

}  // namespace

namespace {

// A shutdown cuts a running trace short: the client gets what was recorded until then,
// marked so. It got CANCELLED and nothing: the trace of what led to a stop was lost.
TEST_F(GraphDaemon, AShutdownCutsATraceShortAndItIsWritten) {
  CliResult traced;
  const std::string out = dir_.str() + "/t.json";
  std::thread tracer([&] { traced = RunCli(cli_ + "trace --seconds 60 -o " + out + " 2>&1"); });
  const bool running = daemon_.WaitForLog("trace started");
  ASSERT_EQ(RunCli(cli_ + "call demo.fib 12").exit_code, 0);  // something to trace
  EXPECT_EQ(daemon_.Stop(SIGTERM), 0) << daemon_.log();
  ASSERT_TRUE(running) << daemon_.log();
  tracer.join();
  EXPECT_EQ(traced.exit_code, 0) << traced.out;
  EXPECT_NE(traced.out.find("cut short: turbined began shutting down"), std::string::npos)
      << traced.out;
  std::ifstream file(out);
  const nlohmann::json trace = nlohmann::json::parse(file);  // throws if invalid
  // The file says so too (before: only the CLI's line did).
  EXPECT_EQ(trace["otherData"].value("cut_short", false), true) << trace["otherData"].dump();
  bool fib = false;
  for (const nlohmann::json& event : trace["traceEvents"]) {
    fib = fib || event["name"] == "demo.fib";
  }
  EXPECT_TRUE(fib) << trace.dump(1);
}

}  // namespace
