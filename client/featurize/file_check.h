// Checks every media reader runs first, so a missing or empty file gets the
// same clear error whichever decoder would have read it.
#ifndef MMFUSE_CLIENT_FEATURIZE_FILE_CHECK_H_
#define MMFUSE_CLIENT_FEATURIZE_FILE_CHECK_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace mmfuse::featurize {

// Largest media file read, in bytes.
inline constexpr int64_t kMaxMediaFileBytes = int64_t{4} << 30;

// The size of regular file `path`; NOT_FOUND if it does not exist,
// INVALID_ARGUMENT if it is not a regular file, is empty or exceeds
// kMaxMediaFileBytes. `kind` ("audio", "image", "video") starts the message.
absl::StatusOr<int64_t> CheckMediaFile(const std::string& kind, const std::string& path);

// The whole file (after CheckMediaFile).
absl::StatusOr<std::string> ReadMediaFile(const std::string& kind, const std::string& path);

}  // namespace mmfuse::featurize

#endif  // MMFUSE_CLIENT_FEATURIZE_FILE_CHECK_H_
