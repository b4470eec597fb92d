// fs.h — the file functions and value types of turbined's standard library, for the
// other stdlib files that build on them (text, tree, paths as receivers).
//
// fs.stat, fs.read and fs.list are session-dependent (FunctionOptions): a result restored
// from an earlier daemon session is re-validated once before it is served, and while the
// daemon runs the FileWatcher invalidates them when the file changes. fs.read stats first
// and reads content only when the stat changed (see fs.cc).
#pragma once

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "turbine/engine.h"

namespace turbine::stdlib {

// The kind of a directory entry or a path, as the functions report it.
inline constexpr std::string_view kKindFile = "file";
inline constexpr std::string_view kKindDir = "dir";
inline constexpr std::string_view kKindSymlink = "symlink";
inline constexpr std::string_view kKindOther = "other";

struct FileStat {
  std::string kind;  // file, dir, symlink (not followed) or other
  int64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t mode = 0;  // permission bits
  bool operator==(const FileStat&) const = default;
  static constexpr std::string_view kTypeName = "fs.Stat";
  static constexpr auto kFields = std::make_tuple(
      field("kind", &FileStat::kind), field("size", &FileStat::size),
      field("mtime_ns", &FileStat::mtime_ns), field("mode", &FileStat::mode));
};

struct DirEntry {
  std::string name;
  std::string kind;
  bool operator==(const DirEntry&) const = default;
  static constexpr std::string_view kTypeName = "fs.Entry";
  static constexpr auto kFields =
      std::make_tuple(field("name", &DirEntry::name), field("kind", &DirEntry::kind));
};

Task<FileStat> StatImpl(std::string path);
// Version 2: a directory's stat is watched and observed as its listing; a stored version 1
// of one was watched by its name only, and would be trusted after a restart while its
// entries changed unseen.
inline const Function<StatImpl> fs_stat{
    "fs.stat", 2, "kind, size, mtime and mode of a path (symlinks not followed)",
    {.session_dependent = true}};

Task<Vc<Bytes>> ReadImpl(std::string path);
inline const Function<ReadImpl> fs_read{
    "fs.read", 1, "the bytes of a file", {.session_dependent = true}};

Task<std::vector<DirEntry>> ListImpl(std::string dir);
inline const Function<ListImpl> fs_list{
    "fs.list", 1, "the entries of a directory with their kinds, sorted by name",
    {.session_dependent = true}};

}  // namespace turbine::stdlib
