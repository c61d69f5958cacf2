#include "model/featurizer_config.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace mmfuse::model {
namespace {

bool IsPowerOfTwo(uint32_t n) { return n != 0 && (n & (n - 1)) == 0; }

absl::Status CheckAudio(const v1::AudioFeaturizer& a, const std::string& where) {
  auto invalid = [&](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat("config: ", where, ".audio.", parts...));
  };
  if (a.sample_rate() < 4000 || a.sample_rate() > 96000) {
    return invalid("sample_rate=", a.sample_rate(), " is outside [4000, 96000]");
  }
  if (!IsPowerOfTwo(a.n_fft()) || a.n_fft() < 16 || a.n_fft() > 8192) {
    return invalid("n_fft=", a.n_fft(), " is not a power of two in [16, 8192]");
  }
  if (a.hop_length() < 1 || a.hop_length() > a.n_fft()) {
    return invalid("hop_length=", a.hop_length(), " is outside [1, n_fft=", a.n_fft(), "]");
  }
  if (a.n_mels() < 1 || a.n_mels() > a.n_fft() / 2 + 1) {
    return invalid("n_mels=", a.n_mels(), " is outside [1, n_fft/2+1=", a.n_fft() / 2 + 1, "]");
  }
  const float nyquist = a.sample_rate() / 2.0f;
  if (!(a.fmax() > a.fmin()) || a.fmin() < 0 || a.fmax() > nyquist) {
    return invalid("fmin=", a.fmin(), " and fmax=", a.fmax(),
                   " must satisfy 0 <= fmin < fmax <= sample_rate/2=", nyquist);
  }
  if (!(a.log_floor() > 0) || !std::isfinite(a.log_floor())) {
    return invalid("log_floor=", a.log_floor(), " must be a finite value > 0");
  }
  if (a.stack_frames() < 1 || a.stack_frames() > 64) {
    return invalid("stack_frames=", a.stack_frames(), " is outside [1, 64]");
  }
  if (!v1::AudioFeaturizer::Resampler_IsValid(a.resampler())) {
    return invalid("resampler=", a.resampler(), " is not a known resampler");
  }
  if (!v1::AudioFeaturizer::Normalization_IsValid(a.normalization())) {
    return invalid("normalization=", a.normalization(), " is not a known normalization");
  }
  if (!(a.max_seconds() > 0) || a.max_seconds() > 86400) {
    return invalid("max_seconds=", a.max_seconds(), " is outside (0, 86400]");
  }
  return absl::OkStatus();
}

absl::Status CheckImage(const v1::ImageFeaturizer& im, const std::string& where) {
  auto invalid = [&](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat("config: ", where, ".image.", parts...));
  };
  if (im.patch_size() < 1 || im.patch_size() > 64) {
    return invalid("patch_size=", im.patch_size(), " is outside [1, 64]");
  }
  for (auto [name, size] : {std::pair<const char*, uint32_t>{"width", im.width()},
                            std::pair<const char*, uint32_t>{"height", im.height()}}) {
    if (size < 1 || size > 4096 || size % im.patch_size() != 0) {
      return invalid(name, "=", size, " is not in [1, 4096] or not divisible by patch_size=",
                     im.patch_size());
    }
  }
  if (!v1::ImageFeaturizer::Color_IsValid(im.color())) {
    return invalid("color=", im.color(), " is not one of gray, rgb");
  }
  if (!v1::ImageFeaturizer::Resize_IsValid(im.resize())) {
    return invalid("resize=", im.resize(), " is not one of bilinear, none");
  }
  const int channels = im.color() == v1::ImageFeaturizer::COLOR_RGB ? 3 : 1;
  for (auto [name, values] : {std::pair<const char*, const google::protobuf::RepeatedField<float>*>{
                                  "mean", &im.mean()},
                              {"std", &im.std()}}) {
    if (values->size() > 1 && values->size() != channels) {
      return invalid(name, " has ", values->size(), " values; want 0, 1 or ", channels,
                     " (one per channel)");
    }
    for (float v : *values) {
      if (!std::isfinite(v)) return invalid(name, " has a non-finite value");
    }
  }
  for (float s : im.std()) {
    if (!(s > 0)) return invalid("std=", s, " must be > 0");
  }
  if (!(im.frame_rate() > 0) || im.frame_rate() > 240) {
    return invalid("frame_rate=", im.frame_rate(), " is outside (0, 240]");
  }
  return absl::OkStatus();
}

absl::Status CheckText(const v1::TextFeaturizer& t, const std::string& where) {
  auto invalid = [&](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat("config: ", where, ".text.", parts...));
  };
  if (t.dim() < 1) return invalid("dim=", t.dim(), " must be >= 1");
  if (t.ngram_min() < 1 || t.ngram_min() > t.ngram_max() || t.ngram_max() > 16) {
    return invalid("ngram_min=", t.ngram_min(), " and ngram_max=", t.ngram_max(),
                   " must satisfy 1 <= ngram_min <= ngram_max <= 16");
  }
  if (t.num_buckets() < 1 || t.num_buckets() > (uint64_t{1} << 32)) {
    return invalid("num_buckets=", t.num_buckets(), " is outside [1, 2^32]");
  }
  return absl::OkStatus();
}

}  // namespace

v1::Featurizer ResolveFeaturizer(const v1::Featurizer& featurizer, uint32_t feature_dim) {
  v1::Featurizer f = featurizer;
  if (f.has_audio()) {
    v1::AudioFeaturizer* a = f.mutable_audio();
    if (a->sample_rate() == 0) a->set_sample_rate(kDefaultSampleRate);
    if (a->n_fft() == 0) a->set_n_fft(kDefaultNfft);
    if (a->hop_length() == 0) a->set_hop_length(kDefaultHopLength);
    if (a->n_mels() == 0) a->set_n_mels(kDefaultNmels);
    if (a->fmax() == 0) a->set_fmax(a->sample_rate() / 2.0f);
    if (a->log_floor() == 0) a->set_log_floor(kDefaultLogFloor);
    if (a->stack_frames() == 0) a->set_stack_frames(1);
    if (a->max_seconds() == 0) a->set_max_seconds(kDefaultMaxSeconds);
  } else if (f.has_image()) {
    v1::ImageFeaturizer* im = f.mutable_image();
    if (im->width() == 0) im->set_width(kDefaultImageSize);
    if (im->height() == 0) im->set_height(kDefaultImageSize);
    if (im->patch_size() == 0) im->set_patch_size(kDefaultPatchSize);
    if (im->frame_rate() == 0) im->set_frame_rate(kDefaultFrameRate);
  } else if (f.has_text()) {
    v1::TextFeaturizer* t = f.mutable_text();
    if (t->dim() == 0) t->set_dim(feature_dim);
    if (t->ngram_min() == 0) {
      t->set_ngram_min(t->ngram_max() > 0 ? std::min(kDefaultNgramMin, t->ngram_max())
                                          : kDefaultNgramMin);
    }
    if (t->ngram_max() == 0) t->set_ngram_max(std::max(kDefaultNgramMax, t->ngram_min()));
    if (t->num_buckets() == 0) t->set_num_buckets(kDefaultNumBuckets);
  }
  return f;
}

absl::Status ValidateFeaturizer(const v1::Featurizer& resolved, const std::string& where) {
  switch (resolved.kind_case()) {
    case v1::Featurizer::kAudio:
      return CheckAudio(resolved.audio(), where);
    case v1::Featurizer::kImage:
      return CheckImage(resolved.image(), where);
    case v1::Featurizer::kText:
      return CheckText(resolved.text(), where);
    case v1::Featurizer::KIND_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("config: ", where, " sets none of audio, image, text"));
}

int64_t PatchesPerFrame(const v1::ImageFeaturizer& im) {
  if (im.patch_size() == 0) return 0;
  return int64_t{im.width() / im.patch_size()} * (im.height() / im.patch_size());
}

int64_t FeaturizerOutputDim(const v1::Featurizer& f) {
  if (f.has_audio()) return int64_t{f.audio().n_mels()} * f.audio().stack_frames();
  if (f.has_image()) {
    const int channels = f.image().color() == v1::ImageFeaturizer::COLOR_RGB ? 3 : 1;
    return int64_t{f.image().patch_size()} * f.image().patch_size() * channels;
  }
  if (f.has_text()) return f.text().dim();
  return 0;
}

absl::Status ValidateModalityFeaturizer(const v1::ModalityConfig& m, int index) {
  if (!m.has_featurizer()) return absl::OkStatus();
  const std::string where = absl::StrCat("modalities[", index, "] (", m.name(), ").featurizer");
  const v1::Featurizer f = ResolveFeaturizer(m.featurizer(), m.feature_dim());
  absl::Status status = ValidateFeaturizer(f, where);
  if (!status.ok()) return status;
  const int64_t dim = FeaturizerOutputDim(f);
  if (dim != m.feature_dim()) {
    std::string how;
    if (f.has_audio()) {
      how = absl::StrCat(" (n_mels=", f.audio().n_mels(), " * stack_frames=",
                         f.audio().stack_frames(), ")");
    } else if (f.has_image()) {
      how = absl::StrCat(" (patch_size=", f.image().patch_size(), "^2 * ",
                         dim / (int64_t{f.image().patch_size()} * f.image().patch_size()),
                         " channels)");
    }
    return absl::InvalidArgumentError(absl::StrCat("config: ", where, " outputs ", dim,
                                                   " values per frame", how, " but feature_dim=",
                                                   m.feature_dim()));
  }
  if (f.has_image() && PatchesPerFrame(f.image()) > m.max_frames()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config: ", where, ": one ", f.image().width(), "x", f.image().height(),
        " frame is ", PatchesPerFrame(f.image()), " patches but max_frames=", m.max_frames()));
  }
  return absl::OkStatus();
}

}  // namespace mmfuse::model
