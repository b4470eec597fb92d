#include "turbine/tls/pem_files.h"

#include <absl/strings/match.h>
#include <absl/strings/str_cat.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <utility>

namespace turbine::tls {
namespace {

using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;
using Certificate = std::unique_ptr<X509, decltype(&X509_free)>;
using PrivateKey = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

Bio ReadOnlyBio(const std::string& pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
}

// A passphrase callback that gives none: without one, OpenSSL asks on the terminal.
int NoPassphrase(char*, int, int, void*) { return 0; }

// ReadPemFile reads one TLS file; `role` names it in errors.
absl::StatusOr<std::string> ReadPemFile(const std::string& path, const char* role) {
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored)) {  // opens, and reads as empty
    return absl::InvalidArgumentError(
        absl::StrCat("the TLS ", role, " file ", path, " is a directory, not a PEM file"));
  }
  // Opened without waiting: a pipe nobody writes to would hold the open for good (in
  // turbined, with its stop signals blocked). Then read blocking, which on such a pipe ends
  // at once.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read the TLS ", role, " file ", path, ": ", std::strerror(errno)));
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  // Read up to a bound: a path such as /dev/zero never ends. (A CA bundle of every public
  // root is about 200 KB.)
  constexpr size_t kMostBytes = 16 << 20;
  std::string content;
  char chunk[64 << 10];
  ssize_t got = 0;
  while (content.size() <= kMostBytes &&
         ((got = ::read(fd, chunk, sizeof(chunk))) > 0 || (got < 0 && errno == EINTR))) {
    if (got > 0) content.append(chunk, static_cast<size_t>(got));
  }
  const int read_error = got < 0 ? errno : 0;
  ::close(fd);
  if (read_error != 0) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read the TLS ", role, " file ", path,
                                                   ": ", std::strerror(read_error)));
  }
  if (content.size() > kMostBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("the TLS ", role, " file ", path, " is larger than 16 MiB: no PEM file"));
  }
  if (!absl::StrContains(content, "-----BEGIN ")) {
    return absl::InvalidArgumentError(
        absl::StrCat("the TLS ", role, " file ", path, " holds no PEM block (-----BEGIN ...)"));
  }
  return content;
}

// TimeText prints an ASN.1 time as OpenSSL does ("Jan  2 00:00:00 2020 GMT").
std::string TimeText(const ASN1_TIME* time) {
  Bio bio(BIO_new(BIO_s_mem()), &BIO_free);
  if (bio == nullptr || ASN1_TIME_print(bio.get(), time) != 1) return "?";
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return size > 0 ? std::string(data, static_cast<size_t>(size)) : "?";
}

// Validity says why `cert` is not valid now, or is empty.
std::string Validity(X509& cert) {
  if (X509_cmp_current_time(X509_get0_notAfter(&cert)) < 0) {
    return "expired on " + TimeText(X509_get0_notAfter(&cert));
  }
  if (X509_cmp_current_time(X509_get0_notBefore(&cert)) > 0) {
    return "is not valid before " + TimeText(X509_get0_notBefore(&cert));
  }
  return "";
}

// NotForServer says why `cert` cannot authenticate a TLS server, or is empty.
std::string NotForServer(X509& cert) {
  if (X509_check_purpose(&cert, X509_PURPOSE_SSL_SERVER, /*ca=*/0) == 1) return "";
  return "is not for a TLS server (its extendedKeyUsage or keyUsage leaves out server "
         "authentication: a client certificate?)";
}

}  // namespace

absl::StatusOr<std::string> ReadCaFile(const std::string& path, const char* role) {
  absl::StatusOr<std::string> pem = ReadPemFile(path, role);
  if (!pem.ok()) return pem.status();
  Bio bio = ReadOnlyBio(*pem);
  Certificate cert(PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr), &X509_free);
  ERR_clear_error();  // what the read left on this thread's OpenSSL error queue
  if (cert == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("the TLS ", role, " file ", path, " holds no certificate OpenSSL can read"));
  }
  return pem;
}

absl::StatusOr<KeyPair> ReadKeyPair(const std::string& cert_path, const std::string& key_path) {
  KeyPair pair;
  absl::StatusOr<std::string> cert_pem = ReadPemFile(cert_path, "certificate");
  if (!cert_pem.ok()) return cert_pem.status();
  pair.cert_pem = *std::move(cert_pem);
  absl::StatusOr<std::string> key_pem = ReadPemFile(key_path, "key");
  if (!key_pem.ok()) return key_pem.status();
  pair.key_pem = *std::move(key_pem);

  Bio cert_bio = ReadOnlyBio(pair.cert_pem);
  Certificate cert(PEM_read_bio_X509(cert_bio.get(), nullptr, NoPassphrase, nullptr), &X509_free);
  Bio key_bio = ReadOnlyBio(pair.key_pem);
  PrivateKey key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassphrase, nullptr),
                 &EVP_PKEY_free);
  const bool matched =
      cert != nullptr && key != nullptr && X509_check_private_key(cert.get(), key.get()) == 1;
  ERR_clear_error();  // what the reads and the check left on this thread's OpenSSL error queue
  if (cert == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("the TLS certificate file ", cert_path,
                                                   " holds no certificate OpenSSL can read"));
  }
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("the TLS key file ", key_path,
                     " holds no private key OpenSSL can read (a key with a passphrase cannot "
                     "be used)"));
  }
  if (!matched) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the TLS key file ", key_path, " does not hold the key of the certificate in ", cert_path));
  }
  pair.validity = Validity(*cert);
  pair.not_for_server = NotForServer(*cert);
  ERR_clear_error();  // what the purpose check left on this thread's OpenSSL error queue
  return pair;
}

}  // namespace turbine::tls
