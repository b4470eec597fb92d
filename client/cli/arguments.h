// arguments.h — turning command-line words into protocol values.
#pragma once

#include <absl/status/statusor.h>

#include <string>

#include "turbine/client/json.h"
#include "turbine/v1/turbine.pb.h"

namespace turbine::cli {

// ParseValueArgument reads one ARG: JSON (30, "text", [1,2], {"$ref":"12"}), or else a
// bare word taken as a string (so `call input.get mykey` works unquoted). A word that
// starts like JSON structure ([, { or ") but does not parse is an error, not a string:
// that is almost always a quoting mistake.
// An input's value (`set`) may nest one list deeper than an argument (client::ValueUse).
absl::StatusOr<v1::Value> ParseValueArgument(const std::string& text,
                                             client::ValueUse use = client::ValueUse::kArgument);

// ParseRefArgument reads --this: "12", "12/Type/3" or a JSON reference {"$ref":"12"}.
absl::StatusOr<v1::TaskRef> ParseRefArgument(const std::string& text);

// ReadTokenFile returns the file's content without surrounding whitespace.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

}  // namespace turbine::cli
