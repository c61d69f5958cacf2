// TLS and mutual TLS on the gRPC port, with certificates made by openssl at
// test time: the server in process, clients through ClassifierClient, the
// mmfuse CLI and mmfuse-bench.
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/channel_credentials.h"
#include "client/classifier_client.h"
#include "data/generator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "server/tls_options.h"
#include "tests/reliability/test_certs.h"
#include "tests/server/loopback_server.h"
#include "tests/testing/test_package.h"

namespace mmfuse {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr absl::Duration kTimeout = absl::Seconds(10);

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // A directory per process: ctest runs each case in a process of its
    // own, two at a time, and a shared one let one process overwrite the
    // key another had just paired with its certificate.
    absl::StatusOr<testing::TestCerts> certs =
        testing::MakeTestCerts((fs::path(::testing::TempDir()) /
                               absl::StrCat("mmfuse_tls_certs_", getpid()))
                                  .string());
    ASSERT_TRUE(certs.ok()) << certs.status();
    certs_ = new testing::TestCerts(*certs);
  }
  static void TearDownTestSuite() {
    delete certs_;
    certs_ = nullptr;
  }

  void StartServer(const server::TlsOptions& tls) {
    ASSERT_NE(certs_, nullptr);
    server::ServerOptions options = testing::LoopbackServerOptions();
    options.metrics = false;
    options.serving.workers = 1;
    options.tls = tls;
    absl::StatusOr<std::unique_ptr<server::Server>> server = server::Server::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    target_ = testing::LoopbackTarget(*server_);
  }

  server::TlsOptions ServerTls() const {
    server::TlsOptions tls;
    tls.cert_file = certs_->server_cert;
    tls.key_file = certs_->server_key;
    return tls;
  }
  server::TlsOptions ServerMutualTls() const {
    server::TlsOptions tls = ServerTls();
    tls.client_ca_file = certs_->ca_cert;
    return tls;
  }
  client::ChannelSecurityOptions ClientTls() const {
    client::ChannelSecurityOptions security;
    security.ca_file = certs_->ca_cert;
    return security;
  }

  // Classify through a client with `security`.
  absl::Status ClassifyWith(const client::ChannelSecurityOptions& security,
                            const std::string& target = "") {
    absl::StatusOr<std::unique_ptr<client::ClassifierClient>> client =
        client::ClassifierClient::Create(target.empty() ? target_ : target, security);
    if (!client.ok()) return client.status();
    absl::StatusOr<v1::ClassifyResponse> response =
        (*client)->Classify(client::RequestFromExample(generator_.Next()), kTimeout);
    if (response.ok() && response->top_k_size() != 1) return absl::InternalError("no answer");
    return response.status();
  }

  static testing::TestCerts* certs_;
  data::Generator generator_{testing::SmallGeneratorOptions(), 5};
  std::unique_ptr<server::Server> server_;
  std::string target_;
};

testing::TestCerts* TlsTest::certs_ = nullptr;

TEST_F(TlsTest, TlsCallWorksByIpAndByName) {
  StartServer(ServerTls());
  EXPECT_TRUE(ClassifyWith(ClientTls()).ok());
  // The certificate names localhost too.
  EXPECT_TRUE(ClassifyWith(ClientTls(), absl::StrCat("localhost:", server_->port())).ok());
}

TEST_F(TlsTest, PlaintextClientAgainstTlsServerFailsCleanly) {
  StartServer(ServerTls());
  const absl::Status status = ClassifyWith(client::ChannelSecurityOptions{});
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  // The server is unharmed.
  EXPECT_TRUE(ClassifyWith(ClientTls()).ok());
}

TEST_F(TlsTest, TlsClientAgainstPlaintextServerFailsCleanly) {
  StartServer(server::TlsOptions{});
  const absl::Status status = ClassifyWith(ClientTls());
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_TRUE(ClassifyWith(client::ChannelSecurityOptions{}).ok());
}

TEST_F(TlsTest, ServerNotSignedByTheClientsCaIsRefused) {
  StartServer(ServerTls());
  client::ChannelSecurityOptions security;
  security.ca_file = certs_->rogue_cert;  // Trusts another CA only.
  EXPECT_EQ(ClassifyWith(security).code(), absl::StatusCode::kUnavailable);
}

TEST_F(TlsTest, WrongServerNameIsRefused) {
  StartServer(ServerTls());
  client::ChannelSecurityOptions security = ClientTls();
  security.server_name = "mmfuse.example.com";  // Not in the certificate.
  EXPECT_EQ(ClassifyWith(security).code(), absl::StatusCode::kUnavailable);
}

TEST_F(TlsTest, MutualTlsWithoutClientCertIsRefused) {
  StartServer(ServerMutualTls());
  const absl::Status status = ClassifyWith(ClientTls());
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
}

TEST_F(TlsTest, MutualTlsWithClientCertOfAnotherCaIsRefused) {
  StartServer(ServerMutualTls());
  client::ChannelSecurityOptions security = ClientTls();
  security.cert_file = certs_->rogue_cert;
  security.key_file = certs_->rogue_key;
  EXPECT_EQ(ClassifyWith(security).code(), absl::StatusCode::kUnavailable);
}

TEST_F(TlsTest, MutualTlsWithClientCertWorks) {
  StartServer(ServerMutualTls());
  client::ChannelSecurityOptions security = ClientTls();
  security.cert_file = certs_->client_cert;
  security.key_file = certs_->client_key;
  EXPECT_TRUE(ClassifyWith(security).ok());
  // Refused clients do not disturb accepted ones.
  EXPECT_EQ(ClassifyWith(ClientTls()).code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(ClassifyWith(security).ok());
}

TEST_F(TlsTest, BadServerTlsOptionsFailAtStartNamingTheField) {
  const std::string not_pem = (fs::path(::testing::TempDir()) / "mmfuse_not_pem.txt").string();
  std::ofstream(not_pem) << "not a certificate\n";
  struct Case {
    server::TlsOptions tls;
    absl::StatusCode code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"", certs_->server_key, ""}, absl::StatusCode::kInvalidArgument,
       "tls_key_file is set but tls_cert_file is not"},
      {{certs_->server_cert, "", ""}, absl::StatusCode::kInvalidArgument,
       "tls_cert_file is set but tls_key_file is not"},
      {{"", "", certs_->ca_cert}, absl::StatusCode::kInvalidArgument,
       "tls_client_ca_file (mutual TLS) needs tls_cert_file"},
      {{"/nonexistent/server.pem", certs_->server_key, ""}, absl::StatusCode::kNotFound,
       "tls_cert_file=/nonexistent/server.pem: cannot read the file"},
      {{certs_->server_cert, not_pem, ""}, absl::StatusCode::kInvalidArgument,
       "tls_key_file=" + not_pem + ": no PEM block"},
  };
  for (const Case& c : cases) {
    server::ServerOptions options = testing::LoopbackServerOptions();
    options.metrics = false;
    options.tls = c.tls;
    absl::StatusOr<std::unique_ptr<server::Server>> server = server::Server::Start(options);
    ASSERT_FALSE(server.ok()) << c.message;
    EXPECT_EQ(server.status().code(), c.code) << server.status();
    EXPECT_THAT(std::string(server.status().message()), HasSubstr(c.message));
  }
}

TEST_F(TlsTest, BadClientTlsOptionsAreRefusedNamingTheField) {
  client::ChannelSecurityOptions half;
  half.cert_file = certs_->client_cert;  // No key.
  absl::StatusOr<std::unique_ptr<client::ClassifierClient>> client =
      client::ClassifierClient::Create("127.0.0.1:1", half);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(client.status().message()), HasSubstr("tls_key_file"));

  client::ChannelSecurityOptions missing;
  missing.ca_file = "/nonexistent/ca.pem";
  client = client::ClassifierClient::Create("127.0.0.1:1", missing);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(client.status().message()), HasSubstr("tls_ca_file=/nonexistent/ca.pem"));
}

// --metrics_host: the metrics port listens on its own address (here
// 127.0.0.2), not on the gRPC one.
TEST(MetricsHostTest, MetricsPortListensOnlyOnMetricsHost) {
  server::ServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.metrics_host = "127.0.0.2";
  options.metrics_port = 0;
  options.packages.push_back(testing::SmallPackage());
  absl::StatusOr<std::unique_ptr<server::Server>> server = server::Server::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  httplib::Client on_metrics_host("127.0.0.2", (*server)->metrics_port());
  auto scraped = on_metrics_host.Get("/metrics");
  ASSERT_TRUE(scraped);
  EXPECT_EQ(scraped->status, 200);
  httplib::Client on_host("127.0.0.1", (*server)->metrics_port());
  on_host.set_connection_timeout(2);
  EXPECT_FALSE(on_host.Get("/metrics"));
}

// The mmfuse CLI and mmfuse-bench take the same --tls_* flags.
TEST_F(TlsTest, CliAndBenchSpeakMutualTls) {
  StartServer(ServerMutualTls());
  const std::string flags =
      absl::StrCat(" --server=", target_, " --tls_ca_file=", certs_->ca_cert,
                   " --tls_cert_file=", certs_->client_cert, " --tls_key_file=", certs_->client_key);
  const std::string log = (fs::path(::testing::TempDir()) / "mmfuse_tls_cli.log").string();
  const auto run = [&](const std::string& command) {
    const int status = std::system(absl::StrCat(command, " >", log, " 2>&1").c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  EXPECT_EQ(run(absl::StrCat(MMFUSE_CLI_BINARY, " health", flags)), 0);
  // (info, not classify: the CLI generates samples for the default package.)
  EXPECT_EQ(run(absl::StrCat(MMFUSE_CLI_BINARY, " info", flags)), 0);
  // Without the client certificate the CLI fails, and says so.
  EXPECT_NE(run(absl::StrCat(MMFUSE_CLI_BINARY, " health --server=", target_,
                             " --tls_ca_file=", certs_->ca_cert)),
            0);
  EXPECT_EQ(run(absl::StrCat(MMFUSE_BENCH_BINARY, " --requests=20 --concurrency=2 --csv", flags)),
            0);
  std::ifstream file(log);
  const std::string csv((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  EXPECT_THAT(csv, HasSubstr(",20,20,0,")) << csv;  // sent=20 ok=20 errors=0.
}

}  // namespace
}  // namespace mmfuse
