#include "client/featurize/patch_featurizer.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "client/featurize/video_file.h"
#include "model/featurizer_config.h"

namespace mmfuse::featurize {

std::vector<double> ToChannelsAndResize(const RgbImage& image, int channels, int width,
                                        int height) {
  const int in_w = image.width, in_h = image.height;
  // Channel c of source pixel (x, y), converted on the fly: no full-size
  // copy of a large input.
  auto source = [&](int y, int x, int c) {
    const size_t p = static_cast<size_t>(y) * in_w + x;
    if (channels == 3) return image.Value(p, c);
    return (299.0 * image.Value(p, 0) + 587.0 * image.Value(p, 1) + 114.0 * image.Value(p, 2)) /
           1000.0;
  };
  std::vector<double> out(static_cast<size_t>(width) * height * channels);
  if (in_w == width && in_h == height) {
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        for (int c = 0; c < channels; ++c) {
          out[(static_cast<size_t>(y) * width + x) * channels + c] = source(y, x, c);
        }
      }
    }
    return out;
  }
  // Source coordinate of an output pixel centre, clamped to the edge pixels.
  auto map = [](int o, int out_size, int in_size, int* i0, int* i1, double* frac) {
    double s = (o + 0.5) * in_size / out_size - 0.5;
    s = std::min(std::max(s, 0.0), static_cast<double>(in_size - 1));
    *i0 = static_cast<int>(std::floor(s));
    *i1 = std::min(*i0 + 1, in_size - 1);
    *frac = s - *i0;
  };
  for (int y = 0; y < height; ++y) {
    int y0, y1;
    double fy;
    map(y, height, in_h, &y0, &y1, &fy);
    for (int x = 0; x < width; ++x) {
      int x0, x1;
      double fx;
      map(x, width, in_w, &x0, &x1, &fx);
      for (int c = 0; c < channels; ++c) {
        const double top = (1 - fx) * source(y0, x0, c) + fx * source(y0, x1, c);
        const double bottom = (1 - fx) * source(y1, x0, c) + fx * source(y1, x1, c);
        out[(static_cast<size_t>(y) * width + x) * channels + c] = (1 - fy) * top + fy * bottom;
      }
    }
  }
  return out;
}

PatchFeaturizer::PatchFeaturizer(const v1::ImageFeaturizer& params, int channels,
                                 int max_video_frames)
    : params_(params),
      channels_(channels),
      patches_per_frame_(static_cast<int>(model::PatchesPerFrame(params))),
      max_video_frames_(max_video_frames) {
  for (int c = 0; c < channels; ++c) {
    mean_.push_back(params.mean().empty() ? 0.0
                                          : params.mean(params.mean_size() == 1 ? 0 : c));
    std_.push_back(params.std().empty() ? 1.0 : params.std(params.std_size() == 1 ? 0 : c));
  }
}

absl::StatusOr<std::unique_ptr<PatchFeaturizer>> PatchFeaturizer::Create(
    const v1::ImageFeaturizer& params, int max_frames) {
  const int channels = params.color() == v1::ImageFeaturizer::COLOR_RGB ? 3 : 1;
  const int64_t patches = model::PatchesPerFrame(params);
  if (patches < 1 || patches > max_frames) {
    return absl::InvalidArgumentError(absl::StrCat("image featurizer: one frame is ", patches,
                                                   " patches but max_frames=", max_frames));
  }
  int64_t video_frames = max_frames / patches;
  if (params.max_frames() > 0) video_frames = std::min<int64_t>(video_frames, params.max_frames());
  return std::unique_ptr<PatchFeaturizer>(
      new PatchFeaturizer(params, channels, static_cast<int>(video_frames)));
}

absl::Status PatchFeaturizer::AppendFrame(const RgbImage& frame, const std::string& source,
                                          v1::FeatureSequence* out) const {
  const int width = static_cast<int>(params_.width()), height = static_cast<int>(params_.height());
  if (params_.resize() == v1::ImageFeaturizer::RESIZE_NONE &&
      (frame.width != width || frame.height != height)) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", frame.width, "x", frame.height,
                                                   " but the featurizer needs ", width, "x",
                                                   height, " (resize: none)"));
  }
  const std::vector<double> pixels = ToChannelsAndResize(frame, channels_, width, height);
  const int p = static_cast<int>(params_.patch_size());
  for (int py = 0; py < height / p; ++py) {
    for (int px = 0; px < width / p; ++px) {
      for (int y = 0; y < p; ++y) {
        for (int x = 0; x < p; ++x) {
          const size_t base = (static_cast<size_t>(py * p + y) * width + px * p + x) * channels_;
          for (int c = 0; c < channels_; ++c) {
            const double value = (pixels[base + c] / 255.0 - mean_[c]) / std_[c];
            out->add_data(static_cast<float>(value));
          }
        }
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::FeatureSequence> PatchFeaturizer::FeaturizeFrames(
    const std::vector<RgbImage>& frames, const std::string& source) const {
  if (frames.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": no frames"));
  v1::FeatureSequence sequence;
  const int dim = static_cast<int>(params_.patch_size() * params_.patch_size()) * channels_;
  sequence.set_dim(dim);
  sequence.set_frames(static_cast<uint32_t>(frames.size() * patches_per_frame_));
  sequence.mutable_data()->Reserve(static_cast<int>(sequence.frames()) * dim);
  for (const RgbImage& frame : frames) {
    absl::Status status = AppendFrame(frame, source, &sequence);
    if (!status.ok()) return status;
  }
  return sequence;
}

absl::StatusOr<v1::FeatureSequence> PatchFeaturizer::FeaturizeImageFile(
    const std::string& path) const {
  absl::StatusOr<RgbImage> image = ReadImageFile(path);
  if (!image.ok()) return image.status();
  return FeaturizeFrames({*image}, absl::StrCat("image file ", path));
}

absl::StatusOr<v1::FeatureSequence> PatchFeaturizer::FeaturizeVideoFile(
    const std::string& path) const {
  const std::string source = absl::StrCat("video file ", path);
  v1::FeatureSequence sequence;
  const int dim = static_cast<int>(params_.patch_size() * params_.patch_size()) * channels_;
  sequence.set_dim(dim);
  // Frames are featurized as they are decoded: only one is held at a time.
  absl::StatusOr<int> frames = ReadVideoFrames(
      path, params_.frame_rate(), max_video_frames_,
      [&](const RgbImage& frame) { return AppendFrame(frame, source, &sequence); });
  if (!frames.ok()) return frames.status();
  sequence.set_frames(static_cast<uint32_t>(*frames * patches_per_frame_));
  return sequence;
}

}  // namespace mmfuse::featurize
