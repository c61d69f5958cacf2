// Log-mel spectrogram of mono audio (docs/FEATURES.md, "Audio"): periodic
// Hann window, real FFT (FFTW3, estimated plan), power spectrum, HTK mel
// triangles, ln(max(energy, log_floor)), frames stacked k at a time.
//
// Thread-safety: Compute() is const and thread-safe; Create() is too (FFTW
// planning is serialised internally).
#ifndef MMFUSE_CLIENT_FEATURIZE_LOG_MEL_H_
#define MMFUSE_CLIENT_FEATURIZE_LOG_MEL_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "mmfuse/v1/features.pb.h"
#include "mmfuse/v1/model_config.pb.h"

namespace mmfuse::featurize {

class LogMel {
 public:
  // `params` resolved and valid (model::ResolveFeaturizer, ValidateFeaturizer).
  static absl::StatusOr<std::unique_ptr<LogMel>> Create(const v1::AudioFeaturizer& params);
  ~LogMel();

  // Features of `samples` (at params.sample_rate): [frames, n_mels *
  // stack_frames], at most `max_frames` rows (later ones are dropped). Error
  // if the audio is too short for one stacked frame.
  absl::StatusOr<v1::FeatureSequence> Compute(const std::vector<float>& samples,
                                              int max_frames) const;

  // The [n_mels][n_fft / 2 + 1] filterbank weights (for tests and docs).
  const std::vector<std::vector<double>>& filterbank() const { return filters_; }
  // Centre frequency of band `b`, in Hz.
  double BandCentreHz(int b) const { return edges_hz_[b + 1]; }

 private:
  explicit LogMel(const v1::AudioFeaturizer& params);
  struct Plan;
  v1::AudioFeaturizer params_;
  std::vector<double> window_;
  std::vector<double> edges_hz_;                 // n_mels + 2 band edges.
  std::vector<std::vector<double>> filters_;     // Dense weights per band.
  std::vector<std::pair<int, int>> filter_bins_;  // Non-zero bin range [first, last).
  std::unique_ptr<Plan> plan_;
};

}  // namespace mmfuse::featurize

#endif  // MMFUSE_CLIENT_FEATURIZE_LOG_MEL_H_
