// The standard library in the real turbined, through the real CLI: trait dispatch with
// --this, files edited while the daemon was down, and the watcher's polling fallback.
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "../storage/temp_dir.h"
#include "cli_runner.h"
#include "daemon_process.h"
#include "turbine/client/client.h"
#include "turbine/client/values.h"

namespace {

using turbine::testing::CliResult;
using turbine::testing::DaemonProcess;
using turbine::testing::RunCli;
using turbine::testing::TempDir;

// RefOf pulls the task reference out of a --json reply: {"$ref":"12/File/0"} -> 12/File/0.
std::string RefOf(const std::string& json) {
  const std::string marker = "\"$ref\":\"";
  const size_t start = json.find(marker);
  if (start == std::string::npos) return "";
  const size_t end = json.find('"', start + marker.size());
  return json.substr(start + marker.size(), end - start - marker.size());
}

void Write(const std::string& path, const std::string& content) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

template <class Condition>
bool Eventually(Condition condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return condition();
}

TEST(StdlibDaemon, TraitDispatchThroughTheCli) {
  TempDir dir;
  const std::string tree = dir.str() + "/tree";
  Write(tree + "/notes.txt", "remember\n");
  Write(tree + "/sub/x.txt", "x");
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data"})) << daemon.log();
  const std::string cli = "--data-dir " + dir.str() + "/data ";

  const std::string file_path = RefOf(RunCli(cli + "--json call fs.path " + tree + "/notes.txt").out);
  ASSERT_FALSE(file_path.empty());
  const CliResult file = RunCli(cli + "--json call Path.asset --this " + file_path);
  EXPECT_NE(file.out.find("/File/"), std::string::npos) << file.out;
  const CliResult content = RunCli(cli + "call --raw Asset.content --this " + RefOf(file.out));
  EXPECT_EQ(content.exit_code, 0);
  EXPECT_EQ(content.out, "remember\n");
  // `why` names the receiver: two methods on different receivers are told apart.
  const std::string receiver = RefOf(file.out);
  const CliResult why = RunCli(cli + "why Asset.content --this " + receiver);
  EXPECT_NE(why.out.find("Asset.content() on @" + receiver.substr(0, receiver.find('/')) + " @"),
            std::string::npos)
      << why.out;

  const std::string dir_path = RefOf(RunCli(cli + "--json call fs.path " + tree).out);
  const CliResult directory = RunCli(cli + "--json call Path.asset --this " + dir_path);
  EXPECT_NE(directory.out.find("/Directory/"), std::string::npos) << directory.out;
  EXPECT_EQ(RunCli(cli + "call --raw Asset.content --this " + RefOf(directory.out)).out,
            "notes.txt\nsub/\n");

  // Asset.content on a Path (not an Asset) is the function's error: exit code 1.
  EXPECT_EQ(RunCli(cli + "call Asset.content --this " + dir_path + " 2>/dev/null").exit_code, 1);

  const CliResult functions = RunCli(cli + "functions");
  for (const char* name : {"fs.read", "fs.stat", "fs.list", "fs.path", "Path.join",
                           "Path.parent", "Path.read", "Path.asset", "Asset.content",
                           "text.lines", "text.digest", "tree.summary", "demo.fib",
                           "demo.busy", "input.get"}) {
    EXPECT_NE(functions.out.find(name), std::string::npos) << name << " missing from\n"
                                                           << functions.out;
  }
}

// SummaryInOneSession is tree.summary of `tree` by a daemon on `data_dir` that starts,
// answers and stops (SIGTERM, cleanly); on a new directory, the summary from scratch.
std::string SummaryInOneSession(const std::string& tree, const std::string& data_dir) {
  DaemonProcess daemon;
  if (!daemon.Start({"--data-dir", data_dir})) return "daemon failed: " + daemon.log();
  // Every start says what it checked, also a first one that found nothing stored.
  EXPECT_TRUE(daemon.WaitForLog(" observations (")) << daemon.log();
  const std::string summary = RunCli("--data-dir " + data_dir + " call tree.summary " + tree).out;
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
  return summary;
}

// FilesAndADaemon is a directory of files, settled past their racy second, and a daemon
// with a client: what the write-then-call tests share.
struct FilesAndADaemon {
  TempDir dir;
  std::string files = dir.str() + "/files";
  DaemonProcess daemon;
  std::unique_ptr<turbine::client::Client> client;

  // Start writes `names` (one line each), lets them settle, and starts the daemon.
  void Start(const std::vector<std::string>& names) {
    for (const std::string& name : names) Write(files + "/" + name, "a\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // not racy any more
    ASSERT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data"})) << daemon.log();
    auto connected =
        turbine::client::Client::Connect(turbine::client::ConnectOptions{.address = daemon.address()});
    ASSERT_TRUE(connected.ok()) << connected.status();
    client = std::move(*connected);
  }
  // Lines is text.lines of file `name` (-1: the call failed).
  int64_t Lines(const std::string& name) {
    auto result = client->Call("text.lines", {turbine::client::Str(files + "/" + name)});
    return result.ok() && result->value.ok() ? result->value->int_value() : -1;
  }
  // Listed is how many entries fs.list gives for the directory (-1: the call failed).
  int Listed() {
    auto result = client->Call("fs.list", {turbine::client::Str(files)});
    return result.ok() && result->value.ok() ? result->value->list_value().items_size() : -1;
  }
};

std::vector<std::string> Numbered(const std::string& prefix, int count) {
  std::vector<std::string> names;
  for (int i = 0; i < count; ++i) names.push_back(prefix + std::to_string(i));
  return names;
}

// A client that writes a file and then calls is answered after the write: the call waits
// for the watcher to mark what the write's event fires (FileWatcher::CatchUp). Before, one
// call in a hundred or so (more on a loaded machine) got the old value from memory.
TEST(StdlibDaemon, AFileWrittenAndThenCalledAtOnceIsSeen) {
  constexpr int kFiles = 400;
  FilesAndADaemon t;
  ASSERT_NO_FATAL_FAILURE(t.Start(Numbered("f", kFiles)));
  for (int i = 0; i < kFiles; ++i) ASSERT_EQ(t.Lines("f" + std::to_string(i)), 1);
  ASSERT_EQ(t.Listed(), kFiles);
  int stale = 0;
  for (int i = 0; i < kFiles; ++i) {
    Write(t.files + "/f" + std::to_string(i), "a\nb\n");
    if (t.Lines("f" + std::to_string(i)) != 2) ++stale;
  }
  // Written again at once: racy now, read into fs.read's own cell.
  for (int i = 0; i < kFiles; ++i) {
    Write(t.files + "/f" + std::to_string(i), "a\nb\nc\n");
    if (t.Lines("f" + std::to_string(i)) != 3) ++stale;
  }
  for (int i = 0; i < 100; ++i) {
    Write(t.files + "/new" + std::to_string(i), "");
    if (t.Listed() != kFiles + i + 1) ++stale;
  }
  EXPECT_EQ(stale, 0) << "calls answered from before the write they followed";
  EXPECT_EQ(t.daemon.Stop(SIGTERM), 0) << t.daemon.log();
}

// The same while open watches are told of a long burst of writes: the watcher's thread
// tells them, and each reads again through the path a call takes. Before, that read waited
// on the watcher's own thread for a round only that thread could end (1 s per watch),
// nothing was marked meanwhile, and calls after a write were answered from before it.
TEST(StdlibDaemon, AFileWrittenAndThenCalledIsSeenWhileWatchesHearABurst) {
  constexpr int kWatched = 4;
  constexpr int kCalled = 40;
  FilesAndADaemon t;
  std::vector<std::string> names = Numbered("w", kWatched);
  for (const std::string& name : Numbered("f", kCalled)) names.push_back(name);
  ASSERT_NO_FATAL_FAILURE(t.Start(names));
  for (int i = 0; i < kCalled; ++i) ASSERT_EQ(t.Lines("f" + std::to_string(i)), 1);
  using namespace turbine::client;
  std::array<Cancellation, kWatched> cancels;
  std::vector<std::thread> watches;
  for (int i = 0; i < kWatched; ++i) {
    watches.emplace_back([&, i] {
      (void)t.client->Watch(MakeCallRequest("text.lines", {Str(t.files + "/w" + std::to_string(i))}),
                            [](const CallResult&) { return true; }, &cancels[i]);
    });
  }
  std::atomic<bool> writing{true};
  std::thread burst([&] {  // writes back to back: the listeners are told every 300 ms
    for (int n = 0; writing.load(); ++n) {
      Write(t.files + "/w" + std::to_string(n % kWatched), std::string(1 + n % 64, '\n'));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // into the burst
  int stale = 0;
  for (int i = 0; i < kCalled; ++i) {
    Write(t.files + "/f" + std::to_string(i), "a\nb\n");
    if (t.Lines("f" + std::to_string(i)) != 2) ++stale;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  writing = false;
  burst.join();
  for (Cancellation& cancel : cancels) cancel.Cancel();
  for (std::thread& watch : watches) watch.join();
  EXPECT_EQ(stale, 0) << "calls answered from before the write they followed";
  EXPECT_EQ(t.daemon.Stop(SIGTERM), 0) << t.daemon.log();
}

TEST(StdlibDaemon, AFileEditedWhileTheDaemonWasDownIsSeenAfterRestart) {
  TempDir dir;
  const std::string tree = dir.str() + "/tree";
  for (int i = 0; i < 5; ++i) Write(tree + "/f" + std::to_string(i) + ".txt", "a\n");
  const std::string cli = "--data-dir " + dir.str() + "/data ";
  const std::string summary = cli + "call tree.summary " + tree;
  const std::string before = SummaryInOneSession(tree, dir.str() + "/data");
  EXPECT_NE(before.find("\"lines\":5"), std::string::npos) << before;
  Write(tree + "/f2.txt", "a\nb\nc\n");

  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data"})) << daemon.log();
  const std::string after = RunCli(summary).out;
  EXPECT_NE(after.find("\"lines\":7"), std::string::npos) << after;
  EXPECT_NE(after, before);
}

TEST(StdlibDaemon, FilesEditedCreatedDeletedAndRenamedWhileDownAreSeen) {
  for (const int signal : {SIGTERM, SIGKILL}) {
    SCOPED_TRACE(signal == SIGTERM ? "SIGTERM" : "SIGKILL");
    TempDir dir;
    const std::string tree = dir.str() + "/tree";
    for (const char* name : {"a", "b", "c", "d", "sub/e"}) {
      Write(tree + "/" + name + ".txt", std::string(name) + "\n");
    }
    const std::string cli = "--data-dir " + dir.str() + "/data ";
    const std::string summary = cli + "call tree.summary " + tree;
    {
      DaemonProcess daemon;
      ASSERT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data"})) << daemon.log();
      const std::string first = RunCli(summary).out;
      ASSERT_NE(first.find("\"files\":5"), std::string::npos) << first;
      // The racy window: b.txt rewritten with the same size, seen by the daemon, and
      // rewritten again within the second right before the daemon stops.
      Write(tree + "/b.txt", "B\n");
      ASSERT_TRUE(Eventually([&] { return RunCli(summary).out != first; }));
      Write(tree + "/b.txt", "X\n");
      if (signal == SIGTERM) {
        EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
      } else {
        EXPECT_EQ(daemon.Stop(SIGKILL), 128 + SIGKILL);
      }
    }
    Write(tree + "/a.txt", "edited\nwhile down\n");                   // edited
    Write(tree + "/sub/f.txt", "created\n");                          // created
    std::filesystem::remove(tree + "/c.txt");                         // deleted
    std::filesystem::rename(tree + "/d.txt", tree + "/sub/g.txt");    // renamed
    DaemonProcess daemon;
    ASSERT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data"})) << daemon.log();
    const CliResult restarted = RunCli(summary);
    ASSERT_EQ(restarted.exit_code, 0) << restarted.out;
    EXPECT_EQ(restarted.out, SummaryInOneSession(tree, dir.str() + "/fresh"));
    EXPECT_NE(restarted.out.find("\"files\":5"), std::string::npos) << restarted.out;
    EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
  }
}

// StatOf is one figure of `turbine --json stats` (0 if the reply cannot be read).
uint64_t StatOf(const std::string& cli, const std::string& name) {
  const nlohmann::json stats = nlohmann::json::parse(RunCli(cli + "--json stats").out, nullptr,
                                                     /*allow_exceptions=*/false);
  if (!stats.is_object() || !stats.contains(name)) return 0;
  const nlohmann::json& value = stats[name];
  if (value.is_string()) return std::stoull(value.get<std::string>());
  return value.is_number() ? value.get<uint64_t>() : 0;
}

TEST(StdlibDaemon, AnUnchangedTreeIsServedAsStoredAfterARestartAndStaysWatched) {
  TempDir dir;
  const std::string tree = dir.str() + "/tree";
  for (const char* name : {"a", "b", "sub/c", "sub/d"}) {
    Write(tree + "/" + name + ".txt", std::string(name) + "\n");
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // past the racy window
  const std::string cli = "--data-dir " + dir.str() + "/data ";
  const std::string summary = cli + "call tree.summary " + tree;
  const std::string before = SummaryInOneSession(tree, dir.str() + "/data");
  ASSERT_NE(before.find("\"files\":4"), std::string::npos) << before;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data"})) << daemon.log();
  // 4 files (tree.file) and 2 directories (fs.list), checked at start: none changed.
  EXPECT_TRUE(daemon.WaitForLog("checked 6 observations (0 changed)")) << daemon.log();
  EXPECT_EQ(RunCli(summary).out, before);
  EXPECT_EQ(StatOf(cli, "observations_checked"), 6u);
  EXPECT_EQ(StatOf(cli, "observations_changed"), 0u);
  EXPECT_EQ(StatOf(cli, "executions"), 0u);  // answered as stored
  EXPECT_EQ(StatOf(cli, "trusted_restored_tasks"), 1u);  // the summary; nothing below it

  // Nothing executed in this daemon subscribed to the files: the check at start did.
  Write(tree + "/sub/c.txt", "c\nc\n");
  EXPECT_TRUE(Eventually([&] { return RunCli(summary).out.find("\"lines\":5") != std::string::npos; }))
      << RunCli(summary).out;
  std::filesystem::remove(tree + "/b.txt");
  EXPECT_TRUE(Eventually([&] { return RunCli(summary).out.find("\"files\":3") != std::string::npos; }))
      << RunCli(summary).out;
  EXPECT_EQ(RunCli(summary).out, SummaryInOneSession(tree, dir.str() + "/fresh"));
}

TEST(StdlibDaemon, PastTheWatchLimitFilesArePolledAndTheLogSaysSo) {
  TempDir dir;
  const std::string tree = dir.str() + "/tree";
  Write(tree + "/deep/er/file.txt", "old");
  // A limit of one watch stands in for the kernel's fs.inotify.max_user_watches.
  ::setenv("TURBINE_FILE_WATCH_LIMIT", "1", 1);
  DaemonProcess daemon;
  const bool started = daemon.Start({"--data-dir", dir.str() + "/data"});
  ::unsetenv("TURBINE_FILE_WATCH_LIMIT");
  ASSERT_TRUE(started) << daemon.log();
  const std::string cli = "--data-dir " + dir.str() + "/data call --raw fs.read " + tree +
                          "/deep/er/file.txt";
  EXPECT_EQ(RunCli(cli).out, "old");
  EXPECT_TRUE(daemon.WaitForLog("inotify watch limit reached")) << daemon.log();

  Write(tree + "/deep/er/file.txt", "new");
  EXPECT_TRUE(Eventually([&] { return RunCli(cli).out == "new"; })) << daemon.log();
  // The re-executed read subscribes again while the watcher sleeps with nothing to poll:
  // the new deadline must wake it (it used to sleep forever, and a second edit was lost).
  Write(tree + "/deep/er/file.txt", "newer");
  EXPECT_TRUE(Eventually([&] { return RunCli(cli).out == "newer"; })) << daemon.log();
}

// The watch limit reached on a symlink's way: the directory the link leads through must
// be watched before the link is watched through, or a change there would be heard by no
// one. With one watch fewer than they all need, the link's files are polled instead.
TEST(StdlibDaemon, PastTheWatchLimitOnASymlinksWayItsFilesArePolled) {
  TempDir dir;
  const std::string tree = dir.str() + "/tree";
  Write(tree + "/t1/x", "t1");
  Write(tree + "/t2/x", "t2");
  std::filesystem::create_directories(tree + "/a");
  std::filesystem::create_directories(tree + "/b");
  std::filesystem::create_directory_symlink(tree + "/t1", tree + "/b/m");
  std::filesystem::create_directory_symlink(tree + "/b/m", tree + "/a/l");  // a/l -> b/m -> t1
  // "/" and every directory down to a/: watched before the link is looked at. Then b/ (on
  // the link's way) and a/l itself would need one each: the limit leaves room for b/ only.
  size_t above = 1;
  for (const auto& part : std::filesystem::path(tree + "/a").relative_path()) {
    above += part.empty() ? 0 : 1;
  }
  const std::string limit = std::to_string(above + 1);
  ::setenv("TURBINE_FILE_WATCH_LIMIT", limit.c_str(), 1);
  DaemonProcess daemon;
  const bool started = daemon.Start({"--data-dir", dir.str() + "/data"});
  ::unsetenv("TURBINE_FILE_WATCH_LIMIT");
  ASSERT_TRUE(started) << daemon.log();
  const std::string cli = "--data-dir " + dir.str() + "/data call --raw fs.read " + tree + "/a/l/x";
  ASSERT_EQ(RunCli(cli).out, "t1");
  EXPECT_TRUE(daemon.WaitForLog("inotify watch limit reached")) << daemon.log();

  std::filesystem::remove(tree + "/b/m");
  std::filesystem::create_directory_symlink(tree + "/t2", tree + "/b/m");
  EXPECT_TRUE(Eventually([&] { return RunCli(cli).out == "t2"; })) << daemon.log();
}

// A daemon that permission checks stop (root's are not): a directory it may not read
// cannot be watched, and is polled; its permission given back is a change of the directory
// above, heard at once, not at the next poll.
TEST(StdlibDaemon, SearchPermissionGivenBackIsSeenAtOnce) {
  if (::geteuid() != 0) GTEST_SKIP() << "running turbined as another user needs root";
  const passwd* nobody = ::getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  TempDir dir;
  std::filesystem::permissions(dir.path(), std::filesystem::perms::owner_all |
                                               std::filesystem::perms::group_read |
                                               std::filesystem::perms::group_exec |
                                               std::filesystem::perms::others_read |
                                               std::filesystem::perms::others_exec);
  const std::string data = dir.str() + "/data";
  std::filesystem::create_directories(data);
  ASSERT_EQ(::chown(data.c_str(), nobody->pw_uid, nobody->pw_gid), 0);
  const std::string tree = dir.str() + "/tree";
  Write(tree + "/a/b/f.txt", "v1");
  DaemonProcess daemon;
  daemon.RunAs(nobody->pw_uid, nobody->pw_gid);
  ASSERT_TRUE(daemon.Start({"--data-dir", data})) << daemon.log();
  const std::string read = "--data-dir " + data + " call --raw fs.read " + tree + "/a/b/f.txt";
  const std::string error = "--data-dir " + data + " --json call fs.read " + tree + "/a/b/f.txt";
  ASSERT_EQ(RunCli(read).out, "v1");

  const std::string a = tree + "/a";
  ASSERT_EQ(::chmod(a.c_str(), 0), 0);
  const std::string refused = RunCli(error).out;
  ASSERT_EQ(::chmod(a.c_str(), 0755), 0);
  EXPECT_NE(refused.find("Permission denied"), std::string::npos) << refused;
  EXPECT_EQ(RunCli(read).out, "v1") << daemon.log();

  // The same through a symlink: the kernel tells of the chmod where the directory really is.
  std::filesystem::create_directory_symlink(tree + "/a/b", tree + "/link");
  const std::string through = "--data-dir " + data + " call --raw fs.read " + tree + "/link/f.txt";
  const std::string b = tree + "/a/b";
  ASSERT_EQ(::chmod(b.c_str(), 0), 0);
  const std::string refused_through = RunCli(error.substr(0, error.find(tree)) + tree +
                                             "/link/f.txt").out;
  ASSERT_EQ(::chmod(b.c_str(), 0755), 0);
  EXPECT_NE(refused_through.find("Permission denied"), std::string::npos) << refused_through;
  EXPECT_EQ(RunCli(through).out, "v1") << daemon.log();
}

// A file behind a FUSE mount (bindfs: a change made in the directory it shows is one the
// mount's inotify never hears, as on NFS) is polled, in the daemon that read it and in one
// restarted on its store, whose check at start subscribed it.
TEST(StdlibDaemon, FilesChangedBehindAFuseMountAreSeenBeforeAndAfterARestart) {
  if (access("/dev/fuse", F_OK) != 0) GTEST_SKIP() << "this kernel offers no FUSE (/dev/fuse)";
  TempDir dir;
  const std::string server = dir.str() + "/server";
  const std::string mounted = dir.str() + "/mnt";
  Write(server + "/f.txt", "one");
  std::filesystem::create_directories(mounted);
  ASSERT_EQ(std::system(("bindfs --no-allow-other '" + server + "' '" + mounted + "'").c_str()), 0)
      << "bindfs could not mount (scripts/setup installs it)";
  struct Unmount {  // lazily: the temporary directory is removed after it, mount point too
    std::string at;
    ~Unmount() { std::system(("fusermount -uz '" + at + "'").c_str()); }
  } unmount{mounted};
  const std::string cli =
      "--data-dir " + dir.str() + "/data call --raw fs.read " + mounted + "/f.txt";
  {
    DaemonProcess daemon;
    ASSERT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data"})) << daemon.log();
    EXPECT_EQ(RunCli(cli).out, "one");
    EXPECT_TRUE(daemon.WaitForLog("on a fuse filesystem")) << daemon.log();
    Write(server + "/f.txt", "two");
    EXPECT_TRUE(Eventually([&] { return RunCli(cli).out == "two"; })) << daemon.log();
    // Read once more past the racy window (and the mount's 1 s attribute cache), after a
    // poll: a read within it observes nothing, and the restart would have nothing to check.
    std::this_thread::sleep_for(std::chrono::milliseconds(2200));
    EXPECT_EQ(RunCli(cli).out, "two");
    EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
  }
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir.str() + "/data"})) << daemon.log();
  EXPECT_TRUE(daemon.WaitForLog("checked 1 observation (0 changed)")) << daemon.log();
  EXPECT_EQ(RunCli(cli).out, "two");
  Write(server + "/f.txt", "three");
  EXPECT_TRUE(Eventually([&] { return RunCli(cli).out == "three"; })) << daemon.log();
}

}  // namespace
