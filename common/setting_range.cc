#include "common/setting_range.h"

#include "absl/strings/str_cat.h"

namespace mmfuse {

absl::Status CheckSetting(absl::string_view name, int64_t value, SettingRange range) {
  if (value >= range.min && value <= range.max) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(name, "=", value, " is outside [", range.min, ", ", range.max, "]"));
}

}  // namespace mmfuse
