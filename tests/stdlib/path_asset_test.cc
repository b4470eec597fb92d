// Paths as receivers (fs.path, Path.*) and the Asset trait dispatching on the value type,
// called over the protocol with `this_ref` as a client would.
#include "stdlib_fixture.h"

namespace {

using turbine::testing::Call;
using turbine::testing::Files;
using turbine::testing::LiveServer;
using turbine::testing::MapField;
using turbine::testing::Request;
using turbine::testing::Str;
using turbine::testing::Text;
namespace v1 = turbine::v1;

v1::CallRequest On(const v1::CallReply& receiver, const std::string& method,
                   std::vector<v1::Value> args = {}) {
  v1::CallRequest request = Request(method, std::move(args));
  *request.mutable_this_ref() = receiver.ref();
  return request;
}

TEST(Paths, JoinParentAndRead) {
  Files files;
  files.Write("dir/file.txt", "content");
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;

  const v1::CallReply root = Call(live, Request("fs.path", {Str(files.root() + "/./")}));
  ASSERT_FALSE(root.has_error()) << root.error().message();
  EXPECT_EQ(MapField(root.value(), "path").string_value(), files.root());
  ASSERT_NE(root.ref().task(), 0u);

  const v1::CallReply file = Call(live, On(root, "Path.join", {Str("dir/file.txt")}));
  EXPECT_EQ(MapField(file.value(), "path").string_value(), files.path("dir/file.txt"));
  EXPECT_EQ(Text(Call(live, On(file, "Path.read"))), "content");
  const v1::CallReply parent = Call(live, On(file, "Path.parent"));
  EXPECT_EQ(MapField(parent.value(), "path").string_value(), files.path("dir"));

  const v1::CallReply absolute = Call(live, On(root, "Path.join", {Str("/etc")}));
  ASSERT_TRUE(absolute.has_error());
  EXPECT_NE(absolute.error().message().find("relative"), std::string::npos);
}

TEST(Assets, ContentDispatchesOnFileOrDirectory) {
  Files files;
  files.Write("dir/one.txt", "1");
  files.Write("dir/sub/two.txt", "2");
  LiveServer live(files.data_dir());
  ASSERT_TRUE(live.status.ok()) << live.status;

  const v1::CallReply file_path = Call(live, Request("fs.path", {Str(files.path("dir/one.txt"))}));
  const v1::CallReply file = Call(live, On(file_path, "Path.asset"));
  ASSERT_FALSE(file.has_error()) << file.error().message();
  EXPECT_EQ(file.value().ref_value().cell_type(), "File");  // the value names the type
  EXPECT_EQ(Text(Call(live, On(file, "Asset.content"))), "1");

  const v1::CallReply dir_path = Call(live, Request("fs.path", {Str(files.path("dir"))}));
  const v1::CallReply dir = Call(live, On(dir_path, "Path.asset"));
  EXPECT_EQ(dir.value().ref_value().cell_type(), "Directory");
  EXPECT_EQ(Text(Call(live, On(dir, "Asset.content"))), "one.txt\nsub/\n");

  // A Path is not an Asset: the trait has no implementation for it.
  const v1::CallReply not_an_asset = Call(live, On(dir_path, "Asset.content"));
  ASSERT_TRUE(not_an_asset.has_error());
  EXPECT_NE(not_an_asset.error().message().find("Path"), std::string::npos)
      << not_an_asset.error().message();

  // A Directory cell given to a method of Path: the request's mistake, refused as such
  // (it was a cached failure of the call, UNKNOWN).
  v1::CallRequest wrong_receiver = Request("Path.asset", {});
  *wrong_receiver.mutable_this_ref() = dir.value().ref_value();
  v1::CallReply refused;
  const grpc::Status status = live.Call(wrong_receiver, &refused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_NE(status.error_message().find("Directory"), std::string::npos) << status.error_message();

  const v1::CallReply missing =
      Call(live, On(Call(live, Request("fs.path", {Str(files.path("nope"))})), "Path.asset"));
  ASSERT_TRUE(missing.has_error());
  EXPECT_NE(missing.error().message().find("No such file"), std::string::npos);
}

}  // namespace
