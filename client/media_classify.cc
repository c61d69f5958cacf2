#include "client/media_classify.h"

#include <optional>
#include <string>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/time/time.h"
#include "client/classifier_client.h"
#include "client/featurize/featurizer_source.h"

ABSL_DECLARE_FLAG(std::string, model);
ABSL_DECLARE_FLAG(int, timeout_ms);
ABSL_DECLARE_FLAG(std::string, featurizers);
ABSL_FLAG(std::string, audio, "", "classify: audio file (WAV, FLAC, OGG) to featurize.");
ABSL_FLAG(std::string, image, "", "classify: image file (PNG, JPEG) to featurize (video modality).");
ABSL_FLAG(std::string, video, "", "classify: video file to featurize.");
ABSL_FLAG(std::optional<std::string>, text, std::nullopt, "classify: text to featurize.");

namespace mmfuse::client {

bool HasMediaFlags() {
  return !absl::GetFlag(FLAGS_audio).empty() || !absl::GetFlag(FLAGS_image).empty() ||
         !absl::GetFlag(FLAGS_video).empty() || absl::GetFlag(FLAGS_text).has_value();
}

absl::StatusOr<v1::Example> MediaSampleFromFlags(
    const std::function<absl::StatusOr<std::unique_ptr<ClassifierClient>>()>& connect) {
  absl::StatusOr<std::unique_ptr<featurize::MediaFeaturizer>> media;
  const std::string featurizers = absl::GetFlag(FLAGS_featurizers);
  if (!featurizers.empty()) {
    media = featurize::LoadFeaturizers(featurizers);
  } else {
    absl::StatusOr<std::unique_ptr<ClassifierClient>> client = connect();
    if (!client.ok()) return client.status();
    media = featurize::FetchFeaturizers(client->get(), absl::GetFlag(FLAGS_model),
                                        absl::Milliseconds(absl::GetFlag(FLAGS_timeout_ms)));
  }
  if (!media.ok()) return media.status();
  featurize::MediaInput input;
  input.audio_path = absl::GetFlag(FLAGS_audio);
  input.image_path = absl::GetFlag(FLAGS_image);
  input.video_path = absl::GetFlag(FLAGS_video);
  input.text = absl::GetFlag(FLAGS_text);
  v1::Example example;
  example.set_id("media");
  absl::Status status = (*media)->Featurize(input, example.mutable_features());
  if (!status.ok()) return status;
  return example;
}

}  // namespace mmfuse::client
