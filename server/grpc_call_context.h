// The CallContext (server/served_model.h) of a request arriving on a gRPC
// callback call: its arrival time, the client's deadline and a cancellation
// probe. Shared by every service in front of ServedModel, so deadlines and
// cancellation behave the same whatever the protocol.
#ifndef MMFUSE_SERVER_GRPC_CALL_CONTEXT_H_
#define MMFUSE_SERVER_GRPC_CALL_CONTEXT_H_

#include <grpcpp/server_context.h>
#include <grpcpp/support/callback_common.h>

#include "absl/time/time.h"
#include "server/served_model.h"

namespace mmfuse::server {

// The client's deadline; absl::InfiniteFuture() when it set none.
absl::Time Deadline(const grpc::CallbackServerContext* context);

// `context` must outlive every use of the result's is_cancelled (it lives
// until the call's OnDone).
CallContext MakeCallContext(grpc::CallbackServerContext* context, absl::Time received);

}  // namespace mmfuse::server

#endif  // MMFUSE_SERVER_GRPC_CALL_CONTEXT_H_
