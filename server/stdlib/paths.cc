// paths.cc — path normalization (paths.h).
#include "paths.h"

#include <filesystem>

#include "turbine/error.h"
#include "turbine/text.h"

namespace turbine::stdlib {

std::string NormalPath(std::string_view path, std::string_view function) {
  if (path.empty() || path.front() != '/') {
    Fail(std::string(function) + ": path must be absolute, got \"" + Echo(path) + "\"");
  }
  if (path.find('\0') != std::string_view::npos) {
    Fail(std::string(function) + ": path contains a NUL byte");
  }
  std::string normal = std::filesystem::path(path).lexically_normal().string();
  while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
  return normal;
}

std::string_view ParentPath(std::string_view path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string_view::npos || slash == 0) return "/";
  return path.substr(0, slash);
}

std::string_view BaseName(std::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  return dir == "/" ? "/" + name : dir + "/" + name;
}

}  // namespace turbine::stdlib
