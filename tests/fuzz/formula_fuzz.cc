// formula_fuzz.cc — the sheet's formula language (server/stdlib/sheet_formula.h) on
// arbitrary text: parsing fails with a status or yields a formula, and evaluating it with
// any cell values (extremes included, some cells failing) returns or throws TaskError.
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "sheet_formula.h"
#include "turbine/error.h"

namespace sheet = turbine::stdlib::sheet;

namespace {

// CellValue gives each cell name a value that depends on the name only: small numbers,
// the int64 extremes (to reach every overflow check), or an error.
int64_t CellValue(const std::string& cell) {
  uint64_t h = 1469598103934665603u;
  for (char c : cell) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211u;
  switch (h % 8) {
    case 0:
      return std::numeric_limits<int64_t>::min();
    case 1:
      return std::numeric_limits<int64_t>::max();
    case 2:
      return 0;
    case 3:
      throw turbine::TaskError("cell " + cell + " failed");
    default:
      return static_cast<int64_t>(h % 2001) - 1000;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<sheet::Formula> formula = sheet::ParseFormula(text);
  if (!formula.ok()) {
    FUZZ_CHECK(formula.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  for (const std::string& ref : formula->refs) FUZZ_CHECK(sheet::IsCellName(ref));
  try {
    sheet::Evaluate(formula->root, "A1", [](const std::string& cell) { return CellValue(cell); });
  } catch (const turbine::TaskError&) {
    // An error result: division by zero, overflow, a failing cell.
  }
  return 0;
}
