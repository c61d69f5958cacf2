// ChannelPool: the gRPC channels a bench run spreads its requests over:
// `channels_per_target` separate connections to each server address, in
// round-robin order (target 0 channel 0, target 1 channel 0, ..., target 0
// channel 1, ...), so request i on channel i % size() alternates servers.
// Connect() waits until every channel is connected, so an unreachable server
// fails the run up front with an error naming it.
//
// Thread-safety: thread-safe (immutable after Connect; channels are).
#ifndef MMFUSE_CLIENT_BENCH_CHANNEL_POOL_H_
#define MMFUSE_CLIENT_BENCH_CHANNEL_POOL_H_

#include <grpcpp/channel.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/channel_credentials.h"

namespace mmfuse::bench {

struct ChannelPoolOptions {
  // Server addresses ("host:port"). At least one.
  std::vector<std::string> targets;
  // Connections per address. In [1, 256]. Default 1.
  int channels_per_target = 1;
  // Longest Connect() waits for each connection. > 0. Default 5 s.
  absl::Duration connect_timeout = absl::Seconds(5);
  // Plaintext, TLS or mutual TLS (client/channel_credentials.h). Default
  // plaintext.
  client::ChannelSecurityOptions security;
};

class ChannelPool {
 public:
  // Fails with UNAVAILABLE naming the target if a channel does not connect
  // within connect_timeout (a TLS handshake that fails counts as not
  // connecting); INVALID_ARGUMENT for bad options; security's errors as
  // client::MakeChannelCredentials.
  static absl::StatusOr<std::unique_ptr<ChannelPool>> Connect(const ChannelPoolOptions& options);

  // In round-robin order (see the file comment). Never empty.
  const std::vector<std::shared_ptr<grpc::Channel>>& channels() const { return channels_; }
  // targets()[i] is the address of channels()[i].
  const std::vector<std::string>& targets() const { return targets_; }
  int size() const { return static_cast<int>(channels_.size()); }

 private:
  ChannelPool() = default;

  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::string> targets_;
};

}  // namespace mmfuse::bench

#endif  // MMFUSE_CLIENT_BENCH_CHANNEL_POOL_H_
