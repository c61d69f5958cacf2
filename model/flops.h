// Compute accounting: multiply-adds of one forward pass, counted from the
// architecture (the matmuls of projections, attention including its quadratic
// terms, feed-forward and head; norms, softmax and activations are not
// multiply-adds and are left out). No LibTorch: the server quotes costs per
// request from it.
#ifndef MMFUSE_MODEL_FLOPS_H_
#define MMFUSE_MODEL_FLOPS_H_

#include <cstdint>
#include <vector>

#include "mmfuse/v1/model_config.pb.h"

namespace mmfuse::model {

// Multiply-adds of one transformer layer over `tokens` tokens: q, k, v and
// output projections (4 T d^2), scores and weighted values (2 T^2 d) and the
// feed-forward sub-layer (2 T d ff).
int64_t TransformerLayerMacs(int64_t tokens, int64_t d_model, int64_t ff_dim);

// Multiply-adds of `layers` layers over `tokens` tokens whose only output
// read is the first token's (a class-token readout): in inference the last
// layer computes k and v for every token, and the query, scores, weighted
// values, output projection and feed-forward of the first token alone
// (TransformerLayer::ForwardFirstToken). 0 layers cost nothing.
int64_t ClassTokenLayersMacs(int64_t layers, int64_t tokens, int64_t d_model, int64_t ff_dim);

// Multiply-adds of one sample's forward pass with `frames[m]` frames of
// modality m (model order; 0 = absent, its encoder never runs), for the
// config's fusion mode. Each mode's count follows its code path exactly
// (tests check it against the multiply-adds the code executes).
int64_t ForwardMacs(const v1::ModelConfig& config, const std::vector<int64_t>& frames);

// Multiply-adds of branch `branch` (an index into ResolveBranches) for one
// sample: its expert over the branch's modalities.
int64_t BranchMacs(const v1::ModelConfig& config, int branch, const std::vector<int64_t>& frames);

// Multiply-adds of the gate for one sample (zero for single-branch models).
int64_t GateMacs(const v1::ModelConfig& config, const std::vector<int64_t>& frames);

// GFLOPs as reported to users: 2 FLOPs per multiply-add.
inline double MacsToGflops(int64_t macs) { return 2.0 * static_cast<double>(macs) * 1e-9; }

// Frames at which a modality's cost is quoted (reference_frames, else
// max_frames), in model order.
std::vector<int64_t> ReferenceFrames(const v1::ModelConfig& config);

}  // namespace mmfuse::model

#endif  // MMFUSE_MODEL_FLOPS_H_
