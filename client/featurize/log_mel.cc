#include "client/featurize/log_mel.h"

#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <mutex>

#include "absl/strings/str_cat.h"

namespace mmfuse::featurize {
namespace {

constexpr double kPi = 3.14159265358979323846;

// FFTW's planner is not thread-safe; execution of a made plan is.
std::mutex& PlannerMutex() {
  static std::mutex* mu = new std::mutex;
  return *mu;
}

double HzToMel(double hz) { return 2595.0 * std::log10(1.0 + hz / 700.0); }
double MelToHz(double mel) { return 700.0 * (std::pow(10.0, mel / 2595.0) - 1.0); }

// Per-band mean and variance normalisation over every frame of the
// utterance: `values` holds frames of `n_mels` values, in order. A band of
// constant energy (silence at the floor) becomes zeros.
void NormalizeBands(int n_mels, google::protobuf::RepeatedField<float>* values) {
  const int64_t frames = values->size() / n_mels;
  for (int b = 0; b < n_mels; ++b) {
    // Two passes: the mean, then squared deviations from it (a one-pass
    // E[x^2] - E[x]^2 cancels badly on near-constant bands).
    double sum = 0;
    for (int64_t t = 0; t < frames; ++t) sum += values->Get(static_cast<int>(t * n_mels + b));
    const double mean = sum / frames;
    double deviation = 0;
    for (int64_t t = 0; t < frames; ++t) {
      const double d = values->Get(static_cast<int>(t * n_mels + b)) - mean;
      deviation += d * d;
    }
    const double std_dev = std::sqrt(deviation / frames);
    const double scale = std_dev > 1e-5 ? 1.0 / std_dev : 0.0;
    for (int64_t t = 0; t < frames; ++t) {
      float* v = values->Mutable(static_cast<int>(t * n_mels + b));
      *v = static_cast<float>((*v - mean) * scale);
    }
  }
}

}  // namespace

// An out-of-place r2c plan of size n_fft; executed with new-array execute on
// per-call buffers, so Compute() can run concurrently.
struct LogMel::Plan {
  fftw_plan plan = nullptr;
  ~Plan() {
    std::lock_guard<std::mutex> lock(PlannerMutex());
    if (plan != nullptr) fftw_destroy_plan(plan);
  }
};

LogMel::LogMel(const v1::AudioFeaturizer& params) : params_(params) {}
LogMel::~LogMel() = default;

absl::StatusOr<std::unique_ptr<LogMel>> LogMel::Create(const v1::AudioFeaturizer& params) {
  std::unique_ptr<LogMel> mel(new LogMel(params));
  const int n_fft = static_cast<int>(params.n_fft());
  const int bins = n_fft / 2 + 1;
  const int n_mels = static_cast<int>(params.n_mels());
  mel->window_.resize(n_fft);
  for (int n = 0; n < n_fft; ++n) mel->window_[n] = 0.5 - 0.5 * std::cos(2.0 * kPi * n / n_fft);

  const double mel_lo = HzToMel(params.fmin());
  const double mel_hi = HzToMel(params.fmax());
  mel->edges_hz_.resize(n_mels + 2);
  for (int i = 0; i < n_mels + 2; ++i) {
    mel->edges_hz_[i] = MelToHz(mel_lo + i * (mel_hi - mel_lo) / (n_mels + 1));
  }
  mel->filters_.assign(n_mels, std::vector<double>(bins, 0.0));
  mel->filter_bins_.assign(n_mels, {0, 0});
  for (int b = 0; b < n_mels; ++b) {
    const double lo = mel->edges_hz_[b], centre = mel->edges_hz_[b + 1], hi = mel->edges_hz_[b + 2];
    int first = bins, last = 0;
    for (int k = 0; k < bins; ++k) {
      const double f = static_cast<double>(k) * params.sample_rate() / n_fft;
      const double w = std::max(0.0, std::min((f - lo) / (centre - lo), (hi - f) / (hi - centre)));
      mel->filters_[b][k] = w;
      if (w > 0) {
        first = std::min(first, k);
        last = k + 1;
      }
    }
    mel->filter_bins_[b] = {first, std::max(first, last)};
  }

  // Planned on fftw_alloc'ed arrays, as Compute() executes on: new-array
  // execution needs the planning arrays' alignment.
  double* in = fftw_alloc_real(n_fft);
  fftw_complex* out = fftw_alloc_complex(bins);
  mel->plan_ = std::make_unique<Plan>();
  {
    std::lock_guard<std::mutex> lock(PlannerMutex());
    mel->plan_->plan = fftw_plan_dft_r2c_1d(n_fft, in, out, FFTW_ESTIMATE);
  }
  fftw_free(in);
  fftw_free(out);
  if (mel->plan_->plan == nullptr) {
    return absl::InternalError(absl::StrCat("FFTW could not plan an r2c FFT of size ", n_fft));
  }
  return mel;
}

absl::StatusOr<v1::FeatureSequence> LogMel::Compute(const std::vector<float>& samples,
                                                    int max_frames) const {
  const int n_fft = static_cast<int>(params_.n_fft());
  const int hop = static_cast<int>(params_.hop_length());
  const int bins = n_fft / 2 + 1;
  const int n_mels = static_cast<int>(params_.n_mels());
  const int stack = static_cast<int>(params_.stack_frames());
  const int64_t length = static_cast<int64_t>(samples.size());
  const int64_t frames = length < n_fft ? 1 : 1 + (length - n_fft) / hop;
  const int64_t stacked = std::min<int64_t>(frames / stack, max_frames);
  if (stacked < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        length, " samples give ", frames, " frames (n_fft=", n_fft, ", hop_length=", hop,
        "), fewer than stack_frames=", stack));
  }
  // new-array execution wants FFTW-aligned buffers like the planning ones.
  double* in = fftw_alloc_real(n_fft);
  fftw_complex* out = fftw_alloc_complex(bins);
  std::vector<double> power(bins);
  v1::FeatureSequence sequence;
  sequence.set_frames(static_cast<uint32_t>(stacked));
  sequence.set_dim(static_cast<uint32_t>(n_mels * stack));
  sequence.mutable_data()->Reserve(static_cast<int>(stacked * n_mels * stack));
  for (int64_t t = 0; t < stacked * stack; ++t) {
    const int64_t start = t * hop;
    for (int n = 0; n < n_fft; ++n) {
      const int64_t i = start + n;
      in[n] = i < length ? static_cast<double>(samples[i]) * window_[n] : 0.0;
    }
    fftw_execute_dft_r2c(plan_->plan, in, out);
    for (int k = 0; k < bins; ++k) power[k] = out[k][0] * out[k][0] + out[k][1] * out[k][1];
    for (int b = 0; b < n_mels; ++b) {
      double energy = 0;
      for (int k = filter_bins_[b].first; k < filter_bins_[b].second; ++k) {
        energy += filters_[b][k] * power[k];
      }
      sequence.add_data(
          static_cast<float>(std::log(std::max(energy, static_cast<double>(params_.log_floor())))));
    }
  }
  fftw_free(in);
  fftw_free(out);
  if (params_.normalization() == v1::AudioFeaturizer::NORMALIZATION_UTTERANCE) {
    NormalizeBands(n_mels, sequence.mutable_data());
  }
  return sequence;
}

}  // namespace mmfuse::featurize
