// TLS and mutual TLS between the real turbined and the C++ client library and the CLI, over
// a real TCP socket on loopback, with certificates openssl makes for each test.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "../storage/temp_dir.h"
#include "cli_runner.h"
#include "daemon_process.h"
#include "test_certificates.h"
#include "turbine/client/client.h"
#include "turbine/client/values.h"

namespace {

using turbine::client::Client;
using turbine::client::ConnectOptions;
using turbine::client::Int;
using turbine::client::TlsOptions;
using turbine::testing::CliResult;
using turbine::testing::DaemonProcess;
using turbine::testing::RunCli;
using turbine::testing::TempDir;
using turbine::testing::TestCertificates;

constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;
constexpr int kExitRefused = 4;

bool Contains(absl::string_view text, absl::string_view part) {
  return text.find(part) != absl::string_view::npos;
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(certs_.Make(dir_.path()))
        << "openssl is needed (scripts/setup installs it); its output is in " << certs_.log;
  }

  // StartDaemon serves TLS on 127.0.0.1 (a free port) with `extra` flags.
  void StartDaemon(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--data-dir",  dir_.str() + "/data", "--listen",
                                     "127.0.0.1:0", "--tls-cert",         certs_.server_cert,
                                     "--tls-key",   certs_.server_key};
    args.insert(args.end(), extra.begin(), extra.end());
    ASSERT_TRUE(daemon_.Start(args)) << daemon_.log();
    ASSERT_TRUE(daemon_.address().starts_with("127.0.0.1:")) << daemon_.address();
  }

  std::unique_ptr<Client> Connect(std::optional<TlsOptions> tls, std::string token = "",
                                  std::string address = "") {
    ConnectOptions options;
    options.address = address.empty() ? daemon_.address() : address;
    options.tls = std::move(tls);
    options.token = std::move(token);
    options.deadline = std::chrono::seconds(20);
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  // Fib20 calls demo.fib(20) and checks the answer when the call gets through.
  static absl::Status Fib20(Client& client) {
    absl::StatusOr<turbine::client::CallResult> result = client.Call("demo.fib", {Int(20)});
    if (!result.ok()) return result.status();
    EXPECT_TRUE(result->value.ok() && result->value->int_value() == 6765);
    return absl::OkStatus();
  }

  // Cli runs the CLI against the daemon with `flags` (and `env`, "NAME=value ..."), stderr
  // captured with stdout.
  CliResult Cli(const std::string& flags, const std::string& env = "") {
    const std::string prefix = env.empty() ? "" : "env " + env + " ";
    return RunCli(flags + " --connect " + daemon_.address() + " call demo.fib 20 2>&1", prefix);
  }

  TempDir dir_;
  TestCertificates certs_;
  DaemonProcess daemon_;
};

// A certificate that expired is served (the clock may be what is wrong) but said at start,
// as a warning: every handshake fails with it. Before, nothing was said.
TEST_F(TlsTest, AnExpiredCertificateIsSaidAtStart) {
  const std::string dir = dir_.str();
  std::ofstream(dir + "/ca.cnf") << "[ca]\ndefault_ca=x\n[x]\ndatabase=index.txt\n"
                                    "new_certs_dir=.\nserial=serial\ndefault_md=sha256\n"
                                    "policy=p\n[p]\ncommonName=supplied\n";
  std::ofstream(dir + "/index.txt");
  std::ofstream(dir + "/serial") << "01\n";
  const std::string make =
      "cd '" + dir +
      "' && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
      "-subj /CN=localhost -keyout expired.key -out expired.csr >>openssl.log 2>&1 && "
      "openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr "
      "-out expired.pem -startdate 20200101000000Z -enddate 20200102000000Z "
      "-extfile server.ext >>openssl.log 2>&1";
  ASSERT_EQ(std::system(make.c_str()), 0) << "openssl ca failed: see " << certs_.log;
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir + "/data", "--listen", "127.0.0.1:0", "--tls-cert",
                            dir + "/expired.pem", "--tls-key", dir + "/expired.key"}))
      << daemon.log();
  EXPECT_TRUE(Contains(daemon.log(), "[warning] the TLS certificate " + dir +
                                         "/expired.pem expired on Jan  2 00:00:00 2020 GMT: "
                                         "every client will refuse it"))
      << daemon.log();
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();
  // A valid one is not said to be anything.
  StartDaemon();
  EXPECT_FALSE(Contains(daemon_.log(), "every client will refuse it")) << daemon_.log();
  EXPECT_FALSE(Contains(daemon_.log(), "no --listen address is TCP")) << daemon_.log();
}

// Before: a client's certificate given as the daemon's, or TLS with only a unix socket to
// serve, started without a word, and every TLS client was refused or TLS did nothing.
TEST_F(TlsTest, ACertificateNotForAServerAndTlsWithoutTcpAreSaidAtStart) {
  const std::string dir = dir_.str();
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.Start({"--data-dir", dir + "/client-cert", "--listen", "127.0.0.1:0",
                            "--tls-cert", certs_.client_cert, "--tls-key", certs_.client_key}))
      << daemon.log();
  EXPECT_TRUE(Contains(daemon.log(), "[warning] the TLS certificate " + certs_.client_cert +
                                         " is not for a TLS server"))
      << daemon.log();
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.log();

  DaemonProcess unix_only;
  ASSERT_TRUE(unix_only.Start({"--data-dir", dir + "/unix-only", "--tls-cert", certs_.server_cert,
                               "--tls-key", certs_.server_key}))
      << unix_only.log();
  EXPECT_TRUE(Contains(unix_only.log(), "[warning] TLS is set up but no --listen address is TCP"))
      << unix_only.log();
  EXPECT_FALSE(Contains(unix_only.log(), "every client will refuse it")) << unix_only.log();
  EXPECT_EQ(unix_only.Stop(SIGTERM), 0) << unix_only.log();
}

TEST_F(TlsTest, TheClientAndTheCliCallOverTls) {
  StartDaemon();
  std::unique_ptr<Client> client = Connect(TlsOptions{.ca_file = certs_.ca});
  ASSERT_NE(client, nullptr);
  EXPECT_TRUE(Fib20(*client).ok());

  CliResult flag = Cli("--tls-ca " + certs_.ca);
  EXPECT_EQ(flag.exit_code, 0) << flag.out;
  EXPECT_EQ(flag.out, "6765\n");
  CliResult env = Cli("", "TURBINE_TLS_CA=" + certs_.ca);
  EXPECT_EQ(env.exit_code, 0) << env.out;
  EXPECT_EQ(env.out, "6765\n");

  // The name checked is the server name given, when one is: the certificate names
  // localhost and 127.0.0.1, not db.example.
  EXPECT_TRUE(Fib20(*Connect(TlsOptions{.ca_file = certs_.ca, .server_name = "localhost"})).ok());
  const absl::Status wrong_name =
      Fib20(*Connect(TlsOptions{.ca_file = certs_.ca, .server_name = "db.example"}));
  EXPECT_EQ(wrong_name.code(), absl::StatusCode::kUnavailable) << wrong_name;
  EXPECT_TRUE(Contains(wrong_name.message(), "TLS handshake")) << wrong_name;
  CliResult wrong_name_cli = Cli("--tls-ca " + certs_.ca + " --tls-server-name db.example");
  EXPECT_EQ(wrong_name_cli.exit_code, kExitUnreachable) << wrong_name_cli.out;
}

TEST_F(TlsTest, ADaemonCertificateFromAnotherCaIsRefused) {
  StartDaemon();
  const absl::Status status = Fib20(*Connect(TlsOptions{.ca_file = certs_.other_ca}));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_TRUE(Contains(status.message(), "TLS handshake with " + daemon_.address() + " failed"))
      << status;
  EXPECT_TRUE(Contains(status.message(), "not signed by")) << status;

  CliResult cli = Cli("--tls-ca " + certs_.other_ca);
  EXPECT_EQ(cli.exit_code, kExitUnreachable) << cli.out;
  EXPECT_TRUE(Contains(cli.out, "TLS handshake")) << cli.out;
  EXPECT_TRUE(Contains(cli.out, "--tls-ca")) << cli.out;
  // Waiting for the daemon, the CLI gives up with the same cause. Before, it said only that
  // no connection came within the time, as for a daemon not running.
  CliResult waited = Cli("--wait --timeout-ms 1500 --tls-ca " + certs_.other_ca);
  EXPECT_EQ(waited.exit_code, kExitUnreachable) << waited.out;
  EXPECT_TRUE(Contains(waited.out, "TLS handshake")) << waited.out;
}

TEST_F(TlsTest, PlainTextToATlsListenerFailsSayingTls) {
  StartDaemon();
  const absl::Status status = Fib20(*Connect(std::nullopt));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_TRUE(Contains(status.message(), "TLS")) << status;

  CliResult cli = Cli("");
  EXPECT_EQ(cli.exit_code, kExitUnreachable) << cli.out;
  EXPECT_TRUE(Contains(cli.out, "--tls-ca")) << cli.out;
}

// Settings from the config file, as an operator would deploy mutual TLS.
TEST_F(TlsTest, MutualTlsRefusesAClientWithoutACertificateAndServesOneWithIt) {
  const std::string config = dir_.str() + "/turbined.toml";
  std::ofstream(config) << "tls-client-ca = \"" << certs_.ca << "\"\n";
  StartDaemon({"--config", config});

  const absl::Status without = Fib20(*Connect(TlsOptions{.ca_file = certs_.ca}));
  EXPECT_EQ(without.code(), absl::StatusCode::kUnavailable) << without;
  EXPECT_TRUE(Contains(without.message(), "TLS handshake")) << without;
  EXPECT_TRUE(Contains(without.message(), "client certificate")) << without;

  const absl::Status untrusted = Fib20(*Connect(TlsOptions{.ca_file = certs_.ca,
                                                           .cert_file = certs_.other_client_cert,
                                                           .key_file = certs_.other_client_key}));
  EXPECT_EQ(untrusted.code(), absl::StatusCode::kUnavailable) << untrusted;
  EXPECT_TRUE(Contains(untrusted.message(), "client certificate")) << untrusted;

  EXPECT_TRUE(Fib20(*Connect(TlsOptions{.ca_file = certs_.ca,
                                        .cert_file = certs_.client_cert,
                                        .key_file = certs_.client_key}))
                  .ok());

  CliResult no_cert = Cli("--tls-ca " + certs_.ca);
  EXPECT_EQ(no_cert.exit_code, kExitUnreachable) << no_cert.out;
  EXPECT_TRUE(Contains(no_cert.out, "--tls-cert")) << no_cert.out;
  CliResult flags = Cli("--tls-ca " + certs_.ca + " --tls-cert " + certs_.client_cert +
                        " --tls-key " + certs_.client_key);
  EXPECT_EQ(flags.exit_code, 0) << flags.out;
  EXPECT_EQ(flags.out, "6765\n");
  CliResult env =
      Cli("", "TURBINE_TLS_CA=" + certs_.ca + " TURBINE_TLS_CERT=" + certs_.client_cert +
                  " TURBINE_TLS_KEY=" + certs_.client_key);
  EXPECT_EQ(env.exit_code, 0) << env.out;
  EXPECT_EQ(env.out, "6765\n");
  // The refused handshakes are the clients' doing: not in the log at its default level
  // (before, gRPC wrote an error line for each to stderr, whatever --log-level said).
  EXPECT_EQ(daemon_.Stop(SIGTERM), 0) << daemon_.log();
  EXPECT_FALSE(Contains(daemon_.log(), "Handshake failed")) << daemon_.log();
}

// At debug level gRPC's lines are in the log, through it (with its format and level).
TEST_F(TlsTest, GrpcLinesGoThroughTheLogAtItsLevel) {
  StartDaemon({"--tls-client-ca", certs_.ca, "--log-level", "debug"});
  EXPECT_EQ(Fib20(*Connect(TlsOptions{.ca_file = certs_.ca})).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_TRUE(daemon_.WaitForLog("Handshake failed")) << daemon_.log();
  EXPECT_EQ(daemon_.Stop(SIGTERM), 0) << daemon_.log();
  const std::string& log = daemon_.log();
  const size_t line_start = log.rfind('\n', log.find("Handshake failed")) + 1;
  const std::string line = log.substr(line_start, log.find('\n', line_start) - line_start);
  EXPECT_TRUE(Contains(line, "[turbined] [debug] grpc ")) << line;
}

TEST_F(TlsTest, ADaemonCanRequireBothAClientCertificateAndAToken) {
  const std::string token_file = dir_.str() + "/token";
  std::ofstream(token_file) << "s3cret\n";
  StartDaemon({"--tls-client-ca", certs_.ca, "--auth-token-file", token_file});
  const TlsOptions with_cert{
      .ca_file = certs_.ca, .cert_file = certs_.client_cert, .key_file = certs_.client_key};

  EXPECT_EQ(Fib20(*Connect(with_cert)).code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Fib20(*Connect(TlsOptions{.ca_file = certs_.ca}, "s3cret")).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_TRUE(Fib20(*Connect(with_cert, "s3cret")).ok());

  const std::string cert_flags = "--tls-ca " + certs_.ca + " --tls-cert " + certs_.client_cert +
                                 " --tls-key " + certs_.client_key;
  EXPECT_EQ(Cli(cert_flags).exit_code, kExitRefused);
  CliResult both = Cli(cert_flags + " --token-file " + token_file);
  EXPECT_EQ(both.exit_code, 0) << both.out;
  EXPECT_EQ(both.out, "6765\n");
}

TEST_F(TlsTest, TlsFilesThatCannotBeUsedAreNamed) {
  const std::string missing = dir_.str() + "/missing.pem";
  const std::string not_pem = dir_.str() + "/server.ext";  // text, but no PEM block
  const std::string tcp = "127.0.0.1:1";
  ConnectOptions options{.address = tcp, .tls = TlsOptions{.ca_file = missing}};
  absl::Status status = Client::Connect(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(Contains(status.message(), missing)) << status;

  options.tls =
      TlsOptions{.ca_file = certs_.ca, .cert_file = not_pem, .key_file = certs_.client_key};
  status = Client::Connect(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(Contains(status.message(), not_pem)) << status;

  options.tls = TlsOptions{.ca_file = certs_.ca, .cert_file = certs_.client_cert};
  EXPECT_EQ(Client::Connect(options).status().code(), absl::StatusCode::kInvalidArgument)
      << "a certificate without its key";

  // A directory opens and reads as empty: it said "holds no PEM block".
  options.tls = TlsOptions{.ca_file = dir_.str()};
  status = Client::Connect(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(Contains(status.message(), dir_.str() + " is a directory, not a PEM file")) << status;

  // Another certificate's key, and a key with a passphrase: before, gRPC failed to make the
  // channel ("empty address list") and the CLI said the daemon was not running.
  const std::string locked = dir_.str() + "/locked-client.key";
  ASSERT_EQ(std::system(("openssl ec -in '" + certs_.client_key +
                         "' -aes256 -passout pass:abc -out '" + locked + "' 2>/dev/null")
                            .c_str()),
            0);
  for (const std::string& wrong_key : {certs_.other_client_key, locked}) {
    options.tls = TlsOptions{
        .ca_file = certs_.ca, .cert_file = certs_.client_cert, .key_file = wrong_key};
    status = Client::Connect(options).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_TRUE(Contains(status.message(), wrong_key)) << status;
    CliResult refused = RunCli("--connect " + tcp + " --tls-ca " + certs_.ca + " --tls-cert " +
                               certs_.client_cert + " --tls-key " + wrong_key + " ping 2>&1");
    EXPECT_EQ(refused.exit_code, kExitUsage) << refused.out;
    EXPECT_TRUE(Contains(refused.out, wrong_key)) << refused.out;
    EXPECT_FALSE(Contains(refused.out, "cannot reach")) << refused.out;
  }

  options = ConnectOptions{.address = "unix:" + dir_.str() + "/turbined.sock",
                           .tls = TlsOptions{.ca_file = certs_.ca}};
  status = Client::Connect(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(Contains(status.message(), "unix")) << status;

  CliResult cli = RunCli("--connect " + tcp + " --tls-ca " + missing + " ping 2>&1");
  EXPECT_EQ(cli.exit_code, kExitUsage) << cli.out;
  EXPECT_TRUE(Contains(cli.out, missing)) << cli.out;

  {
    DaemonProcess daemon;
    EXPECT_FALSE(daemon.Start({"--data-dir", dir_.str() + "/a", "--listen", "127.0.0.1:0",
                               "--tls-client-ca", certs_.ca}));
    EXPECT_EQ(daemon.Reap(), kExitUsage);
    EXPECT_TRUE(Contains(daemon.log(), "client CA")) << daemon.log();
  }
  {
    DaemonProcess daemon;
    EXPECT_FALSE(daemon.Start({"--data-dir", dir_.str() + "/b", "--listen", "127.0.0.1:0",
                               "--tls-cert", certs_.server_cert, "--tls-key", certs_.server_key,
                               "--tls-client-ca", not_pem}));
    EXPECT_EQ(daemon.Reap(), kExitUsage);
    EXPECT_TRUE(Contains(daemon.log(), not_pem)) << daemon.log();
  }
  {
    // Another certificate's key: gRPC started anyway and failed every handshake after a
    // wait, while the daemon said it was ready.
    DaemonProcess daemon;
    EXPECT_FALSE(daemon.Start({"--data-dir", dir_.str() + "/d", "--listen", "127.0.0.1:0",
                               "--tls-cert", certs_.server_cert, "--tls-key", certs_.client_key}));
    EXPECT_EQ(daemon.Reap(), kExitUsage);
    EXPECT_TRUE(Contains(daemon.log(), "does not hold the key of the certificate")) << daemon.log();
    EXPECT_TRUE(Contains(daemon.log(), certs_.client_key)) << daemon.log();
    // Refused before the data dir is touched: before, the database was opened (and its
    // observations checked) first.
    EXPECT_FALSE(std::filesystem::exists(dir_.path() / "d" / "db")) << daemon.log();
    EXPECT_FALSE(Contains(daemon.log(), "observations")) << daemon.log();
  }
  DaemonProcess daemon;
  EXPECT_FALSE(daemon.Start({"--data-dir", dir_.str() + "/c", "--listen", "127.0.0.1:0",
                             "--tls-cert", certs_.server_cert, "--tls-key", certs_.server_key,
                             "--tls-client-ca", missing}));
  EXPECT_EQ(daemon.Reap(), kExitUsage);
  EXPECT_TRUE(Contains(daemon.log(), missing)) << daemon.log();
}

// A CA file that holds PEM blocks but no certificate (a key given by mistake). Before, the
// daemon logged gRPC's "Unable to create secure server", said it was ready and failed every
// handshake; the CLI said "cannot reach turbined ... empty address list" (exit code 3).
TEST_F(TlsTest, ACaFileWithoutACertificateIsNamed) {
  const std::string key_as_ca = certs_.client_key;
  {
    DaemonProcess daemon;
    EXPECT_FALSE(daemon.Start({"--data-dir", dir_.str() + "/f", "--listen", "127.0.0.1:0",
                               "--tls-cert", certs_.server_cert, "--tls-key", certs_.server_key,
                               "--tls-client-ca", key_as_ca}));
    EXPECT_EQ(daemon.Reap(), kExitUsage);
    EXPECT_TRUE(Contains(daemon.log(), "the TLS client CA file " + key_as_ca +
                                           " holds no certificate OpenSSL can read"))
        << daemon.log();
  }
  const std::string tcp = "127.0.0.1:1";
  ConnectOptions options{.address = tcp, .tls = TlsOptions{.ca_file = key_as_ca}};
  const absl::Status status = Client::Connect(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(Contains(status.message(), "the TLS CA file " + key_as_ca + " holds no certificate"))
      << status;
  CliResult cli = RunCli("--connect " + tcp + " --tls-ca " + key_as_ca + " ping 2>&1");
  EXPECT_EQ(cli.exit_code, kExitUsage) << cli.out;
  EXPECT_TRUE(Contains(cli.out, key_as_ca)) << cli.out;
  EXPECT_FALSE(Contains(cli.out, "cannot reach")) << cli.out;
}

// A key with a passphrase is refused without asking for it, on a terminal too. Before,
// OpenSSL prompted there and the daemon waited for an answer nobody was there to give (and
// with one, gRPC could not use the key and every handshake failed).
TEST_F(TlsTest, AKeyWithAPassphraseIsRefusedWithoutAPromptOnATerminal) {
  const std::string locked = dir_.str() + "/locked.key";
  ASSERT_EQ(std::system(("openssl ec -in '" + certs_.server_key + "' -aes256 -passout pass:abc -out '" +
                         locked + "' 2>/dev/null").c_str()),
            0);
  // On a pseudo-terminal whose input stays open and silent: a prompt would wait there until
  // `timeout` ends it (exit code 124).
  const std::string command = "timeout 20 script -qec \"" + std::string(TURBINED_PATH) +
                              " --data-dir " + dir_.str() + "/e --listen 127.0.0.1:0 --tls-cert " +
                              certs_.server_cert + " --tls-key " + locked +
                              "\" /dev/null 2>&1 < <(exec sleep 25 2>/dev/null)";
  FILE* pipe = ::popen(("bash -c '" + command + "'").c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof(buffer), pipe)) out.append(buffer, n);
  const int status = ::pclose(pipe);
  EXPECT_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, kExitUsage) << out;
  EXPECT_TRUE(Contains(out, "passphrase")) << out;
  EXPECT_TRUE(Contains(out, locked)) << out;
}

}  // namespace
