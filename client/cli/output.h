// output.h — how `turbine` prints replies: compact one-line JSON, or lines for people.
#pragma once

#include <google/protobuf/message.h>

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <string_view>

#include "turbine/client/call_result.h"
#include "turbine/v1/turbine.pb.h"

namespace turbine::cli {

// Dump writes `json` on one line; bytes that are not UTF-8 print as U+FFFD rather than
// aborting the output.
std::string Dump(const nlohmann::json& json);

std::string_view SourceName(v1::Source source);

// CallResultJson is the --json form of a call's answer:
// {"value":…,"ref":…,"source":…,"micros":…} or {"error":…,"code":…,"ref":…,…}.
nlohmann::json CallResultJson(const client::CallResult& result);

// MessageToJson writes every field of `message` (also those at their default), numbers as
// numbers and enums by name, with the .proto field names.
nlohmann::json MessageToJson(const google::protobuf::Message& message);

// FormatFunction renders "name(type param, ...) -> result  description".
std::string FormatFunction(const v1::FunctionInfo& function);

// PrintStats writes one "name  value" line per figure, then one line per function.
void PrintStats(std::ostream& out, const v1::StatsReply& stats);

}  // namespace turbine::cli
