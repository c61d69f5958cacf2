#include "client/featurize/media_featurizer.h"

#include "absl/strings/str_cat.h"
#include "client/featurize/audio_file.h"
#include "model/featurizer_config.h"
#include "model/model_config.h"

namespace mmfuse::featurize {
namespace {

absl::Status Duplicate(const char* kind, const std::string& first, const std::string& second) {
  return absl::InvalidArgumentError(absl::StrCat("modalities \"", first, "\" and \"", second,
                                                 "\" both have ", kind,
                                                 " featurizers; at most one may"));
}

}  // namespace

absl::Status MediaFeaturizer::Add(const std::string& name, uint32_t feature_dim,
                                  uint32_t max_frames, const v1::Featurizer& raw) {
  v1::ModalityConfig modality;
  modality.set_name(name);
  modality.set_feature_dim(feature_dim);
  modality.set_max_frames(max_frames);
  *modality.mutable_featurizer() = raw;
  absl::Status valid = model::ValidateModalityFeaturizer(modality, /*index=*/0);
  if (!valid.ok()) return valid;
  const v1::Featurizer f = model::ResolveFeaturizer(raw, feature_dim);
  if (f.has_audio()) {
    if (!audio_modality_.empty()) return Duplicate("audio", audio_modality_, name);
    auto mel = LogMel::Create(f.audio());
    if (!mel.ok()) return mel.status();
    log_mel_ = std::move(*mel);
    audio_params_ = f.audio();
    audio_max_frames_ = static_cast<int>(max_frames);
    audio_modality_ = name;
  } else if (f.has_image()) {
    if (!image_modality_.empty()) return Duplicate("image", image_modality_, name);
    auto patches = PatchFeaturizer::Create(f.image(), static_cast<int>(max_frames));
    if (!patches.ok()) return patches.status();
    patches_ = std::move(*patches);
    image_modality_ = name;
  } else if (f.has_text()) {
    if (!text_modality_.empty()) return Duplicate("text", text_modality_, name);
    text_ = std::make_unique<TextFeaturizer>(f.text(), static_cast<int>(max_frames));
    text_modality_ = name;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<MediaFeaturizer>> MediaFeaturizer::FromModelConfig(
    const v1::ModelConfig& config) {
  absl::Status valid = model::ValidateModelConfig(config);
  if (!valid.ok()) return valid;
  std::unique_ptr<MediaFeaturizer> media(new MediaFeaturizer);
  for (const v1::ModalityConfig& m : config.modalities()) {
    if (!m.has_featurizer()) continue;
    absl::Status added = media->Add(m.name(), m.feature_dim(), m.max_frames(), m.featurizer());
    if (!added.ok()) return added;
  }
  return media;
}

absl::StatusOr<std::unique_ptr<MediaFeaturizer>> MediaFeaturizer::FromModelInfo(
    const v1::ModelInfo& info) {
  std::unique_ptr<MediaFeaturizer> media(new MediaFeaturizer);
  for (const v1::ModalityInfo& m : info.modalities()) {
    if (!m.has_featurizer()) continue;
    absl::Status added = media->Add(m.name(), m.feature_dim(), m.max_frames(), m.featurizer());
    if (!added.ok()) return added;
  }
  return media;
}

absl::Status MediaFeaturizer::Featurize(
    const MediaInput& input, google::protobuf::Map<std::string, v1::FeatureSequence>* features) const {
  auto missing = [](const char* kind) {
    return absl::FailedPreconditionError(
        absl::StrCat("the model has no modality with ", kind,
                     " featurizer (config.pbtxt: modalities { featurizer { ... } })"));
  };
  if (input.audio_path.empty() && input.image_path.empty() && input.video_path.empty() &&
      !input.text.has_value()) {
    return absl::InvalidArgumentError("no input: give at least one of audio, image, video, text");
  }
  if (!input.image_path.empty() && !input.video_path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "both image (", input.image_path, ") and video (", input.video_path,
        ") given; both feed the ", image_modality_.empty() ? "video" : image_modality_,
        " modality, so give one"));
  }
  if (!input.audio_path.empty()) {
    if (log_mel_ == nullptr) return missing("an audio");
    absl::StatusOr<MonoAudio> audio = ReadMonoAudio(input.audio_path, audio_params_.max_seconds());
    if (!audio.ok()) return audio.status();
    audio = Resample(*audio, static_cast<int>(audio_params_.sample_rate()), audio_params_.resampler());
    if (!audio.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("audio file ", input.audio_path, ": ", audio.status().message()));
    }
    absl::StatusOr<v1::FeatureSequence> sequence = log_mel_->Compute(audio->samples, audio_max_frames_);
    if (!sequence.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("audio file ", input.audio_path, ": ", sequence.status().message()));
    }
    (*features)[audio_modality_] = std::move(*sequence);
  }
  if (!input.image_path.empty() || !input.video_path.empty()) {
    if (patches_ == nullptr) return missing("an image");
    absl::StatusOr<v1::FeatureSequence> sequence =
        input.image_path.empty() ? patches_->FeaturizeVideoFile(input.video_path)
                                 : patches_->FeaturizeImageFile(input.image_path);
    if (!sequence.ok()) return sequence.status();
    (*features)[image_modality_] = std::move(*sequence);
  }
  if (input.text.has_value()) {
    if (text_ == nullptr) return missing("a text");
    absl::StatusOr<v1::FeatureSequence> sequence = text_->Featurize(*input.text);
    if (!sequence.ok()) return sequence.status();
    (*features)[text_modality_] = std::move(*sequence);
  }
  return absl::OkStatus();
}

}  // namespace mmfuse::featurize
