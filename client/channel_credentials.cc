#include "client/channel_credentials.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "common/pem_file.h"

namespace mmfuse::client {

bool UsesTls(const ChannelSecurityOptions& options) {
  return options.tls || !options.ca_file.empty() || !options.cert_file.empty() ||
         !options.key_file.empty();
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const ChannelSecurityOptions& options) {
  if (!UsesTls(options)) return grpc::InsecureChannelCredentials();
  if (options.cert_file.empty() != options.key_file.empty()) {
    return absl::InvalidArgumentError(
        "tls_cert_file and tls_key_file (the client certificate) go together: give both or "
        "neither");
  }
  grpc::SslCredentialsOptions ssl;
  if (!options.ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadPemFile("tls_ca_file", options.ca_file);
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *std::move(ca);
  }
  if (!options.cert_file.empty()) {
    absl::StatusOr<std::string> cert = ReadPemFile("tls_cert_file", options.cert_file);
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPemFile("tls_key_file", options.key_file);
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *std::move(cert);
    ssl.pem_private_key = *std::move(key);
  }
  return grpc::SslCredentials(ssl);
}

void ApplyChannelSecurityArguments(const ChannelSecurityOptions& options,
                                   grpc::ChannelArguments* args) {
  if (UsesTls(options) && !options.server_name.empty()) {
    args->SetSslTargetNameOverride(options.server_name);
  }
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> CreateSecureChannel(
    const std::string& target, const ChannelSecurityOptions& options) {
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      MakeChannelCredentials(options);
  if (!credentials.ok()) return credentials.status();
  grpc::ChannelArguments args;
  ApplyChannelSecurityArguments(options, &args);
  return grpc::CreateCustomChannel(target, *credentials, args);
}

}  // namespace mmfuse::client
