// json.h — turbine.v1.Value <-> JSON, the form the CLI reads and prints values in.
//
//   JSON                              Value
//   null, true/false                  null, bool
//   12, -3 (no fraction, exponent)    int (int64), uint above int64 (to 2^64 - 1; larger is
//                                     an error)
//   1.5, 1e3                          double
//   "text"                            string
//   [ ... ]                           list
//   {"$ref": "12"}                    task reference to task 12's output
//   {"$ref": "12/TypeName/3"}         task reference to cell 3 of type TypeName of task 12
//   {"$bytes": "<base64>"}            bytes
//   {"$double": "NaN"}                double JSON has no number for: "NaN", "-NaN",
//                                     "Infinity", "-Infinity"
//   {"$map": { ... }}                 map, written this way only when it has a single key
//                                     that is "$ref", "$bytes", "$double" or "$map" (else
//                                     ambiguous)
//   any other object                  map (entries sorted by key)
//
// What ValueToJson writes, ValueFromJson reads back as the same value.
//
// Thread-safety: pure functions.
#pragma once

#include <absl/status/statusor.h>

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "turbine/v1/turbine.pb.h"

namespace turbine::client {

// ValueUse says where a value goes, which decides how deep it may nest: protobuf reads 100
// levels of messages, a list costs two and a map three, and the request around the value
// takes some. kArgument: 48 lists or 32 maps inside one another, a bound that fits every
// request with a call in it. kInput: a SetInputs value, 49 lists or 32 maps, as deep as the
// daemon stores one, so that any input read back can be set again.
enum class ValueUse { kArgument, kInput };

// ValueFromJson fails with kInvalidArgument naming the JSON pointer of the offending part;
// lists and maps nested deeper than `use` allows are refused.
absl::StatusOr<v1::Value> ValueFromJson(const nlohmann::json& json,
                                        ValueUse use = ValueUse::kArgument);

// CheckIntegersFit refuses JSON text holding an integer beyond 64 bits (kInvalidArgument
// naming where, as ValueFromJson does). nlohmann's parser reads such an integer as a double,
// which ValueFromJson can no longer tell from one written 1.8e19: check the text before
// converting what was parsed from it. OK for text that is not JSON.
absl::Status CheckIntegersFit(std::string_view json_text);
nlohmann::json ValueToJson(const v1::Value& value);

// ParseRef reads the text of a "$ref": "12" or "12/TypeName/3".
absl::StatusOr<v1::TaskRef> ParseRef(std::string_view text);
std::string FormatRef(const v1::TaskRef& ref);

}  // namespace turbine::client
