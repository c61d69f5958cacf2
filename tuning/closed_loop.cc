#include "tuning/closed_loop.h"

#include <algorithm>
#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"

namespace mmfuse::tuning {
namespace {

// What one caller thread saw in the measured window.
struct CallerLog {
  std::vector<absl::Duration> latencies;
  int64_t batch_sum = 0;
  int64_t failed = 0;
  absl::Status first_error;
  absl::Time last_answer = absl::InfinitePast();
};

// Shared by the callers of one run.
struct Window {
  absl::Time start;
  absl::Time end;  // At least until here...
  int min_answers = 1;
  std::atomic<int64_t> answered{0};  // ...and until this reaches min_answers,
  std::atomic<int64_t> failed{0};    // or a request failed.

  bool Over(absl::Time now) const {
    return now >= end && (answered.load() >= min_answers || failed.load() > 0);
  }
};

absl::Duration Percentile(std::vector<absl::Duration>& sorted_latencies, double q) {
  if (sorted_latencies.empty()) return absl::ZeroDuration();
  const size_t i = std::min(sorted_latencies.size() - 1,
                            static_cast<size_t>(q * static_cast<double>(sorted_latencies.size())));
  return sorted_latencies[i];
}

// Sends requests one at a time until the window is over, logging the
// answers that arrive in it.
void RunCaller(server::ServedModel& served, const std::vector<v1::ClassifyRequest>& requests,
               std::atomic<size_t>& next_request, Window& window, CallerLog* log) {
  v1::ClassifyResponse response;
  while (true) {
    const absl::Time sent = absl::Now();
    if (window.Over(sent)) return;
    const v1::ClassifyRequest& request =
        requests[next_request.fetch_add(1, std::memory_order_relaxed) % requests.size()];
    response.Clear();
    absl::Notification answered;
    absl::Status status;
    served.Classify(&request, &response, server::CallContext{sent}, [&](absl::Status s) {
      status = std::move(s);
      answered.Notify();
    });
    answered.WaitForNotification();
    const absl::Time received = absl::Now();
    if (!status.ok()) {
      if (log->failed++ == 0) log->first_error = status;
      window.failed.fetch_add(1);
      continue;
    }
    if (received >= window.start) {
      log->latencies.push_back(received - sent);
      log->batch_sum += response.batch_size();
      log->last_answer = received;
      window.answered.fetch_add(1);
    }
  }
}

}  // namespace

absl::StatusOr<ClosedLoopResult> RunClosedLoop(server::ServedModel& served,
                                               const std::vector<v1::ClassifyRequest>& requests,
                                               const ClosedLoopOptions& options) {
  if (requests.empty()) return absl::InvalidArgumentError("closed loop: no requests to send");
  if (options.concurrency < 1 || options.concurrency > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("closed loop: concurrency=", options.concurrency, " is outside [1, 1024]"));
  }
  if (options.warmup < absl::ZeroDuration() || options.duration <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "closed loop: warmup=", absl::FormatDuration(options.warmup), " must be >= 0 and duration=",
        absl::FormatDuration(options.duration), " > 0"));
  }
  if (options.min_answers < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("closed loop: min_answers=", options.min_answers, " must be >= 1"));
  }
  Window window;
  window.start = absl::Now() + options.warmup;
  window.end = window.start + options.duration;
  window.min_answers = options.min_answers;
  std::atomic<size_t> next_request{0};
  std::vector<CallerLog> logs(options.concurrency);
  std::vector<std::thread> callers;
  callers.reserve(options.concurrency);
  for (int i = 0; i < options.concurrency; ++i) {
    callers.emplace_back(RunCaller, std::ref(served), std::cref(requests), std::ref(next_request),
                         std::ref(window), &logs[i]);
  }
  for (std::thread& caller : callers) caller.join();

  ClosedLoopResult result;
  std::vector<absl::Duration> latencies;
  int64_t batch_sum = 0;
  for (CallerLog& log : logs) {
    latencies.insert(latencies.end(), log.latencies.begin(), log.latencies.end());
    batch_sum += log.batch_sum;
    if (log.failed > 0 && result.failed == 0) result.first_error = log.first_error;
    result.failed += log.failed;
  }
  std::sort(latencies.begin(), latencies.end());
  result.answered = static_cast<int64_t>(latencies.size());
  absl::Time last_answer = window.end;
  for (const CallerLog& log : logs) last_answer = std::max(last_answer, log.last_answer);
  result.window = last_answer - window.start;
  result.throughput = static_cast<double>(result.answered) / absl::ToDoubleSeconds(result.window);
  result.p50 = Percentile(latencies, 0.5);
  result.p99 = Percentile(latencies, 0.99);
  if (result.answered > 0) {
    result.mean_batch = static_cast<double>(batch_sum) / static_cast<double>(result.answered);
  }
  return result;
}

}  // namespace mmfuse::tuning
