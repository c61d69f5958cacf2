#include "tuning/search.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/setting_range.h"
#include "common/status_macros.h"

namespace mmfuse::tuning {
namespace {

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

std::string Describe(const BatchingSetting& s) {
  return absl::StrFormat("max_batch_size %d, delay %d us, ratio %g, tokens %d", s.max_batch_size,
                         s.max_queue_delay_us, s.length_bucket_ratio, s.max_batch_tokens);
}

v1::TuningTrial TrialOf(const std::string& step, const BatchingSetting& s, const TrialFigures& f) {
  v1::TuningTrial trial;
  trial.set_step(step);
  trial.set_max_batch_size(s.max_batch_size);
  trial.set_max_queue_delay_us(s.max_queue_delay_us);
  trial.set_length_bucket_ratio(static_cast<float>(s.length_bucket_ratio));
  trial.set_max_batch_tokens(s.max_batch_tokens);
  trial.set_throughput(static_cast<float>(f.throughput));
  trial.set_p50_us(static_cast<float>(absl::ToDoubleMicroseconds(f.p50)));
  trial.set_p99_us(static_cast<float>(absl::ToDoubleMicroseconds(f.p99)));
  trial.set_mean_batch(static_cast<float>(f.mean_batch));
  trial.set_low_load_p50_us(static_cast<float>(absl::ToDoubleMicroseconds(f.low_load_p50)));
  return trial;
}

// `base` with one field set to each of `values` in turn.
template <typename T, typename SetField>
std::vector<BatchingSetting> Vary(const BatchingSetting& base, const std::vector<T>& values,
                                  SetField set_field) {
  std::vector<BatchingSetting> settings;
  for (const T& value : values) {
    BatchingSetting s = base;
    set_field(s, value);
    settings.push_back(s);
  }
  return settings;
}

// The search's state: every trial so far and the one leading.
class Search {
 public:
  Search(TrialRunner& runner, const SearchOptions& options) : runner_(runner), options_(options) {}

  // Measures `setting` (once: a setting seen before returns its index).
  absl::StatusOr<int> Try(const std::string& step, const BatchingSetting& setting) {
    for (int i = 0; i < record_.trials_size(); ++i) {
      if (SettingOf(record_.trials(i)) == setting) return i;
    }
    MMFUSE_ASSIGN_OR_RETURN(TrialFigures figures, runner_.Measure(setting));
    v1::TuningTrial* trial = record_.add_trials();
    *trial = TrialOf(step, setting, figures);
    const int index = record_.trials_size() - 1;
    if (index == 0) baseline_low_p50_us_ = trial->low_load_p50_us();
    trial->set_eligible(figures.failed == 0 &&
                        trial->low_load_p50_us() <=
                            baseline_low_p50_us_ * (1 + options_.max_latency_increase));
    if (options_.progress) {
      options_.progress(absl::StrFormat(
          "tune: %-20s %s: %.1f/s, p99 %.0f us, mean batch %.2f, lone p50 %.0f us%s%s", step,
          Describe(setting), trial->throughput(), trial->p99_us(), trial->mean_batch(),
          trial->low_load_p50_us(), trial->eligible() ? "" : " (not eligible)",
          figures.failed > 0 ? absl::StrCat(" ", figures.failed, " failed: ",
                                            figures.first_error.ToString())
                             : ""));
    }
    return index;
  }

  // Measures each candidate of a step; the leader changes to one that beats
  // it by more than min_gain.
  absl::Status Step(const std::string& step, const std::vector<BatchingSetting>& candidates) {
    for (const BatchingSetting& candidate : candidates) {
      MMFUSE_ASSIGN_OR_RETURN(const int index, Try(step, candidate));
      const v1::TuningTrial& trial = record_.trials(index);
      if (trial.eligible() &&
          trial.throughput() > leader().throughput() * (1 + options_.min_gain)) {
        leader_ = index;
      }
    }
    return absl::OkStatus();
  }

  // The fastest eligible trial with max batch > 1, if any: where steps 2-4
  // look, so batching gets its best chance even while max batch 1 leads.
  std::optional<BatchingSetting> best_batched() const {
    int best = -1;
    for (int i = 0; i < record_.trials_size(); ++i) {
      const v1::TuningTrial& t = record_.trials(i);
      if (t.eligible() && t.max_batch_size() > 1 &&
          (best < 0 || t.throughput() > record_.trials(best).throughput())) {
        best = i;
      }
    }
    if (best < 0) return std::nullopt;
    return SettingOf(record_.trials(best));
  }

  const v1::TuningTrial& leader() const { return record_.trials(leader_); }
  int leader_index() const { return leader_; }
  BatchingSetting leader_setting() const { return SettingOf(leader()); }
  void set_leader(int index) { leader_ = index; }
  v1::TuningRecord& record() { return record_; }

 private:
  TrialRunner& runner_;
  const SearchOptions& options_;
  v1::TuningRecord record_;
  int leader_ = 0;
  float baseline_low_p50_us_ = 0;
};

}  // namespace

absl::Status ValidateSearchOptions(const SearchOptions& o) {
  auto nonempty = [](const char* name, size_t size) {
    return size > 0 ? absl::OkStatus()
                    : absl::InvalidArgumentError(absl::StrCat(name, " is empty; give at least one"));
  };
  MMFUSE_RETURN_IF_ERROR(nonempty("batch_sizes", o.batch_sizes.size()));
  MMFUSE_RETURN_IF_ERROR(nonempty("bucket_ratios", o.bucket_ratios.size()));
  MMFUSE_RETURN_IF_ERROR(nonempty("delays_us", o.delays_us.size()));
  MMFUSE_RETURN_IF_ERROR(nonempty("token_multiples", o.token_multiples.size()));
  for (int size : o.batch_sizes) {
    MMFUSE_RETURN_IF_ERROR(CheckSetting("batch_sizes", size, ranges::kMaxBatchSize));
  }
  for (double ratio : o.bucket_ratios) {
    if (ratio != 0 && !(ratio >= 1.05 && ratio <= 16)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bucket_ratios has ", ratio, ", outside [1.05, 16] (0 = none)"));
    }
  }
  for (int64_t delay : o.delays_us) {
    MMFUSE_RETURN_IF_ERROR(CheckSetting("delays_us", delay, ranges::kMaxQueueDelayUs));
  }
  for (double multiple : o.token_multiples) {
    if (!(multiple >= 0) || !std::isfinite(multiple)) {
      return absl::InvalidArgumentError(
          absl::StrCat("token_multiples has ", multiple, "; each must be >= 0 (0 = no bound)"));
    }
  }
  if (!(o.min_gain >= 0 && o.min_gain < 1)) {
    return absl::InvalidArgumentError(absl::StrCat("min_gain=", o.min_gain, " is outside [0, 1)"));
  }
  if (!(o.max_latency_increase >= 0 && o.max_latency_increase <= 10)) {
    return absl::InvalidArgumentError(absl::StrCat("max_latency_increase=",
                                                   o.max_latency_increase, " is outside [0, 10]"));
  }
  return CheckSetting("confirm_repeats", o.confirm_repeats, {1, 20});
}

absl::StatusOr<v1::TuningRecord> SearchBatching(TrialRunner& runner, const BatchingSetting& start,
                                                double mean_tokens, const SearchOptions& options) {
  MMFUSE_RETURN_IF_ERROR(ValidateSearchOptions(options));
  if (!(mean_tokens > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("mean_tokens=", mean_tokens, " must be > 0"));
  }
  Search search(runner, options);
  BatchingSetting baseline;
  baseline.length_bucket_ratio = start.length_bucket_ratio;
  MMFUSE_RETURN_IF_ERROR(search.Try("baseline", baseline).status());

  // Step 1 varies the baseline; the others, the best batched setting so far.
  MMFUSE_RETURN_IF_ERROR(search.Step(
      "max_batch_size",
      Vary(baseline, options.batch_sizes, [](BatchingSetting& s, int v) { s.max_batch_size = v; })));
  if (search.best_batched()) {
    MMFUSE_RETURN_IF_ERROR(search.Step(
        "length_bucket_ratio",
        Vary(*search.best_batched(), options.bucket_ratios,
             [](BatchingSetting& s, double v) { s.length_bucket_ratio = v; })));
    MMFUSE_RETURN_IF_ERROR(search.Step(
        "max_queue_delay_us",
        Vary(*search.best_batched(), options.delays_us,
             [](BatchingSetting& s, int64_t v) { s.max_queue_delay_us = v; })));
    MMFUSE_RETURN_IF_ERROR(search.Step(
        "max_batch_tokens",
        Vary(*search.best_batched(), options.token_multiples,
             [mean_tokens](BatchingSetting& s, double multiple) {
               s.max_batch_tokens = multiple > 0 ? std::max<int64_t>(
                                                       1, std::llround(multiple * mean_tokens))
                                                 : 0;
             })));
  }

  v1::TuningRecord& record = search.record();
  record.set_max_latency_increase(static_cast<float>(options.max_latency_increase));
  const BatchingSetting chosen = search.leader_setting();
  if (chosen == baseline) {
    record.set_chosen_trial(0);
    return record;
  }
  // Side by side: alternate, so drift on a busy machine hits both alike.
  std::vector<double> baseline_runs;
  std::vector<double> chosen_runs;
  for (int i = 0; i < options.confirm_repeats; ++i) {
    MMFUSE_ASSIGN_OR_RETURN(const double base, runner.Throughput(baseline));
    MMFUSE_ASSIGN_OR_RETURN(const double best, runner.Throughput(chosen));
    baseline_runs.push_back(base);
    chosen_runs.push_back(best);
  }
  const double base_median = Median(baseline_runs);
  const double ratio = base_median > 0 ? Median(chosen_runs) / base_median : 0;
  record.set_confirm_repeats(options.confirm_repeats);
  record.set_chosen_over_batch_one(static_cast<float>(ratio));
  if (options.progress) {
    options.progress(absl::StrFormat("tune: side by side, %s / max batch 1: %.2fx",
                                     Describe(chosen), ratio));
  }
  // Batching that does not beat batch 1 side by side is not worth its
  // latency: keep the baseline.
  record.set_chosen_trial(ratio > 1 ? search.leader_index() : 0);
  return record;
}

BatchingSetting SettingOf(const v1::TuningTrial& trial) {
  BatchingSetting s;
  s.max_batch_size = static_cast<int>(trial.max_batch_size());
  s.max_queue_delay_us = trial.max_queue_delay_us();
  s.length_bucket_ratio = trial.length_bucket_ratio();
  s.max_batch_tokens = static_cast<int64_t>(trial.max_batch_tokens());
  return s;
}

void ApplyTuning(const v1::TuningRecord& record, v1::ModelConfig* config) {
  const BatchingSetting s = SettingOf(record.trials(static_cast<int>(record.chosen_trial())));
  v1::BatchingConfig* batching = config->mutable_batching();
  batching->set_max_batch_size(s.max_batch_size);
  batching->set_max_queue_delay_us(static_cast<uint32_t>(s.max_queue_delay_us));
  batching->set_length_bucket_ratio(static_cast<float>(s.length_bucket_ratio));
  batching->set_max_batch_tokens(static_cast<uint64_t>(s.max_batch_tokens));
  // Preferred sizes above a smaller max batch would make the config invalid.
  batching->clear_preferred_batch_sizes();
  *config->mutable_tuning() = record;
}

std::string FormatTuningTable(const v1::TuningRecord& record) {
  std::string out =
      "| step | max batch | delay us | bucket ratio | max tokens | ok/s | p50 us | p99 us | "
      "mean batch | lone p50 us | eligible |\n"
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n";
  for (int i = 0; i < record.trials_size(); ++i) {
    const v1::TuningTrial& t = record.trials(i);
    const bool chosen = i == static_cast<int>(record.chosen_trial());
    absl::StrAppendFormat(&out, "| %s%s | %d | %d | %g | %s | %.1f | %.0f | %.0f | %.2f | %.0f | %s |\n",
                          t.step(), chosen ? " **(chosen)**" : "", t.max_batch_size(),
                          t.max_queue_delay_us(), t.length_bucket_ratio(),
                          t.max_batch_tokens() == 0 ? std::string("none")
                                                    : absl::StrCat(t.max_batch_tokens()),
                          t.throughput(), t.p50_us(), t.p99_us(), t.mean_batch(),
                          t.low_load_p50_us(), t.eligible() ? "yes" : "no");
  }
  if (record.confirm_repeats() > 0) {
    absl::StrAppendFormat(&out,
                          "\nSide by side (%d runs each, alternating): the best setting measured "
                          "%.2fx the throughput of max batch 1%s.\n",
                          record.confirm_repeats(), record.chosen_over_batch_one(),
                          record.chosen_trial() == 0 ? "; not above 1, so max batch 1 is kept" : "");
  } else {
    absl::StrAppend(&out, "\nNo setting beat max batch 1 by the required gain; it is kept.\n");
  }
  return out;
}

}  // namespace mmfuse::tuning
