// bearer_token.h — checking the daemon's token, for gRPC calls and the status page alike.
#pragma once

#include <absl/strings/match.h>

#include <cstdio>
#include <string>
#include <string_view>

namespace turbine::server {

// SameSecret compares in time that does not depend on where they differ.
inline bool SameSecret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char difference = 0;
  for (size_t i = 0; i < a.size(); ++i) difference |= static_cast<unsigned char>(a[i] ^ b[i]);
  return difference == 0;
}

// CarriesBearerToken tells whether an Authorization value is "Bearer <token>": the scheme's
// name in any case (RFC 9110), the token exactly.
inline bool CarriesBearerToken(std::string_view authorization, std::string_view token) {
  constexpr std::string_view kScheme = "Bearer ";
  return authorization.size() >= kScheme.size() &&
         absl::EqualsIgnoreCase(absl::string_view(authorization.data(), kScheme.size()),
                                absl::string_view(kScheme.data(), kScheme.size())) &&
         SameSecret(authorization.substr(kScheme.size()), token);
}

// TokenProblem says what makes `token` unusable, or is empty: a client sends the token in a
// gRPC header, whose value must be printable ASCII (gRPC's clients abort on any other byte),
// so a token file wrapped over two lines, say, would lock every client out.
inline std::string TokenProblem(std::string_view token) {
  for (size_t i = 0; i < token.size(); ++i) {
    const unsigned char byte = static_cast<unsigned char>(token[i]);
    if (byte >= 0x20 && byte <= 0x7E) continue;
    char hex[8];
    std::snprintf(hex, sizeof(hex), "0x%02X", byte);
    const std::string what = byte == '\n'   ? "a line break"
                             : byte == '\r' ? "a carriage return"
                             : byte == '\t' ? "a tab"
                                            : std::string("the byte ") + hex;
    return "holds " + what + " at byte " + std::to_string(i + 1) + " of " +
           std::to_string(token.size()) +
           ": a token is one line of printable ASCII (0x20 to 0x7E), as clients send it in a "
           "gRPC header";
  }
  return "";
}

}  // namespace turbine::server
