// Frames (images, or sampled video frames) -> patch vectors
// (docs/FEATURES.md, "Images and video"): channels (gray or RGB), bilinear
// resize (or an exact-size check), scaling to [0, 1], per-channel
// normalisation, square patches in raster order, frames concatenated.
//
// Thread-safety: thread-safe (const after Create()).
#ifndef MMFUSE_CLIENT_FEATURIZE_PATCH_FEATURIZER_H_
#define MMFUSE_CLIENT_FEATURIZE_PATCH_FEATURIZER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/featurize/image_file.h"
#include "mmfuse/v1/features.pb.h"
#include "mmfuse/v1/model_config.pb.h"

namespace mmfuse::featurize {

class PatchFeaturizer {
 public:
  // `params` resolved and valid; `max_frames` is the modality's (patch
  // rows), which caps the video frames to max_frames / patches per frame.
  static absl::StatusOr<std::unique_ptr<PatchFeaturizer>> Create(
      const v1::ImageFeaturizer& params, int max_frames);

  // [patches, patch_dim] of one PNG/JPEG image.
  absl::StatusOr<v1::FeatureSequence> FeaturizeImageFile(const std::string& path) const;
  // [frames * patches, patch_dim] of a video's sampled frames.
  absl::StatusOr<v1::FeatureSequence> FeaturizeVideoFile(const std::string& path) const;
  // [frames.size() * patches, patch_dim]; `source` names the input in errors.
  absl::StatusOr<v1::FeatureSequence> FeaturizeFrames(const std::vector<RgbImage>& frames,
                                                      const std::string& source) const;

  int patches_per_frame() const { return patches_per_frame_; }
  // Most frames of a video kept.
  int max_video_frames() const { return max_video_frames_; }

 private:
  PatchFeaturizer(const v1::ImageFeaturizer& params, int channels, int max_video_frames);
  // Appends one frame's patches to `out`.
  absl::Status AppendFrame(const RgbImage& frame, const std::string& source,
                           v1::FeatureSequence* out) const;

  v1::ImageFeaturizer params_;
  int channels_;
  int patches_per_frame_;
  int max_video_frames_;
  std::vector<double> mean_, std_;  // Per channel.
};

// `image` (RGB) converted to `channels` (1: gray, 3: RGB) and bilinearly
// resized to width x height with half-pixel centres, values unchanged in
// scale; exposed for tests. Layout (y * width + x) * channels + c.
std::vector<double> ToChannelsAndResize(const RgbImage& image, int channels, int width,
                                        int height);

}  // namespace mmfuse::featurize

#endif  // MMFUSE_CLIENT_FEATURIZE_PATCH_FEATURIZER_H_
