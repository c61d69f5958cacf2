// The featurizers of one model: which modality takes audio, images/video and
// text, built from the featurizer parameters in its config.pbtxt or its
// GetModelInfo answer. Audio files go to the modality with an audio
// featurizer, images and videos to the one with an image featurizer (an image
// is a one-frame video), text to the one with a text featurizer.
//
// Thread-safety: thread-safe (const after Create()).
#ifndef MMFUSE_CLIENT_FEATURIZE_MEDIA_FEATURIZER_H_
#define MMFUSE_CLIENT_FEATURIZE_MEDIA_FEATURIZER_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "client/featurize/log_mel.h"
#include "client/featurize/patch_featurizer.h"
#include "client/featurize/text_featurizer.h"
#include "google/protobuf/map.h"
#include "mmfuse/v1/classifier.pb.h"
#include "mmfuse/v1/features.pb.h"
#include "mmfuse/v1/model_config.pb.h"

namespace mmfuse::featurize {

// One sample's media; empty paths and an unset text are absent.
struct MediaInput {
  std::string audio_path;
  std::string image_path;  // PNG or JPEG.
  std::string video_path;  // Anything FFmpeg decodes.
  std::optional<std::string> text;
};

class MediaFeaturizer {
 public:
  // From a model config (validated here, so a featurizer whose output dim is
  // not its modality's feature_dim is an error).
  static absl::StatusOr<std::unique_ptr<MediaFeaturizer>> FromModelConfig(
      const v1::ModelConfig& config);
  // From a server's model description.
  static absl::StatusOr<std::unique_ptr<MediaFeaturizer>> FromModelInfo(const v1::ModelInfo& info);

  // Featurizes every present input into `features` (keyed by modality
  // name). Errors: an input without a featurizer for it, both image and video
  // given, no input at all, or the featurizer's error (naming the file).
  absl::Status Featurize(const MediaInput& input,
                         google::protobuf::Map<std::string, v1::FeatureSequence>* features) const;

  // Modality names per input kind; empty if the model has no such featurizer.
  const std::string& audio_modality() const { return audio_modality_; }
  const std::string& image_modality() const { return image_modality_; }
  const std::string& text_modality() const { return text_modality_; }

 private:
  MediaFeaturizer() = default;
  // Adds modality `name`'s featurizer.
  absl::Status Add(const std::string& name, uint32_t feature_dim, uint32_t max_frames,
                   const v1::Featurizer& featurizer);

  std::string audio_modality_, image_modality_, text_modality_;
  v1::AudioFeaturizer audio_params_;
  std::unique_ptr<LogMel> log_mel_;
  int audio_max_frames_ = 0;
  std::unique_ptr<PatchFeaturizer> patches_;
  std::unique_ptr<TextFeaturizer> text_;
};

}  // namespace mmfuse::featurize

#endif  // MMFUSE_CLIENT_FEATURIZE_MEDIA_FEATURIZER_H_
