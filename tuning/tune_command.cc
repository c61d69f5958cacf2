#include "tuning/tune_command.h"

#include <cstdio>
#include <fstream>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/classifier_client.h"
#include "common/status_macros.h"
#include "data/dataset_io.h"
#include "model/device.h"
#include "model/model_config.h"
#include "model/model_package.h"

namespace mmfuse::tuning {
namespace {

BatchingSetting PackageSetting(const v1::ModelConfig& config) {
  BatchingSetting s;
  s.max_batch_size = static_cast<int>(config.batching().max_batch_size());
  s.max_queue_delay_us = config.batching().max_queue_delay_us();
  s.length_bucket_ratio = config.batching().length_bucket_ratio();
  s.max_batch_tokens = static_cast<int64_t>(config.batching().max_batch_tokens());
  return s;
}

}  // namespace

absl::Status RunTuneCommand(const TuneCommandOptions& options) {
  if (options.model_dir.empty()) return absl::InvalidArgumentError("tune: --model_dir is empty");
  if (options.data.empty()) {
    return absl::InvalidArgumentError("tune: --data is empty; give the dataset to replay");
  }
  if (options.max_samples < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("tune: --max_samples=", options.max_samples, " must be >= 0 (0 = all)"));
  }
  MMFUSE_RETURN_IF_ERROR(ValidateSearchOptions(options.search));
  MMFUSE_ASSIGN_OR_RETURN(const std::string device, model::ResolveDevice(options.device));
  MMFUSE_ASSIGN_OR_RETURN(std::shared_ptr<model::ModelPackage> package,
                          model::LoadModelPackage(options.model_dir, device, options.precision));
  MMFUSE_ASSIGN_OR_RETURN(std::vector<v1::Example> examples, data::ReadDataset(options.data));
  if (examples.empty()) return absl::InvalidArgumentError(absl::StrCat(options.data, " is empty"));
  if (options.max_samples > 0 && examples.size() > static_cast<size_t>(options.max_samples)) {
    examples.resize(options.max_samples);
  }
  std::vector<v1::ClassifyRequest> requests;
  requests.reserve(examples.size());
  for (const v1::Example& example : examples) {
    requests.push_back(client::RequestFromExample(example));
    requests.back().clear_request_id();
  }
  const v1::ModelConfig config = package->config;
  const double mean_tokens = MeanTokens(config, requests);
  MMFUSE_ASSIGN_OR_RETURN(std::unique_ptr<ServedTrialRunner> runner,
                          ServedTrialRunner::Create(package, std::move(requests), options.trials));
  SearchOptions search = options.search;
  if (!search.progress) {
    search.progress = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  }
  const absl::Time started = absl::Now();
  MMFUSE_ASSIGN_OR_RETURN(v1::TuningRecord record,
                          SearchBatching(*runner, PackageSetting(config), mean_tokens, search));
  record.set_date(absl::FormatTime(absl::RFC3339_sec, started, absl::UTCTimeZone()));
  record.set_machine(DescribeMachine());
  record.set_dataset(options.data);
  record.set_workers(options.trials.workers);
  record.set_concurrency(options.trials.EffectiveConcurrency());
  record.set_seconds_per_trial(static_cast<float>(absl::ToDoubleSeconds(options.trials.trial)));

  const std::string table = FormatTuningTable(record);
  std::printf("%s", table.c_str());
  if (!options.table_out.empty()) {
    std::ofstream out(options.table_out, std::ios::trunc);
    out << table;
    if (!out.good()) return absl::InternalError(absl::StrCat("tune: cannot write ", options.table_out));
  }
  if (options.dry_run) return absl::OkStatus();
  // The file as written (not the loaded package's view of it) plus the
  // tuning.
  MMFUSE_ASSIGN_OR_RETURN(v1::ModelConfig tuned,
                          model::ReadModelConfig(options.model_dir + "/config.pbtxt"));
  ApplyTuning(record, &tuned);
  MMFUSE_RETURN_IF_ERROR(model::RewriteModelConfig(options.model_dir, tuned));
  std::fprintf(stderr, "tune: wrote %s/config.pbtxt (batching and the tuning record)\n",
               options.model_dir.c_str());
  return absl::OkStatus();
}

}  // namespace mmfuse::tuning
