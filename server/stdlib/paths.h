// paths.h — the path arithmetic the fs functions share. Paths are absolute and lexically
// normal ("/a/b", never "a/b", "/a/./b", "/a/b/" or "/a/../b"), so one file has one name
// and therefore one task.
#pragma once

#include <string>
#include <string_view>

namespace turbine::stdlib {

// NormalPath returns `path` in normal form, or fails the running task (naming `function`)
// if it is not absolute: a relative path would depend on the daemon's working directory,
// which a cached result cannot see.
std::string NormalPath(std::string_view path, std::string_view function);

// ParentPath("/a/b") is "/a"; ParentPath("/") is "/". BaseName("/a/b") is "b";
// BaseName("/") is "". Both are views into `path` (or a literal "/"), so they copy nothing:
// the file watcher takes them apart once per file it subscribes.
std::string_view ParentPath(std::string_view path);
std::string_view BaseName(std::string_view path);
// JoinPath("/a", "b") is "/a/b"; JoinPath("/", "b") is "/b". `name` is one component.
std::string JoinPath(const std::string& dir, const std::string& name);

}  // namespace turbine::stdlib
