// The ranges of the serving settings, shared by the server's flags
// (server/settings.h) and the package's batching config
// (model/model_config.cc), and the check that names a setting, its value and
// its range. A bad setting stops start-up; it never falls back to a default.
#ifndef MMFUSE_COMMON_SETTING_RANGE_H_
#define MMFUSE_COMMON_SETTING_RANGE_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace mmfuse {

// Inclusive bounds.
struct SettingRange {
  int64_t min;
  int64_t max;
};

namespace ranges {
inline constexpr SettingRange kPort{0, 65535};  // 0 = any free port.
inline constexpr SettingRange kWorkers{1, 256};
inline constexpr SettingRange kMaxBatchSize{1, 4096};
inline constexpr SettingRange kMaxQueueDelayUs{0, 10'000'000};  // 10 s.
inline constexpr SettingRange kMaxQueueSize{1, 1'000'000};
inline constexpr SettingRange kMaxBatchTokens{1, int64_t{1} << 32};
inline constexpr SettingRange kPriorityLevels{1, 16};
inline constexpr SettingRange kDefaultTimeoutMs{1, 86'400'000};  // A day.
inline constexpr SettingRange kMaxQueueTimeMs{1, 86'400'000};
inline constexpr SettingRange kTargetQueueWaitUs{1, 60'000'000};
inline constexpr SettingRange kMaxReceiveMessageBytes{1024, INT32_MAX};
inline constexpr SettingRange kDrainTimeoutS{0, 3600};
inline constexpr SettingRange kMaxStreamBytes{1, int64_t{1} << 40};
inline constexpr SettingRange kMaxStreamChunks{1, 1'000'000'000};
inline constexpr SettingRange kStreamTimeoutMs{1, 86'400'000};
}  // namespace ranges

// OK when `value` is in `range`; else INVALID_ARGUMENT
// "<name>=<value> is outside [<min>, <max>]" (`name` as the user wrote it:
// "--max_batch_size", "batching.max_batch_size").
absl::Status CheckSetting(absl::string_view name, int64_t value, SettingRange range);

}  // namespace mmfuse

#endif  // MMFUSE_COMMON_SETTING_RANGE_H_
