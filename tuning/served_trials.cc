#include "tuning/served_trials.h"

#include <fstream>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/setting_range.h"
#include "common/status_macros.h"
#include "model/model_config.h"
#include "model/model_package.h"
#include "server/served_model.h"
#include "tuning/closed_loop.h"

namespace mmfuse::tuning {
namespace {

server::ServingOptions ServingOptionsFor(const BatchingSetting& s, int workers) {
  server::ServingOptions options;
  options.workers = workers;
  options.max_batch_size = s.max_batch_size;
  options.max_queue_delay_us = s.max_queue_delay_us;
  options.length_bucket_ratio = s.length_bucket_ratio;
  options.max_batch_tokens = s.max_batch_tokens;  // 0 = no bound.
  return options;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServedTrialRunner>> ServedTrialRunner::Create(
    std::shared_ptr<const model::ModelPackage> package, std::vector<v1::ClassifyRequest> requests,
    const ServedTrialOptions& options) {
  if (package == nullptr) return absl::InvalidArgumentError("tune: no model package");
  if (requests.empty()) return absl::InvalidArgumentError("tune: no requests to replay");
  MMFUSE_RETURN_IF_ERROR(CheckSetting("workers", options.workers, ranges::kWorkers));
  MMFUSE_RETURN_IF_ERROR(CheckSetting("concurrency", options.concurrency, {0, 1024}));
  if (options.trial <= absl::ZeroDuration() || options.warmup < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tune: trial=", absl::FormatDuration(options.trial), " must be > 0 and warmup=",
                     absl::FormatDuration(options.warmup), " >= 0"));
  }
  return std::unique_ptr<ServedTrialRunner>(
      new ServedTrialRunner(std::move(package), std::move(requests), options));
}

absl::StatusOr<std::unique_ptr<server::ServedModel>> ServedTrialRunner::Serve(
    const BatchingSetting& setting) const {
  return server::ServedModel::Create(package_, ServingOptionsFor(setting, options_.workers));
}

absl::StatusOr<ClosedLoopResult> ServedTrialRunner::Load(server::ServedModel& served,
                                                         int concurrency,
                                                         absl::Duration duration) const {
  ClosedLoopOptions load;
  load.concurrency = concurrency;
  load.warmup = options_.warmup;
  load.duration = duration;
  return RunClosedLoop(served, requests_, load);
}

absl::StatusOr<TrialFigures> ServedTrialRunner::Measure(const BatchingSetting& setting) {
  MMFUSE_ASSIGN_OR_RETURN(std::unique_ptr<server::ServedModel> served, Serve(setting));
  MMFUSE_ASSIGN_OR_RETURN(ClosedLoopResult high,
                          Load(*served, options_.EffectiveConcurrency(), options_.trial));
  MMFUSE_ASSIGN_OR_RETURN(ClosedLoopResult low,
                          Load(*served, options_.workers, options_.trial / 2));
  served->Shutdown();
  TrialFigures figures;
  figures.throughput = high.throughput;
  figures.p50 = high.p50;
  figures.p99 = high.p99;
  figures.mean_batch = high.mean_batch;
  figures.low_load_p50 = low.p50;
  figures.failed = high.failed + low.failed;
  figures.first_error = high.failed > 0 ? high.first_error : low.first_error;
  return figures;
}

absl::StatusOr<double> ServedTrialRunner::Throughput(const BatchingSetting& setting) {
  MMFUSE_ASSIGN_OR_RETURN(std::unique_ptr<server::ServedModel> served, Serve(setting));
  MMFUSE_ASSIGN_OR_RETURN(ClosedLoopResult high,
                          Load(*served, options_.EffectiveConcurrency(), options_.trial));
  served->Shutdown();
  if (high.failed > 0) return high.first_error;
  return high.throughput;
}

double MeanTokens(const v1::ModelConfig& config, const std::vector<v1::ClassifyRequest>& requests) {
  if (requests.empty()) return 0;
  const std::vector<model::Branch> branches = model::ResolveBranches(config);
  const model::Branch& full = branches[model::FullBranch(branches)];
  double total = 0;
  for (const v1::ClassifyRequest& request : requests) {
    total += static_cast<double>(
        model::BatchingKeyOf(full, model::FramesOf(config, request.features()), 0).tokens);
  }
  return total / static_cast<double>(requests.size());
}

std::string DescribeMachine() {
  std::string cpu = "unknown CPU";
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (absl::StartsWith(line, "model name")) {
      cpu = std::string(absl::StripAsciiWhitespace(line.substr(line.find(':') + 1)));
      break;
    }
  }
  return absl::StrCat(std::thread::hardware_concurrency(), " cores, ", cpu);
}

}  // namespace mmfuse::tuning
