// `mmfuse classify --audio a.wav --image i.png --video v.mp4 --text "..."`:
// the sample classified is featurized from media files (docs/FEATURES.md)
// with the featurizers of the server's model (GetModelInfo) or of
// --featurizers. Flags are defined in media_classify.cc.
#ifndef MMFUSE_CLIENT_MEDIA_CLASSIFY_H_
#define MMFUSE_CLIENT_MEDIA_CLASSIFY_H_

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "client/classifier_client.h"
#include "mmfuse/v1/dataset.pb.h"

namespace mmfuse::client {

// True when any of --audio, --image, --video, --text is given.
bool HasMediaFlags();

// The sample (id "media", no label) featurized from the media flags, with
// the featurizers of --featurizers or else of the server `connect` reaches.
absl::StatusOr<v1::Example> MediaSampleFromFlags(
    const std::function<absl::StatusOr<std::unique_ptr<ClassifierClient>>()>& connect);

}  // namespace mmfuse::client

#endif  // MMFUSE_CLIENT_MEDIA_CLASSIFY_H_
