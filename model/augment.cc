#include "model/augment.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "model/featurizer_config.h"

namespace mmfuse::model {
namespace {

using Unit = std::uniform_real_distribution<double>;

int UniformInt(int lo, int hi, std::mt19937_64* rng) {  // [lo, hi]
  return hi <= lo ? lo : std::uniform_int_distribution<int>(lo, hi)(*rng);
}

// Sample b's values: [frames, dim] floats at `data`.
struct Sequence {
  float* data;
  int64_t frames;
  int64_t dim;
};

void MaskAudio(const v1::AudioFeaturizer& audio, const AugmentOptions& options, Sequence s,
               std::mt19937_64* rng) {
  const int64_t bands = audio.n_mels();
  const int64_t stack = std::max<int64_t>(1, s.dim / bands);
  const int64_t raw_frames = s.frames * stack;
  double mean = 0;
  for (int64_t i = 0; i < s.frames * s.dim; ++i) mean += s.data[i];
  const float fill = static_cast<float>(mean / std::max<int64_t>(1, s.frames * s.dim));
  // Raw frame t, band b sits at row t / stack, column (t % stack) * bands + b.
  auto at = [&](int64_t t, int64_t b) -> float& {
    return s.data[(t / stack) * s.dim + (t % stack) * bands + b];
  };
  const int max_width = static_cast<int>(std::floor(options.time_mask_fraction * raw_frames));
  for (int k = 0; k < options.time_masks && max_width > 0; ++k) {
    const int width = UniformInt(0, max_width, rng);
    const int start = UniformInt(0, static_cast<int>(raw_frames - width), rng);
    for (int64_t t = start; t < start + width; ++t) {
      for (int64_t b = 0; b < bands; ++b) at(t, b) = fill;
    }
  }
  for (int k = 0; k < options.freq_masks && options.freq_mask_bands > 0; ++k) {
    const int width = UniformInt(0, std::min<int>(options.freq_mask_bands, bands), rng);
    const int start = UniformInt(0, static_cast<int>(bands - width), rng);
    for (int64_t t = 0; t < raw_frames; ++t) {
      for (int64_t b = start; b < start + width; ++b) at(t, b) = fill;
    }
  }
}

// One frame of patches as an image and back: pixel (y, x), channel c of the
// frame starting at token `first`.
class PatchImage {
 public:
  PatchImage(const v1::ImageFeaturizer& image, Sequence s, int64_t first)
      : s_(s), first_(first), p_(image.patch_size()), cols_(image.width() / image.patch_size()),
        channels_(image.color() == v1::ImageFeaturizer::COLOR_RGB ? 3 : 1),
        width_(image.width()), height_(image.height()) {}
  float& at(int64_t y, int64_t x, int64_t c) {
    const int64_t token = first_ + (y / p_) * cols_ + x / p_;
    return s_.data[token * s_.dim + ((y % p_) * p_ + x % p_) * channels_ + c];
  }
  int64_t width() const { return width_; }
  int64_t height() const { return height_; }
  int64_t channels() const { return channels_; }

 private:
  Sequence s_;
  int64_t first_, p_, cols_, channels_, width_, height_;
};

void AugmentImage(const v1::ImageFeaturizer& image, const AugmentOptions& options, Sequence s,
                  std::mt19937_64* rng) {
  const int64_t patches = PatchesPerFrame(image);
  const int64_t channels = image.color() == v1::ImageFeaturizer::COLOR_RGB ? 3 : 1;
  std::vector<float> black(channels);
  for (int64_t c = 0; c < channels; ++c) {
    const float mean = image.mean_size() == 0 ? 0.f : image.mean(image.mean_size() == 1 ? 0 : c);
    const float std_dev = image.std_size() == 0 ? 1.f : image.std(image.std_size() == 1 ? 0 : c);
    black[c] = (0.f - mean) / std_dev;
  }
  for (int64_t first = 0; first + patches <= s.frames; first += patches) {
    PatchImage frame(image, s, first);
    const int64_t w = frame.width(), h = frame.height();
    const int dx = UniformInt(-options.image_shift_px, options.image_shift_px, rng);
    const int dy = UniformInt(-options.image_shift_px, options.image_shift_px, rng);
    if (dx != 0 || dy != 0) {
      std::vector<float> copy(w * h * channels);
      for (int64_t y = 0; y < h; ++y) {
        for (int64_t x = 0; x < w; ++x) {
          for (int64_t c = 0; c < channels; ++c) copy[(y * w + x) * channels + c] = frame.at(y, x, c);
        }
      }
      for (int64_t y = 0; y < h; ++y) {
        for (int64_t x = 0; x < w; ++x) {
          const int64_t sy = y - dy, sx = x - dx;
          const bool inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
          for (int64_t c = 0; c < channels; ++c) {
            frame.at(y, x, c) = inside ? copy[(sy * w + sx) * channels + c] : black[c];
          }
        }
      }
    }
    if (Unit(0, 1)(*rng) < options.image_erase_probability) {
      const double area = Unit(0.02, 0.2)(*rng) * w * h;
      const double aspect = std::exp(Unit(std::log(0.3), std::log(3.3))(*rng));
      const int64_t eh = std::clamp<int64_t>(std::lround(std::sqrt(area * aspect)), 1, h);
      const int64_t ew = std::clamp<int64_t>(std::lround(std::sqrt(area / aspect)), 1, w);
      const int64_t y0 = UniformInt(0, static_cast<int>(h - eh), rng);
      const int64_t x0 = UniformInt(0, static_cast<int>(w - ew), rng);
      for (int64_t y = y0; y < y0 + eh; ++y) {
        for (int64_t x = x0; x < x0 + ew; ++x) {
          for (int64_t c = 0; c < channels; ++c) frame.at(y, x, c) = black[c];
        }
      }
    }
  }
}

// Drops tokens, closing up the kept ones; returns the new length (>= 1).
int64_t DropTokens(double rate, Sequence s, std::mt19937_64* rng) {
  std::vector<int64_t> kept;
  for (int64_t t = 0; t < s.frames; ++t) {
    if (Unit(0, 1)(*rng) >= rate) kept.push_back(t);
  }
  if (kept.empty()) kept.push_back(UniformInt(0, static_cast<int>(s.frames - 1), rng));
  for (size_t i = 0; i < kept.size(); ++i) {
    if (static_cast<int64_t>(i) != kept[i]) {
      std::copy_n(s.data + kept[i] * s.dim, s.dim, s.data + i * s.dim);
    }
  }
  std::fill(s.data + kept.size() * s.dim, s.data + s.frames * s.dim, 0.f);
  return static_cast<int64_t>(kept.size());
}

}  // namespace

absl::Status ValidateAugmentOptions(const AugmentOptions& o) {
  auto bad = [](const char* field, double value, const char* range) {
    return absl::InvalidArgumentError(absl::StrCat("augment: ", field, "=", value, " is outside ", range));
  };
  if (o.time_masks < 0) return bad("time_masks", o.time_masks, "[0, inf)");
  if (!(o.time_mask_fraction >= 0 && o.time_mask_fraction <= 1)) {
    return bad("time_mask_fraction", o.time_mask_fraction, "[0, 1]");
  }
  if (o.freq_masks < 0) return bad("freq_masks", o.freq_masks, "[0, inf)");
  if (o.freq_mask_bands < 0) return bad("freq_mask_bands", o.freq_mask_bands, "[0, inf)");
  if (o.image_shift_px < 0) return bad("image_shift_px", o.image_shift_px, "[0, inf)");
  if (!(o.image_erase_probability >= 0 && o.image_erase_probability <= 1)) {
    return bad("image_erase_probability", o.image_erase_probability, "[0, 1]");
  }
  if (!(o.token_dropout >= 0 && o.token_dropout < 1)) {
    return bad("token_dropout", o.token_dropout, "[0, 1)");
  }
  return absl::OkStatus();
}

void Augment(const v1::ModelConfig& config, const AugmentOptions& options, std::mt19937_64* rng,
             std::vector<ModalityInput>* inputs) {
  for (size_t m = 0; m < inputs->size(); ++m) {
    ModalityInput& in = (*inputs)[m];
    const v1::ModalityConfig& modality = config.modalities(static_cast<int>(m));
    if (!in.features.defined() || !modality.has_featurizer()) continue;
    const v1::Featurizer f = ResolveFeaturizer(modality.featurizer(), modality.feature_dim());
    const int64_t batch = in.features.size(0), frames = in.features.size(1);
    const int64_t dim = in.features.size(2);
    float* data = in.features.data_ptr<float>();
    int64_t* lengths = in.lengths.data_ptr<int64_t>();
    for (int64_t b = 0; b < batch; ++b) {
      if (lengths[b] == 0) continue;
      const Sequence s{data + b * frames * dim, lengths[b], dim};
      if (f.has_audio()) {
        MaskAudio(f.audio(), options, s, rng);
      } else if (f.has_image()) {
        AugmentImage(f.image(), options, s, rng);
      } else if (f.has_text() && options.token_dropout > 0) {
        const int64_t kept = DropTokens(options.token_dropout, s, rng);
        // A shorter sequence is padding now: the encoder must mask it.
        if (kept < lengths[b]) in.padded = true;
        lengths[b] = kept;
      }
    }
  }
}

}  // namespace mmfuse::model
