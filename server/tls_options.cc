#include "server/tls_options.h"

#include <grpcpp/security/server_credentials.h>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace mmfuse::server {
namespace {

// The contents of the PEM file `path`, given as option `field`.
absl::StatusOr<std::string> ReadPem(const std::string& field, const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return absl::NotFoundError(absl::StrCat(field, "=", path, ": cannot read the file"));
  }
  std::ostringstream contents;
  contents << file.rdbuf();
  // gRPC would only fail at the first handshake; refuse at start-up instead.
  if (!absl::StrContains(contents.str(), "-----BEGIN ")) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, "=", path, ": no PEM block (-----BEGIN ...) in the file"));
  }
  return contents.str();
}

}  // namespace

bool TlsEnabled(const TlsOptions& options) { return !options.cert_file.empty(); }

std::string DescribeTransport(const TlsOptions& options) {
  if (!TlsEnabled(options)) return "plaintext";
  return options.client_ca_file.empty() ? "TLS" : "mutual TLS";
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsOptions& options) {
  if (options.cert_file.empty()) {
    if (!options.key_file.empty()) {
      return absl::InvalidArgumentError("tls_key_file is set but tls_cert_file is not");
    }
    if (!options.client_ca_file.empty()) {
      return absl::InvalidArgumentError(
          "tls_client_ca_file (mutual TLS) needs tls_cert_file and tls_key_file");
    }
    return grpc::InsecureServerCredentials();
  }
  if (options.key_file.empty()) {
    return absl::InvalidArgumentError("tls_cert_file is set but tls_key_file is not");
  }
  grpc::SslServerCredentialsOptions ssl;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  absl::StatusOr<std::string> cert = ReadPem("tls_cert_file", options.cert_file);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem("tls_key_file", options.key_file);
  if (!key.ok()) return key.status();
  pair.cert_chain = *std::move(cert);
  pair.private_key = *std::move(key);
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!options.client_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadPem("tls_client_ca_file", options.client_ca_file);
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *std::move(ca);
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace mmfuse::server
