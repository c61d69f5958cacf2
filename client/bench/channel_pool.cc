#include "client/bench/channel_pool.h"

#include <grpc/grpc.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/strings/str_cat.h"

namespace mmfuse::bench {
namespace {

const char* StateName(grpc_connectivity_state state) {
  switch (state) {
    case GRPC_CHANNEL_IDLE:
      return "IDLE";
    case GRPC_CHANNEL_CONNECTING:
      return "CONNECTING";
    case GRPC_CHANNEL_READY:
      return "READY";
    case GRPC_CHANNEL_TRANSIENT_FAILURE:
      return "TRANSIENT_FAILURE";
    case GRPC_CHANNEL_SHUTDOWN:
      return "SHUTDOWN";
  }
  return "UNKNOWN";
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChannelPool>> ChannelPool::Connect(
    const ChannelPoolOptions& options) {
  if (options.targets.empty()) return absl::InvalidArgumentError("targets is empty");
  if (options.channels_per_target < 1 || options.channels_per_target > 256) {
    return absl::InvalidArgumentError(
        absl::StrCat("channels_per_target=", options.channels_per_target, " must be in [1, 256]"));
  }
  if (options.connect_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "connect_timeout=", absl::FormatDuration(options.connect_timeout), " must be > 0"));
  }
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      client::MakeChannelCredentials(options.security);
  if (!credentials.ok()) return credentials.status();
  auto pool = std::unique_ptr<ChannelPool>(new ChannelPool());
  for (int c = 0; c < options.channels_per_target; ++c) {
    for (const std::string& target : options.targets) {
      grpc::ChannelArguments args;
      // Own connection per channel: without these, channels to one target
      // share a subchannel (one TCP connection) through the global pool.
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      args.SetInt("mmfuse.bench.channel_index", c);
      args.SetMaxReceiveMessageSize(-1);
      client::ApplyChannelSecurityArguments(options.security, &args);
      pool->channels_.push_back(grpc::CreateCustomChannel(target, *credentials, args));
      pool->targets_.push_back(target);
    }
  }
  // Every channel connects concurrently (try_to_connect); then wait for each.
  for (auto& channel : pool->channels_) channel->GetState(/*try_to_connect=*/true);
  const absl::Time deadline = absl::Now() + options.connect_timeout;
  for (size_t i = 0; i < pool->channels_.size(); ++i) {
    if (!pool->channels_[i]->WaitForConnected(absl::ToChronoTime(deadline))) {
      return absl::UnavailableError(absl::StrCat(
          "cannot connect to server ", pool->targets_[i],
          " within connect_timeout=", absl::FormatDuration(options.connect_timeout),
          " (channel state ", StateName(pool->channels_[i]->GetState(false)), "); is it running?"));
    }
  }
  return pool;
}

}  // namespace mmfuse::bench
