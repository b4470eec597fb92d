// call_text.h — reading a call typed as text, in the CLI's syntax: the words of
// `turbine call FN ARG...`, e.g. `tree.summary /src` or `demo.add 2 '{"$ref":"12"}'`.
//
// Thread-safety: pure functions.
#pragma once

#include <absl/status/statusor.h>

#include <string>
#include <string_view>
#include <vector>

#include "turbine/v1/turbine.pb.h"

namespace turbine::render {

// IsUtf8 tells whether `text` is well-formed UTF-8, as a protocol string must be.
bool IsUtf8(const std::string& text);

// ParseValueWord reads one ARG: JSON (30, "text", [1,2], {"$ref":"12"}), or else a bare
// word taken as a string (so `input.get mykey` works unquoted), or as bytes if it is not
// UTF-8. A word that starts like JSON structure ([, { or ") but does not parse is an
// error, not a string: that is almost always a quoting mistake.
absl::StatusOr<v1::Value> ParseValueWord(const std::string& text);
// ParseInputWord reads an input's value (SetInputs) the same way; it may nest one list
// deeper than an argument, as deep as the daemon stores one (turbine/client/json.h,
// ValueUse), so that any input read back can be set again.
absl::StatusOr<v1::Value> ParseInputWord(const std::string& text);

// SplitCallWords splits a line into words as a shell would for the CLI: at spaces, except
// inside brackets (`[1, 2]` and `{"a": 1}` are one word each, their JSON strings kept as
// they are); '...' is taken literally and "..." as the shell does (quotes gone, a backslash
// kept but before $ ` " \), and a backslash outside them escapes the next character, so
// that a command line pastes unchanged. kInvalidArgument for an unclosed quote or bracket.
absl::StatusOr<std::vector<std::string>> SplitCallWords(std::string_view line);

// ParseRefWord reads a task reference as --this takes it: 12, 12/Type/3 or {"$ref":"12"}.
absl::StatusOr<v1::TaskRef> ParseRefWord(const std::string& text);

// ParseCallText reads the words of `turbine call` after `call`: FN ARG..., with --this REF
// (or --this=REF) anywhere for a method's receiver, --raw ignored (it only changes how the
// CLI prints) and every word after `--` an argument. kInvalidArgument naming the word at
// fault.
absl::StatusOr<v1::CallRequest> ParseCallText(std::string_view line);

}  // namespace turbine::render
