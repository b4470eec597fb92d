// path_asset.cc — paths as receivers and the Asset trait.
//
//   fs.path("/src")                 -> a Path (its reply carries the task reference)
//   Path.join(name), Path.parent(), Path.read(), Path.asset()   (receiver: --this REF)
//   Asset.content()                 -> dispatched on the receiver's value type:
//                                      File (its bytes) or Directory (its listing)
#include <cstdint>
#include <string>
#include <tuple>

#include "fs.h"
#include "paths.h"
#include "turbine/server/export.h"

namespace turbine::stdlib {
namespace {

struct Path {
  std::string path;
  bool operator==(const Path&) const = default;
  static constexpr std::string_view kTypeName = "Path";
  static constexpr auto kFields = std::make_tuple(field("path", &Path::path));
};

struct File {
  std::string path;
  bool operator==(const File&) const = default;
  static constexpr std::string_view kTypeName = "File";
  static constexpr auto kFields = std::make_tuple(field("path", &File::path));
};

struct Directory {
  std::string path;
  bool operator==(const Directory&) const = default;
  static constexpr std::string_view kTypeName = "Directory";
  static constexpr auto kFields = std::make_tuple(field("path", &Directory::path));
};

struct Asset {
  static constexpr std::string_view kTraitName = "Asset";
};

Task<Path> PathImpl(std::string path) { co_return Path{NormalPath(path, "fs.path")}; }
const Function<PathImpl> fs_path{"fs.path", 1, "a Path, the receiver of the Path.* methods"};

Task<Path> JoinImpl(Vc<Path> self, std::string name) {
  const Path base = co_await self;
  if (name.empty() || name.front() == '/') {
    Fail("Path.join: name must be a relative path, got \"" + name + "\"");
  }
  co_return Path{NormalPath(JoinPath(base.path, name), "Path.join")};
}
const Method<JoinImpl> path_join{"Path.join", 1, "the path of `name` inside this one"};

Task<Path> ParentImpl(Vc<Path> self) {
  const Path path = co_await self;
  co_return Path{std::string(ParentPath(path.path))};
}
const Method<ParentImpl> path_parent{"Path.parent", 1, "the directory containing this path"};

Task<Vc<Bytes>> PathReadImpl(Vc<Path> self) {
  const Path path = co_await self;
  co_return fs_read(path.path);
}
const Method<PathReadImpl> path_read{"Path.read", 1, "the bytes of the file at this path"};

// AssetImpl is where the value type is chosen: the trait call that follows dispatches on it.
Task<Vc<Asset>> AssetImpl(Vc<Path> self) {
  const Path path = co_await self;
  const FileStat stat = co_await fs_stat(path.path);
  if (stat.kind == kKindFile) co_return Cell(File{path.path});
  if (stat.kind == kKindDir) co_return Cell(Directory{path.path});
  Fail("Path.asset: " + path.path + " is a " + stat.kind + ", not a file or a directory");
}
const Method<AssetImpl> path_asset{"Path.asset", 1,
                                   "this path as an Asset: a File or a Directory"};

Task<Vc<Bytes>> FileContentImpl(Vc<File> self) {
  const File file = co_await self;
  co_return fs_read(file.path);
}
const Method<FileContentImpl> file_content{"File.content", 1, "the file's bytes"};

Task<Bytes> DirectoryContentImpl(Vc<Directory> self) {
  const Directory dir = co_await self;
  const std::vector<DirEntry> entries = co_await fs_list(dir.path);
  Bytes listing;
  for (const DirEntry& entry : entries) {
    listing.data += entry.name;
    if (entry.kind == kKindDir) listing.data += '/';
    listing.data += '\n';
  }
  co_return listing;
}
const Method<DirectoryContentImpl> directory_content{
    "Directory.content", 1, "the directory's entry names, one per line, '/' after directories"};

const TraitMethod<Asset, Bytes> asset_content{
    "Asset.content", 1, "a File's bytes or a Directory's listing, by the receiver's type"};
const TraitImpl file_is_an_asset{asset_content, file_content};
const TraitImpl directory_is_an_asset{asset_content, directory_content};

const server::Export export_path{fs_path, {"path"}};
const server::Export export_join{path_join, {"name"}};
const server::Export export_parent{path_parent};
const server::Export export_path_read{path_read};
const server::Export export_asset{path_asset};
const server::Export export_asset_content{asset_content};

}  // namespace
}  // namespace turbine::stdlib
