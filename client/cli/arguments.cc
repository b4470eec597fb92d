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

absl::StatusOr<v1::Value> ParseValueArgument(const std::string& text) {
  return render::ParseValueWord(text);
}

absl::StatusOr<v1::TaskRef> ParseRefArgument(const std::string& text) {
  absl::StatusOr<v1::Value> value = ParseValueArgument(text);
  if (!value.ok()) return value.status();
  if (value->has_ref_value()) return value->ref_value();
  if (std::optional<uint64_t> task = client::AsUint(*value)) return client::MakeTaskRef(*task);
  if (value->has_string_value()) return client::ParseRef(value->string_value());
  return absl::InvalidArgumentError(
      absl::StrCat("not a task reference: ", text, R"( (use 12, 12/Type/3 or {"$ref":"12"}))"));
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
