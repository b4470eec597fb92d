#include "arguments.h"

#include <absl/strings/ascii.h>
#include <absl/strings/str_cat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "turbine/client/json.h"
#include "turbine/client/values.h"
#include "turbine/render/call_text.h"

namespace turbine::cli {

absl::StatusOr<v1::Value> ParseValueArgument(const std::string& text, client::ValueUse use) {
  return use == client::ValueUse::kInput ? render::ParseInputWord(text)
                                         : render::ParseValueWord(text);
}

absl::StatusOr<v1::TaskRef> ParseRefArgument(const std::string& text) {
  return render::ParseRefWord(text);
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored)) {  // opens, and reads as empty
    return absl::InvalidArgumentError(
        absl::StrCat("token file ", path, " is a directory, not a file"));
  }
  std::ifstream file(path);
  if (!file) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read token file ", path, ": ", std::strerror(errno)));
  }
  // At most 64 KiB (a path such as /dev/zero never ends).
  constexpr std::streamsize kMostBytes = 64 << 10;
  std::string content(static_cast<size_t>(kMostBytes) + 1, '\0');
  file.read(content.data(), kMostBytes + 1);
  content.resize(static_cast<size_t>(file.gcount()));
  if (static_cast<std::streamsize>(content.size()) > kMostBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("token file ", path, " is larger than 64 KiB: no token"));
  }
  std::string token(absl::StripAsciiWhitespace(content));
  if (token.empty()) return absl::InvalidArgumentError(absl::StrCat("token file ", path, " is empty"));
  return token;
}

}  // namespace turbine::cli
