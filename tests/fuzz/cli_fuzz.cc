// cli_fuzz.cc — the CLI's reading of a value argument (client/cli/arguments.h, which parses
// JSON with client/include/turbine/client/json.h) on arbitrary text: a value or an error,
// and a value prints as JSON that reads back to the same value.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "arguments.h"
#include "fuzz_check.h"
#include "output.h"
#include "turbine/client/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)turbine::cli::ParseRefArgument(text);
  absl::StatusOr<turbine::v1::Value> value = turbine::cli::ParseValueArgument(text);
  if (!value.ok()) {
    FUZZ_CHECK(value.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  // What `turbine` prints for it. A bare word may not be UTF-8 and prints replaced: other
  // values, NaN and the infinities among them ({"$double": "NaN"}), read back unchanged.
  const std::string printed = turbine::cli::Dump(turbine::client::ValueToJson(*value));
  if (!nlohmann::json::accept(text)) return 0;
  absl::StatusOr<turbine::v1::Value> again = turbine::cli::ParseValueArgument(printed);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->SerializeAsString() == value->SerializeAsString());
  return 0;
}
