// call_text.cc — calls typed as text (call_text.h).
#include "turbine/render/call_text.h"

#include <absl/strings/ascii.h>
#include <absl/strings/str_cat.h>

#include <nlohmann/json.hpp>

#include "turbine/client/json.h"
#include "turbine/client/values.h"

namespace turbine::render {

// nlohmann::json refuses to write a string that is not UTF-8.
bool IsUtf8(const std::string& text) {
  try {
    (void)nlohmann::json(text).dump();
    return true;
  } catch (const nlohmann::json::type_error&) {
    return false;
  }
}

namespace {

// JsonProblem is what nlohmann::json says went wrong, without its "[json.exception.*] "
// prefix, which names the library's internals rather than the user's text.
std::string JsonProblem(const nlohmann::json::exception& e) {
  std::string_view what = e.what();
  if (what.starts_with("[json.exception.")) {
    if (const size_t end = what.find("] "); end != std::string_view::npos) {
      what.remove_prefix(end + 2);
    }
  }
  return std::string(what);
}

absl::StatusOr<v1::Value> ParseWord(const std::string& text, client::ValueUse use) {
  try {
    const nlohmann::json json = nlohmann::json::parse(text);
    // Parsed, an integer beyond 64 bits is a double: only the text still tells.
    if (absl::Status fits = client::CheckIntegersFit(text); !fits.ok()) return fits;
    return client::ValueFromJson(json, use);
  } catch (const nlohmann::json::parse_error& e) {
    absl::string_view trimmed = absl::StripLeadingAsciiWhitespace(text);
    if (!trimmed.empty() && (trimmed[0] == '[' || trimmed[0] == '{' || trimmed[0] == '"')) {
      return absl::InvalidArgumentError(absl::StrCat("not valid JSON: ", JsonProblem(e)));
    }
  } catch (const nlohmann::json::exception& e) {
    // Valid JSON the parser cannot hold, such as a number beyond a double (1e999): "number
    // overflow parsing '1e999'".
    return absl::InvalidArgumentError(absl::StrCat("unusable JSON: ", JsonProblem(e)));
  }
  // Bytes that are not UTF-8 cannot be a protocol string: they go as what they are.
  return IsUtf8(text) ? client::Str(text) : client::BytesValue(text);
}

}  // namespace

absl::StatusOr<v1::Value> ParseValueWord(const std::string& text) {
  return ParseWord(text, client::ValueUse::kArgument);
}

absl::StatusOr<v1::Value> ParseInputWord(const std::string& text) {
  return ParseWord(text, client::ValueUse::kInput);
}

absl::StatusOr<std::vector<std::string>> SplitCallWords(std::string_view line) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  int depth = 0;                // [ and { not yet closed
  bool in_json_string = false;  // inside "..." within brackets (kept: it is JSON)
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (in_json_string) {
      word.push_back(c);
      if (c == '\\' && i + 1 < line.size()) {
        word.push_back(line[++i]);
      } else if (c == '"') {
        in_json_string = false;
      }
      continue;
    }
    if (c == '\'') {  // a shell's literal quotes: the text inside, as is
      const size_t end = line.find('\'', i + 1);
      if (end == std::string_view::npos) return absl::InvalidArgumentError("unclosed ' quote");
      word.append(line.substr(i + 1, end - i - 1));
      in_word = true;
      i = end;
      continue;
    }
    if (depth == 0 && c == '"') {
      // A shell's double quotes: the text inside, quotes gone; a backslash keeps its meaning
      // only before $ ` " \ (so `"3"` is the number 3, as the shell hands it to the CLI).
      size_t j = i + 1;
      for (; j < line.size() && line[j] != '"'; ++j) {
        if (line[j] == '\\' && j + 1 < line.size() && line[j + 1] == '\n') {
          ++j;  // a line continued: both go
          continue;
        }
        if (line[j] == '\\' && j + 1 < line.size() &&
            absl::string_view("$`\"\\").find(line[j + 1]) != absl::string_view::npos) {
          ++j;
        }
        word.push_back(line[j]);
      }
      if (j == line.size()) return absl::InvalidArgumentError("unclosed \" quote");
      in_word = true;
      i = j;
      continue;
    }
    if (depth == 0 && c == '\\') {  // outside quotes, the shell's escape of one character
      if (i + 1 == line.size()) continue;  // nothing to escape: the shell drops it too
      if (line[i + 1] == '\n') {           // a line continued: both go, the word goes on
        ++i;
        continue;
      }
      word.push_back(line[++i]);
      in_word = true;
      continue;
    }
    if (depth == 0 && absl::ascii_isspace(static_cast<unsigned char>(c))) {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
      continue;
    }
    // Brackets group only a word that starts with one (JSON), or inside such a word:
    // `/tmp/a[1` and `a[b c]` are a shell's words.
    const bool starts_json = !in_word && (c == '[' || c == '{');
    in_word = true;
    word.push_back(c);
    if (depth == 0 && !starts_json) continue;
    if (c == '"') {
      in_json_string = true;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  if (in_json_string) return absl::InvalidArgumentError("unclosed \" quote");
  if (depth > 0) return absl::InvalidArgumentError("unclosed [ or {");
  if (in_word) words.push_back(std::move(word));
  return words;
}

absl::StatusOr<v1::TaskRef> ParseRefWord(const std::string& text) {
  absl::StatusOr<v1::Value> value = ParseValueWord(text);
  if (!value.ok()) return value.status();
  if (value->has_ref_value()) return value->ref_value();
  if (std::optional<uint64_t> task = client::AsUint(*value)) return client::MakeTaskRef(*task);
  if (value->has_string_value()) return client::ParseRef(value->string_value());
  return absl::InvalidArgumentError(
      absl::StrCat("not a task reference: ", text, R"( (use 12, 12/Type/3 or {"$ref":"12"}))"));
}

absl::StatusOr<v1::CallRequest> ParseCallText(std::string_view line) {
  absl::StatusOr<std::vector<std::string>> words = SplitCallWords(line);
  if (!words.ok()) return words.status();
  v1::CallRequest request;
  bool options_end = false;  // after `--`, every word is an argument
  for (size_t i = 0; i < words->size(); ++i) {
    const std::string& word = (*words)[i];
    if (!options_end && word == "--") {
      options_end = true;
      continue;
    }
    if (!options_end && word.starts_with("--")) {
      // The options of `turbine call` (anywhere, as CLI11 reads them): --this names the
      // receiver; --raw only changes how the CLI prints, and so do the CLI's own options,
      // which it takes after the command too (with their values).
      if (word == "--raw" || word == "--json" || word == "--wait") continue;
      const std::string_view name = std::string_view(word).substr(0, word.find('='));
      if (name == "--connect" || name == "--data-dir" || name == "--token-file" ||
          name == "--tls-ca" || name == "--tls-cert" || name == "--tls-key" ||
          name == "--tls-server-name" || name == "--timeout-ms") {
        if (name.size() == word.size()) ++i;  // its value is the next word
        continue;
      }
      if (name != "--this") {
        return absl::InvalidArgumentError(
            absl::StrCat("unknown option ", word, " (a call takes --this and --raw)"));
      }
      if (request.has_this_ref()) return absl::InvalidArgumentError("--this given twice");
      const bool separate = name.size() == word.size();  // --this REF, not --this=REF
      if (separate && i + 1 == words->size()) {
        return absl::InvalidArgumentError("--this needs a task reference");
      }
      const std::string receiver = separate ? (*words)[++i] : word.substr(name.size() + 1);
      absl::StatusOr<v1::TaskRef> ref = ParseRefWord(receiver);
      if (!ref.ok())
        return absl::InvalidArgumentError(absl::StrCat("--this: ", ref.status().message()));
      *request.mutable_this_ref() = *std::move(ref);
      continue;
    }
    if (request.function().empty()) {
      request.set_function(word);
      continue;
    }
    absl::StatusOr<v1::Value> value = ParseValueWord(word);
    if (!value.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("argument ", request.args_size() + 1, " (",
                                                     word, "): ", value.status().message()));
    }
    *request.add_args() = *std::move(value);
  }
  if (request.function().empty())
    return absl::InvalidArgumentError("type a function and its arguments");
  return request;
}

}  // namespace turbine::render
