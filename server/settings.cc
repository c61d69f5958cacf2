#include "server/settings.h"

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/setting_range.h"
#include "common/status_macros.h"
#include "model/model_config.h"

namespace mmfuse::server {
namespace {

template <typename T>
absl::Status CheckIfSet(absl::string_view flag, const std::optional<T>& value,
                        SettingRange range) {
  return value.has_value() ? CheckSetting(flag, *value, range) : absl::OkStatus();
}

// Durations are checked in their flag's unit, rounded down (a fraction of
// it, possible only through the C++ API, cannot sneak under a minimum).
absl::Status CheckDuration(absl::string_view flag, absl::Duration value, absl::Duration unit,
                           SettingRange range) {
  absl::Duration remainder;
  return CheckSetting(flag, absl::IDivDuration(absl::Floor(value, unit), unit, &remainder), range);
}

absl::Status CheckServing(const ServingOptions& s) {
  MMFUSE_RETURN_IF_ERROR(CheckSetting("--workers", s.workers, ranges::kWorkers));
  MMFUSE_RETURN_IF_ERROR(CheckIfSet("--max_batch_size", s.max_batch_size, ranges::kMaxBatchSize));
  MMFUSE_RETURN_IF_ERROR(
      CheckIfSet("--max_queue_delay_us", s.max_queue_delay_us, ranges::kMaxQueueDelayUs));
  MMFUSE_RETURN_IF_ERROR(CheckIfSet("--max_queue_size", s.max_queue_size, ranges::kMaxQueueSize));
  MMFUSE_RETURN_IF_ERROR(
      CheckIfSet("--max_batch_tokens", s.max_batch_tokens, ranges::kMaxBatchTokens));
  MMFUSE_RETURN_IF_ERROR(CheckIfSet("--priority_levels", s.priority_levels, ranges::kPriorityLevels));
  MMFUSE_RETURN_IF_ERROR(
      CheckIfSet("--default_timeout_ms", s.default_timeout_ms, ranges::kDefaultTimeoutMs));
  MMFUSE_RETURN_IF_ERROR(
      CheckIfSet("--max_queue_time_ms", s.max_queue_time_ms, ranges::kMaxQueueTimeMs));
  if (s.length_bucket_ratio.has_value() && *s.length_bucket_ratio != 0 &&
      !(*s.length_bucket_ratio >= 1.05 && *s.length_bucket_ratio <= 16)) {
    return absl::InvalidArgumentError(absl::StrCat("--length_bucket_ratio=", *s.length_bucket_ratio,
                                                   " is outside [1.05, 16] (0 = none)"));
  }
  if (s.adaptive_load_bias) {
    MMFUSE_RETURN_IF_ERROR(CheckDuration("--target_queue_wait_us", s.load_bias.target_wait,
                                         absl::Microseconds(1), ranges::kTargetQueueWaitUs));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateServerOptions(const ServerOptions& o) {
  if (o.model_dirs.empty() && o.packages.empty()) {
    return absl::InvalidArgumentError("--model_dir is empty: give at least one model directory");
  }
  for (const std::string& dir : o.model_dirs) {
    if (dir.empty()) return absl::InvalidArgumentError("--model_dir has an empty entry");
    // The package's batching settings take the flags' ranges. A package
    // that cannot be read or parsed is not a setting: loading reports it.
    const std::string path = dir + "/config.pbtxt";
    absl::StatusOr<v1::ModelConfig> config = model::ReadModelConfig(path);
    if (!config.ok()) continue;
    absl::Status batching = model::ValidateBatchingConfig(config->batching());
    if (!batching.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", batching.message()));
    }
  }
  if (o.host.empty()) return absl::InvalidArgumentError("--host is empty");
  MMFUSE_RETURN_IF_ERROR(CheckSetting("--port", o.port, ranges::kPort));
  if (o.metrics) {
    MMFUSE_RETURN_IF_ERROR(CheckSetting("--metrics_port", o.metrics_port, ranges::kPort));
  }
  MMFUSE_RETURN_IF_ERROR(CheckSetting("--max_receive_message_bytes", o.max_receive_message_bytes,
                                      ranges::kMaxReceiveMessageBytes));
  MMFUSE_RETURN_IF_ERROR(
      CheckDuration("--drain_timeout_s", o.drain_timeout, absl::Seconds(1), ranges::kDrainTimeoutS));
  MMFUSE_RETURN_IF_ERROR(
      CheckSetting("--max_stream_bytes", o.max_stream_bytes, ranges::kMaxStreamBytes));
  MMFUSE_RETURN_IF_ERROR(
      CheckSetting("--max_stream_chunks", o.max_stream_chunks, ranges::kMaxStreamChunks));
  MMFUSE_RETURN_IF_ERROR(CheckDuration("--stream_timeout_ms", o.stream_timeout,
                                       absl::Milliseconds(1), ranges::kStreamTimeoutMs));
  MMFUSE_RETURN_IF_ERROR(CheckDuration("--stream_idle_timeout_ms", o.stream_idle_timeout,
                                       absl::Milliseconds(1), ranges::kStreamTimeoutMs));
  return CheckServing(o.serving);
}

}  // namespace mmfuse::server
