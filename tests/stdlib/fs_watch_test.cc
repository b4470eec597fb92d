// fs.read, fs.stat and fs.list against a real directory, and the file watcher keeping
// their cached results true while files are edited, created, deleted and renamed.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <future>

#include "file_signature.h"
#include "file_watcher.h"
#include "stdlib_fixture.h"

namespace {

using turbine::testing::Call;
using turbine::testing::Eventually;
using turbine::testing::Executions;
using turbine::testing::Files;
using turbine::testing::Int;
using turbine::testing::LiveServer;
using turbine::testing::MapField;
using turbine::testing::ReadFile;
using turbine::testing::Request;
using turbine::testing::Str;
using turbine::testing::Text;
namespace v1 = turbine::v1;

std::vector<std::string> Names(const v1::CallReply& listing) {
  std::vector<std::string> names;
  for (const v1::Value& entry : listing.value().list_value().items()) {
    names.push_back(MapField(entry, "name").string_value() + ":" +
                    MapField(entry, "kind").string_value());
  }
  return names;
}

TEST(Files, ReadStatAndList) {
  Files files;
  files.Write("b.txt", "bee\n");
  files.Write("a/inner.txt", "x");
  std::filesystem::create_symlink(files.path("b.txt"), files.path("link"));
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;

  EXPECT_EQ(ReadFile(live, files.path("b.txt")), "bee\n");
  EXPECT_EQ(ReadFile(live, files.path("link")), "bee\n");  // read through the link
  // One file, one task: a path spelled differently is normalized first.
  EXPECT_EQ(ReadFile(live, files.root() + "/a/../b.txt"), "bee\n");

  const v1::CallReply stat = Call(live, Request("fs.stat", {Str(files.path("b.txt"))}));
  EXPECT_EQ(MapField(stat.value(), "kind").string_value(), "file");
  EXPECT_EQ(MapField(stat.value(), "size").int_value(), 4);
  EXPECT_EQ(MapField(Call(live, Request("fs.stat", {Str(files.path("link"))})).value(), "kind")
                .string_value(),
            "symlink");

  EXPECT_EQ(Names(Call(live, Request("fs.list", {Str(files.root())}))),
            (std::vector<std::string>{"a:dir", "b.txt:file", "link:symlink"}));
  // A symlink to a directory is listed where it leads; a file is not a directory.
  std::filesystem::create_directory_symlink(files.path("a"), files.path("to_a"));
  EXPECT_EQ(Names(Call(live, Request("fs.list", {Str(files.path("to_a"))}))),
            (std::vector<std::string>{"inner.txt:file"}));
  const v1::CallReply file = Call(live, Request("fs.list", {Str(files.path("b.txt"))}));
  ASSERT_TRUE(file.has_error());
  EXPECT_NE(file.error().message().find("Not a directory"), std::string::npos)
      << file.error().message();
}

TEST(Files, BadPathsAreErrorsThatNameThePath) {
  Files files;
  files.MakeDir("dir");
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;

  EXPECT_NE(ReadFile(live, "relative.txt").find("path must be absolute"), std::string::npos);
  const std::string missing = ReadFile(live, files.path("missing.txt"));
  EXPECT_NE(missing.find("missing.txt: No such file or directory"), std::string::npos) << missing;
  EXPECT_NE(ReadFile(live, files.path("dir")).find("is a directory"), std::string::npos);
  const v1::CallReply listing = Call(live, Request("fs.list", {Str(files.path("dir/nope"))}));
  ASSERT_TRUE(listing.has_error());
  EXPECT_NE(listing.error().message().find("dir/nope"), std::string::npos);
}

TEST(Files, AFifoWhereAFileWasIsRefusedNotWaitedOn) {
  Files files;
  const std::string pipe = files.path("pipe");
  ASSERT_EQ(mkfifo(pipe.c_str(), 0600), 0);
  // What fs.content and tree.file_at do under a file's signature, when a FIFO has taken
  // the file's place since the stat: opening it for reading must not wait for a writer.
  std::future<std::string> failure = std::async(std::launch::async, [&] {
    try {
      turbine::stdlib::ReadFileAt(pipe, turbine::stdlib::FileSignature{1, 2, 3, 4, 5}, "fs.read");
    } catch (const turbine::TaskError& error) {
      return std::string(error.what());
    }
    return std::string("read");
  });
  const bool answered = failure.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  if (!answered) {  // let the waiting open go, so that the test ends
    const int writer = open(pipe.c_str(), O_WRONLY | O_NONBLOCK);
    if (writer >= 0) close(writer);
  }
  ASSERT_TRUE(answered) << "the read waited on a FIFO";
  EXPECT_NE(failure.get().find("changed while being read"), std::string::npos);
}

// A kernel file that says it is empty and reads on for hundreds of gigabytes: before, the
// read went on to its end, all of it held in memory (gigabytes a second).
TEST(Files, AFileThatReadsPastItsSizeIsRefusedAtTheFirstByteOver) {
  const std::string pagemap = "/proc/self/pagemap";
  struct stat st {};
  ASSERT_EQ(stat(pagemap.c_str(), &st), 0) << std::strerror(errno);
  ASSERT_EQ(st.st_size, 0);
  try {
    turbine::stdlib::ReadFileAt(pagemap, turbine::stdlib::SignatureOf(st), "fs.read");
    ADD_FAILURE() << "read " << pagemap << " whole";
  } catch (const turbine::TaskError& error) {
    EXPECT_NE(std::string(error.what()).find("changed while being read"), std::string::npos)
        << error.what();
  }
}

// A failed system call's error keeps its errno's nature: what may pass by itself is
// transient (the engine retries it), what will not is kept like a value.
TEST(Files, ErrnosThatMayPassAreTransientCodes) {
  using turbine::stdlib::ErrnoCode;
  EXPECT_EQ(ErrnoCode(EMFILE), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrnoCode(ENFILE), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrnoCode(ENOMEM), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrnoCode(EIO), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrnoCode(ESTALE), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrnoCode(ETIMEDOUT), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrnoCode(EAGAIN), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrnoCode(ENOENT), absl::StatusCode::kUnknown);
  EXPECT_EQ(ErrnoCode(EACCES), absl::StatusCode::kUnknown);
  EXPECT_EQ(ErrnoCode(EISDIR), absl::StatusCode::kUnknown);
}

TEST(Watcher, AnEditIsSeen) {
  Files files;
  files.Write("a.txt", "one");
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  ASSERT_EQ(ReadFile(live, files.path("a.txt")), "one");
  EXPECT_EQ(ReadFile(live, files.path("a.txt")), "one");
  EXPECT_EQ(Executions(live.server->engine(), "fs.read"), 1u);  // cached while unchanged

  files.Write("a.txt", "two");
  EXPECT_TRUE(Eventually([&] { return ReadFile(live, files.path("a.txt")) == "two"; }));
}

TEST(Watcher, CreatingAndDeletingAFileIsSeen) {
  Files files;
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  const std::string path = files.path("later/new.txt");  // its directory does not exist yet
  ASSERT_NE(ReadFile(live, path).find("No such file"), std::string::npos);

  files.Write("later/new.txt", "hello");
  EXPECT_TRUE(Eventually([&] { return ReadFile(live, path) == "hello"; }));

  files.Remove("later/new.txt");
  EXPECT_TRUE(Eventually([&] { return ReadFile(live, path).starts_with("error: "); }));
}

TEST(Watcher, RenamesAreSeenOnBothSides) {
  Files files;
  files.Write("old.txt", "content");
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  ASSERT_EQ(ReadFile(live, files.path("old.txt")), "content");
  ASSERT_TRUE(ReadFile(live, files.path("new.txt")).starts_with("error: "));
  ASSERT_EQ(Names(Call(live, Request("fs.list", {Str(files.root())}))),
            (std::vector<std::string>{"old.txt:file"}));

  files.Rename("old.txt", "new.txt");
  EXPECT_TRUE(Eventually([&] { return ReadFile(live, files.path("new.txt")) == "content"; }));
  EXPECT_TRUE(Eventually([&] { return ReadFile(live, files.path("old.txt")).starts_with("error"); }));
  EXPECT_EQ(Names(Call(live, Request("fs.list", {Str(files.root())}))),
            (std::vector<std::string>{"new.txt:file"}));
}

TEST(Watcher, RenamingADirectoryAboveAFileIsSeen) {
  Files files;
  files.Write("outer/inner/deep.txt", "deep");
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  const std::string path = files.path("outer/inner/deep.txt");
  ASSERT_EQ(ReadFile(live, path), "deep");

  // Nothing lists "outer"'s parent: only the watch on every ancestor can see this.
  files.Rename("outer", "moved");
  EXPECT_TRUE(Eventually([&] { return ReadFile(live, path).starts_with("error: "); }));
  EXPECT_EQ(ReadFile(live, files.path("moved/inner/deep.txt")), "deep");

  files.Rename("moved", "outer");
  EXPECT_TRUE(Eventually([&] { return ReadFile(live, path) == "deep"; }));
}

TEST(Watcher, ADirectoryDeletedAndMadeAgainIsWatchedAgain) {
  Files files;
  files.Write("dir/a.txt", "one");
  files.Write("dir/b.txt", "bee");
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  const std::string a = files.path("dir/a.txt");
  const std::string b = files.path("dir/b.txt");
  ASSERT_EQ(ReadFile(live, a), "one");
  ASSERT_EQ(ReadFile(live, b), "bee");

  // The old directory's watch goes with it; the new one must be watched afresh, though
  // the watcher still knows the path.
  files.Remove("dir");
  EXPECT_TRUE(Eventually([&] { return ReadFile(live, a).starts_with("error: "); }));
  files.Write("dir/a.txt", "two");
  files.Write("dir/b.txt", "bee, again");
  EXPECT_TRUE(Eventually([&] { return ReadFile(live, a) == "two"; }));
  EXPECT_TRUE(Eventually([&] { return ReadFile(live, b) == "bee, again"; }));

  files.Write("dir/a.txt", "three");
  EXPECT_TRUE(Eventually([&] { return ReadFile(live, a) == "three"; }));
}

TEST(Watcher, ADirectoryMadeWhereOneWasRenamedAwayIsWatched) {
  Files files;
  files.Write("dir/a.txt", "one");
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  const std::string a = files.path("dir/a.txt");
  ASSERT_EQ(ReadFile(live, a), "one");

  // The watch follows the directory that moved, not its old path: the new directory at
  // that path needs a watch of its own.
  files.Rename("dir", "moved");
  EXPECT_TRUE(Eventually([&] { return ReadFile(live, a).starts_with("error: "); }));
  files.Write("dir/a.txt", "two");
  EXPECT_TRUE(Eventually([&] { return ReadFile(live, a) == "two"; }));
  files.Write("dir/a.txt", "three");
  EXPECT_TRUE(Eventually([&] { return ReadFile(live, a) == "three"; }));
  EXPECT_EQ(ReadFile(live, files.path("moved/a.txt")), "one");
}

TEST(Watcher, ASymlinkedDirectoryPointedElsewhereIsWatchedThere) {
  Files files;
  files.Write("first/f.txt", "first");
  files.Write("second/f.txt", "second");
  std::filesystem::create_directory_symlink(files.path("first"), files.path("link"));
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  const std::string through_link = files.path("link/f.txt");
  ASSERT_EQ(ReadFile(live, through_link), "first");

  files.Remove("link");
  std::filesystem::create_directory_symlink(files.path("second"), files.path("link"));
  EXPECT_TRUE(Eventually([&] { return ReadFile(live, through_link) == "second"; }));
  files.Write("second/f.txt", "second, edited");
  EXPECT_TRUE(Eventually([&] { return ReadFile(live, through_link) == "second, edited"; }));
}

TEST(Watcher, ADeletedDirectoryIsForgotten) {
  Files files;
  files.Write("tmp/a/f.txt", "f");
  files.Write("tmp/b/g.txt", "g");
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  ASSERT_EQ(ReadFile(live, files.path("tmp/a/f.txt")), "f");
  ASSERT_EQ(ReadFile(live, files.path("tmp/b/g.txt")), "g");
  const turbine::stdlib::FileWatcher& watcher = turbine::stdlib::FileWatcher::Global();
  const size_t watched = watcher.WatchedDirectories();

  // tmp, tmp/a and tmp/b: a daemon that lives through many such directories (a build's
  // temporary ones) must not keep them all.
  files.Remove("tmp");
  EXPECT_TRUE(Eventually([&] { return watcher.WatchedDirectories() <= watched - 3; }))
      << watcher.WatchedDirectories() << " of " << watched;
}

TEST(Watcher, ADanglingSymlinkIsReadOnceWhereItLeadsIsMade) {
  Files files;
  files.MakeDir("out");
  std::filesystem::create_symlink("../dist/app.js", files.path("out/app.js"));
  std::filesystem::create_directory_symlink("../dist/assets", files.path("out/assets"));
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  const std::string link = files.path("out/app.js");
  ASSERT_NE(ReadFile(live, link).find("No such file"), std::string::npos);
  const std::string assets = files.path("out/assets");
  ASSERT_TRUE(Call(live, Request("fs.list", {Str(assets)})).has_error());

  // A build makes dist/ again: the links lead somewhere now.
  files.Write("dist/app.js", "built");
  files.Write("dist/assets/logo.svg", "<svg/>");
  EXPECT_TRUE(Eventually([&] { return ReadFile(live, link) == "built"; }));
  EXPECT_TRUE(Eventually([&] {
    return Names(Call(live, Request("fs.list", {Str(assets)}))) ==
           std::vector<std::string>{"logo.svg:file"};
  }));
}

TEST(Watcher, ADanglingLinkInASymlinkedDirectoryLeadsFromWhereItIs) {
  Files files;
  files.MakeDir("cache/build/out");
  files.MakeDir("ws");
  std::filesystem::create_directory_symlink(files.path("cache/build/out"), files.path("ws/out"));
  // Relative to where the link really is: cache/build/dist, not ws/dist.
  std::filesystem::create_symlink("../dist/app.js", files.path("cache/build/out/app.js"));
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  const std::string link = files.path("ws/out/app.js");
  ASSERT_NE(ReadFile(live, link).find("No such file"), std::string::npos);

  files.Write("cache/build/dist/app.js", "built");
  EXPECT_TRUE(Eventually([&] { return ReadFile(live, link) == "built"; }));
}

TEST(Watcher, AnAbsoluteLinkWithDotDotLeadsWhereTheKernelGoes) {
  Files files;
  files.MakeDir("cache/build/out");
  files.MakeDir("ws");
  std::filesystem::create_directory_symlink(files.path("cache/build/out"), files.path("ws/out"));
  // The kernel takes ws/out to cache/build/out, and ".." from there to cache/build.
  std::filesystem::create_symlink(files.path("ws/out") + "/../dist/app.js", files.path("ws/app.js"));
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  const std::string link = files.path("ws/app.js");
  ASSERT_NE(ReadFile(live, link).find("No such file"), std::string::npos);

  files.Write("cache/build/dist/app.js", "built");
  EXPECT_TRUE(Eventually([&] { return ReadFile(live, link) == "built"; }));
}

TEST(Watcher, ALinkOnTheWayPointedElsewhereIsSeen) {
  Files files;
  files.Write("c/first.txt", "first");
  files.Write("c/second.txt", "second");
  const std::string l1 = files.LinkChain("c/first.txt");
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  ASSERT_EQ(ReadFile(live, l1), "first");

  // Nothing in a/ or c/ changes: only the link in the middle (an alternatives-style chain).
  files.Link(files.path("c/second.txt"), "b/l2");
  EXPECT_TRUE(Eventually([&] { return ReadFile(live, l1) == "second"; }));
}

int64_t StatField(LiveServer& live, const std::string& path, const std::string& key) {
  const v1::CallReply stat = Call(live, Request("fs.stat", {Str(path)}));
  EXPECT_FALSE(stat.has_error()) << stat.error().message();
  return MapField(stat.value(), key).int_value();
}

// The calls below follow their changes at once, without Eventually: a change must be heard
// (marked before the call is answered), not found by a poll a second later.

TEST(Watcher, APathThroughASymlinkToAMissingDirectoryIsReadOnceItIsMade) {
  Files files;
  files.Link(files.path("build/out"), "out");  // build/ does not exist yet
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  const std::string result = files.path("out/result.txt");
  ASSERT_NE(ReadFile(live, result).find("No such file"), std::string::npos);
  ASSERT_TRUE(Call(live, Request("fs.list", {Str(files.path("out"))})).has_error());

  files.Write("build/out/result.txt", "hello");
  EXPECT_EQ(ReadFile(live, result), "hello");
  EXPECT_EQ(Names(Call(live, Request("fs.list", {Str(files.path("out"))}))),
            (std::vector<std::string>{"result.txt:file"}));
  files.Write("build/out/result.txt", "hello, again");
  EXPECT_EQ(ReadFile(live, result), "hello, again");
}

TEST(Watcher, ALinkInAChainToADirectoryPointedElsewhereIsSeenBelowIt) {
  Files files;
  files.Write("first/x.txt", "first");
  files.Write("second/x.txt", "second");
  files.Write("first/sub/z.txt", "first z");
  files.Write("second/sub/z.txt", "second z");
  files.Link("first", "m");
  files.Link("m", "l");  // l -> m -> first
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  const std::string through = files.path("l/x.txt");
  const std::string deeper = files.path("l/sub/z.txt");
  ASSERT_EQ(ReadFile(live, through), "first");
  ASSERT_EQ(ReadFile(live, deeper), "first z");
  ASSERT_EQ(Names(Call(live, Request("fs.list", {Str(files.path("l"))}))),
            (std::vector<std::string>{"sub:dir", "x.txt:file"}));

  files.Link("second", "m");  // nothing named l, first or second changes
  files.Write("second/y.txt", "y");
  EXPECT_EQ(ReadFile(live, through), "second");
  EXPECT_EQ(ReadFile(live, deeper), "second z");
  EXPECT_EQ(Names(Call(live, Request("fs.list", {Str(files.path("l"))}))),
            (std::vector<std::string>{"sub:dir", "x.txt:file", "y.txt:file"}));
  files.Write("second/sub/z.txt", "second z, edited");
  EXPECT_EQ(ReadFile(live, deeper), "second z, edited");
}

TEST(Watcher, ADirectoryAboveWhereALinkLeadsReplacedIsSeen) {
  Files files;
  files.Write("p/q/x.txt", "old");
  files.Link(files.path("p/q"), "dl");
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  const std::string through = files.path("dl/x.txt");
  ASSERT_EQ(ReadFile(live, through), "old");

  // The directory the link leads to is untouched; the path to it leads elsewhere now.
  files.Rename("p", "p_old");
  files.Write("p/q/x.txt", "new");
  EXPECT_EQ(ReadFile(live, through), "new");
  files.Write("p/q/x.txt", "newer");
  EXPECT_EQ(ReadFile(live, through), "newer");
}

TEST(Watcher, ALinkBeforeADotDotInAFileLinksTargetPointedElsewhereIsSeen) {
  Files files;
  files.Write("y/g", "y");
  files.Write("w/g", "w");
  files.MakeDir("y/z");
  files.MakeDir("w/z");
  files.Link(files.path("y/z"), "x/d");
  files.Link("d/../g", "x/f");  // x/d leads to y/z, and ".." from there to y
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  const std::string f = files.path("x/f");
  ASSERT_EQ(ReadFile(live, f), "y");

  files.Link(files.path("w/z"), "x/d");
  EXPECT_EQ(ReadFile(live, f), "w");
}

TEST(Watcher, ASymlinkLoopMendedIsSeenAtOnce) {
  Files files;
  files.Write("d/x", "dx");
  files.Link("l", "l");  // l -> l: no path through it resolves
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  const std::string x = files.path("l/x");
  ASSERT_NE(ReadFile(live, x).find("Too many levels of symbolic links"), std::string::npos)
      << ReadFile(live, x);

  files.Link(files.path("d"), "l");
  EXPECT_EQ(ReadFile(live, x), "dx");

  // A loop of two links, mended at the second.
  files.Link("b", "a");
  files.Link("a", "b");
  const std::string through = files.path("a/x");
  ASSERT_NE(ReadFile(live, through).find("Too many levels of symbolic links"), std::string::npos);
  files.Link(files.path("d"), "b");
  EXPECT_EQ(ReadFile(live, through), "dx");
}

// Mounting needs CAP_SYS_ADMIN (root, outside a restricted container): without it the
// tests below say so and skip. inotify is told nothing of a mount; the mount table is.
struct Unmount {
  std::string at;
  ~Unmount() { umount2(at.c_str(), MNT_DETACH); }
};

TEST(Watcher, AFilesystemMountedOverADirectoryThatWasReadIsSeen) {
  Files files;
  files.Write("ws/dir/f", "orig");
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  const std::string dir = files.path("ws/dir");
  const std::string f = files.path("ws/dir/f");
  const auto list = [&] { return Names(Call(live, Request("fs.list", {Str(dir)}))); };
  ASSERT_EQ(ReadFile(live, f), "orig");
  ASSERT_EQ(list(), (std::vector<std::string>{"f:file"}));

  if (mount("tmpfs", dir.c_str(), "tmpfs", 0, nullptr) != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  }
  Unmount unmount{dir};
  files.Write("ws/dir/f", "new");
  files.Write("ws/dir/h", "h");
  EXPECT_EQ(ReadFile(live, f), "new");
  EXPECT_EQ(list(), (std::vector<std::string>{"f:file", "h:file"}));
  files.Write("ws/dir/f", "newer");  // and watched where the path leads now
  EXPECT_EQ(ReadFile(live, f), "newer");

  ASSERT_EQ(umount2(dir.c_str(), 0), 0) << std::strerror(errno);
  EXPECT_EQ(ReadFile(live, f), "orig");
  EXPECT_EQ(list(), (std::vector<std::string>{"f:file"}));
}

TEST(Watcher, AFileBindMountedOverAnotherIsSeenAndSoAreItsWrites) {
  Files files;
  files.Write("src/f", "s1");
  files.Write("dst/f", "d1");
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  const std::string dst = files.path("dst/f");
  ASSERT_EQ(ReadFile(live, dst), "d1");

  if (mount(files.path("src/f").c_str(), dst.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    GTEST_SKIP() << "cannot bind-mount here: " << std::strerror(errno);
  }
  Unmount unmount{dst};
  EXPECT_EQ(ReadFile(live, dst), "s1");
  // The write is told to src/, whose file it is, not to dst/.
  std::ofstream(dst, std::ios::app) << ", s2";
  EXPECT_EQ(ReadFile(live, dst), "s1, s2");
  std::ofstream(files.path("src/f"), std::ios::app) << ", s3";
  EXPECT_EQ(ReadFile(live, dst), "s1, s2, s3");

  ASSERT_EQ(umount2(dst.c_str(), 0), 0) << std::strerror(errno);
  EXPECT_EQ(ReadFile(live, dst), "d1");
}

// Two images built reproducibly (SOURCE_DATE_EPOCH) give their files the same inode, size
// and times: only the device (each image on a loop device of its own) tells the second one
// mounted at the path from the first.
struct Detach {
  std::string device;
  ~Detach() {
    if (!device.empty()) std::system(("losetup -d '" + device + "'").c_str());
  }
};

TEST(Watcher, AFileOfAnotherFilesystemWithTheSameInodeAndTimesIsReadAgain) {
  Files files;
  files.Write("v1/version", "1.0.1\n");
  files.Write("v2/version", "1.0.2\n");  // the same size
  Detach devices[2];
  for (int i = 0; i < 2; ++i) {
    const std::string version = "v" + std::to_string(i + 1);
    const std::string image = files.path(version) + ".sqfs";
    const std::string command = "SOURCE_DATE_EPOCH=1700000000 mksquashfs '" +
                                files.path(version) + "' '" + image + "' -quiet -noappend";
    ASSERT_EQ(std::system(command.c_str()), 0) << "mksquashfs failed (scripts/setup installs it)";
    FILE* attach = popen(("losetup -f --show -r '" + image + "' 2>/dev/null").c_str(), "r");
    char line[256] = {};
    if (attach != nullptr && std::fgets(line, sizeof line, attach) != nullptr) {
      devices[i].device = std::string(line, std::strcspn(line, "\n"));
    }
    if (attach != nullptr) pclose(attach);
    if (devices[i].device.empty()) GTEST_SKIP() << "no loop device can be attached here";
  }
  const std::string app = files.path("app");
  files.MakeDir("app");
  const auto mount_image = [&](const Detach& loop) {
    return mount(loop.device.c_str(), app.c_str(), "squashfs", MS_RDONLY, nullptr) == 0;
  };
  if (!mount_image(devices[0])) {
    GTEST_SKIP() << "cannot mount a squashfs image here: " << std::strerror(errno);
  }
  Unmount unmount{app};
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  const std::string version = app + "/version";
  ASSERT_EQ(ReadFile(live, version), "1.0.1\n");

  ASSERT_EQ(umount2(app.c_str(), 0), 0) << std::strerror(errno);
  ASSERT_TRUE(mount_image(devices[1])) << std::strerror(errno);
  EXPECT_EQ(ReadFile(live, version), "1.0.2\n");
}

// A project that holds the daemon's data directory (scripts/run's ./.turbine): its summary
// leaves the daemon's own files out, so the daemon's writes there do not make it run again
// at every call (or change its totals).
TEST(Watcher, ASummaryLeavesOutTheDaemonsOwnDataDirectory) {
  Files files;
  files.Write("src/a.txt", "a\n");
  LiveServer live(files.path(".turbine"));
  ASSERT_TRUE(live.status.ok()) << live.status;
  const auto summary = [&] { return Call(live, Request("tree.summary", {Str(files.root())})); };
  const v1::CallReply first = summary();
  ASSERT_FALSE(first.has_error()) << first.error().message();
  EXPECT_EQ(MapField(first.value(), "files").int_value(), 1);
  for (int round = 0; round < 3; ++round) {
    // Calls that write to the store, then the summary again: answered as it was.
    for (int i = 0; i < 20; ++i) Call(live, Request("demo.fib", {Int(30 + i + 20 * round)}));
    ASSERT_TRUE(live.server->engine().Flush().ok());
    ASSERT_FALSE(summary().has_error());
  }
  EXPECT_EQ(Executions(live.server->engine(), "tree.summary"), 1u);
  // A change in the project is still seen.
  files.Write("src/b.txt", "b\n");
  EXPECT_EQ(MapField(summary().value(), "files").int_value(), 2);
  // Also when the project is asked for through a symlink.
  const std::string link = files.root() + "-link";
  std::filesystem::create_directory_symlink(files.root(), link);
  const v1::CallReply through = Call(live, Request("tree.summary", {Str(link)}));
  std::filesystem::remove(link);
  ASSERT_FALSE(through.has_error()) << through.error().message();
  EXPECT_EQ(MapField(through.value(), "files").int_value(), 2);
}

TEST(Watcher, AFileWrittenThroughAHardLinkInAnotherDirectoryIsSeen) {
  Files files;
  files.Write("a/x.txt", "one");
  files.MakeDir("elsewhere");
  std::filesystem::create_hard_link(files.path("a/x.txt"), files.path("elsewhere/h.txt"));
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  const std::string x = files.path("a/x.txt");
  ASSERT_EQ(ReadFile(live, x), "one");
  ASSERT_EQ(StatField(live, x, "size"), 3);

  // Nothing in a/ changes: the write goes through the other name.
  const auto append = [&](const std::string& more) {
    std::ofstream(files.path("elsewhere/h.txt"), std::ios::app) << more;
  };
  append(", two");
  EXPECT_EQ(ReadFile(live, x), "one, two");
  EXPECT_EQ(StatField(live, x, "size"), 8);
  append(", three");  // the watch is one-shot: the read above watched it again
  EXPECT_EQ(ReadFile(live, x), "one, two, three");
}

// Before: read with one name, a file linked later and written through the new name kept
// its first name's answer until a restart; the new name's answer was right.
TEST(Watcher, ANameLinkedAfterTheReadReachesTheFirstNamesReadersOnceItIsRead) {
  Files files;
  files.Write("a/f.txt", "one");
  files.MakeDir("b");
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  const std::string f = files.path("a/f.txt");
  const std::string g = files.path("b/g.txt");
  ASSERT_EQ(ReadFile(live, f), "one");  // one name: watched through a/ alone
  ASSERT_EQ(StatField(live, f, "size"), 3);
  std::filesystem::create_hard_link(f, g);
  ASSERT_EQ(ReadFile(live, g), "one");  // two names: the file is watched itself
  std::ofstream(g, std::ios::app) << ", two";
  EXPECT_EQ(ReadFile(live, g), "one, two");
  EXPECT_EQ(ReadFile(live, f), "one, two");
  EXPECT_EQ(StatField(live, f, "size"), 8);
}

TEST(Watcher, ADirectorysModeChangedReachesWhatIsBelowIt) {
  Files files;
  files.Write("top/mid/f.txt", "f");
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  const std::string f = files.path("top/mid/f.txt");
  ASSERT_EQ(ReadFile(live, f), "f");
  const auto reads = [&] { return Executions(live.server->engine(), "fs.read"); };
  const uint64_t before = reads();

  // Without search permission on an ancestor the file cannot be reached (root still can,
  // and then reads the same bytes again); either way the read runs again.
  const std::string top = files.path("top");
  ASSERT_EQ(chmod(top.c_str(), 0), 0) << std::strerror(errno);
  const std::string after = ReadFile(live, f);
  ASSERT_EQ(chmod(top.c_str(), 0755), 0) << std::strerror(errno);
  EXPECT_GT(reads(), before);
  EXPECT_TRUE(geteuid() == 0 ? after == "f" : after.find("Permission denied") != std::string::npos)
      << after;
  EXPECT_EQ(ReadFile(live, f), "f");
}

TEST(Watcher, ADirectorysStatFollowsItsEntries) {
  Files files;
  files.Write("dir/a.txt", "a");
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  const std::string dir = files.path("dir");
  const int64_t mtime = StatField(live, dir, "mtime_ns");

  // The new entry changes the directory's mtime, and only the directory's own watch hears.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a later timestamp tick
  files.Write("dir/b.txt", "b");
  EXPECT_TRUE(Eventually([&] { return StatField(live, dir, "mtime_ns") != mtime; }));
}

TEST(Watcher, ADirectoryAddedIsListed) {
  Files files;
  files.Write("a.txt", "a");
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  ASSERT_EQ(Names(Call(live, Request("fs.list", {Str(files.root())}))),
            (std::vector<std::string>{"a.txt:file"}));

  files.Write("sub/b.txt", "b");
  EXPECT_TRUE(Eventually([&] {
    return Names(Call(live, Request("fs.list", {Str(files.root())}))) ==
           std::vector<std::string>{"a.txt:file", "sub:dir"};
  }));
  EXPECT_EQ(Names(Call(live, Request("fs.list", {Str(files.path("sub"))}))),
            (std::vector<std::string>{"b.txt:file"}));
}

TEST(Watcher, ABurstOfWritesIsOneInvalidation) {
  Files files;
  files.Write("burst.txt", "0");
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;

  // A Watch re-reads after every invalidation, so its messages count them.
  grpc::ClientContext context;
  auto reader = live.stub->Watch(&context, Request("fs.read", {Str(files.path("burst.txt"))}));
  v1::CallReply reply;
  ASSERT_TRUE(reader->Read(&reply));
  ASSERT_EQ(Text(reply), "0");
  const uint64_t executions_before = Executions(live.server->engine(), "fs.read");

  constexpr int kWrites = 200;
  for (int i = 1; i <= kWrites; ++i) files.Write("burst.txt", std::to_string(i));

  int messages = 0;
  while (reader->Read(&reply)) {
    ++messages;
    if (Text(reply) == std::to_string(kWrites)) break;
  }
  EXPECT_EQ(Text(reply), std::to_string(kWrites));
  // Debounced: a handful of invalidations at most (a burst longer than the watcher's
  // 300 ms ceiling is split), never one per write.
  EXPECT_LE(messages, 5);
  EXPECT_LE(Executions(live.server->engine(), "fs.read") - executions_before, 5u);
  context.TryCancel();
}


// BindMount is a real FUSE filesystem: bindfs shows `from` at `at`, and a change made in
// `from` reaches `at` the way a change made on another machine reaches an NFS mount, with
// no inotify event at `at`.
class BindMount {
 public:
  BindMount(const std::string& from, const std::string& at) : at_(at) {
    std::filesystem::create_directories(at);
    mounted_ = std::system(("bindfs --no-allow-other '" + from + "' '" + at + "'").c_str()) == 0;
  }
  ~BindMount() {
    // Lazily: the temporary directory, mount point and all, is removed right after.
    if (mounted_) std::system(("fusermount -uz '" + at_ + "'").c_str());
  }
  bool mounted() const { return mounted_; }

 private:
  std::string at_;
  bool mounted_ = false;
};

TEST(Watcher, AChangeMadeBehindAFuseMountIsSeen) {
  if (access("/dev/fuse", F_OK) != 0) GTEST_SKIP() << "this kernel offers no FUSE (/dev/fuse)";
  Files files;
  files.Write("server/f.txt", "one");
  files.Write("server/sub/g.txt", "g");
  const BindMount mount(files.path("server"), files.path("mnt"));
  ASSERT_TRUE(mount.mounted()) << "bindfs could not mount (scripts/setup installs it)";
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  Files::AgePastRacyWindow();  // a racy read observes nothing, and every poll runs it again
  const std::string seen = files.path("mnt/f.txt");
  ASSERT_EQ(ReadFile(live, seen), "one");
  ASSERT_EQ(Names(Call(live, Request("fs.list", {Str(files.path("mnt"))}))),
            (std::vector<std::string>{"f.txt:file", "sub:dir"}));
  // Polls that find the file as it was change nothing: it is looked at, not read again.
  std::this_thread::sleep_for(2 * turbine::stdlib::FileWatcher::kPollInterval +
                              std::chrono::milliseconds(500));
  EXPECT_EQ(ReadFile(live, seen), "one");
  EXPECT_EQ(Executions(live.server->engine(), "fs.read"), 1u);

  // Written behind the mount: inotify on the mount hears nothing of it.
  files.Write("server/f.txt", "two");
  EXPECT_TRUE(Eventually([&] { return ReadFile(live, seen) == "two"; })) << ReadFile(live, seen);
  files.Write("server/new.txt", "n");
  EXPECT_TRUE(Eventually([&] {
    return Names(Call(live, Request("fs.list", {Str(files.path("mnt"))}))) ==
           std::vector<std::string>{"f.txt:file", "new.txt:file", "sub:dir"};
  }));
  // Polled again after each change, not once: a second change is seen too, and one deeper.
  files.Write("server/f.txt", "three");
  EXPECT_TRUE(Eventually([&] { return ReadFile(live, seen) == "three"; })) << ReadFile(live, seen);
  ASSERT_EQ(ReadFile(live, files.path("mnt/sub/g.txt")), "g");
  files.Write("server/sub/g.txt", "g2");
  EXPECT_TRUE(Eventually([&] { return ReadFile(live, files.path("mnt/sub/g.txt")) == "g2"; }));
  // A change made through the mount is heard too (inotify does hear those).
  files.Write("mnt/f.txt", "four");
  EXPECT_TRUE(Eventually([&] { return ReadFile(live, seen) == "four"; }));
}

}  // namespace
