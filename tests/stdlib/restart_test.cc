// Files changed while the daemon was down: the restarted server checks every file and
// directory its stored results observed once, at start (a stat or a directory read each),
// executes only the tasks that observed a change, and answers the rest from the store
// without verifying them.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs_observe.h"
#include "stdlib_fixture.h"

namespace {

using turbine::testing::Call;
using turbine::testing::Eventually;
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

// WriteAgedFiles writes d/f0.txt ... as "x\n", and waits until they are past the racy
// window.
void WriteAgedFiles(const Files& files, int count) {
  for (int i = 0; i < count; ++i) files.Write("d/f" + std::to_string(i) + ".txt", "x\n");
  Files::AgePastRacyWindow();
}

// SummaryDigest is tree.summary's digest of the whole test tree.
std::string SummaryDigest(LiveServer& live, const Files& files) {
  const v1::CallReply summary = Call(live, Request("tree.summary", {Str(files.root())}));
  EXPECT_FALSE(summary.has_error()) << summary.error().message();
  return MapField(summary.value(), "digest").string_value();
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
  // Checked at start: 11 files for tree.file, f3.txt for fs.read, the directory. Changed:
  // f3.txt twice (its lstat, fs.read's look), gone.txt, and the directory's listing.
  EXPECT_EQ(engine.Stats().observations_checked, 13u);
  EXPECT_EQ(engine.Stats().observations_changed, 4u);
  // The changed and the new file execute (fresh, inside the racy window: they are read
  // directly); an unchanged one only if its summary shares bits with the changes by
  // chance, and then its totals come from disk (tree.file_at), not from reading it.
  EXPECT_GE(Executions(engine, "tree.file"), 2u);
  EXPECT_EQ(Executions(engine, "tree.file_at"), 0u);
  EXPECT_EQ(Executions(engine, "fs.content"), 0u);
}

TEST(Restart, NothingChangedMeansNothingExecutes) {
  Files files;
  WriteAgedFiles(files, 5);
  std::string digest;
  {
    LiveServer live(files.data_dir());
    ASSERT_TRUE(live.status.ok()) << live.status;
    digest = SummaryDigest(live, files);
    EXPECT_EQ(ReadFile(live, files.path("d/f0.txt")), "x\n");
  }
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  EXPECT_EQ(SummaryDigest(live, files), digest);
  const auto& engine = live.server->engine();
  // Each file and directory was checked once at start (5 files for tree.file, one for
  // fs.read, 2 listings); all held, so the summary is served as stored.
  EXPECT_EQ(engine.Stats().observations_checked, 8u);
  EXPECT_EQ(engine.Stats().observations_changed, 0u);
  EXPECT_GE(engine.Stats().trusted_restored_tasks, 1u);
  for (const char* function : {"tree.summary", "tree.dir", "tree.file", "tree.file_at",
                               "fs.list"}) {
    EXPECT_EQ(Executions(engine, function), 0u) << function;
  }
  ASSERT_TRUE(live.server->engine().Flush().ok());
  EXPECT_EQ(engine.Stats().snapshot_tasks, 0u);  // nothing to write
  EXPECT_EQ(ReadFile(live, files.path("d/f0.txt")), "x\n");
  EXPECT_EQ(Executions(engine, "fs.read"), 0u);
  EXPECT_EQ(Executions(engine, "fs.content"), 0u);  // the bytes came from the store
}

// A directory older than the racy window is observed by its own stat, which any change of
// its entries changes: the check at start is one lstat, no directory read. A file created
// and removed again while down leaves the same entries but a new stat, so the listing
// runs again, and what read it only verifies (its entries did not change). The tree is on
// tmpfs (/dev/shm), whose directory times follow the entries, so that the stat path is
// tested wherever the suite runs (on an overlay, /tmp's listings compare their entries).
TEST(Restart, AnAgedDirectorysListingIsCheckedByItsStat) {
  Files files("/dev/shm");
  WriteAgedFiles(files, 3);
  std::string digest;
  {
    LiveServer live(files.data_dir());
    ASSERT_TRUE(live.status.ok()) << live.status;
    digest = SummaryDigest(live, files);
  }
  files.Write("d/scratch.txt", "y\n");
  files.Remove("d/scratch.txt");

  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  EXPECT_EQ(SummaryDigest(live, files), digest);
  const auto& engine = live.server->engine();
  // 3 files and 2 listings checked; d's stat changed (its entries did not).
  EXPECT_EQ(engine.Stats().observations_checked, 5u);
  EXPECT_EQ(engine.Stats().observations_changed, 1u);
  EXPECT_EQ(Executions(engine, "fs.list"), 1u);
  for (const char* function : {"tree.summary", "tree.dir", "tree.file", "tree.file_at"}) {
    EXPECT_EQ(Executions(engine, function), 0u) << function;
  }
}

// StatAcrossARestart stats `dir` in a server, then restarts it on the same data and checks
// the stat is answered from the store, unexecuted.
void StatAcrossARestart(const Files& files, const std::string& dir, const std::string& field,
                        int64_t* value, std::unique_ptr<LiveServer>* restarted) {
  {
    LiveServer live(files.data_dir());
    ASSERT_TRUE(live.status.ok()) << live.status;
    *value = Field(Call(live, Request("fs.stat", {Str(dir)})), field);
  }
  *restarted = std::make_unique<LiveServer>(files.data_dir());
  LiveServer& live = **restarted;
  ASSERT_TRUE(live.status.ok()) << live.status;
  ASSERT_EQ(Field(Call(live, Request("fs.stat", {Str(dir)})), field), *value);
  ASSERT_EQ(Executions(live.server->engine(), "fs.stat"), 0u);  // trusted as stored
}

// fs.stat of a directory is checked at start by its stat, and then watched as its listing:
// an entry made in it after the restart changes its mtime, which only its own watch hears.
TEST(Restart, ADirectorysStatSeesEntriesMadeAfterARestart) {
  Files files;
  files.Write("dir/a.txt", "a");
  Files::AgePastRacyWindow();
  const std::string dir = files.path("dir");
  int64_t mtime = 0;
  std::unique_ptr<LiveServer> live;
  ASSERT_NO_FATAL_FAILURE(StatAcrossARestart(files, dir, "mtime_ns", &mtime, &live));
  files.Write("dir/b.txt", "b");
  EXPECT_TRUE(Eventually([&] {
    return Field(Call(*live, Request("fs.stat", {Str(dir)})), "mtime_ns") != mtime;
  }));
}

// ...and its own attributes changed after the restart, which its watch hears as an event
// about itself.
TEST(Restart, ADirectorysStatSeesItsModeChangedAfterARestart) {
  Files files;
  files.Write("dir/a.txt", "a");
  Files::AgePastRacyWindow();
  const std::string dir = files.path("dir");
  int64_t mode = 0;
  std::unique_ptr<LiveServer> live;
  ASSERT_NO_FATAL_FAILURE(StatAcrossARestart(files, dir, "mode", &mode, &live));
  ASSERT_EQ(chmod(dir.c_str(), static_cast<mode_t>(mode ^ 0070)), 0);
  EXPECT_TRUE(Eventually([&] {
    return Field(Call(*live, Request("fs.stat", {Str(dir)})), "mode") == (mode ^ 0070);
  }));
}

// A chain of symlinks read before a restart is watched link by link after it.
TEST(Restart, ALinkOnTheWayPointedElsewhereAfterARestartIsSeen) {
  Files files;
  files.Write("c/first.txt", "first");
  files.Write("c/second.txt", "second");
  const std::string l1 = files.LinkChain("c/first.txt");
  Files::AgePastRacyWindow();
  {
    LiveServer live(files.data_dir());
    ASSERT_TRUE(live.status.ok()) << live.status;
    ASSERT_EQ(ReadFile(live, l1), "first");
  }
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  ASSERT_EQ(live.server->engine().Stats().observations_changed, 0u);
  ASSERT_EQ(ReadFile(live, l1), "first");
  files.Link(files.path("c/second.txt"), "b/l2");
  EXPECT_TRUE(Eventually([&] { return ReadFile(live, l1) == "second"; }));
}

// A restored read (not executed again) watches what its observation is checked by: a
// hard-linked file itself, and the links on a path through a symlinked directory.
TEST(Restart, RestoredReadsHearWritesThroughHardLinksAndLinksOnTheirPath) {
  Files files;
  files.Write("a/x.txt", "one");
  files.MakeDir("elsewhere");
  std::filesystem::create_hard_link(files.path("a/x.txt"), files.path("elsewhere/h.txt"));
  files.Write("first/y.txt", "first");
  files.Write("second/y.txt", "second");
  files.Link("first", "m");
  files.Link("m", "l");  // l -> m -> first
  Files::AgePastRacyWindow();
  const std::string x = files.path("a/x.txt");
  const std::string y = files.path("l/y.txt");
  {
    LiveServer live(files.data_dir());
    ASSERT_TRUE(live.status.ok()) << live.status;
    ASSERT_EQ(ReadFile(live, x), "one");
    ASSERT_EQ(ReadFile(live, y), "first");
  }
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  ASSERT_EQ(live.server->engine().Stats().observations_changed, 0u);
  ASSERT_EQ(ReadFile(live, x), "one");
  ASSERT_EQ(ReadFile(live, y), "first");
  ASSERT_EQ(Executions(live.server->engine(), "fs.read"), 0u);  // restored, not executed

  std::ofstream(files.path("elsewhere/h.txt"), std::ios::app) << ", two";
  files.Link("second", "m");
  EXPECT_EQ(ReadFile(live, x), "one, two");
  EXPECT_EQ(ReadFile(live, y), "second");
}

// So is a chain of symlinks to a listed directory.
TEST(Restart, ALinkOnTheWayToAListedDirectoryPointedElsewhereAfterARestartIsSeen) {
  Files files;
  files.Write("c/first/one.txt", "1");
  files.Write("c/second/two.txt", "2");
  const std::string l1 = files.LinkChain("c/first");
  Files::AgePastRacyWindow();
  const auto names = [&](LiveServer& live) {
    const v1::CallReply listing = Call(live, Request("fs.list", {Str(l1)}));
    EXPECT_FALSE(listing.has_error()) << listing.error().message();
    std::string out;
    for (const v1::Value& entry : listing.value().list_value().items()) {
      out += MapField(entry, "name").string_value() + " ";
    }
    return out;
  };
  {
    LiveServer live(files.data_dir());
    ASSERT_TRUE(live.status.ok()) << live.status;
    ASSERT_EQ(names(live), "one.txt ");
  }
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  ASSERT_EQ(live.server->engine().Stats().observations_changed, 0u);
  ASSERT_EQ(names(live), "one.txt ");
  files.Link(files.path("c/second"), "b/l2");
  EXPECT_TRUE(Eventually([&] { return names(live) == "two.txt "; }));
}

TEST(Restart, OnlyLocalFilesystemsDirectoryTimesStandForTheirEntries) {
  const auto follows = [](const char* dir) {
    const int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    EXPECT_GE(fd, 0) << dir;
    const bool answer = turbine::stdlib::DirectoryTimesFollowEntries(fd);
    if (fd >= 0) close(fd);
    return answer;
  };
  EXPECT_TRUE(follows("/dev/shm"));  // tmpfs
  EXPECT_FALSE(follows("/proc"));
  EXPECT_FALSE(turbine::stdlib::DirectoryTimesFollowEntries(-1));
}

// A directory changed within the racy window of its listing: two changes in one timestamp
// tick may leave its stat the same, so its entries themselves are compared at start.
TEST(Restart, AYoungDirectorysListingIsCheckedByItsEntries) {
  Files files;
  files.Write("d/f.txt", "x\n");
  // An mtime an hour ahead keeps d racy however slowly the server below starts.
  timespec times[2] = {{0, UTIME_OMIT}, {0, 0}};
  clock_gettime(CLOCK_REALTIME, &times[1]);
  times[1].tv_sec += 3600;
  ASSERT_EQ(utimensat(AT_FDCWD, files.path("d").c_str(), times, 0), 0);
  {
    LiveServer live(files.data_dir());
    ASSERT_TRUE(live.status.ok()) << live.status;
    EXPECT_FALSE(Call(live, Request("fs.list", {Str(files.path("d"))})).has_error());
  }
  files.Write("d/scratch.txt", "y\n");
  files.Remove("d/scratch.txt");

  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  EXPECT_FALSE(Call(live, Request("fs.list", {Str(files.path("d"))})).has_error());
  const auto& engine = live.server->engine();
  EXPECT_EQ(engine.Stats().observations_checked, 1u);
  EXPECT_EQ(engine.Stats().observations_changed, 0u);  // the same entries
  EXPECT_EQ(Executions(engine, "fs.list"), 0u);
}

// A result trusted after a restart was never executed in this daemon, so no body
// subscribed to its files: the check at start did. An edit must still reach it.
TEST(Restart, AFileEditedAfterATrustedRestartReachesTheTrustedResults) {
  Files files;
  for (int i = 0; i < 4; ++i) files.Write("d/f" + std::to_string(i) + ".txt", "x\n");
  Files::AgePastRacyWindow();
  {
    LiveServer live(files.data_dir());
    ASSERT_TRUE(live.status.ok()) << live.status;
    Call(live, Request("tree.summary", {Str(files.root())}));
  }
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  EXPECT_EQ(Field(Call(live, Request("tree.summary", {Str(files.root())})), "lines"), 4);
  EXPECT_EQ(Executions(live.server->engine(), "tree.file"), 0u);  // trusted, as stored

  files.Write("d/f2.txt", "x\ny\nz\n");
  EXPECT_TRUE(Eventually([&] {
    return Field(Call(live, Request("tree.summary", {Str(files.root())})), "lines") == 6;
  }));
  files.Write("d/new.txt", "n\n");  // a listing the check at start subscribed to
  EXPECT_TRUE(Eventually([&] {
    return Field(Call(live, Request("tree.summary", {Str(files.root())})), "files") == 5;
  }));
}

// A file edited just before a stop is racy when its task runs, so its result is stored as
// one to verify; the next session finds it settled, and stores it (and its directories)
// as results to trust: the session after that executes nothing.
TEST(Restart, AFileEditedJustBeforeAStopIsTrustedTwoRestartsLater) {
  Files files;
  for (int i = 0; i < 3; ++i) files.Write("d/f" + std::to_string(i) + ".txt", "x\n");
  Files::AgePastRacyWindow();
  {
    LiveServer live(files.data_dir());
    ASSERT_TRUE(live.status.ok()) << live.status;
    EXPECT_EQ(Field(Call(live, Request("tree.summary", {Str(files.root())})), "lines"), 3);
    ASSERT_TRUE(live.server->engine().Flush().ok());  // stored before the edit
    files.Write("d/f1.txt", "x\ny\n");
    EXPECT_TRUE(Eventually([&] {
      return Field(Call(live, Request("tree.summary", {Str(files.root())})), "lines") == 4;
    }));
  }
  Files::AgePastRacyWindow();
  {
    LiveServer live(files.data_dir());
    ASSERT_TRUE(live.status.ok()) << live.status;
    EXPECT_EQ(Field(Call(live, Request("tree.summary", {Str(files.root())})), "lines"), 4);
    // f1.txt, settled now. The other files of its directory, whose records are older than
    // the logged change of f1.txt, share its group (fs_observe.h), so they are not
    // trusted; their observations held at the check at open, so they verify, not look.
    EXPECT_EQ(Executions(live.server->engine(), "tree.file"), 1u);
  }
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  EXPECT_EQ(Field(Call(live, Request("tree.summary", {Str(files.root())})), "lines"), 4);
  EXPECT_EQ(live.server->engine().Stats().executions, 0u);
  EXPECT_EQ(live.server->engine().Stats().restored_tasks, 1u);  // the summary, trusted
}

// A file removed while the daemon runs: its task is never read again, so only the snapshot
// can say its observation changed. Said once, it costs no restart anything: before, the
// stored observation of a file that was gone counted as a change at every start, and made
// every result that read its directory verify.
TEST(Restart, AFileRemovedWhileRunningIsNotAChangeAtEveryStart) {
  Files files;
  WriteAgedFiles(files, 4);
  {
    LiveServer live(files.data_dir());
    ASSERT_TRUE(live.status.ok()) << live.status;
    EXPECT_EQ(Field(Call(live, Request("tree.summary", {Str(files.root())})), "files"), 4);
    ASSERT_TRUE(live.server->engine().Flush().ok());  // stored before the removal
    files.Remove("d/f2.txt");
    EXPECT_TRUE(Eventually([&] {
      return Field(Call(live, Request("tree.summary", {Str(files.root())})), "files") == 3;
    }));
  }
  Files::AgePastRacyWindow();
  for (int start = 0; start < 2; ++start) {
    LiveServer live(files.data_dir());
    ASSERT_TRUE(live.status.ok()) << live.status;
    EXPECT_EQ(Field(Call(live, Request("tree.summary", {Str(files.root())})), "files"), 3);
    const auto& engine = live.server->engine();
    EXPECT_EQ(engine.Stats().observations_changed, 0u) << start;
    EXPECT_EQ(engine.Stats().executions, 0u) << start;
    EXPECT_EQ(engine.Stats().restored_tasks, 1u) << start;  // the summary, trusted
  }
}

// A path that is not there is observed missing: its error is trusted after a restart while
// it stays missing (a client probing optional files executed them all at every start), and
// a file made while down is read.
TEST(Restart, AMissingPathsErrorIsTrustedAfterARestartUntilThePathIsMade) {
  Files files;
  files.Write("d/present.txt", "x\n");
  Files::AgePastRacyWindow();
  const std::string missing = files.path("d/optional.txt");
  const std::string missing_dir = files.path("d/sub");
  auto errors = [&](LiveServer& live) {
    EXPECT_TRUE(ReadFile(live, missing).starts_with("error: ")) << ReadFile(live, missing);
    EXPECT_TRUE(Call(live, Request("fs.stat", {Str(missing)})).has_error());
    EXPECT_TRUE(Call(live, Request("fs.list", {Str(missing_dir)})).has_error());
  };
  {
    LiveServer live(files.data_dir());
    ASSERT_TRUE(live.status.ok()) << live.status;
    errors(live);
  }
  for (int start = 0; start < 2; ++start) {
    LiveServer live(files.data_dir());
    ASSERT_TRUE(live.status.ok()) << live.status;
    const auto& engine = live.server->engine();
    EXPECT_EQ(engine.Stats().observations_checked, 3u) << start;
    EXPECT_EQ(engine.Stats().observations_changed, 0u) << start;
    errors(live);
    EXPECT_EQ(engine.Stats().executions, 0u) << start;
  }
  files.Write("d/optional.txt", "here\n");
  files.Write("d/sub/a.txt", "a\n");
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  EXPECT_EQ(live.server->engine().Stats().observations_changed, 3u);
  EXPECT_EQ(ReadFile(live, missing), "here\n");
  EXPECT_FALSE(Call(live, Request("fs.stat", {Str(missing)})).has_error());
  const v1::CallReply listing = Call(live, Request("fs.list", {Str(missing_dir)}));
  EXPECT_FALSE(listing.has_error()) << listing.error().message();
}

// ...and its error says which way it is missing: a file on the way ("Not a directory")
// removed while down is another error ("No such file or directory").
TEST(Restart, AMissingPathsErrorSaysAfterARestartHowItIsMissingNow) {
  Files files;
  files.Write("d/f", "x\n");
  Files::AgePastRacyWindow();
  const std::string through_file = files.path("d/f/x");
  {
    LiveServer live(files.data_dir());
    ASSERT_TRUE(live.status.ok()) << live.status;
    const std::string first = ReadFile(live, through_file);
    EXPECT_NE(first.find("Not a directory"), std::string::npos) << first;
  }
  files.Remove("d/f");
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  EXPECT_EQ(live.server->engine().Stats().observations_changed, 1u);
  const std::string now = ReadFile(live, through_file);
  EXPECT_NE(now.find("No such file"), std::string::npos) << now;
}

}  // namespace
