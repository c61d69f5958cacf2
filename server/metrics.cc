#include "server/metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace mmfuse::server {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

std::string CodeName(absl::StatusCode code) {
  return absl::AsciiStrToUpper(absl::StatusCodeToString(code));
}

const prometheus::Histogram::BucketBoundaries& BatchBuckets() {
  static const auto* const buckets =
      new prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128};
  return *buckets;
}

const prometheus::Histogram::BucketBoundaries& RatioBuckets() {
  static const auto* const buckets = new prometheus::Histogram::BucketBoundaries{
      0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0};
  return *buckets;
}

prometheus::MetricFamily Family(std::string name, std::string help, prometheus::MetricType type) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  return family;
}

void AddGauge(prometheus::MetricFamily* family, std::vector<prometheus::ClientMetric::Label> labels,
              double value) {
  prometheus::ClientMetric metric;
  metric.label = std::move(labels);
  metric.gauge.value = value;
  family->metric.push_back(std::move(metric));
}

class QueueCollector : public prometheus::Collectable {
 public:
  explicit QueueCollector(std::function<std::vector<QueueSnapshot>()> snapshot)
      : snapshot_(std::move(snapshot)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    prometheus::MetricFamily depth =
        Family("mmfuse_queue_depth", "Requests waiting in the batcher's queues now, by branch.",
               prometheus::MetricType::Gauge);
    prometheus::MetricFamily capacity = Family(
        "mmfuse_queue_capacity",
        "Most requests one queue (branch, length bucket) holds (max_queue_size); beyond it "
        "requests are refused RESOURCE_EXHAUSTED.",
        prometheus::MetricType::Gauge);
    for (const QueueSnapshot& model : snapshot_()) {
      for (const auto& [branch, queued] : model.depth_by_branch) {
        AddGauge(&depth, {{"branch", branch}, {"model", model.model}},
                 static_cast<double>(queued));
      }
      AddGauge(&capacity, {{"model", model.model}}, static_cast<double>(model.capacity));
    }
    return {std::move(depth), std::move(capacity)};
  }

 private:
  std::function<std::vector<QueueSnapshot>()> snapshot_;
};

std::string ReadFile(const char* path) {
  std::ifstream in(path);
  if (!in) return "";
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Fields of /proc/self/stat after the command name (which may hold spaces
// and parentheses: the fields start after the last ')'). fields[0] is
// field 3 (state) of proc(5).
std::vector<std::string> StatFields() {
  const std::string stat = ReadFile("/proc/self/stat");
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return {};
  return absl::StrSplit(absl::string_view(stat).substr(paren + 1), ' ', absl::SkipEmpty());
}

// proc(5) field number `n` (1-based) of /proc/self/stat, or -1.
double StatField(const std::vector<std::string>& fields, int n) {
  const size_t index = static_cast<size_t>(n - 3);
  double value = 0;
  if (index >= fields.size() || !absl::SimpleAtod(fields[index], &value)) return -1;
  return value;
}

// System boot time (seconds since the epoch) from /proc/stat's btime, or -1.
double BootTimeSeconds() {
  std::istringstream in(ReadFile("/proc/stat"));
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "btime ")) {
      double value = 0;
      if (absl::SimpleAtod(absl::string_view(line).substr(6), &value)) return value;
    }
  }
  return -1;
}

int64_t OpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int64_t count = 0;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count - 1;  // Our own descriptor of the directory.
}

class ProcessCollector : public prometheus::Collectable {
 public:
  ProcessCollector()
      : ticks_per_second_(static_cast<double>(sysconf(_SC_CLK_TCK))),
        page_bytes_(static_cast<double>(sysconf(_SC_PAGESIZE))),
        boot_time_seconds_(BootTimeSeconds()) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> families;
    auto add = [&families](const char* name, const char* help, prometheus::MetricType type,
                           double value) {
      if (value < 0) return;
      prometheus::MetricFamily family = Family(name, help, type);
      prometheus::ClientMetric metric;
      if (type == prometheus::MetricType::Counter) {
        metric.counter.value = value;
      } else {
        metric.gauge.value = value;
      }
      family.metric.push_back(std::move(metric));
      families.push_back(std::move(family));
    };
    const std::vector<std::string> stat = StatFields();
    const double utime = StatField(stat, 14);
    const double stime = StatField(stat, 15);
    const double threads = StatField(stat, 20);
    const double start_ticks = StatField(stat, 22);
    const double vsize = StatField(stat, 23);
    const double rss_pages = StatField(stat, 24);
    add("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
        prometheus::MetricType::Counter,
        utime < 0 || stime < 0 ? -1 : (utime + stime) / ticks_per_second_);
    add("process_resident_memory_bytes", "Resident memory size in bytes.",
        prometheus::MetricType::Gauge, rss_pages < 0 ? -1 : rss_pages * page_bytes_);
    add("process_virtual_memory_bytes", "Virtual memory size in bytes.",
        prometheus::MetricType::Gauge, vsize);
    add("process_threads", "Number of OS threads in the process.", prometheus::MetricType::Gauge,
        threads);
    add("process_open_fds", "Number of open file descriptors.", prometheus::MetricType::Gauge,
        static_cast<double>(OpenFds()));
    add("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
        prometheus::MetricType::Gauge,
        start_ticks < 0 || boot_time_seconds_ < 0
            ? -1
            : boot_time_seconds_ + start_ticks / ticks_per_second_);
    return families;
  }

 private:
  const double ticks_per_second_;
  const double page_bytes_;
  const double boot_time_seconds_;
};

}  // namespace

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* const buckets = new prometheus::Histogram::BucketBoundaries{
      50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3,
      25e-3, 50e-3,  100e-3, 250e-3, 500e-3, 1.0, 2.5, 5.0, 10.0};
  return *buckets;
}

ServerMetrics::ServerMetrics(prometheus::Registry* registry, const std::string& version)
    : requests_(BuildCounter()
                    .Name("mmfuse_requests_total")
                    .Help("Classification requests finished, by gRPC status code.")
                    .Register(*registry)),
      rejected_(BuildCounter()
                    .Name("mmfuse_rejected_total")
                    .Help("Requests refused before compute, by reason.")
                    .Register(*registry)),
      branch_selected_(BuildCounter()
                           .Name("mmfuse_branch_selected_total")
                           .Help("Samples computed, by the branch that ran.")
                           .Register(*registry)),
      gflops_(BuildCounter()
                  .Name("mmfuse_gflops_total")
                  .Help("Estimated compute spent on samples, in GFLOPs.")
                  .Register(*registry)),
      request_duration_(BuildHistogram()
                            .Name("mmfuse_request_duration_seconds")
                            .Help("End-to-end server time of a request.")
                            .Register(*registry)),
      queue_duration_(BuildHistogram()
                          .Name("mmfuse_queue_duration_seconds")
                          .Help("Time from admission to the start of the request's batch.")
                          .Register(*registry)),
      compute_duration_(BuildHistogram()
                            .Name("mmfuse_compute_duration_seconds")
                            .Help("Model time of the batch a request ran in.")
                            .Register(*registry)),
      batch_size_(BuildHistogram()
                      .Name("mmfuse_batch_size")
                      .Help("Samples per batch run by the model.")
                      .Register(*registry)),
      model_loaded_(BuildGauge()
                        .Name("mmfuse_model_loaded")
                        .Help("1 while the model is loaded and serving.")
                        .Register(*registry)),
      inflight_(BuildGauge()
                    .Name("mmfuse_inflight_requests")
                    .Help("Requests accepted and not yet answered.")
                    .Register(*registry)
                    .Add({})),
      open_streams_(BuildGauge()
                        .Name("mmfuse_feature_streams_open")
                        .Help("Feature streams (StreamFeatures, StreamFeaturesInteractive) open "
                              "now, their chunks held in memory.")
                        .Register(*registry)
                        .Add({})),
      undelivered_(BuildCounter()
                       .Name("mmfuse_undelivered_responses_total")
                       .Help("Answers computed that never reached their client: it cancelled or "
                             "went away, or shutdown's drain timeout cancelled the call.")
                       .Register(*registry)
                       .Add({})),
      padding_ratio_(BuildHistogram()
                         .Name("mmfuse_padding_ratio")
                         .Help("Fraction of padded frame slots in each batch run by the model.")
                         .Register(*registry)),
      modality_skipped_(BuildCounter()
                            .Name("mmfuse_modality_skipped_total")
                            .Help("Modalities a sample carried that the gate did not compute.")
                            .Register(*registry)),
      gflops_saved_(BuildCounter()
                        .Name("mmfuse_gflops_saved_total")
                        .Help("Estimated GFLOPs the gate avoided: full branch minus the branch "
                              "that ran.")
                        .Register(*registry)),
      gate_load_bias_(BuildGauge()
                          .Name("mmfuse_gate_load_bias")
                          .Help("The gate's current bias toward cheaper branches under load; "
                                "0 = none.")
                          .Register(*registry)) {
  BuildGauge()
      .Name("mmfuse_build_info")
      .Help("Build information; the value is always 1.")
      .Register(*registry)
      .Add({{"version", version}})
      .Set(1);
}

void ServerMetrics::RecordRequest(const std::string& model, absl::StatusCode code,
                                  absl::Duration total, const std::string& protocol) {
  requests_.Add({{"model", model}, {"code", CodeName(code)}, {"protocol", protocol}}).Increment();
  request_duration_.Add({{"model", model}, {"protocol", protocol}}, LatencyBuckets())
      .Observe(absl::ToDoubleSeconds(total));
}

void ServerMetrics::RecordRejected(const std::string& model, const std::string& reason) {
  rejected_.Add({{"model", model}, {"reason", reason}}).Increment();
}

void ServerMetrics::RecordComputed(const std::string& model, const std::string& branch,
                                   absl::Duration queue, absl::Duration compute, double gflops) {
  branch_selected_.Add({{"model", model}, {"branch", branch}}).Increment();
  gflops_.Add({{"model", model}}).Increment(gflops);
  queue_duration_.Add({{"model", model}}, LatencyBuckets())
      .Observe(absl::ToDoubleSeconds(queue));
  compute_duration_.Add({{"model", model}}, LatencyBuckets())
      .Observe(absl::ToDoubleSeconds(compute));
}

void ServerMetrics::RecordBatch(const std::string& model, int size) {
  batch_size_.Add({{"model", model}}, BatchBuckets()).Observe(size);
}

void ServerMetrics::SetModelLoaded(const std::string& model, bool loaded) {
  model_loaded_.Add({{"model", model}}).Set(loaded ? 1 : 0);
}

void ServerMetrics::AddInflight(double delta) { inflight_.Increment(delta); }

void ServerMetrics::AddOpenStreams(double delta) { open_streams_.Increment(delta); }

void ServerMetrics::RecordUndelivered(int64_t n) { undelivered_.Increment(static_cast<double>(n)); }

void ServerMetrics::RecordPadding(const std::string& model, double ratio) {
  padding_ratio_.Add({{"model", model}}, RatioBuckets()).Observe(ratio);
}

void ServerMetrics::RecordModalitySkipped(const std::string& model, const std::string& modality) {
  modality_skipped_.Add({{"model", model}, {"modality", modality}}).Increment();
}

void ServerMetrics::RecordGflopsSaved(const std::string& model, double gflops) {
  // prometheus-cpp ignores negative increments; a counter never goes down.
  gflops_saved_.Add({{"model", model}}).Increment(gflops);
}

void ServerMetrics::SetGateLoadBias(const std::string& model, double bias) {
  gate_load_bias_.Add({{"model", model}}).Set(bias);
}

void CollectingRegistry::AddCollectable(std::shared_ptr<prometheus::Collectable> collectable) {
  absl::MutexLock lock(&mu_);
  collectables_.push_back(std::move(collectable));
}

std::vector<prometheus::MetricFamily> CollectingRegistry::Collect() const {
  std::vector<prometheus::MetricFamily> families = prometheus::Registry::Collect();
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables;
  {
    absl::MutexLock lock(&mu_);
    collectables = collectables_;
  }
  // Collected outside our lock: a collectable reads other locks (batchers).
  for (const auto& collectable : collectables) {
    std::vector<prometheus::MetricFamily> more = collectable->Collect();
    families.insert(families.end(), std::make_move_iterator(more.begin()),
                    std::make_move_iterator(more.end()));
  }
  return families;
}

std::shared_ptr<prometheus::Collectable> MakeQueueCollector(
    std::function<std::vector<QueueSnapshot>()> snapshot) {
  return std::make_shared<QueueCollector>(std::move(snapshot));
}

std::shared_ptr<prometheus::Collectable> MakeProcessCollector() {
  return std::make_shared<ProcessCollector>();
}

}  // namespace mmfuse::server
