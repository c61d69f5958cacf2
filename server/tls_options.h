// TLS for the gRPC port: which PEM files to use and the server credentials
// built from them. No files = plaintext (the default); a certificate and key
// = TLS; a client CA as well = mutual TLS, where every client must present a
// certificate signed by that CA (the handshake fails otherwise).
//
// Thread-safety: plain functions on values.
#ifndef MMFUSE_SERVER_TLS_OPTIONS_H_
#define MMFUSE_SERVER_TLS_OPTIONS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace grpc {
class ServerCredentials;
}  // namespace grpc

namespace mmfuse::server {

struct TlsOptions {
  // PEM certificate chain the server presents. Empty = plaintext. Default "".
  std::string cert_file;
  // PEM private key of cert_file. Required with cert_file. Default "".
  std::string key_file;
  // PEM CA bundle; when set, clients must present a certificate it signed
  // (mutual TLS). Requires cert_file. Default "".
  std::string client_ca_file;
};

// Whether `options` asks for TLS (a certificate is given).
bool TlsEnabled(const TlsOptions& options);

// "plaintext", "TLS" or "mutual TLS", for the start-up log line.
std::string DescribeTransport(const TlsOptions& options);

// Insecure credentials when no file is given, else TLS credentials from the
// files. INVALID_ARGUMENT naming the field for an incomplete set (key without
// certificate, ...) or a file that holds no PEM block; NOT_FOUND naming the
// field and path for a file that cannot be read.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsOptions& options);

}  // namespace mmfuse::server

#endif  // MMFUSE_SERVER_TLS_OPTIONS_H_
