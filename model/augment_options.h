// Options of train-time feature augmentation (augment.h says what each
// does). No LibTorch, so the trainer's and CLI's headers stay light.
#ifndef MMFUSE_MODEL_AUGMENT_OPTIONS_H_
#define MMFUSE_MODEL_AUGMENT_OPTIONS_H_

#include "absl/status/status.h"

namespace mmfuse::model {

struct AugmentOptions {
  // Audio: time masks per sample, each up to this fraction of the sample's
  // raw frames. Masks >= 0, fraction in [0, 1]. Default 2 masks of <= 10%.
  int time_masks = 2;
  double time_mask_fraction = 0.1;
  // Audio: frequency masks per sample, each up to this many mel bands.
  // >= 0. Default 2 masks of <= 6 bands.
  int freq_masks = 2;
  int freq_mask_bands = 6;
  // Image: largest shift in pixels, each axis drawn in [-this, this]. >= 0.
  // Default 2.
  int image_shift_px = 2;
  // Image: probability of erasing one rectangle covering 2-20% of the image,
  // aspect ratio 0.3-3.3. In [0, 1]. Default 0.5.
  double image_erase_probability = 0.5;
  // Text: probability of dropping each token. In [0, 1). Default 0.1.
  double token_dropout = 0.1;
};

// Whether every field is in range; the error names the field and its range.
absl::Status ValidateAugmentOptions(const AugmentOptions& options);

}  // namespace mmfuse::model

#endif  // MMFUSE_MODEL_AUGMENT_OPTIONS_H_
