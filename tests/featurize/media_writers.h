// Writes small media files for the featurizer tests with the same libraries
// the featurizers read them with (libsndfile, libpng, libjpeg, FFmpeg), so
// every input is generated at test time.
#ifndef MMFUSE_TESTS_FEATURIZE_MEDIA_WRITERS_H_
#define MMFUSE_TESTS_FEATURIZE_MEDIA_WRITERS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace mmfuse::featurize::testing {

// A fresh directory under the test's temp dir.
std::string TempDir(const std::string& name);

// WAV (float samples, interleaved when channels > 1); `format` is a
// libsndfile major|minor format (default WAV PCM 16).
absl::Status WriteAudio(const std::string& path, const std::vector<float>& interleaved,
                        int sample_rate, int channels, int format = 0);

// `seconds` of a sine at `hz` with amplitude `amplitude`.
std::vector<float> Sine(double hz, int sample_rate, double seconds, double amplitude = 0.5);

// 8-bit PNG; `channels` 1 (gray), 3 (RGB) or 4 (RGBA); row-major pixels.
absl::Status WritePng(const std::string& path, int width, int height, int channels,
                      const std::vector<uint8_t>& pixels);

// Baseline JPEG of RGB pixels at `quality`.
absl::Status WriteJpeg(const std::string& path, int width, int height,
                       const std::vector<uint8_t>& rgb, int quality);

// A lossless video (FFV1 gray in Matroska) of `frames` gray frames of
// width x height at `fps`, frame i filled with gray value values[i]. With no
// values, a valid file with no frames.
absl::Status WriteGrayVideo(const std::string& path, int width, int height, int fps,
                            const std::vector<uint8_t>& values);

// Raw bytes.
absl::Status WriteBytes(const std::string& path, const std::string& bytes);
// The file's bytes ("" if unreadable).
std::string ReadBytes(const std::string& path);

}  // namespace mmfuse::featurize::testing

#endif  // MMFUSE_TESTS_FEATURIZE_MEDIA_WRITERS_H_
