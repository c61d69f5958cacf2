#include "client/featurize/audio_file.h"

#include <samplerate.h>
#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "absl/strings/str_cat.h"
#include "client/featurize/file_check.h"

namespace mmfuse::featurize {
namespace {

struct SndfileCloser {
  void operator()(SNDFILE* file) const { sf_close(file); }
};

int ConverterOf(v1::AudioFeaturizer::Resampler resampler) {
  switch (resampler) {
    case v1::AudioFeaturizer::RESAMPLER_SINC_BEST:
      return SRC_SINC_BEST_QUALITY;
    case v1::AudioFeaturizer::RESAMPLER_SINC_FASTEST:
      return SRC_SINC_FASTEST;
    case v1::AudioFeaturizer::RESAMPLER_LINEAR:
      return SRC_LINEAR;
    default:
      return SRC_SINC_MEDIUM_QUALITY;
  }
}

}  // namespace

absl::StatusOr<MonoAudio> ReadMonoAudio(const std::string& path, double max_seconds) {
  absl::StatusOr<int64_t> size = CheckMediaFile("audio", path);
  if (!size.ok()) return size.status();
  SF_INFO info{};
  std::unique_ptr<SNDFILE, SndfileCloser> file(sf_open(path.c_str(), SFM_READ, &info));
  if (file == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "audio file ", path, ": cannot decode (not WAV, FLAC or OGG, or corrupt): ",
        sf_strerror(nullptr)));
  }
  if (info.samplerate < kMinInputSampleRate || info.samplerate > kMaxInputSampleRate) {
    return absl::InvalidArgumentError(
        absl::StrCat("audio file ", path, ": sample rate ", info.samplerate,
                     " Hz is outside [", kMinInputSampleRate, ", ", kMaxInputSampleRate, "]"));
  }
  if (info.channels < 1 || info.channels > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("audio file ", path, ": ", info.channels, " channels is outside [1, 64]"));
  }
  if (info.frames <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("audio file ", path, ": has no samples"));
  }
  const sf_count_t limit = static_cast<sf_count_t>(std::floor(max_seconds * info.samplerate));
  const sf_count_t wanted = std::min<sf_count_t>(info.frames, std::max<sf_count_t>(limit, 1));
  std::vector<float> interleaved(static_cast<size_t>(wanted) * info.channels);
  const sf_count_t got = sf_readf_float(file.get(), interleaved.data(), wanted);
  if (sf_error(file.get()) != SF_ERR_NO_ERROR) {
    return absl::InvalidArgumentError(absl::StrCat("audio file ", path, ": decoding failed after ",
                                                   got, " frames: ", sf_strerror(file.get())));
  }
  if (got < wanted) {
    return absl::InvalidArgumentError(absl::StrCat("audio file ", path, ": truncated: header says ",
                                                   info.frames, " frames, read ", got));
  }
  MonoAudio audio;
  audio.sample_rate = info.samplerate;
  audio.samples.resize(got);
  for (sf_count_t i = 0; i < got; ++i) {
    float sum = 0;
    for (int c = 0; c < info.channels; ++c) sum += interleaved[i * info.channels + c];
    audio.samples[i] = sum / static_cast<float>(info.channels);
    if (!std::isfinite(audio.samples[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("audio file ", path, ": sample ", i, " is not finite"));
    }
  }
  return audio;
}

absl::StatusOr<MonoAudio> Resample(const MonoAudio& audio, int sample_rate,
                                   v1::AudioFeaturizer::Resampler resampler) {
  if (audio.sample_rate == sample_rate) return audio;
  const double ratio = static_cast<double>(sample_rate) / audio.sample_rate;
  MonoAudio out;
  out.sample_rate = sample_rate;
  out.samples.resize(static_cast<size_t>(std::ceil(audio.samples.size() * ratio)) + 1);
  SRC_DATA data{};
  data.data_in = audio.samples.data();
  data.input_frames = static_cast<long>(audio.samples.size());
  data.data_out = out.samples.data();
  data.output_frames = static_cast<long>(out.samples.size());
  data.src_ratio = ratio;
  const int error = src_simple(&data, ConverterOf(resampler), /*channels=*/1);
  if (error != 0) {
    return absl::InvalidArgumentError(absl::StrCat("resampling ", audio.sample_rate, " Hz to ",
                                                   sample_rate, " Hz failed: ", src_strerror(error)));
  }
  out.samples.resize(data.output_frames_gen);
  if (out.samples.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("resampling ", audio.samples.size(),
                                                   " samples to ", sample_rate, " Hz left none"));
  }
  return out;
}

}  // namespace mmfuse::featurize
