// short_text.cc — the non-template parts of AppendShortText (short_text.h).
#include "turbine/short_text.h"

#include <cmath>

namespace turbine::internal {

void AppendShortString(std::string_view text, std::string* out) {
  out->push_back('"');
  size_t shown = 0;
  for (size_t i = 0; i < text.size() && shown < kShortTextChars; ++i, ++shown) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else if (c < 0x20 || c == 0x7F) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\x%02X", c);
      out->append(escaped);
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
  if (shown < text.size()) {
    // Cut between characters, not inside a UTF-8 sequence.
    while (!out->empty() && (static_cast<unsigned char>(out->back()) & 0xC0) == 0x80) {
      out->pop_back();
    }
    if (!out->empty() && static_cast<unsigned char>(out->back()) >= 0xC0) out->pop_back();
    out->append("…\" (" + std::to_string(text.size()) + " bytes)");
    return;
  }
  out->push_back('"');
}

void AppendShortRef(RawVc vc, std::string* out) {
  out->append("@" + std::to_string(vc.task));
  if (!vc.is_cell()) return;
  const ValueType* type = ValueTypeById(vc.type);
  out->append("/" + (type != nullptr ? type->name : std::string("?")) + "/" +
              std::to_string(vc.index));
}

void AppendShortDouble(double value, std::string* out) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.6g", value);
  out->append(text);
}

}  // namespace turbine::internal
