#include "tests/reliability/test_certs.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"

namespace mmfuse::testing {
namespace {

// P-256 keys: quick to make, and gRPC's TLS stack takes them.
constexpr char kNewKey[] = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

absl::Status Run(const std::string& command) {
  const std::string quiet = absl::StrCat(command, " >/dev/null 2>&1");
  if (std::system(quiet.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("openssl failed: ", command));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TestCerts> MakeTestCerts(const std::string& dir) {
  std::filesystem::create_directories(dir);
  const auto path = [&](const char* name) { return (std::filesystem::path(dir) / name).string(); };
  TestCerts certs;
  certs.ca_cert = path("ca.pem");
  certs.server_cert = path("server.pem");
  certs.server_key = path("server.key");
  certs.client_cert = path("client.pem");
  certs.client_key = path("client.key");
  certs.rogue_cert = path("rogue.pem");
  certs.rogue_key = path("rogue.key");
  std::ofstream(path("server.ext")) << "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                                    << "extendedKeyUsage=serverAuth\n";
  std::ofstream(path("client.ext")) << "extendedKeyUsage=clientAuth\n";
  const std::vector<std::string> commands = {
      absl::StrCat("openssl req -x509 ", kNewKey, " -days 2 -subj '/CN=mmfuse test CA' -keyout ",
                   path("ca.key"), " -out ", certs.ca_cert),
      absl::StrCat("openssl req ", kNewKey, " -subj '/CN=localhost' -keyout ", certs.server_key,
                   " -out ", path("server.csr")),
      absl::StrCat("openssl x509 -req -days 2 -in ", path("server.csr"), " -CA ", certs.ca_cert,
                   " -CAkey ", path("ca.key"), " -CAcreateserial -extfile ", path("server.ext"),
                   " -out ", certs.server_cert),
      absl::StrCat("openssl req ", kNewKey, " -subj '/CN=mmfuse test client' -keyout ",
                   certs.client_key, " -out ", path("client.csr")),
      absl::StrCat("openssl x509 -req -days 2 -in ", path("client.csr"), " -CA ", certs.ca_cert,
                   " -CAkey ", path("ca.key"), " -CAcreateserial -extfile ", path("client.ext"),
                   " -out ", certs.client_cert),
      absl::StrCat("openssl req -x509 ", kNewKey, " -days 2 -subj '/CN=rogue client' -keyout ",
                   certs.rogue_key, " -out ", certs.rogue_cert),
  };
  for (const std::string& command : commands) {
    absl::Status status = Run(command);
    if (!status.ok()) return status;
  }
  return certs;
}

}  // namespace mmfuse::testing
