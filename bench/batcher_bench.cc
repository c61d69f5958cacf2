// batcher_bench: the batcher's own overhead. One producer submits tasks at a
// constant rate; a processor that does no work records when each task's
// batch reached it. Prints the enqueue-to-model-call latency distribution.
//
//   build/bin/batcher_bench --rate 10000 --seconds 3 --max_batch_size 8 --max_queue_delay_us 0
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "batching/batcher.h"

ABSL_FLAG(double, rate, 10000, "Tasks per second.");
ABSL_FLAG(double, seconds, 3, "How long to submit.");
ABSL_FLAG(int, max_batch_size, 8, "Batcher max batch size.");
ABSL_FLAG(int64_t, max_queue_delay_us, 0, "Batcher max queue delay.");
ABSL_FLAG(int, workers, 2, "Batcher workers.");

namespace mmfuse::batching {
namespace {

using Clock = std::chrono::steady_clock;

struct TimedPayload : Payload {
  Clock::time_point submitted;
};

// Records, per task, the time from Submit to the start of its batch.
class RecordingProcessor : public BatchProcessor {
 public:
  std::vector<absl::Status> ProcessBatch(absl::Span<Task* const> batch) override {
    const Clock::time_point now = Clock::now();
    absl::MutexLock lock(&mu_);
    for (Task* task : batch) {
      const auto* p = static_cast<TimedPayload*>(task->payload.get());
      latencies_us_.push_back(std::chrono::duration<double, std::micro>(now - p->submitted).count());
    }
    batches_ += 1;
    return std::vector<absl::Status>(batch.size(), absl::OkStatus());
  }
  std::vector<double> TakeLatencies(int64_t* batches) {
    absl::MutexLock lock(&mu_);
    *batches = batches_;
    return std::move(latencies_us_);
  }

 private:
  absl::Mutex mu_;
  std::vector<double> latencies_us_ ABSL_GUARDED_BY(mu_);
  int64_t batches_ ABSL_GUARDED_BY(mu_) = 0;
};

double Percentile(std::vector<double>& v, double q) {
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1)));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

int Main() {
  RecordingProcessor processor;
  BatcherOptions options;
  options.max_batch_size = absl::GetFlag(FLAGS_max_batch_size);
  options.max_queue_delay = absl::Microseconds(absl::GetFlag(FLAGS_max_queue_delay_us));
  options.num_workers = absl::GetFlag(FLAGS_workers);
  options.max_queue_size = 1 << 20;
  auto batcher = Batcher::Create(options, &processor);
  if (!batcher.ok()) {
    std::fprintf(stderr, "%s\n", std::string(batcher.status().message()).c_str());
    return 1;
  }
  const double rate = absl::GetFlag(FLAGS_rate);
  const int64_t total = static_cast<int64_t>(rate * absl::GetFlag(FLAGS_seconds));
  const Clock::time_point start = Clock::now();
  std::atomic<int64_t> failed{0};
  for (int64_t i = 0; i < total; ++i) {
    std::this_thread::sleep_until(start + std::chrono::nanoseconds(static_cast<int64_t>(i * 1e9 / rate)));
    auto task = std::make_unique<Task>();
    auto payload = std::make_unique<TimedPayload>();
    payload->submitted = Clock::now();
    task->payload = std::move(payload);
    task->done = [&failed](absl::Status s, std::unique_ptr<Task>) {
      if (!s.ok()) failed.fetch_add(1);
    };
    (*batcher)->Submit(std::move(task));
  }
  (*batcher)->Shutdown();
  int64_t batches = 0;
  std::vector<double> latencies = processor.TakeLatencies(&batches);
  if (latencies.empty()) return 1;
  std::printf("rate %.0f/s, %zu tasks in %lld batches (mean %.2f), max_batch_size %d, "
              "max_queue_delay %lld us, %d workers, failed %lld\n",
              rate, latencies.size(), static_cast<long long>(batches),
              static_cast<double>(latencies.size()) / batches, options.max_batch_size,
              static_cast<long long>(absl::GetFlag(FLAGS_max_queue_delay_us)), options.num_workers,
              static_cast<long long>(failed.load()));
  std::printf("enqueue to model call: p50 %.1f us, p90 %.1f us, p99 %.1f us\n",
              Percentile(latencies, 0.5), Percentile(latencies, 0.9), Percentile(latencies, 0.99));
  return 0;
}

}  // namespace
}  // namespace mmfuse::batching

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return mmfuse::batching::Main();
}
