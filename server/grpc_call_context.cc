#include "server/grpc_call_context.h"

#include <chrono>

namespace mmfuse::server {

absl::Time Deadline(const grpc::CallbackServerContext* context) {
  const auto deadline = context->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

CallContext MakeCallContext(grpc::CallbackServerContext* context, absl::Time received) {
  CallContext call;
  call.received = received;
  call.deadline = Deadline(context);
  // IsCancelled is safe from any thread on the callback API.
  call.is_cancelled = [context] { return context->IsCancelled(); };
  return call;
}

}  // namespace mmfuse::server
