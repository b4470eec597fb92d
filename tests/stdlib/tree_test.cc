// tree.summary and text.*: results checked against an independent walk of the tree, and
// an edit re-executing one file's task and its ancestors' only.
#define XXH_INLINE_ALL  // an independent XXH3, header-only
#include <xxhash.h>

#include <algorithm>
#include <cstdio>

#include "stdlib_fixture.h"

namespace {

using turbine::testing::Call;
using turbine::testing::Eventually;
using turbine::testing::Executions;
using turbine::testing::Files;
using turbine::testing::LiveServer;
using turbine::testing::MapField;
using turbine::testing::Request;
using turbine::testing::Str;
using turbine::testing::ValueList;
namespace v1 = turbine::v1;
namespace fs = std::filesystem;

struct Expected {
  int64_t files = 0, lines = 0, bytes = 0;
};

// Walk counts what tree.summary should, written without the engine: regular files below
// `root`, not following symlinks, skipping entries named in `exclude`.
Expected Walk(const fs::path& root, const std::vector<std::string>& exclude) {
  Expected expected;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    const std::string name = it->path().filename().string();
    if (std::find(exclude.begin(), exclude.end(), name) != exclude.end()) {
      if (it->symlink_status().type() == fs::file_type::directory) {
        it.disable_recursion_pending();
      }
      continue;
    }
    if (it->symlink_status().type() != fs::file_type::regular) continue;
    std::ifstream in(it->path(), std::ios::binary);
    const std::string content((std::istreambuf_iterator<char>(in)), {});
    ++expected.files;
    expected.lines += std::count(content.begin(), content.end(), '\n');
    expected.bytes += static_cast<int64_t>(content.size());
  }
  return expected;
}

void ExpectTotals(const v1::CallReply& reply, const Expected& expected) {
  ASSERT_FALSE(reply.has_error()) << reply.error().message();
  EXPECT_EQ(MapField(reply.value(), "files").int_value(), expected.files);
  EXPECT_EQ(MapField(reply.value(), "lines").int_value(), expected.lines);
  EXPECT_EQ(MapField(reply.value(), "bytes").int_value(), expected.bytes);
  EXPECT_EQ(MapField(reply.value(), "digest").string_value().size(), 16u);
}

std::string Digest(const v1::CallReply& reply) {
  return MapField(reply.value(), "digest").string_value();
}

void WriteSampleTree(const Files& files) {
  files.Write("README", "top\nlevel\n");
  files.Write("src/main.cc", "int main() {\n  return 0;\n}\n");
  files.Write("src/lib/util.cc", "// util\n");
  files.Write("src/lib/empty", "");
  files.Write("docs/guide.md", "# Guide\n\nno trailing newline");
  files.Write("build/out.o", std::string(1000, 'x'));
  files.Write("src/build/generated.cc", "generated\n");
  fs::create_symlink(files.path("README"), files.path("src/readme-link"));
  fs::create_directory_symlink(files.path("docs"), files.path("docs-link"));
}

TEST(Tree, MatchesAnIndependentWalk) {
  Files files;
  WriteSampleTree(files);
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;

  ExpectTotals(Call(live, Request("tree.summary", {Str(files.root())})), Walk(files.root(), {}));
  ExpectTotals(Call(live, Request("tree.summary", {Str(files.root()), ValueList({"build"})})),
               Walk(files.root(), {"build"}));
  // Symlinks are not followed: the linked README and docs count once.
  EXPECT_EQ(Walk(files.root(), {}).files, 7);
}

TEST(Tree, TheDigestCoversContentAndNamesButNotTheRoot) {
  Files first, second;
  WriteSampleTree(first);
  WriteSampleTree(second);
  LiveServer live(first.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  const std::string digest = Digest(Call(live, Request("tree.summary", {Str(first.root())})));
  EXPECT_EQ(Digest(Call(live, Request("tree.summary", {Str(second.root())}))), digest);

  second.Write("src/lib/util.cc", "// utIl\n");  // same size, same line count
  EXPECT_TRUE(Eventually(
      [&] { return Digest(Call(live, Request("tree.summary", {Str(second.root())}))) != digest; }));
  second.Write("src/lib/util.cc", "// util\n");
  EXPECT_TRUE(Eventually(
      [&] { return Digest(Call(live, Request("tree.summary", {Str(second.root())}))) == digest; }));
  second.Rename("docs/guide.md", "docs/guide.txt");
  EXPECT_TRUE(Eventually(
      [&] { return Digest(Call(live, Request("tree.summary", {Str(second.root())}))) != digest; }));
}

TEST(Tree, AnEditReExecutesOneFileAndItsAncestorsOnly) {
  Files files;
  for (int i = 0; i < 20; ++i) {
    files.Write("top" + std::to_string(i) + ".txt", "t\n");
    files.Write("a/a" + std::to_string(i) + ".txt", "a\n");
    files.Write("a/b/b" + std::to_string(i) + ".txt", "b\n");
    files.Write("other/o" + std::to_string(i) + ".txt", "o\n");
  }
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  const auto& engine = live.server->engine();
  ExpectTotals(Call(live, Request("tree.summary", {Str(files.root())})), Walk(files.root(), {}));
  ASSERT_EQ(Executions(engine, "tree.file"), 80u);
  ASSERT_EQ(Executions(engine, "tree.dir"), 4u);
  const uint64_t lists = Executions(engine, "fs.list");

  files.Write("a/b/b7.txt", "b\nb\nb\n");
  Expected expected = Walk(files.root(), {});
  EXPECT_TRUE(Eventually([&] {
    return MapField(Call(live, Request("tree.summary", {Str(files.root())})).value(), "lines")
               .int_value() == expected.lines;
  }));
  EXPECT_EQ(Executions(engine, "tree.file"), 81u);  // the edited file
  EXPECT_EQ(Executions(engine, "tree.dir"), 7u);    // a/b, a and the root
  EXPECT_EQ(Executions(engine, "fs.list"), lists);  // no directory changed its entries
}

TEST(Tree, BadArgumentsAreRefusedOrFailClearly) {
  Files files;
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  v1::CallReply reply;
  grpc::Status too_many =
      live.Call(Request("tree.summary", {Str(files.root()), ValueList({}), Str("extra")}), &reply);
  EXPECT_EQ(too_many.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(too_many.error_message().find("takes 1 to 2 argument"), std::string::npos)
      << too_many.error_message();
  grpc::Status wrong_type =
      live.Call(Request("tree.summary", {Str(files.root()), Str("build")}), &reply);
  EXPECT_EQ(wrong_type.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(wrong_type.error_message().find("exclude"), std::string::npos);

  const v1::CallReply relative = Call(live, Request("tree.summary", {Str("src")}));
  ASSERT_TRUE(relative.has_error());
  EXPECT_NE(relative.error().message().find("must be absolute"), std::string::npos);
}

TEST(Text, LinesAndDigest) {
  Files files;
  files.Write("poem.txt", "one\ntwo\nthree");
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;
  EXPECT_EQ(Call(live, Request("text.lines", {Str(files.path("poem.txt"))})).value().int_value(),
            2);
  const std::string digest =
      Call(live, Request("text.digest", {Str(files.path("poem.txt"))})).value().string_value();
  const std::string content = "one\ntwo\nthree";
  char expected[17];
  std::snprintf(expected, sizeof expected, "%016llx",
                static_cast<unsigned long long>(XXH3_64bits(content.data(), content.size())));
  EXPECT_EQ(digest, expected);
}

}  // namespace
