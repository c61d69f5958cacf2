#include "server/tls_options.h"

#include <grpcpp/security/server_credentials.h>

#include "common/pem_file.h"

namespace mmfuse::server {

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
  absl::StatusOr<std::string> cert = ReadPemFile("tls_cert_file", options.cert_file);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPemFile("tls_key_file", options.key_file);
  if (!key.ok()) return key.status();
  pair.cert_chain = *std::move(cert);
  pair.private_key = *std::move(key);
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!options.client_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadPemFile("tls_client_ca_file", options.client_ca_file);
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *std::move(ca);
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace mmfuse::server
