// text.cc — UTF-8 checks and the echo of user input in messages (text.h).
#include "turbine/text.h"

#include <cstdint>

namespace turbine {
namespace {

// ValidSequenceLength returns the length of the well-formed UTF-8 sequence starting at
// text[i], or 0 if the byte there does not start one (Unicode's table of well-formed
// byte sequences: the second byte's range depends on the first).
size_t ValidSequenceLength(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(text[k]); };
  const uint8_t b0 = byte(i);
  if (b0 < 0x80) return 1;
  size_t length = 0;
  uint8_t low = 0x80, high = 0xBF;  // the range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3;
    if (b0 == 0xE0) low = 0xA0;   // no overlong forms
    if (b0 == 0xED) high = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4;
    if (b0 == 0xF0) low = 0x90;   // no overlong forms
    if (b0 == 0xF4) high = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  if (byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (size_t k = 2; k < length; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return length;
}

void AppendEscaped(std::string_view text, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < text.size();) {
    const size_t length = ValidSequenceLength(text, i);
    if (length > 0) {
      out->append(text.substr(i, length));
      i += length;
    } else {
      const auto b = static_cast<uint8_t>(text[i++]);
      out->append({'\\', 'x', kHex[b >> 4], kHex[b & 0xF]});
    }
  }
}

}  // namespace

bool IsValidUtf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const size_t length = ValidSequenceLength(text, i);
    if (length == 0) return false;
    i += length;
  }
  return true;
}

std::string EscapeInvalidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  AppendEscaped(text, &out);
  return out;
}

std::string Echo(std::string_view user_text) {
  if (user_text.size() <= kEchoLimit) return EscapeInvalidUtf8(user_text);
  // Back up to a byte that starts a character (not a continuation byte 10xxxxxx), so the
  // cut does not leave half a character to be escaped.
  size_t cut = kEchoLimit;
  while (cut > 0 && (static_cast<uint8_t>(user_text[cut]) & 0xC0) == 0x80) --cut;
  std::string out = EscapeInvalidUtf8(user_text.substr(0, cut));
  out += "...(" + std::to_string(user_text.size()) + " bytes)";
  return out;
}

}  // namespace turbine
