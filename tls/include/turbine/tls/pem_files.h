// pem_files.h — the PEM files of a TLS setup, read and checked before gRPC sees them.
//
// gRPC takes a certificate, key or CA file as bytes and finds out what is wrong with it
// only when a handshake fails: a server then says it is ready and fails every connection,
// a client reports "empty address list", which reads as a daemon not running. These
// refuse such a file at once, with an INVALID_ARGUMENT naming it.
#pragma once

#include <absl/status/statusor.h>

#include <string>

namespace turbine::tls {

// ReadCaFile reads a file of CA certificates; `role` names it in errors ("CA", "client
// CA": "the TLS CA file ..."). Refused: a file without a PEM block, or with no certificate
// OpenSSL reads (a key or a request given by mistake).
absl::StatusOr<std::string> ReadCaFile(const std::string& path, const char* role);

struct KeyPair {
  std::string cert_pem;
  std::string key_pem;
  // Why the certificate is not valid now ("expired on Jan  2 00:00:00 2020 GMT", "is not
  // valid before ..."), or empty. Not refused: the clock may be what is wrong, and a
  // certificate renewed in place is read again at the next start; but every handshake
  // will fail meanwhile, so the one who starts it should hear.
  std::string validity;
  // Why a TLS client would refuse the certificate as a server's whatever its dates (its
  // extendedKeyUsage or keyUsage leaves TLS server authentication out: a client
  // certificate given by mistake), or empty. Not refused, for the same reason.
  std::string not_for_server;
};

// ReadKeyPair reads a certificate and its private key. Refused: a file without a PEM
// block, a certificate or key OpenSSL cannot read (a key with a passphrase: it would be
// asked for on no terminal), and a key that is not the certificate's.
absl::StatusOr<KeyPair> ReadKeyPair(const std::string& cert_path, const std::string& key_path);

}  // namespace turbine::tls
