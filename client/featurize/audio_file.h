// Reads an audio file (WAV, FLAC, OGG: whatever libsndfile decodes), mixes it
// to mono and resamples it with libsamplerate (docs/FEATURES.md, "Audio").
#ifndef MMFUSE_CLIENT_FEATURIZE_AUDIO_FILE_H_
#define MMFUSE_CLIENT_FEATURIZE_AUDIO_FILE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "mmfuse/v1/model_config.pb.h"

namespace mmfuse::featurize {

// Input sample rates accepted, in Hz.
inline constexpr int kMinInputSampleRate = 1000;
inline constexpr int kMaxInputSampleRate = 384000;

struct MonoAudio {
  // Samples in [-1, 1] (libsndfile's float scaling), one per frame.
  std::vector<float> samples;
  int sample_rate = 0;  // Hz.
};

// Reads at most `max_seconds` of `path`; mono = mean of the channels.
// Errors name the file: missing, empty, undecodable or truncated, a sample
// rate outside [kMinInputSampleRate, kMaxInputSampleRate], no samples.
absl::StatusOr<MonoAudio> ReadMonoAudio(const std::string& path, double max_seconds);

// `audio` at `sample_rate` Hz (unchanged if already there).
absl::StatusOr<MonoAudio> Resample(const MonoAudio& audio, int sample_rate,
                                   v1::AudioFeaturizer::Resampler resampler);

}  // namespace mmfuse::featurize

#endif  // MMFUSE_CLIENT_FEATURIZE_AUDIO_FILE_H_
