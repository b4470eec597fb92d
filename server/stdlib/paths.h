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

// ParentPath("/a/b") is "/a"; ParentPath("/") is "/".
std::string ParentPath(const std::string& path);
// BaseName("/a/b") is "b"; BaseName("/") is "".
std::string BaseName(const std::string& path);
// JoinPath("/a", "b") is "/a/b"; JoinPath("/", "b") is "/b". `name` is one component.
std::string JoinPath(const std::string& dir, const std::string& name);

}  // namespace turbine::stdlib
