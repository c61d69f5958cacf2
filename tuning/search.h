// SearchBatching: chooses a package's batching settings by measuring them.
//
// Starting from max batch 1 (the baseline), it varies one setting at a time
// (coordinate descent):
//   1. max_batch_size over `batch_sizes` (no delay, the package's length
//      bucket ratio, no token bound);
//   2. length_bucket_ratio over `bucket_ratios`;
//   3. max_queue_delay_us over `delays_us`;
//   4. max_batch_tokens over `token_multiples` x the requests' mean tokens.
// Steps 2-4 vary the best batched setting so far (the fastest eligible one
// with max batch > 1), so batching gets its best chance even while max
// batch 1 leads. The choice is the leader: a trial replaces it only when it
// is eligible and beats the leader's throughput at the saturating load by
// more than `min_gain` (noise on a small machine is a few percent).
// Eligible: no request failed, and the p50 of a lone request (one in
// flight per worker) at most `max_latency_increase` above the baseline's, so
// a delay that only makes requests wait for company that never comes is
// never chosen. Finally the choice and the baseline run alternately
// `confirm_repeats` times each, side by side; if the choice's median
// throughput does not beat the baseline's, the baseline is chosen.
//
// The measurement is behind TrialRunner, so tests drive the search with
// figures of their own (tuning/served_trials.h measures the real stack).
//
// Thread-safety: thread-compatible.
#ifndef MMFUSE_TUNING_SEARCH_H_
#define MMFUSE_TUNING_SEARCH_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "mmfuse/v1/model_config.pb.h"

namespace mmfuse::tuning {

// The batching fields the tuner sets; the package keeps its others.
struct BatchingSetting {
  int max_batch_size = 1;
  int64_t max_queue_delay_us = 0;
  double length_bucket_ratio = 0;  // 0 = no per-modality length buckets
  int64_t max_batch_tokens = 0;    // 0 = no token bound

  bool operator==(const BatchingSetting& other) const {
    return max_batch_size == other.max_batch_size &&
           max_queue_delay_us == other.max_queue_delay_us &&
           length_bucket_ratio == other.length_bucket_ratio &&
           max_batch_tokens == other.max_batch_tokens;
  }
};

// What one setting measured.
struct TrialFigures {
  // At the saturating load (TrialRunner's concurrency).
  double throughput = 0;  // answers per second
  absl::Duration p50;
  absl::Duration p99;
  double mean_batch = 0;
  // At one request in flight per worker.
  absl::Duration low_load_p50;
  int64_t failed = 0;  // requests answered with an error, both loads
  absl::Status first_error;
};

class TrialRunner {
 public:
  virtual ~TrialRunner() = default;
  // Both loads for `setting`. An error stops the search (a setting the
  // serving stack refuses, say); failed requests are figures, not errors.
  virtual absl::StatusOr<TrialFigures> Measure(const BatchingSetting& setting) = 0;
  // Throughput at the saturating load only, for the side by side check.
  virtual absl::StatusOr<double> Throughput(const BatchingSetting& setting) = 0;
};

struct SearchOptions {
  // Candidates of each step. Each non-empty; batch sizes in [1, 4096],
  // ratios 0 or in [1.05, 16], delays in [0, 10^7] us, token multiples >= 0
  // (0 = no bound). Defaults: what a 2-core CPU makes worth trying.
  std::vector<int> batch_sizes = {1, 2, 4, 8, 16, 32};
  std::vector<double> bucket_ratios = {0, 1.5, 2, 3};
  std::vector<int64_t> delays_us = {0, 250, 1000};
  std::vector<double> token_multiples = {0, 4, 8};
  // Relative throughput gain a candidate needs over the incumbent. In
  // [0, 1). Default 0.03.
  double min_gain = 0.03;
  // How much a lone request's p50 may exceed the baseline's. In [0, 10].
  // Default 0.15.
  double max_latency_increase = 0.15;
  // Side by side runs of the choice and the baseline, each. In [1, 20].
  // Default 3.
  int confirm_repeats = 3;
  // Called with one line per measurement; may be empty.
  std::function<void(const std::string&)> progress;
};

// Errors name the option at fault.
absl::Status ValidateSearchOptions(const SearchOptions& options);

// Runs the search. `start` supplies the package's length bucket ratio for
// step 1; `mean_tokens` (> 0) scales the token bounds. Returns the record
// with every trial, the choice and the side by side ratio; its date,
// machine, dataset, workers, concurrency and seconds are the caller's to
// fill.
absl::StatusOr<v1::TuningRecord> SearchBatching(TrialRunner& runner, const BatchingSetting& start,
                                                double mean_tokens, const SearchOptions& options);

// The setting of a trial.
BatchingSetting SettingOf(const v1::TuningTrial& trial);

// Writes the chosen trial's setting into `config->batching` and the record
// into `config->tuning`; other batching fields are kept.
void ApplyTuning(const v1::TuningRecord& record, v1::ModelConfig* config);

// The record as a Markdown table, one row per trial, the choice marked,
// then a line with the side by side ratio.
std::string FormatTuningTable(const v1::TuningRecord& record);

}  // namespace mmfuse::tuning

#endif  // MMFUSE_TUNING_SEARCH_H_
