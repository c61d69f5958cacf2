// Inference entry points for serving and evaluation. The header carries no
// LibTorch, so server/ compiles without it; LibTorch errors are caught here
// and returned as statuses.
#ifndef MMFUSE_MODEL_INFERENCE_H_
#define MMFUSE_MODEL_INFERENCE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "google/protobuf/map.h"
#include "mmfuse/v1/features.pb.h"

namespace mmfuse::model {

struct ModelPackage;
using FeatureMap = google::protobuf::Map<std::string, v1::FeatureSequence>;

// Class probabilities of a batch, row-major [samples.size() x num_classes],
// from the expert of `branch` (an index into ResolveBranches): only the
// encoders of that branch's modalities run. Under InferenceMode on the
// calling thread. Features must be validated.
absl::StatusOr<std::vector<float>> PredictProbabilities(
    const ModelPackage& package, absl::Span<const FeatureMap* const> samples, int branch);

// The gate's branch logits, row-major [samples.size() x branches]. Only for
// packages with several branches.
absl::StatusOr<std::vector<float>> GateLogits(const ModelPackage& package,
                                              absl::Span<const FeatureMap* const> samples);

// Calls of PredictProbabilities and GateLogits the calling thread has made:
// lets a test show which threads run forward passes (a server's RPC threads
// must not).
int64_t ForwardPassesOnThisThread();

// Trainable parameters of the package's model.
int64_t ParameterCount(const ModelPackage& package);

// Where the package's model runs, e.g. "cpu" or "cuda:0", and in which
// number format ("fp32", "bf16", "fp16").
std::string DeviceName(const ModelPackage& package);
std::string PrecisionName(const ModelPackage& package);

// Seeds LibTorch's generator (weight initialisation, dropout).
void SeedRandom(uint64_t seed);

// Caps LibTorch's intra-op pool and OpenBLAS's pool at `threads` each. On
// this hardware one thread per worker and parallelism across workers is
// fastest: two threads on a batch of one ran 15x slower than one. Call from
// main() before any model runs.
void LimitMathThreads(int threads);

}  // namespace mmfuse::model

#endif  // MMFUSE_MODEL_INFERENCE_H_
