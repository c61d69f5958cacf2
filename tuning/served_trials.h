// ServedTrialRunner: measures batching settings on the real serving stack
// in process: for each setting a ServedModel over one loaded package (its
// batcher, gate stage and processor, as mmfuse-server runs them), driven by
// RunClosedLoop at the saturating load and at one request per worker.
//
// Thread-safety: thread-compatible.
#ifndef MMFUSE_TUNING_SERVED_TRIALS_H_
#define MMFUSE_TUNING_SERVED_TRIALS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "mmfuse/v1/classifier.pb.h"
#include "server/served_model.h"
#include "tuning/closed_loop.h"
#include "tuning/search.h"

namespace mmfuse::model {
struct ModelPackage;
}  // namespace mmfuse::model

namespace mmfuse::tuning {

struct ServedTrialOptions {
  // Batcher workers of every trial (the server's --workers). In [1, 256].
  // Default 2.
  int workers = 2;
  // Requests in flight at the saturating load; 0 = 8 per worker, enough to
  // keep every worker's queue non-empty. In [0, 1024]. Default 0.
  int concurrency = 0;
  // Measured time at the saturating load; the lone-request load runs half
  // as long. > 0. Default 2 s.
  absl::Duration trial = absl::Seconds(2);
  // Before each measured window. >= 0. Default 300 ms.
  absl::Duration warmup = absl::Milliseconds(300);

  int EffectiveConcurrency() const { return concurrency > 0 ? concurrency : 8 * workers; }
};

class ServedTrialRunner : public TrialRunner {
 public:
  // `package` is shared by every trial; `requests` (non-empty) are replayed
  // in order, cycling. Errors name the option at fault.
  static absl::StatusOr<std::unique_ptr<ServedTrialRunner>> Create(
      std::shared_ptr<const model::ModelPackage> package,
      std::vector<v1::ClassifyRequest> requests, const ServedTrialOptions& options);

  absl::StatusOr<TrialFigures> Measure(const BatchingSetting& setting) override;
  absl::StatusOr<double> Throughput(const BatchingSetting& setting) override;

 private:
  // A ServedModel of the package with `setting`'s batching.
  absl::StatusOr<std::unique_ptr<server::ServedModel>> Serve(const BatchingSetting& setting) const;
  // A closed loop of `concurrency` callers for `duration` after the warmup.
  absl::StatusOr<ClosedLoopResult> Load(server::ServedModel& served, int concurrency,
                                        absl::Duration duration) const;

  ServedTrialRunner(std::shared_ptr<const model::ModelPackage> package,
                    std::vector<v1::ClassifyRequest> requests, const ServedTrialOptions& options)
      : package_(std::move(package)), requests_(std::move(requests)), options_(options) {}

  std::shared_ptr<const model::ModelPackage> package_;
  std::vector<v1::ClassifyRequest> requests_;
  ServedTrialOptions options_;
};

// Mean tokens per request as the batcher counts them (the frames of every
// modality present): what SearchOptions::token_multiples scale.
double MeanTokens(const v1::ModelConfig& config, const std::vector<v1::ClassifyRequest>& requests);

// "N cores, <CPU model>" from this machine, for TuningRecord.machine.
std::string DescribeMachine();

}  // namespace mmfuse::tuning

#endif  // MMFUSE_TUNING_SERVED_TRIALS_H_
