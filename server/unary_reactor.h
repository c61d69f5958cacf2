// UnaryReactor: a unary call's reactor that knows whether its answer reached
// the client. Like gRPC's DefaultReactor, plus one count: a call finished OK
// whose client never got the status (it cancelled, its deadline passed, or
// shutdown's deadline cancelled the call) is recorded in
// OpenCalls::RecordUndelivered.
//
// Lifetime: created with `new` in the handler; deletes itself in OnDone.
#ifndef MMFUSE_SERVER_UNARY_REACTOR_H_
#define MMFUSE_SERVER_UNARY_REACTOR_H_

#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>

#include <atomic>

#include "server/open_calls.h"

namespace mmfuse::server {

class UnaryReactor final : public grpc::ServerUnaryReactor {
 public:
  // `context` is the call's; `calls` is not owned and outlives the call.
  UnaryReactor(grpc::CallbackServerContext* context, OpenCalls* calls)
      : context_(context), calls_(calls) {}

  // Finish, remembering whether the answer was a success. Once, any thread.
  void FinishWith(const grpc::Status& status) {
    // Release: OnDone reads it on a gRPC thread, ordered by gRPC's own
    // (uninstrumented) synchronisation.
    ok_.store(status.ok(), std::memory_order_release);
    Finish(status);
  }

  void OnCancel() override {}
  void OnDone() override {
    if (ok_.load(std::memory_order_acquire) && context_->IsCancelled()) {
      calls_->RecordUndelivered(1);
    }
    delete this;
  }

 private:
  grpc::CallbackServerContext* const context_;
  OpenCalls* const calls_;
  std::atomic<bool> ok_{false};
};

}  // namespace mmfuse::server

#endif  // MMFUSE_SERVER_UNARY_REACTOR_H_
