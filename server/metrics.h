// ServerMetrics: the Prometheus series the server records, on an injected
// registry (tests make their own). Names follow Prometheus conventions: base
// units, `mmfuse_` prefix, `_total` counters, `_seconds` durations. Every
// series is listed, with an example query, in docs/METRICS.md.
//
// Also here: CollectingRegistry, a registry that adds series computed at
// scrape time by Collectables (queue depths read from the batchers, process
// metrics read from /proc), so nothing polls between scrapes.
//
// Thread-safety: thread-safe (prometheus-cpp families and metrics are; the
// registry guards its collectables).
#ifndef MMFUSE_SERVER_METRICS_H_
#define MMFUSE_SERVER_METRICS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "prometheus/registry.h"

namespace mmfuse::server {

// Values of the `protocol` label of the request series: mmfuse.v1 (the
// native API) and the Open Inference Protocol (KServe v2).
inline constexpr char kProtocolMmfuse[] = "mmfuse";
inline constexpr char kProtocolKserve[] = "kserve";

class ServerMetrics {
 public:
  // `registry` is not owned and must outlive this object.
  ServerMetrics(prometheus::Registry* registry, const std::string& version);

  // One finished request (any outcome), end to end, in
  // mmfuse_requests_total{model,code,protocol} and
  // mmfuse_request_duration_seconds{model,protocol}. `protocol` is the API
  // it came in on: kProtocolMmfuse or kProtocolKserve.
  void RecordRequest(const std::string& model, absl::StatusCode code, absl::Duration total,
                     const std::string& protocol = kProtocolMmfuse);
  // A request refused or dropped before compute; `reason` is one of
  // invalid, queue_full, deadline, cancelled, unavailable, error, and for
  // feature streams stream_limit (max_stream_bytes/max_stream_chunks) and
  // stream_timeout (stream or idle timeout).
  void RecordRejected(const std::string& model, const std::string& reason);
  // A request answered by the model, with the batch it ran in.
  void RecordComputed(const std::string& model, const std::string& branch, absl::Duration queue,
                      absl::Duration compute, double gflops);
  void RecordBatch(const std::string& model, int size);
  void SetModelLoaded(const std::string& model, bool loaded);
  void AddInflight(double delta);
  // Feature streams (StreamFeatures*) open now: +1 when one opens, -1 when
  // its state is freed.
  void AddOpenStreams(double delta);
  // `n` computed answers never reached their client (server/open_calls.h):
  // mmfuse_undelivered_responses_total += n.
  void RecordUndelivered(int64_t n);

  // Called by ServedModel's batch processor (gating and padding; the lead
  // wires the calls):
  // Fraction of padded frames in one batch, in [0, 1]: padded / (padded +
  // real) frame slots over the modalities the batch ran. One observation
  // per batch, in mmfuse_padding_ratio{model}.
  void RecordPadding(const std::string& model, double ratio);
  // The gate skipped `modality` for one sample that carried it:
  // mmfuse_modality_skipped_total{model,modality} += 1.
  void RecordModalitySkipped(const std::string& model, const std::string& modality);
  // GFLOPs the gate avoided for one sample (full branch minus the branch
  // run, >= 0): mmfuse_gflops_saved_total{model} += gflops.
  void RecordGflopsSaved(const std::string& model, double gflops);
  // The gate's current bias toward cheaper branches from load (0 = none):
  // mmfuse_gate_load_bias{model} = bias.
  void SetGateLoadBias(const std::string& model, double bias);

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
  prometheus::Gauge& open_streams_;
  prometheus::Counter& undelivered_;
  prometheus::Family<prometheus::Histogram>& padding_ratio_;
  prometheus::Family<prometheus::Counter>& modality_skipped_;
  prometheus::Family<prometheus::Counter>& gflops_saved_;
  prometheus::Family<prometheus::Gauge>& gate_load_bias_;
};

// Latency buckets from 50 us to 10 s, roughly 2.5x apart.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets();

// A prometheus::Registry that also serializes, at every scrape, the
// families of the Collectables added to it (prometheus-cpp's Registry takes
// only its own families; MetricsHttpServer serializes Collect()).
class CollectingRegistry : public prometheus::Registry {
 public:
  // Collected at every later scrape, after the registry's own families.
  void AddCollectable(std::shared_ptr<prometheus::Collectable> collectable);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  mutable absl::Mutex mu_;
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables_ ABSL_GUARDED_BY(mu_);
};

// One model's queues at scrape time.
struct QueueSnapshot {
  std::string model;
  // Most tasks one queue (branch, length bucket) holds: max_queue_size.
  int64_t capacity = 0;
  // Tasks waiting, by branch name; every branch of the model, zeros too.
  std::vector<std::pair<std::string, int64_t>> depth_by_branch;
};

// mmfuse_queue_depth{model,branch} and mmfuse_queue_capacity{model}, from
// `snapshot`, called on the scraping thread at every scrape (it must be
// thread-safe and must not block for long).
std::shared_ptr<prometheus::Collectable> MakeQueueCollector(
    std::function<std::vector<QueueSnapshot>()> snapshot);

// The standard process_* series of this process, read from /proc/self at
// every scrape: process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_threads, process_open_fds,
// process_start_time_seconds. A series whose /proc file cannot be read is
// left out of that scrape.
std::shared_ptr<prometheus::Collectable> MakeProcessCollector();

}  // namespace mmfuse::server

#endif  // MMFUSE_SERVER_METRICS_H_
