// Decodes a video file with FFmpeg (libavformat, libavcodec, libswscale) and
// samples frames at a fixed rate (docs/FEATURES.md, "Images and video").
#ifndef MMFUSE_CLIENT_FEATURIZE_VIDEO_FILE_H_
#define MMFUSE_CLIENT_FEATURIZE_VIDEO_FILE_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "client/featurize/image_file.h"

namespace mmfuse::featurize {

// Called with each kept frame, in order; an error stops decoding and is
// returned.
using FrameSink = std::function<absl::Status(const RgbImage&)>;

// Decodes the best video stream of `path` and passes the frames sampled at
// `frame_rate` per second to `sink`: with t the frame's presentation time
// minus the first frame's, a frame is kept when t >= k / frame_rate for the
// next unfilled slot k (then k = floor(t * frame_rate) + 1). At most
// `max_frames` (>= 1) are kept, each converted to RGB24 at its own size by
// libswscale. Returns how many were kept. Errors name the file: missing,
// empty, not a video, corrupt, no frames.
absl::StatusOr<int> ReadVideoFrames(const std::string& path, double frame_rate, int max_frames,
                                    const FrameSink& sink);

}  // namespace mmfuse::featurize

#endif  // MMFUSE_CLIENT_FEATURIZE_VIDEO_FILE_H_
