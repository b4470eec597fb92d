// Files changed while the daemon was down: the restarted server re-validates every file
// task once (a stat each), reads only the files whose stat changed, and answers the rest
// from the store.
#include "stdlib_fixture.h"

namespace {

using turbine::testing::Call;
using turbine::testing::Executions;
using turbine::testing::Files;
using turbine::testing::LiveServer;
using turbine::testing::MapField;
using turbine::testing::ReadFile;
using turbine::testing::Request;
using turbine::testing::Str;
namespace v1 = turbine::v1;

int64_t Field(const v1::CallReply& reply, const std::string& key) {
  EXPECT_FALSE(reply.has_error()) << reply.error().message();
  return MapField(reply.value(), key).int_value();
}

TEST(Restart, FilesChangedWhileDownAreSeenAndOnlyTheyAreRead) {
  Files files;
  for (int i = 0; i < 10; ++i) files.Write("f" + std::to_string(i) + ".txt", "line\n");
  files.Write("gone.txt", "bye\n");
  Files::AgePastRacyWindow();
  {
    LiveServer live(files.data_dir());
    ASSERT_TRUE(live.status.ok()) << live.status;
    const v1::CallReply summary = Call(live, Request("tree.summary", {Str(files.root())}));
    EXPECT_EQ(Field(summary, "files"), 11);
    EXPECT_EQ(Field(summary, "lines"), 11);
    EXPECT_EQ(ReadFile(live, files.path("f3.txt")), "line\n");
    EXPECT_EQ(Executions(live.server->engine(), "tree.file_at"), 11u);
    EXPECT_EQ(Executions(live.server->engine(), "fs.content"), 1u);  // f3.txt, by fs.read
  }  // shut down: the final snapshot holds every task

  files.Write("f3.txt", "line\nline\nline\n");
  files.Remove("gone.txt");
  files.Write("new.txt", "new\n");

  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  const v1::CallReply summary = Call(live, Request("tree.summary", {Str(files.root())}));
  EXPECT_EQ(Field(summary, "files"), 11);
  EXPECT_EQ(Field(summary, "lines"), 13);
  EXPECT_EQ(ReadFile(live, files.path("f3.txt")), "line\nline\nline\n");
  EXPECT_TRUE(ReadFile(live, files.path("gone.txt")).starts_with("error: "));
  const auto& engine = live.server->engine();
  // Every file is re-checked once (tree.file: a stat). The two changed ones are fresh
  // (inside the racy window), so tree.file and fs.read read them directly; the nine
  // unchanged ones are answered by tree.file_at from disk, not by reading them.
  EXPECT_EQ(Executions(engine, "tree.file"), 11u);
  EXPECT_EQ(Executions(engine, "tree.file_at"), 0u);
  EXPECT_EQ(Executions(engine, "fs.content"), 0u);
}

TEST(Restart, NothingChangedMeansNothingIsRead) {
  Files files;
  for (int i = 0; i < 5; ++i) files.Write("d/f" + std::to_string(i) + ".txt", "x\n");
  Files::AgePastRacyWindow();
  std::string digest;
  {
    LiveServer live(files.data_dir());
    ASSERT_TRUE(live.status.ok()) << live.status;
    digest = MapField(Call(live, Request("tree.summary", {Str(files.root())})).value(), "digest")
                 .string_value();
    EXPECT_EQ(ReadFile(live, files.path("d/f0.txt")), "x\n");
  }
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  const v1::CallReply summary = Call(live, Request("tree.summary", {Str(files.root())}));
  EXPECT_EQ(MapField(summary.value(), "digest").string_value(), digest);
  const auto& engine = live.server->engine();
  EXPECT_EQ(Executions(engine, "tree.file"), 5u);  // each re-validated once: a stat
  EXPECT_EQ(Executions(engine, "tree.file_at"), 0u);
  EXPECT_EQ(Executions(engine, "tree.dir"), 0u);
  EXPECT_EQ(Executions(engine, "fs.list"), 2u);
  // Re-validations that came out identical leave the store alone.
  ASSERT_TRUE(live.server->engine().Flush().ok());
  EXPECT_EQ(engine.Stats().snapshot_tasks, 0u);
  EXPECT_EQ(ReadFile(live, files.path("d/f0.txt")), "x\n");
  EXPECT_EQ(Executions(engine, "fs.read"), 1u);     // a stat
  EXPECT_EQ(Executions(engine, "fs.content"), 0u);  // the bytes came from the store
}

}  // namespace
