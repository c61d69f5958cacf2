#include "model/graph_shape.h"

#include <algorithm>
#include <tuple>

#include <ATen/ops/empty.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace mmfuse::model {

bool GraphShape::operator<(const GraphShape& other) const {
  return std::tie(branch, batch, frames) < std::tie(other.branch, other.batch, other.frames);
}

bool GraphShape::operator==(const GraphShape& other) const {
  return std::tie(branch, batch, frames) == std::tie(other.branch, other.batch, other.frames);
}

std::string GraphShape::DebugString() const {
  return absl::StrCat("branch ", branch, ", batch ", batch, ", frames ", absl::StrJoin(frames, "/"));
}

int64_t GraphBatchBucket(int64_t batch) {
  int64_t bucket = 1;
  while (bucket < batch) bucket *= 2;
  return bucket;
}

int64_t GraphFramesBucket(int64_t frames, int64_t max_frames) {
  if (frames <= 0) return 0;
  int64_t bucket = 8;
  while (bucket < frames) bucket *= 2;
  return std::min(bucket, std::max(max_frames, frames));
}

GraphShape GraphShapeOf(const v1::ModelConfig& config, const std::vector<ModalityInput>& batch,
                        int branch) {
  GraphShape shape;
  shape.branch = branch;
  shape.frames.assign(batch.size(), 0);
  for (size_t m = 0; m < batch.size(); ++m) {
    const torch::Tensor& features = batch[m].features;
    if (!features.defined()) continue;
    shape.batch = std::max(shape.batch, features.size(0));
    shape.frames[m] =
        GraphFramesBucket(features.size(1), config.modalities(static_cast<int>(m)).max_frames());
  }
  shape.batch = GraphBatchBucket(shape.batch);
  return shape;
}

std::vector<ModalityInput> PaddedToShape(const std::vector<ModalityInput>& batch,
                                         const GraphShape& shape,
                                         const at::TensorOptions& options) {
  std::vector<ModalityInput> padded(batch.size());
  for (size_t m = 0; m < batch.size(); ++m) {
    if (!batch[m].features.defined()) continue;
    padded[m].features =
        at::empty({shape.batch, shape.frames[m], batch[m].features.size(2)}, options);
    padded[m].lengths = at::empty({shape.batch}, options.dtype(at::kLong));
  }
  CopyIntoPadded(batch, &padded);  // Zeros them, then copies the batch in.
  return padded;
}

void CopyIntoPadded(const std::vector<ModalityInput>& batch, std::vector<ModalityInput>* padded) {
  for (size_t m = 0; m < batch.size(); ++m) {
    const ModalityInput& from = batch[m];
    ModalityInput& to = (*padded)[m];
    if (!from.features.defined()) continue;
    const int64_t rows = from.features.size(0), frames = from.features.size(1);
    // Zeros everywhere first: the contract of a collated batch (zero beyond
    // each length; padded rows have length 0, i.e. no modality).
    to.features.zero_();
    to.lengths.zero_();
    to.features.narrow(0, 0, rows).narrow(1, 0, frames).copy_(from.features, /*non_blocking=*/true);
    to.lengths.narrow(0, 0, rows).copy_(from.lengths, /*non_blocking=*/true);
  }
}

}  // namespace mmfuse::model
