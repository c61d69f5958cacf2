// Decodes PNG and JPEG files into 8-bit RGB (docs/FEATURES.md, "Images and
// video"): libpng's simplified API (alpha composited over black) and libjpeg
// (islow IDCT, RGB output).
#ifndef MMFUSE_CLIENT_FEATURIZE_IMAGE_FILE_H_
#define MMFUSE_CLIENT_FEATURIZE_IMAGE_FILE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace mmfuse::featurize {

// Largest decoded image accepted, per side and in pixels.
inline constexpr int kMaxImageSide = 16384;
inline constexpr int64_t kMaxImagePixels = int64_t{64} << 20;

// One frame: `height` rows of `width` 8-bit RGB pixels, with an optional
// alpha plane (PNG) that Value() composites over black.
struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;    // (y * width + x) * 3 + c.
  std::vector<uint8_t> alpha;  // y * width + x; empty = opaque.

  // Channel c of pixel p = y * width + x, in [0, 255]: c * a / 255 where
  // alpha is below 255.
  double Value(size_t p, int c) const {
    const double value = rgb[p * 3 + c];
    return alpha.empty() || alpha[p] == 255 ? value : value * alpha[p] / 255.0;
  }
};

// Reads a PNG or JPEG (told apart by their signatures). Errors name the file
// and say what was wrong: missing, empty, not PNG/JPEG, corrupt, truncated,
// too large.
absl::StatusOr<RgbImage> ReadImageFile(const std::string& path);

}  // namespace mmfuse::featurize

#endif  // MMFUSE_CLIENT_FEATURIZE_IMAGE_FILE_H_
