// ServerMetrics: the Prometheus series the server records, on an injected
// registry (tests make their own). Names follow Prometheus conventions: base
// units, `mmfuse_` prefix, `_total` counters, `_seconds` durations.
//
// Thread-safety: thread-safe (prometheus-cpp families and metrics are).
#ifndef MMFUSE_SERVER_METRICS_H_
#define MMFUSE_SERVER_METRICS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace mmfuse::server {

class ServerMetrics {
 public:
  // `registry` is not owned and must outlive this object.
  ServerMetrics(prometheus::Registry* registry, const std::string& version);

  // One finished request (any outcome), end to end.
  void RecordRequest(const std::string& model, absl::StatusCode code, absl::Duration total);
  // A request refused before it was queued; `reason` is one of invalid,
  // queue_full, unavailable, not_found.
  void RecordRejected(const std::string& model, const std::string& reason);
  // A request answered by the model, with the batch it ran in.
  void RecordComputed(const std::string& model, const std::string& branch, absl::Duration queue,
                      absl::Duration compute, double gflops);
  void RecordBatch(const std::string& model, int size);
  void SetModelLoaded(const std::string& model, bool loaded);
  void AddInflight(double delta);

 private:
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Counter>& rejected_;
  prometheus::Family<prometheus::Counter>& branch_selected_;
  prometheus::Family<prometheus::Counter>& gflops_;
  prometheus::Family<prometheus::Histogram>& request_duration_;
  prometheus::Family<prometheus::Histogram>& queue_duration_;
  prometheus::Family<prometheus::Histogram>& compute_duration_;
  prometheus::Family<prometheus::Histogram>& batch_size_;
  prometheus::Family<prometheus::Gauge>& model_loaded_;
  prometheus::Gauge& inflight_;
};

// Latency buckets from 50 us to 10 s, roughly 2.5x apart.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets();

}  // namespace mmfuse::server

#endif  // MMFUSE_SERVER_METRICS_H_
