// ResponseWriteQueue: the responses of one streaming call waiting to be
// written (ResponseWriteQueueOf<Response> for any response message). gRPC
// allows one write in flight per call, so Push hands out a
// write only when none is in flight, and WriteDone the next one queued. Once
// a write fails the client is gone and later responses are dropped;
// dropped() counts every response that was queued and never written.
//
// Thread-safety: not thread-safe; the owning reactor calls it under its own
// lock. current() stays valid (and unchanged) until the next WriteDone, so
// the reactor may pass it to StartWrite after unlocking.
#ifndef MMFUSE_SERVER_RESPONSE_WRITE_QUEUE_H_
#define MMFUSE_SERVER_RESPONSE_WRITE_QUEUE_H_

#include <cstdint>
#include <deque>
#include <utility>

#include "mmfuse/v1/classifier.pb.h"

namespace mmfuse::server {

template <typename Response>
class ResponseWriteQueueOf {
 public:
  // Queues `response`; returns the write to start now, or nullptr.
  Response* Push(Response response) {
    if (broken_) {
      ++dropped_;
      return nullptr;
    }
    if (in_flight_) {
      pending_.push_back(std::move(response));
      return nullptr;
    }
    current_ = std::move(response);
    in_flight_ = true;
    return &current_;
  }

  // The write in flight completed (`ok` false: the client is gone); returns
  // the next write to start, or nullptr.
  Response* WriteDone(bool ok) {
    if (!ok) {
      broken_ = true;
      dropped_ += 1 + static_cast<int64_t>(pending_.size());
      pending_.clear();
    }
    if (pending_.empty()) {
      in_flight_ = false;
      return nullptr;
    }
    current_ = std::move(pending_.front());
    pending_.pop_front();
    return &current_;
  }

  // Drops what is queued (the write in flight, if any, completes).
  void Clear() {
    dropped_ += static_cast<int64_t>(pending_.size());
    pending_.clear();
  }

  bool in_flight() const { return in_flight_; }
  bool has_pending() const { return !pending_.empty(); }
  bool broken() const { return broken_; }
  // Responses queued and never written: a failed write, what was pending
  // behind it or cleared, and pushes after the failure.
  int64_t dropped() const { return dropped_; }

 private:
  std::deque<Response> pending_;
  Response current_;  // The write in flight.
  bool in_flight_ = false;
  bool broken_ = false;
  int64_t dropped_ = 0;
};

// mmfuse.v1's streams.
using ResponseWriteQueue = ResponseWriteQueueOf<v1::ClassifyResponse>;

}  // namespace mmfuse::server

#endif  // MMFUSE_SERVER_RESPONSE_WRITE_QUEUE_H_
