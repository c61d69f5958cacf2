// Channel security for clients of mmfuse-server: plaintext (the default),
// TLS verifying the server against a CA, or mutual TLS presenting a client
// certificate. Shared by ClassifierClient, the mmfuse CLI and mmfuse-bench so
// the three speak to a TLS server the same way.
//
// Thread-safety: plain functions on values.
#ifndef MMFUSE_CLIENT_CHANNEL_CREDENTIALS_H_
#define MMFUSE_CLIENT_CHANNEL_CREDENTIALS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace grpc {
class Channel;
class ChannelArguments;
class ChannelCredentials;
}  // namespace grpc

namespace mmfuse::client {

struct ChannelSecurityOptions {
  // Use TLS. Implied by any of the files below. Default false (plaintext).
  bool tls = false;
  // PEM CA bundle verifying the server certificate; empty = the system's
  // roots. Default "".
  std::string ca_file;
  // PEM client certificate and its key, for mutual TLS; both or neither.
  // Default "".
  std::string cert_file;
  std::string key_file;
  // Name the server certificate must carry instead of the target's host
  // (e.g. "localhost" when dialling an IP). Default "" = the target's host.
  std::string server_name;
};

// Whether `options` asks for TLS (tls or any file set).
bool UsesTls(const ChannelSecurityOptions& options);

// Insecure credentials for plaintext, else SSL credentials from the files.
// INVALID_ARGUMENT for a certificate without key (or the reverse) or a file
// with no PEM block; NOT_FOUND naming the field and path for an unreadable
// file.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const ChannelSecurityOptions& options);

// Adds what `options` needs to channel arguments (the server name override).
void ApplyChannelSecurityArguments(const ChannelSecurityOptions& options,
                                   grpc::ChannelArguments* args);

// A channel to `target` with `options`' security; errors as
// MakeChannelCredentials.
absl::StatusOr<std::shared_ptr<grpc::Channel>> CreateSecureChannel(
    const std::string& target, const ChannelSecurityOptions& options);

}  // namespace mmfuse::client

#endif  // MMFUSE_CLIENT_CHANNEL_CREDENTIALS_H_
