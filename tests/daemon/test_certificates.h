// test_certificates.h — throwaway certificate authorities for TLS tests, made by the openssl
// command at test time in the test's temp dir: no key is ever committed, none outlives the
// test.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace turbine::testing {

// TestCertificates holds PEM file paths:
//   ca                          the CA the daemon and the clients trust
//   server_cert, server_key     the daemon's, for localhost, 127.0.0.1 and ::1, signed by ca
//   client_cert, client_key     a client's, signed by ca
//   other_ca                    an unrelated CA (a "wrong CA" for either side)
//   other_client_cert, _key     a client's, signed by other_ca
// EC P-256 keys: quick to make on a slow machine.
struct TestCertificates {
  // Make writes the files into `dir`; false if openssl failed (its messages are in
  // dir/openssl.log).
  bool Make(const std::filesystem::path& dir) {
    const std::string d = dir.string() + "/";
    ca = d + "ca.pem";
    server_cert = d + "server.pem";
    server_key = d + "server.key";
    client_cert = d + "client.pem";
    client_key = d + "client.key";
    other_ca = d + "other-ca.pem";
    other_client_cert = d + "other-client.pem";
    other_client_key = d + "other-client.key";
    log = d + "openssl.log";
    std::ofstream(d + "server.ext") << "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n"
                                    << "extendedKeyUsage=serverAuth\n";
    std::ofstream(d + "client.ext") << "extendedKeyUsage=clientAuth\n";
    return MakeCa("ca", "turbine-test-ca") && MakeCa("other-ca", "turbine-other-ca") &&
           MakeSigned("server", "localhost", "ca", "server.ext") &&
           MakeSigned("client", "turbine-test-client", "ca", "client.ext") &&
           MakeSigned("other-client", "turbine-other-client", "other-ca", "client.ext");
  }

  std::string ca, server_cert, server_key, client_cert, client_key, other_ca, other_client_cert,
      other_client_key, log;

 private:
  static constexpr char kNewKey[] = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

  bool Run(const std::string& command) {
    const std::string dir = std::filesystem::path(log).parent_path().string();
    return std::system(("cd '" + dir + "' && " + command + " >>openssl.log 2>&1").c_str()) == 0;
  }
  // MakeCa makes NAME.pem and NAME.key, a self-signed CA.
  bool MakeCa(const std::string& name, const std::string& common_name) {
    return Run(std::string("openssl req -x509 ") + kNewKey + " -days 2 -subj /CN=" + common_name +
               " -keyout " + name + ".key -out " + name + ".pem");
  }
  // MakeSigned makes NAME.pem and NAME.key, signed by the CA `ca` with the extensions file.
  bool MakeSigned(const std::string& name, const std::string& common_name, const std::string& ca,
                  const std::string& extensions) {
    return Run(std::string("openssl req ") + kNewKey + " -subj /CN=" + common_name + " -keyout " +
               name + ".key -out " + name + ".csr") &&
           Run("openssl x509 -req -in " + name + ".csr -CA " + ca + ".pem -CAkey " + ca +
               ".key -CAcreateserial -days 2 -extfile " + extensions + " -out " + name + ".pem");
  }
};

}  // namespace turbine::testing
