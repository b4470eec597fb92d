// bearer_token.h — checking the daemon's token, for gRPC calls and the status page alike.
#pragma once

#include <absl/strings/match.h>

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

}  // namespace turbine::server
