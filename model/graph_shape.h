// The fixed shapes a CUDA graph is captured for. A graph replays one
// recorded sequence of kernels on the same buffers, so it serves only the
// shape it was captured at: each batch is padded up to a bucket of shapes
// (batch rounded up to a power of two, each modality's frames up to the next
// power of two from 8, capped at max_frames), and a graph is captured per
// bucket. Padding is invisible in the results: padded frames lie beyond
// each sample's length (masked like any padding) and padded rows have no
// modality (their outputs are dropped), which tests/model/graph_shape_test
// checks for every fusion mode on the CPU.
//
// Device-generic (no CUDA): model/cuda_graphs_cuda.cc captures and replays.
#ifndef MMFUSE_MODEL_GRAPH_SHAPE_H_
#define MMFUSE_MODEL_GRAPH_SHAPE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "model/fusion_transformer.h"
#include "mmfuse/v1/model_config.pb.h"

namespace mmfuse::model {

struct GraphShape {
  int branch = 0;
  int64_t batch = 0;
  // Per config modality: padded frame count, 0 = absent from the batch.
  std::vector<int64_t> frames;

  bool operator<(const GraphShape& other) const;
  bool operator==(const GraphShape& other) const;
  // e.g. "branch 2, batch 8, frames 16/0/32", for logs.
  std::string DebugString() const;
};

// The smallest power of two >= batch.
int64_t GraphBatchBucket(int64_t batch);

// The smallest power of two >= max(frames, 8), capped at max_frames; 0 for 0.
int64_t GraphFramesBucket(int64_t frames, int64_t max_frames);

// The bucket of a collated batch (model/collate.h) run on `branch`.
GraphShape GraphShapeOf(const v1::ModelConfig& config, const std::vector<ModalityInput>& batch,
                        int branch);

// Fresh tensors of `shape` (on `options`' device, features in its dtype,
// lengths int64) holding `batch` in their leading rows and frames, zeros
// elsewhere. `batch` must fit `shape` (GraphShapeOf).
std::vector<ModalityInput> PaddedToShape(const std::vector<ModalityInput>& batch,
                                         const GraphShape& shape,
                                         const at::TensorOptions& options);

// Overwrites `padded` (tensors of a GraphShape, e.g. a graph's inputs) with
// `batch`: zeros, then `batch` in the leading rows and frames. Copies from
// pinned host memory do not block the host.
void CopyIntoPadded(const std::vector<ModalityInput>& batch, std::vector<ModalityInput>* padded);

}  // namespace mmfuse::model

#endif  // MMFUSE_MODEL_GRAPH_SHAPE_H_
