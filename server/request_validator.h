// Request validation against a model's config: every check the server makes
// before a request may cost compute. Errors are INVALID_ARGUMENT naming the
// field, the value and the limit. No LibTorch, no gRPC.
#ifndef MMFUSE_SERVER_REQUEST_VALIDATOR_H_
#define MMFUSE_SERVER_REQUEST_VALIDATOR_H_

#include "absl/status/status.h"
#include "mmfuse/v1/classifier.pb.h"
#include "mmfuse/v1/model_config.pb.h"

namespace mmfuse::server {

// Longest request_id accepted, in bytes.
inline constexpr size_t kMaxRequestIdBytes = 128;

// `priority_levels` bounds ClassifyRequest.priority (0 = default, 1..levels).
absl::Status ValidateRequest(const v1::ModelConfig& config, int priority_levels,
                             const v1::ClassifyRequest& request);

}  // namespace mmfuse::server

#endif  // MMFUSE_SERVER_REQUEST_VALIDATOR_H_
