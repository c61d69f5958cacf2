#include "server/metrics.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"

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
                    .Add({})) {
  BuildGauge()
      .Name("mmfuse_build_info")
      .Help("Build information; the value is always 1.")
      .Register(*registry)
      .Add({{"version", version}})
      .Set(1);
}

void ServerMetrics::RecordRequest(const std::string& model, absl::StatusCode code,
                                  absl::Duration total) {
  requests_.Add({{"model", model}, {"code", CodeName(code)}}).Increment();
  request_duration_.Add({{"model", model}}, LatencyBuckets())
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

}  // namespace mmfuse::server
