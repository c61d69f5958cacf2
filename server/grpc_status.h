// The one place absl::Status becomes grpc::Status (codes map one to one).
#ifndef MMFUSE_SERVER_GRPC_STATUS_H_
#define MMFUSE_SERVER_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace mmfuse::server {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace mmfuse::server

#endif  // MMFUSE_SERVER_GRPC_STATUS_H_
